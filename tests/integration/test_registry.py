"""Pulling images over the distribution API: real local registries, and a fake one for hostile cases."""

from __future__ import annotations

import base64
import email.utils
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.scanning import mediatypes as mt
from shared.scanning.errors import DigestMismatch, ImageError, LimitExceeded
from shared.scanning.layers import EntryKind
from shared.scanning.manifest import Platform
from shared.scanning.reference import RegistryRef, parse
from shared.scanning.sources.base import ImageHandle, ScanOptions
from shared.scanning.sources.registry import RegistrySource, retry_after_seconds
from shared.scanning.streams import ByteBudget
from tests.support.images import Image, file, from_host, image, index, layer, sha256
from tests.support.registries import (
    DROP,
    IDENTITY_TOKEN,
    FakeServer,
    Registry,
    free_port,
    push,
    serve_image,
)

pytestmark = pytest.mark.integration

REPO = "hullwatch/sample"


@pytest.fixture(autouse=True)
def _no_host_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never pick up this machine's ~/.docker/config.json."""
    d = tmp_path / "docker-config"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    return d


def rref(text: str) -> RegistryRef:
    ref = parse(text)
    assert isinstance(ref, RegistryRef)
    return ref


def sample_image(**kw: Any) -> Image:
    base = layer(
        [
            file("etc/os-release", 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nNAME="Debian GNU/Linux"\n'),
            from_host("/var/lib/dpkg/status"),
        ]
    )
    app = layer([file("app/hello.txt", "hello\n"), file("app/run.sh", "#!/bin/sh\necho hi\n", mode=0o755)])
    return image([base, app], history=["ADD rootfs /", "COPY app /app"], **kw)


def source(reg: Registry | FakeServer, ref: str, creds: bool = True, **kw: Any) -> RegistrySource:
    auth = getattr(reg, "auth", None) if creds else None
    kw.setdefault("sleep", lambda s: None)
    return RegistrySource(
        rref(ref),
        username=auth[0] if auth else None,
        password=auth[1] if auth else None,
        insecure=True,
        **kw,
    )


def read_layers(handle: ImageHandle) -> list[tuple[str | None, list[tuple[str, str, bytes]]]]:
    out = []
    budget = ByteBudget(1 << 30, handle.info.reference)
    for lay in handle.layers:
        entries = [
            (e.name, e.kind.value, e.open().read(e.size) if e.kind is EntryKind.FILE else b"")
            for e in handle.layer_entries(lay, budget)
        ]
        out.append((lay.diff_id, entries))
    return out


def resolve_one(src: RegistrySource, options: ScanOptions | None = None) -> ImageHandle:
    handles = src.resolve(options or ScanOptions())
    assert len(handles) == 1
    return handles[0]


def pushed(reg: Registry, img: Any, repo: str = REPO, tag: str = "latest") -> str:
    push(reg.url, repo, tag, img, auth=reg.auth)
    return reg.ref(repo, tag)


# -- the same image from the three registries --------------------------------------


def test_same_image_from_anonymous_basic_and_token_registries(
    anon_registry: Registry, basic_registry: Registry, token_registry: Registry
) -> None:
    img = sample_image()
    seen = []
    for reg in (anon_registry, basic_registry, token_registry):
        ref = pushed(reg, img, tag="three")
        handle = resolve_one(source(reg, ref))
        info = handle.info
        assert info.reference == ref
        assert info.source == "registry"
        assert (info.registry, info.repository, info.tag) == (reg.host, REPO, "three")
        assert info.digest == img.digest
        assert info.index_digest is None
        assert info.manifest_media_type == mt.OCI_MANIFEST
        assert info.config_digest == sha256(img.config)
        assert info.platform == "linux/amd64"
        assert [(lay.digest, lay.diff_id, lay.created_by) for lay in handle.layers] == [
            (lay.digest, lay.diff_id, h) for lay, h in zip(img.layers, ["ADD rootfs /", "COPY app /app"], strict=True)
        ]
        layers = read_layers(handle)
        handle.close()
        names = [n for _, entries in layers for n, _, _ in entries]
        assert names == ["etc/os-release", "var/lib/dpkg/status", "app/hello.txt", "app/run.sh"]
        assert layers[0][1][1][2] == Path("/var/lib/dpkg/status").read_bytes()
        seen.append(layers)
    assert seen[0] == seen[1] == seen[2]

    # The whole scan, end to end: the same packages from each registry.
    from shared.scanning.scanner import RegistryCredentials, ScanRequest, scan

    packages = []
    for reg in (anon_registry, basic_registry, token_registry):
        auth = reg.auth
        req = ScanRequest(
            image=reg.ref(REPO, "three"),
            credentials=RegistryCredentials(*auth) if auth else RegistryCredentials(),
            insecure_registry=True,
        )
        (result,) = scan(req)
        assert result.image.digest == img.digest
        packages.append([p.model_dump() for p in result.packages])
    assert packages[0], "the dpkg status copied from this machine lists packages"
    assert packages[0] == packages[1] == packages[2]


def test_pull_by_digest(token_registry: Registry) -> None:
    img = sample_image(arch="arm64", variant="v8")
    pushed(token_registry, img, tag="bydigest")
    ref = f"{token_registry.host}/{REPO}@{img.digest}"
    handle = resolve_one(source(token_registry, ref))
    assert handle.info.digest == img.digest
    assert handle.info.tag is None
    assert handle.info.platform == "linux/arm64/v8"
    assert len(read_layers(handle)) == 2


# -- authentication failures ----------------------------------------------------------


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_wrong_password(which: str, request: pytest.FixtureRequest) -> None:
    reg: Registry = request.getfixturevalue(which)
    ref = pushed(reg, sample_image(), tag="auth")
    src = RegistrySource(rref(ref), username="user", password="wrong", insecure=True)
    with pytest.raises(ImageError) as exc:
        src.resolve(ScanOptions())
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(ref + ": ")
    assert f"authentication failed for {reg.host}" in msg
    assert "username and password" in msg


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_no_credentials_on_a_protected_registry(which: str, request: pytest.FixtureRequest) -> None:
    reg: Registry = request.getfixturevalue(which)
    ref = pushed(reg, sample_image(), tag="auth")
    with pytest.raises(ImageError) as exc:
        source(reg, ref, creds=False).resolve(ScanOptions())
    msg = str(exc.value)
    assert "\n" not in msg
    assert f"{reg.host} requires authentication" in msg
    assert "--username/--password" in msg
    assert "docker login" in msg


def test_basic_credentials_from_docker_config(basic_registry: Registry, _no_host_docker_config: Path) -> None:
    ref = pushed(basic_registry, sample_image(), tag="cfg")
    auth = base64.b64encode(b"user:pass").decode()
    (_no_host_docker_config / "config.json").write_text(
        json.dumps({"auths": {f"http://{basic_registry.host}/v2/": {"auth": auth}}})
    )
    handle = resolve_one(source(basic_registry, ref, creds=False))
    assert len(read_layers(handle)) == 2


def test_identity_token_from_docker_config(token_registry: Registry, tmp_path: Path) -> None:
    ref = pushed(token_registry, sample_image(), tag="idtoken")
    cfg = tmp_path / "elsewhere.json"
    cfg.write_text(json.dumps({"auths": {token_registry.host: {"identitytoken": IDENTITY_TOKEN}}}))
    assert token_registry.token_server is not None
    before = len(token_registry.token_server.requests)
    handle = resolve_one(source(token_registry, ref, creds=False, docker_config=str(cfg)))
    assert len(read_layers(handle)) == 2
    new = token_registry.token_server.requests[before:]
    assert new and all(r.method == "POST" for r in new)
    assert new[0].scopes == [f"repository:{REPO}:pull"]
    assert new[0].service == "hullwatch-test-registry"


def test_token_is_fetched_once_and_reused(token_registry: Registry) -> None:
    ref = pushed(token_registry, sample_image(), tag="reuse")
    assert token_registry.token_server is not None
    before = len(token_registry.token_server.requests)
    handle = resolve_one(source(token_registry, ref))
    read_layers(handle)
    new = token_registry.token_server.requests[before:]
    assert len(new) == 1
    assert new[0].method == "GET" and new[0].authorized == "user"


# -- not found, unreachable, TLS -----------------------------------------------------


def test_unknown_tag(anon_registry: Registry) -> None:
    pushed(anon_registry, sample_image(), tag="exists")
    ref = anon_registry.ref(REPO, "no-such-tag")
    with pytest.raises(ImageError) as exc:
        source(anon_registry, ref).resolve(ScanOptions())
    assert str(exc.value) == f"{ref}: tag 'no-such-tag' not found in {REPO}"


def test_unknown_repository(anon_registry: Registry) -> None:
    ref = anon_registry.ref("nobody/here", "v1")
    with pytest.raises(ImageError) as exc:
        source(anon_registry, ref).resolve(ScanOptions())
    msg = str(exc.value)
    assert "nobody/here" in msg and "not found" in msg


def test_unreachable_registry() -> None:
    port = free_port()  # nothing listens there
    ref = f"127.0.0.1:{port}/some/image:1"
    with pytest.raises(ImageError) as exc:
        RegistrySource(rref(ref), insecure=True, sleep=lambda s: None).resolve(ScanOptions())
    assert str(exc.value) == f"{ref}: cannot reach 127.0.0.1:{port}: connection refused"


def test_unresolvable_host() -> None:
    ref = "no-such-host.invalid:5000/some/image:1"
    with pytest.raises(ImageError) as exc:
        RegistrySource(rref(ref), insecure=True, sleep=lambda s: None).resolve(ScanOptions())
    assert str(exc.value) == f"{ref}: cannot reach no-such-host.invalid:5000: host name not found"


def test_https_to_a_plain_http_registry_is_a_tls_error(anon_registry: Registry) -> None:
    ref = pushed(anon_registry, sample_image(), tag="tls")
    with pytest.raises(ImageError) as exc:
        RegistrySource(rref(ref), sleep=lambda s: None).resolve(ScanOptions())
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{ref}: TLS error talking to {anon_registry.host}")
    assert "--insecure-registry" in msg


@pytest.mark.parametrize("ref", ["docker.io/library/alpine:3", "ghcr.io/org/app:1", "registry.example.com/a/b"])
def test_plain_http_is_refused_for_public_style_hosts(ref: str) -> None:
    with pytest.raises(ImageError) as exc:
        RegistrySource(rref(ref), insecure=True)
    assert "plain HTTP is only allowed for localhost" in str(exc.value)


@pytest.mark.parametrize("ref", ["localhost/a:1", "127.0.0.2/a:1", "[::1]:5000/a:1", "myregistry.lan:5000/a:1"])
def test_plain_http_is_allowed_for_loopback_and_explicit_ports(ref: str) -> None:
    assert RegistrySource(rref(ref), insecure=True).base_url.startswith("http://")


# -- indexes and platforms ------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["oci", "docker"])
def test_index_platform_selection(anon_registry: Registry, flavour: str) -> None:
    amd = sample_image(arch="amd64", flavour=flavour)
    arm = image([layer([file("etc/arch", "arm64\n")], flavour=flavour)], arch="arm64", variant="v8", flavour=flavour)
    idx = index([(arm, "linux/arm64/v8"), (amd, "linux/amd64")], flavour=flavour)
    ref = pushed(anon_registry, idx, tag=f"multi-{flavour}")
    list_type = mt.OCI_INDEX if flavour == "oci" else mt.DOCKER_MANIFEST_LIST
    manifest_type = mt.OCI_MANIFEST if flavour == "oci" else mt.DOCKER_MANIFEST

    default = resolve_one(source(anon_registry, ref))
    assert default.info.platform == "linux/amd64"
    assert default.info.digest == amd.digest
    assert default.info.index_digest == idx.digest
    assert default.info.manifest_media_type == manifest_type
    assert len(read_layers(default)) == 2

    chosen = resolve_one(source(anon_registry, ref), ScanOptions(platform=Platform.parse("linux/arm64/v8")))
    assert chosen.info.platform == "linux/arm64/v8"
    assert chosen.info.digest == arm.digest
    assert read_layers(chosen)[0][1][0][0] == "etc/arch"

    every = source(anon_registry, ref).resolve(ScanOptions(all_platforms=True))
    assert sorted(h.info.platform or "" for h in every) == ["linux/amd64", "linux/arm64/v8"]
    assert {h.info.index_digest for h in every} == {idx.digest}

    with pytest.raises(ImageError) as exc:
        source(anon_registry, ref).resolve(ScanOptions(platform=Platform.parse("linux/s390x")))
    assert "no manifest for platform linux/s390x" in str(exc.value)
    assert idx.manifest_media_type == list_type


def test_single_entry_index_falls_back_to_its_only_platform(anon_registry: Registry) -> None:
    arm = sample_image(arch="arm64", variant="v8")
    idx = index([(arm, "linux/arm64/v8")])
    ref = pushed(anon_registry, idx, tag="single")
    handle = resolve_one(source(anon_registry, ref))
    assert handle.info.platform == "linux/arm64/v8"
    assert handle.info.digest == arm.digest


def test_docker_schema2_manifest(anon_registry: Registry) -> None:
    img = image([layer([file("etc/os-release", "ID=alpine\n")], flavour="docker")], flavour="docker")
    ref = pushed(anon_registry, img, tag="docker-v2")
    handle = resolve_one(source(anon_registry, ref))
    assert handle.info.manifest_media_type == mt.DOCKER_MANIFEST
    assert handle.layers[0].media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert read_layers(handle)[0][1][0][0] == "etc/os-release"


@pytest.mark.parametrize(
    ("compression", "flavour"), [("zstd", "oci"), ("none", "oci"), ("none", "docker"), ("gzip", "oci")]
)
def test_layer_compressions(anon_registry: Registry, compression: str, flavour: str) -> None:
    files = [file("etc/os-release", "ID=debian\n"), file("usr/share/doc/big.txt", "x" * 200_000)]
    img = image([layer(files, compression=compression, flavour=flavour)], flavour=flavour)
    ref = pushed(anon_registry, img, tag=f"{compression}-{flavour}")
    handle = resolve_one(source(anon_registry, ref))
    (only,) = read_layers(handle)
    assert [(n, len(d)) for n, _, d in only[1]] == [("etc/os-release", 10), ("usr/share/doc/big.txt", 200_000)]


# -- foreign layers ---------------------------------------------------------------------

FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


def _with_foreign_layer(url: str) -> tuple[Image, str]:
    """A Docker image whose first layer is foreign (urls), plus that layer's digest."""
    base = layer([file("Windows/System32/kernel.dll", "not really")], flavour="docker")
    app = layer([file("app/hello.txt", "hello\n")], flavour="docker")
    img = image([base, app], flavour="docker")
    doc = json.loads(img.manifest)
    doc["layers"][0]["mediaType"] = FOREIGN
    doc["layers"][0]["urls"] = [url]
    manifest = json.dumps(doc, indent=2).encode()
    return Image(manifest, img.manifest_media_type, img.config, img.layers, dict(img.blobs)), base.digest


def test_foreign_layer_missing_from_registry_is_skipped_never_fetched_from_its_url(
    anon_registry: Registry,
) -> None:
    elsewhere = FakeServer(lambda m, p, h: (200, {}, b"should never be asked"))
    try:
        img, foreign_digest = _with_foreign_layer(f"{elsewhere.url}/layer.tar.gz")
        del img.blobs[foreign_digest]
        ref = pushed(anon_registry, img, tag="foreign-missing")
        handle = resolve_one(source(anon_registry, ref))
        assert handle.layers[0].urls == (f"{elsewhere.url}/layer.tar.gz",)
        assert [w.code for w in handle.warnings] == ["foreign-layer-skipped"]
        assert handle.warnings[0].layer_diff_id == handle.layers[0].diff_id
        layers = read_layers(handle)
        assert layers[0][1] == []
        assert [n for n, _, _ in layers[1][1]] == ["app/hello.txt"]
        assert elsewhere.hits == []
    finally:
        elsewhere.stop()


def test_foreign_layer_the_registry_has_is_fetched_from_the_registry(anon_registry: Registry) -> None:
    elsewhere = FakeServer(lambda m, p, h: (200, {}, b"should never be asked"))
    try:
        img, _ = _with_foreign_layer(f"{elsewhere.url}/layer.tar.gz")
        ref = pushed(anon_registry, img, tag="foreign-present")
        handle = resolve_one(source(anon_registry, ref))
        assert handle.warnings == []
        layers = read_layers(handle)
        assert [n for n, _, _ in layers[0][1]] == ["Windows/System32/kernel.dll"]
        assert elsewhere.hits == []
    finally:
        elsewhere.stop()


# -- hostile or flaky servers (a fake registry) ----------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.stop()


def _serve(files: dict[str, tuple[str, bytes]], extra: dict[str, str] | None = None) -> Any:
    def respond(method: str, path: str, headers: dict[str, str]) -> Any:
        if path == "/v2/":
            return 200, {}, b"{}"
        if path in files:
            ctype, data = files[path]
            out = {"Content-Type": ctype, **(extra or {})}
            if "/manifests/" in path:
                out["Docker-Content-Digest"] = sha256(data)
            return 200, out, data
        return 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"x"}]}'

    return respond


