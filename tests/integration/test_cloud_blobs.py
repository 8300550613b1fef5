"""The cloud blob stores on their stand-ins: AzureBlobStore on Azurite, S3BlobStore on a moto server.

Both pass the same small blob contract as the local store (put, get, missing is None, overwrite, a 5 MB
object, the same keys refused), create their container or bucket when missing, and keep to their prefix.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.stores.blobs import BlobKeyError
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


def test_unreachable_azure_is_store_unavailable(azurite: ServiceProcess) -> None:
    from azure.storage.blob import ContainerClient

    from shared.stores.cloudblobs import AzureBlobStore

    dead = azurite_connection_string(azurite).replace(f":{azurite.port}/", ":1/")
    client = ContainerClient.from_connection_string(dead, "nowhere", retry_total=0)
    with pytest.raises(StoreUnavailable, match="cannot create it"):
        AzureBlobStore(client)
    store = AzureBlobStore(client, create=False)
    with pytest.raises(StoreUnavailable, match="cannot read k"):
        store.get("k")
    with pytest.raises(StoreUnavailable, match="cannot write k"):
        store.put("k", b"v")


def test_unreachable_s3_is_store_unavailable(moto_server: ServiceProcess) -> None:
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
    with pytest.raises(StoreUnavailable, match="cannot read k"):
        store.get("k")
    with pytest.raises(StoreUnavailable, match="cannot write k"):
        store.put("k", b"v")
