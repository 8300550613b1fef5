"""The cloud blob stores on their stand-ins: AzureBlobStore on Azurite, S3BlobStore on a moto server.

Both pass the same small blob contract as the local store (put, get, missing is None, overwrite, a 5 MB
object, the same keys refused), create their container or bucket when missing, and keep to their prefix.

Files stream through ``put_file``/``get_file``: checked on all three stores, and the vulnerability
database channel's publish and sync of a 64 MB database stay within a few MB of Python memory
(``tracemalloc``) on each, far below the file's size.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.composition import VulnDbChannel
from shared.stores.blobs import BlobKeyError, LocalBlobStore
from shared.stores.errors import StoreUnavailable
from shared.stores.ports import BlobStore
from tests.support.services import (
    AWS_ACCESS_KEY,
    AWS_REGION,
    AWS_SECRET_KEY,
    ServiceProcess,
    azurite_connection_string,
)
from tests.support.services import azurite as azurite  # the session fixtures
from tests.support.services import moto_server as moto_server

pytestmark = pytest.mark.integration

LARGE = 5 * 1024 * 1024

#: A store factory: (name of a container or bucket, prefix) -> store.
Factory = Callable[..., Any]


def _name() -> str:
    return f"hw-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def azure_factory(azurite: ServiceProcess) -> Factory:
    from shared.stores.cloudblobs import AzureBlobStore

    def make(name: str, prefix: str = "", **kw: Any) -> AzureBlobStore:
        return AzureBlobStore.from_connection_string(azurite_connection_string(azurite), name, prefix=prefix, **kw)

    return make


@pytest.fixture
def s3_factory(moto_server: ServiceProcess) -> Factory:
    from shared.stores.cloudblobs import S3BlobStore

    def make(name: str, prefix: str = "", region: str = AWS_REGION, **kw: Any) -> S3BlobStore:
        return S3BlobStore.from_bucket(
            name,
            prefix=prefix,
            endpoint_url=moto_server.url,
            region_name=region,
            aws_access_key_id=AWS_ACCESS_KEY,
            aws_secret_access_key=AWS_SECRET_KEY,
            **kw,
        )

    return make


@pytest.fixture(params=["azure", "s3"])
def factory(request: pytest.FixtureRequest) -> Factory:
    made: Factory = request.getfixturevalue(f"{request.param}_factory")
    return made


@pytest.fixture
def blobs(factory: Factory) -> Iterator[BlobStore]:
    yield factory(_name())


# -- the blob contract ----------------------------------------------------------------------------------


def test_put_get_and_missing(blobs: BlobStore) -> None:
    assert blobs.get("inventories/sha256/ab12.json") is None
    blobs.put("inventories/sha256/ab12.json", b'{"packages": []}')
    assert blobs.get("inventories/sha256/ab12.json") == b'{"packages": []}'
    assert blobs.get("inventories/sha256/ab1") is None, "no prefix matching"
    blobs.put("empty", b"")
    assert blobs.get("empty") == b""


def test_overwrite(blobs: BlobStore) -> None:
    blobs.put("layers/layer-1.json", b"first")
    blobs.put("layers/layer-1.json", b"second, longer than the first")
    assert blobs.get("layers/layer-1.json") == b"second, longer than the first"


def test_large_object(blobs: BlobStore) -> None:
    data = os.urandom(LARGE)
    blobs.put("big/blob.bin", data)
    assert blobs.get("big/blob.bin") == data
    bigger = os.urandom(LARGE + 3 * 1024 * 1024 + 7)  # over the multipart threshold: blocks / parts
    blobs.put("big/blob.bin", bigger)
    assert blobs.get("big/blob.bin") == bigger


def test_keys_with_unusual_characters(blobs: BlobStore) -> None:
    key = "inventories/sha256:ab/répertoire with spaces+plus%percent.json"
    blobs.put(key, b"x")
    assert blobs.get(key) == b"x"


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", "a\\b", "a\x00b", "k" * 1025])
def test_unusable_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(BlobKeyError):
        blobs.put(key, b"x")
    with pytest.raises(BlobKeyError):
        blobs.get(key)


# -- containers, buckets, prefixes ------------------------------------------------------------------------


def test_container_or_bucket_created_once(factory: Factory) -> None:
    name = _name()
    first = factory(name)
    first.put("k", b"v")
    again = factory(name)  # already there: fine, and nothing lost
    assert again.get("k") == b"v"
    assert factory(name, create=False).get("k") == b"v"


def test_prefixes_keep_stores_apart(factory: Factory) -> None:
    name = _name()
    a, b, plain = factory(name, "vulndb"), factory(name, "other/"), factory(name)
    a.put("db.json", b"a")
    b.put("db.json", b"b")
    assert (a.get("db.json"), b.get("db.json")) == (b"a", b"b")
    assert plain.get("vulndb/db.json") == b"a" and plain.get("db.json") is None


def test_counts(blobs: BlobStore) -> None:
    blobs.put("a", b"1")
    blobs.get("a")
    blobs.get("b")
    assert (blobs.put_count, blobs.get_count) == (1, 2)  # type: ignore[attr-defined]


def test_s3_bucket_outside_us_east_1(s3_factory: Factory) -> None:
    store = s3_factory(_name(), region="eu-west-1")
    store.put("k", b"v")
    assert store.get("k") == b"v"
    assert store._client.get_bucket_location(Bucket=store.bucket)["LocationConstraint"] == "eu-west-1"


# -- unreachable services ------------------------------------------------------------------------------------


def test_unreachable_azure_is_store_unavailable(azurite: ServiceProcess, tmp_path: Path) -> None:
    from azure.storage.blob import ContainerClient

    from shared.stores.cloudblobs import AzureBlobStore

    dead = azurite_connection_string(azurite).replace(f":{azurite.port}/", ":1/")
    client = ContainerClient.from_connection_string(dead, "nowhere", retry_total=0)
    with pytest.raises(StoreUnavailable, match="cannot create it"):
        AzureBlobStore(client)
    store = AzureBlobStore(client, create=False)
    assert_every_operation_is_unavailable(store, tmp_path)


def test_unreachable_s3_is_store_unavailable(moto_server: ServiceProcess, tmp_path: Path) -> None:
    import boto3
    from botocore.config import Config

    from shared.stores.cloudblobs import S3BlobStore

    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:1",
        region_name=AWS_REGION,
        aws_access_key_id=AWS_ACCESS_KEY,
        aws_secret_access_key=AWS_SECRET_KEY,
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(StoreUnavailable, match="cannot read it"):
        S3BlobStore(client, "nowhere")
    store = S3BlobStore(client, "nowhere", create=False)
    assert_every_operation_is_unavailable(store, tmp_path)


# -- files, streamed -------------------------------------------------------------------------------------------


@pytest.fixture(params=["local", "azure", "s3"])
def any_blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "store")
    made: BlobStore = request.getfixturevalue(f"{request.param}_factory")(_name())
    return made


def _write_file(path: Path, size: int, *, compressible: bool = False) -> str:
    """A file of ``size`` bytes written 1 MiB at a time; its sha256. Compressible content is hex text."""
    digest = hashlib.sha256()
    left = size
    with path.open("wb") as f:
        while left:
            n = min(left, 1024 * 1024)
            chunk = os.urandom(n // 2 + 1).hex().encode()[:n] if compressible else os.urandom(n)
            f.write(chunk)
            digest.update(chunk)
            left -= n
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_files_stream_in_and_out(any_blobs: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    sha = _write_file(src, 13 * 1024 * 1024 + 5)  # over the multipart threshold: several blocks / parts
    any_blobs.put_file("vulndb/big.bin", src)
    out = tmp_path / "out.bin"
    out.write_bytes(b"an older, longer file " * 1_000_000)
    assert any_blobs.get_file("vulndb/big.bin", out) is True
    assert out.stat().st_size == src.stat().st_size and _sha256(out) == sha, "overwritten, not appended to"
    # what put_file stored is what get reads, and the other way round
    any_blobs.put("small.json", b'{"v": 1}')
    assert any_blobs.get_file("small.json", out) and out.read_bytes() == b'{"v": 1}'
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    any_blobs.put_file("empty", empty)
    assert any_blobs.get("empty") == b""


def test_get_file_of_a_missing_key_leaves_the_file_alone(any_blobs: BlobStore, tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.write_bytes(b"installed")
    assert any_blobs.get_file("no/such/key", kept) is False
    assert kept.read_bytes() == b"installed"
    absent = tmp_path / "absent"
    assert any_blobs.get_file("no/such/key", absent) is False
    assert not absent.exists()


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a\\b"])
def test_file_methods_refuse_unusable_keys(any_blobs: BlobStore, tmp_path: Path, key: str) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    with pytest.raises(BlobKeyError):
        any_blobs.put_file(key, f)
    with pytest.raises(BlobKeyError):
        any_blobs.get_file(key, f)


#: The database stand-in: big enough that holding it (or its gzip) in memory would show at once.
DB_SIZE = 64 * 1024 * 1024
MEMORY_LIMIT = 16 * 1024 * 1024


def test_vulndb_publish_and_sync_stream_through_the_store(any_blobs: BlobStore, tmp_path: Path) -> None:
    published_db = tmp_path / "refresh" / "vulndb.sqlite"
    published_db.parent.mkdir()
    sha = _write_file(published_db, DB_SIZE, compressible=True)
    publisher = VulnDbChannel(any_blobs, published_db, prefix="vulndb/")
    worker_db = tmp_path / "worker" / "vulndb.sqlite"
    worker = VulnDbChannel(any_blobs, worker_db, prefix="vulndb/")

    tracemalloc.start()
    try:
        version = publisher.publish()
        _, publish_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert worker.sync(force=True) is True
        _, sync_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (version.sha256, version.size) == (sha, DB_SIZE)
    assert worker.installed() == version.version and _sha256(worker_db) == sha
    assert publish_peak < MEMORY_LIMIT, f"publish held {publish_peak / 2**20:.1f} MiB"
    assert sync_peak < MEMORY_LIMIT, f"sync held {sync_peak / 2**20:.1f} MiB"
    # the gzip went up, smaller than the database; no temporary file is left beside either database
    gz = tmp_path / "published.gz"
    assert any_blobs.get_file(version.key, gz) and gz.stat().st_size < DB_SIZE * 3 // 4
    assert sorted(p.name for p in published_db.parent.iterdir()) == ["vulndb.sqlite", "vulndb.sqlite.version"]
    assert sorted(p.name for p in worker_db.parent.iterdir()) == ["vulndb.sqlite", "vulndb.sqlite.version"]


def test_vulndb_sync_keeps_the_installed_file_when_the_download_is_bad(any_blobs: BlobStore, tmp_path: Path) -> None:
    db = tmp_path / "refresh" / "vulndb.sqlite"
    db.parent.mkdir()
    _write_file(db, 1024 * 1024, compressible=True)
    version = VulnDbChannel(any_blobs, db, prefix="vulndb/").publish()
    worker_db = tmp_path / "worker" / "vulndb.sqlite"
    worker_db.parent.mkdir()
    worker_db.write_bytes(b"the installed database")
    worker = VulnDbChannel(any_blobs, worker_db, prefix="vulndb/")
    # the published object replaced by something that is not gzip, then by a gzip of other content
    any_blobs.put(version.key, b"not gzip at all")
    assert worker.sync(force=True) is False
    any_blobs.put(version.key, gzip.compress(b"other content"))
    assert worker.sync(force=True) is False
    assert worker_db.read_bytes() == b"the installed database" and worker.installed() is None
    assert sorted(p.name for p in worker_db.parent.iterdir()) == ["vulndb.sqlite"], "no temporary file left"


def assert_every_operation_is_unavailable(store: Any, tmp_path: Path) -> None:
    """Each read and write of an unreachable store is StoreUnavailable naming the key; a failed download leaves
    the local file as it was."""
    with pytest.raises(StoreUnavailable, match="cannot read k"):
        store.get("k")
    with pytest.raises(StoreUnavailable, match="cannot write k"):
        store.put("k", b"v")
    f = tmp_path / "f"
    f.write_bytes(b"v")
    with pytest.raises(StoreUnavailable, match="cannot write k"):
        store.put_file("k", f)
    with pytest.raises(StoreUnavailable, match="cannot read k"):
        store.get_file("k", f)
    assert f.read_bytes() == b"v"