def test_oversized_manifest_by_content_length(fake: FakeServer) -> None:
    big = b"{" + b" " * (mt.MAX_MANIFEST_BYTES + 10) + b"}"
    fake.respond = lambda m, p, h: (200, {"Content-Type": mt.OCI_MANIFEST}, big)
    with pytest.raises(LimitExceeded) as exc:
        source(fake, f"{fake.host}/a/b:1").resolve(ScanOptions())
    assert f"manifest is {len(big)} bytes, over the {mt.MAX_MANIFEST_BYTES}-byte limit" in str(exc.value)


def test_oversized_manifest_without_content_length(fake: FakeServer) -> None:
    big = b"{" + b" " * (mt.MAX_MANIFEST_BYTES + 10) + b"}"
    fake.respond = lambda m, p, h: (200, {"Content-Type": mt.OCI_MANIFEST, "X-No-Length": "1"}, big)
    with pytest.raises(LimitExceeded) as exc:
        source(fake, f"{fake.host}/a/b:1").resolve(ScanOptions())
    assert "over the" in str(exc.value) and "manifest" in str(exc.value)


def test_manifest_not_matching_docker_content_digest(fake: FakeServer) -> None:
    img = sample_image()
    files = serve_image(img, "a/b", "1")
    respond = _serve(files)

    def lying(m: str, p: str, h: dict[str, str]) -> Any:
        status, headers, body = respond(m, p, h)
        if p.endswith("/manifests/1"):
            headers["Docker-Content-Digest"] = sha256(b"something else")
        return status, headers, body

    fake.respond = lying
    with pytest.raises(DigestMismatch) as exc:
        source(fake, f"{fake.host}/a/b:1").resolve(ScanOptions())
    assert "digest mismatch" in str(exc.value)


def test_manifest_by_digest_must_hash_to_it(fake: FakeServer) -> None:
    img = sample_image()
    other = sample_image(arch="arm64")
    wrong = sha256(other.manifest)
    fake.respond = lambda m, p, h: (200, {"Content-Type": mt.OCI_MANIFEST}, img.manifest)
    with pytest.raises(DigestMismatch):
        source(fake, f"{fake.host}/a/b@{wrong}").resolve(ScanOptions())


def test_blob_not_matching_its_digest(fake: FakeServer) -> None:
    img = sample_image()
    files = serve_image(img, "a/b", "1")
    victim = img.layers[1]
    evil = layer([file("app/hello.txt", "HELLO\n"), file("app/run.sh", "#!/bin/sh\necho hi\n", mode=0o755)])
    files[f"/v2/a/b/blobs/{victim.digest}"] = ("application/octet-stream", evil.blob)
    fake.respond = _serve(files)
    handle = resolve_one(source(fake, f"{fake.host}/a/b:1"))
    with pytest.raises(DigestMismatch) as exc:
        read_layers(handle)
    assert "\n" not in str(exc.value)


def test_unknown_manifest_media_type_and_schema1(fake: FakeServer) -> None:
    doc = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example.thing+json"}).encode()
    fake.respond = lambda m, p, h: (200, {"Content-Type": "application/vnd.example.thing+json"}, doc)
    with pytest.raises(ImageError) as exc:
        source(fake, f"{fake.host}/a/b:1").resolve(ScanOptions())
    assert "unknown manifest media type" in str(exc.value)

    s1 = json.dumps({"schemaVersion": 1, "name": "a/b", "tag": "1", "fsLayers": []}).encode()
    fake.respond = lambda m, p, h: (200, {"Content-Type": mt.DOCKER_SCHEMA1_SIGNED}, s1)
    with pytest.raises(ImageError) as exc:
        source(fake, f"{fake.host}/a/b:1").resolve(ScanOptions())
    assert "schema 1" in str(exc.value)


def test_manifest_request_sends_the_accept_header(fake: FakeServer) -> None:
    fake.respond = _serve(serve_image(sample_image(), "a/b", "1"))
    resolve_one(source(fake, f"{fake.host}/a/b:1"))
    manifest_hits = [h for h in fake.hits if "/manifests/" in h.path]
    assert manifest_hits and manifest_hits[0].headers["Accept"] == mt.MANIFEST_ACCEPT


def test_429_and_503_are_retried_honouring_retry_after(fake: FakeServer) -> None:
    files = serve_image(sample_image(), "a/b", "1")
    ok = _serve(files)
    when = email.utils.format_datetime(datetime.fromtimestamp(time.time() + 7, tz=UTC), usegmt=True)
    script = {
        "/v2/a/b/manifests/1": [(429, {"Retry-After": "2"}, b""), (503, {"Retry-After": when}, b"")],
    }

    def flaky(m: str, p: str, h: dict[str, str]) -> Any:
        queue = script.get(p)
        if queue:
            return queue.pop(0)
        return ok(m, p, h)

    fake.respond = flaky
    sleeps: list[float] = []
    handle = resolve_one(source(fake, f"{fake.host}/a/b:1", sleep=sleeps.append))
    assert len(read_layers(handle)) == 2
    assert sleeps[0] == 2.0
    assert 4.0 <= sleeps[1] <= 7.0


def test_retries_are_bounded(fake: FakeServer) -> None:
    fake.respond = lambda m, p, h: (503, {}, b"")
    sleeps: list[float] = []
    with pytest.raises(ImageError) as exc:
        source(fake, f"{fake.host}/a/b:1", sleep=sleeps.append).resolve(ScanOptions())
    assert len(sleeps) == 4
    assert sleeps == sorted(sleeps) and sleeps[0] > 0
    assert len([h for h in fake.hits if "/manifests/" in h.path]) == 5
    assert "answered HTTP 503" in str(exc.value) and "after 5 attempts" in str(exc.value)

    fake.respond = lambda m, p, h: (429, {"Retry-After": "100000"}, b"")
    sleeps.clear()
    with pytest.raises(ImageError) as exc:
        source(fake, f"{fake.host}/a/b:1", sleep=sleeps.append).resolve(ScanOptions())
    assert "HTTP 429" in str(exc.value)
    assert max(sleeps) <= 60


def test_connection_reset_is_retried(fake: FakeServer) -> None:
    ok = _serve(serve_image(sample_image(), "a/b", "1"))
    drops = [1]

    def dropping(m: str, p: str, h: dict[str, str]) -> Any:
        if "/manifests/" in p and drops:
            drops.pop()
            return DROP
        return ok(m, p, h)

    fake.respond = dropping
    sleeps: list[float] = []
    handle = resolve_one(source(fake, f"{fake.host}/a/b:1", sleep=sleeps.append))
    assert handle.info.platform == "linux/amd64"
    assert len(sleeps) == 1


def test_redirects_never_carry_authorization_to_another_host(fake: FakeServer) -> None:
    img = sample_image()
    files = serve_image(img, "a/b", "1")
    storage = FakeServer()
    try:
        blobs = {p.rsplit("/", 1)[1]: data for p, (_, data) in files.items() if "/blobs/" in p}
        storage.respond = lambda m, p, h: (
            (200, {"Content-Type": "application/octet-stream"}, blobs[p.rsplit("/", 1)[1].split("?")[0]])
            if p.startswith("/storage/")
            else (404, {}, b"")
        )
        want = "Basic " + base64.b64encode(b"user:pass").decode()
        serve = _serve(files)

        def registry(m: str, p: str, h: dict[str, str]) -> Any:
            if h.get("Authorization") != want:
                return 401, {"WWW-Authenticate": 'Basic realm="fake"'}, b""
            if "/blobs/" in p:
                digest = p.rsplit("/", 1)[1]
                # two hops: a relative one on the registry, then off to storage
                if not p.startswith("/hop/"):
                    return 307, {"Location": f"/hop/v2/a/b/blobs/{digest}"}, b""
                return 307, {"Location": f"{storage.url}/storage/{digest}?sig=abc"}, b""
            return serve(m, p, h)

        fake.respond = registry
        src = RegistrySource(rref(f"{fake.host}/a/b:1"), username="user", password="pass", insecure=True)
        handle = resolve_one(src)
        assert [n for _, entries in read_layers(handle) for n, _, _ in entries][:2] == [
            "etc/os-release",
            "var/lib/dpkg/status",
        ]
        assert storage.hits, "blobs were fetched from the storage host"
        assert all("Authorization" not in h.headers for h in storage.hits)
        hop_hits = [h for h in fake.hits if h.path.startswith("/hop/")]
        assert hop_hits and all(h.headers.get("Authorization") == want for h in hop_hits)
    finally:
        storage.stop()


def test_redirect_loops_are_cut(fake: FakeServer) -> None:
    fake.respond = lambda m, p, h: (307, {"Location": p}, b"")
    with pytest.raises(ImageError) as exc:
        source(fake, f"{fake.host}/a/b:1").resolve(ScanOptions())
    assert "more than 5 redirects" in str(exc.value)
    assert len(fake.hits) == 6


def test_registry_error_body_is_reported_in_one_line(fake: FakeServer) -> None:
    body = json.dumps({"errors": [{"code": "UNSUPPORTED", "message": "no\nway"}]}).encode()
    fake.respond = lambda m, p, h: (400, {"Content-Type": "application/json"}, body)
    with pytest.raises(ImageError) as exc:
        source(fake, f"{fake.host}/a/b:1").resolve(ScanOptions())
    assert str(exc.value) == f"{fake.host}/a/b:1: {fake.host} answered HTTP 400 for manifest 1: no way"


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("999999") == 60.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    past = email.utils.format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(past) == 0.0
