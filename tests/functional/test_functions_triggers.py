"""The Azure Functions triggers, called with real ``azure.functions`` objects and the documented event samples.

Queue output bindings are stood in for by :class:`Out` (``func.Out`` with set/get);
the scan worker runs the real scan service against an in-process registry serving a
small Alpine image, a vulnerability database built from the hand-written OSV records,
SQLite and local files (alerts appended to a JSON-lines file).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Generic, TypeVar

import azure.functions as func
import jwt
import pytest
from azure.functions.timer import TimerRequest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import composition
from shared.composition import Settings
from shared.domain.models import ScanResult
from shared.service.messages import Action, ScanMessage
from shared.stores.blobs import LocalBlobStore
from shared.stores.sqlite import SQLiteStore
from shared.vulndb.importer import import_paths
from tests.functional.test_functions_app import FUNCTIONS
from tests.support import images as I
from tests.support.registries import FakeServer, serve_image

EVENTS = Path(__file__).resolve().parent.parent / "events"
DATA = Path(__file__).resolve().parent.parent / "data"
T = TypeVar("T")

ALPINE_DB = (
    "P:libcrypto3\nV:3.1.4-r4\nA:x86_64\no:openssl\nL:Apache-2.0\n\n"
    "P:libssl3\nV:3.1.4-r4\nA:x86_64\no:openssl\nL:Apache-2.0\n\n"
    "P:zlib\nV:1.3.1-r0\nA:x86_64\no:zlib\nL:Zlib\n\n"
)
AUDIENCE = "https://hullwatch.example/api/registry/gar"
#: CISA's KEV catalogue with the one CVE the image has: the default rules alert on a new KEV-listed finding.
KEV = {
    "title": "t",
    "catalogVersion": "1",
    "dateReleased": "2025-01-01",
    "count": 1,
    "vulnerabilities": [
        {
            "cveID": "CVE-2024-0727",
            "dateAdded": "2024-03-01",
            "dueDate": "2024-03-22",
            "knownRansomwareCampaignUse": "Unknown",
            "vulnerabilityName": "test entry",
        }
    ],
}


class Out(func.Out[T], Generic[T]):
    """An output binding: what the function set, as the host would write it."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.calls = 0

    def set(self, val: T) -> None:
        self.value = val
        self.calls += 1

    def get(self) -> T:
        assert self.value is not None
        return self.value


def call(name: str, *args: Any) -> Any:
    return FUNCTIONS[name].get_user_function()(*args)


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def event_grid_event(doc: dict[str, Any]) -> func.EventGridEvent:
    return func.EventGridEvent(
        id=doc["id"],
        data=doc["data"],
        topic=doc["topic"],
        subject=doc["subject"],
        event_type=doc["eventType"],
        event_time=datetime.fromisoformat(doc["eventTime"]),
        data_version=doc["dataVersion"],
    )


def cloud_event(doc: dict[str, Any]) -> func.CloudEvent:
    return func.CloudEvent(
        id=doc["id"],
        source=doc["source"],
        type=doc["type"],
        specversion=doc["specversion"],
        data=doc["data"],
        time=datetime.fromisoformat(doc["time"]),
        subject=doc.get("subject"),
    )


def queued(out: Out[str]) -> ScanMessage:
    return ScanMessage.model_validate_json(out.get())


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    s = Settings(
        registry_allowlist=("demo.azurecr.io", "us-east1-docker.pkg.dev"),
        state_dir=tmp_path / "state",
        vulndb_path=tmp_path / "vulndb.sqlite",
    )
    composition.reset(s)
    try:
        yield s
    finally:
        composition.reset()


# -- acr_events --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["acr-eventgrid-image-pushed.json", "acr-cloudevents-image-pushed.json"])
def test_acr_push_is_validated_and_queued_in_both_schemas(settings: Settings, name: str) -> None:
    doc = sample(name)[0] if isinstance(sample(name), list) else sample(name)
    event = cloud_event(doc) if "specversion" in doc else event_grid_event(doc)
    out: Out[str] = Out()
    assert call("acr_events", event, out) is None
    msg = queued(out)
    assert (msg.action, msg.registry, msg.source, msg.event_id) == (Action.PUSH, "demo.azurecr.io", "acr", doc["id"])
    assert msg.repository == doc["data"]["target"]["repository"]
    assert msg.digest == doc["data"]["target"]["digest"]


@pytest.mark.parametrize("name", ["acr-eventgrid-image-deleted.json", "acr-cloudevents-image-deleted.json"])
def test_acr_delete_is_queued(settings: Settings, name: str) -> None:
    raw = sample(name)
    doc = raw[0] if isinstance(raw, list) else raw
    event = cloud_event(doc) if "specversion" in doc else event_grid_event(doc)
    out: Out[str] = Out()
    call("acr_events", event, out)
    assert queued(out).action is Action.DELETE


def test_helm_chart_is_acknowledged_and_skipped(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    raw = sample("acr-eventgrid-chart-pushed.json")
    out: Out[str] = Out()
    with caplog.at_level(logging.INFO):
        call("acr_events", event_grid_event(raw[0] if isinstance(raw, list) else raw), out)
    assert out.calls == 0
    assert "skipped" in caplog.text and "Helm chart" in caplog.text


def test_forged_acr_event_naming_an_unlisted_registry_is_refused(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    raw = sample("acr-eventgrid-image-pushed.json")
    doc = raw[0] if isinstance(raw, list) else raw
    doc["data"]["request"]["host"] = "169.254.169.254"
    out: Out[str] = Out()
    with caplog.at_level(logging.ERROR):
        assert call("acr_events", event_grid_event(doc), out) is None  # no exception: Event Grid does not retry
    assert out.calls == 0
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "169.254.169.254" in record.getMessage() and "not a configured registry" in record.getMessage()


def test_malformed_acr_event_is_logged_not_retried(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    raw = sample("acr-eventgrid-image-pushed.json")
    doc = raw[0] if isinstance(raw, list) else raw
    del doc["data"]["target"]
    out: Out[str] = Out()
    with caplog.at_level(logging.ERROR):
        call("acr_events", event_grid_event(doc), out)
    assert out.calls == 0 and "data.target" in caplog.text


# -- gar_push ----------------------------------------------------------------------------------------------------


def push_request(body: bytes, token: str | None = None) -> func.HttpRequest:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return func.HttpRequest(
        method="POST", url="https://hullwatch.example/api/registry/gar", headers=headers, body=body, params={}
    )


def gar_body(name: str = "gar-pubsub-push-insert.json", **override: Any) -> bytes:
    doc = sample(name)
    if override:
        data = json.loads(base64.b64decode(doc["message"]["data"]))
        data.update(override)
        doc["message"]["data"] = base64.b64encode(json.dumps(data).encode()).decode()
    return json.dumps(doc).encode()


def test_gar_insert_is_queued(settings: Settings) -> None:
    out: Out[str] = Out()
    resp = call("gar_push", push_request(gar_body()), out)
    assert resp.status_code == 202
    msg = queued(out)
    assert (msg.action, msg.registry, msg.repository, msg.tag, msg.source) == (
        Action.PUSH,
        "us-east1-docker.pkg.dev",
        "my-project/my-repo/hello-world",
        "1.1",
        "gar",
    )


def test_gar_untag_is_acknowledged_without_a_scan(settings: Settings) -> None:
    out: Out[str] = Out()
    assert call("gar_push", push_request(gar_body("gar-pubsub-push-untag.json")), out).status_code == 200
    assert out.calls == 0


def test_gar_forged_registry_and_malformed_body_answer_400(settings: Settings) -> None:
    out: Out[str] = Out()
    forged = gar_body(digest="attacker.example/x/y@sha256:" + "a" * 64, tag="attacker.example/x/y:1")
    resp = call("gar_push", push_request(forged), out)
    assert resp.status_code == 400 and b"attacker.example" in resp.get_body()
    assert call("gar_push", push_request(b"{not json"), out).status_code == 400
    assert out.calls == 0


class Jwks:
    """Google's JWKS endpoint, locally: serves the public half of a test key, counts fetches."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        body = json.dumps({"keys": [jwk]}).encode()
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oauth2/v3/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: Any = None, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": "https://accounts.google.com",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "email": "pubsub-push@my-project.iam.gserviceaccount.com",
            "email_verified": True,
            "sub": "1234567890",
        }
        body.update(claims)
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks(settings: Settings) -> Iterator[Jwks]:
    server = Jwks()
    composition.reset(
        settings.model_copy(
            update={
                "pubsub_audience": AUDIENCE,
                "pubsub_jwks_url": server.url,
                "pubsub_service_account": "pubsub-push@my-project.iam.gserviceaccount.com",
            }
        )
    )
    try:
        yield server
    finally:
        server.stop()


def test_gar_push_with_a_valid_oidc_token_is_accepted(jwks: Jwks) -> None:
    out: Out[str] = Out()
    assert call("gar_push", push_request(gar_body(), jwks.token()), out).status_code == 202
    assert call("gar_push", push_request(gar_body(), jwks.token()), Out()).status_code == 202
    assert queued(out).registry == "us-east1-docker.pkg.dev"
    assert jwks.fetches == 1  # Google's keys are fetched once and cached


def test_gar_push_without_or_with_a_bad_token_answers_401(jwks: Jwks) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "missing": None,
        "wrong audience": jwks.token(aud="https://elsewhere.example"),
        "wrong issuer": jwks.token(iss="https://evil.example"),
        "expired": jwks.token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "forged signature": jwks.token(key=other_key),
        "unknown key": jwks.token(key=other_key, kid="no-such-key"),
        "other service account": jwks.token(email="someone@example.com"),
        "not a jwt": "abc.def",
    }
    for why, token in bad.items():
        out: Out[str] = Out()
        resp = call("gar_push", push_request(gar_body(), token), out)
        assert resp.status_code == 401, why
        assert resp.headers.get("WWW-Authenticate") == "Bearer"
        assert out.calls == 0, why


# -- scan_worker ---------------------------------------------------------------------------------------------------


class QueueMessage(func.QueueMessage):
    """A queue message as the host delivers it, with its dequeue count."""

    def __init__(self, body: str | bytes, id: str = "msg-1", dequeue_count: int = 1) -> None:
        super().__init__(id=id, body=body, pop_receipt="receipt")
        self._dequeue_count = dequeue_count

    @property
    def dequeue_count(self) -> int:
        return self._dequeue_count


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[FakeServer, I.Image]]:
    img = I.image(
        [
            I.layer(
                [I.file("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n"), I.file("lib/apk/db/installed", ALPINE_DB)]
            )
        ]
    )
    files = serve_image(img, "team/app", "1.0")
    state: dict[str, int] = {"fail": 0}

    def respond(method: str, path: str, headers: dict[str, str]) -> Any:
        if state["fail"]:
            state["fail"] -= 1
            return 503, {"Retry-After": "0"}, b""
        if path == "/v2/":
            return 200, {}, b"{}"
        if path in files:
            ctype, data = files[path]
            out = {"Content-Type": ctype}
            if "/manifests/" in path:
                out["Docker-Content-Digest"] = I.sha256(data)
            return 200, out, data
        return 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"x"}]}'

    server = FakeServer(respond)
    server.state = state  # type: ignore[attr-defined]
    try:
        yield server, img
    finally:
        server.stop()


@pytest.fixture
def worker_settings(tmp_path: Path, registry: tuple[FakeServer, I.Image]) -> Iterator[Settings]:
    osv = tmp_path / "osv"
    osv.mkdir()
    (osv / "alpine.json").write_bytes((DATA / "osv" / "ALPINE-CVE-2024-0727.json").read_bytes())
    kev = tmp_path / "kev.json"
    kev.write_text(json.dumps(KEV))
    db = tmp_path / "vulndb.sqlite"
    import_paths(db, [osv, kev])
    server, _ = registry
    s = Settings(
        registry_allowlist=(server.host,),
        insecure_registries=(server.host,),
        state_dir=tmp_path / "state",
        vulndb_path=db,
        max_dequeue_count=3,
    )
    composition.reset(s)
    try:
        yield s
    finally:
        composition.reset()


def push_message(server: FakeServer, img: I.Image, event_id: str = "evt-1") -> str:
    return ScanMessage(
        action=Action.PUSH,
        registry=server.host,
        repository="team/app",
        tag="1.0",
        digest=img.digest,
        source="acr",
        event_id=event_id,
    ).model_dump_json()


def alerts(settings: Settings) -> list[dict[str, Any]]:
    path = settings.alerts_path
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_worker_scans_persists_and_alerts_once(
    worker_settings: Settings, registry: tuple[FakeServer, I.Image], capsys: pytest.CaptureFixture[str]
) -> None:
    server, img = registry
    poison: Out[str] = Out()
    call("scan_worker", QueueMessage(push_message(server, img)), poison)
    assert poison.calls == 0
    with SQLiteStore(worker_settings.sqlite_file) as store:
        image = store.get_image(img.digest)
        assert image is not None and image.references == [f"{server.host}/team/app:1.0"]
        findings = store.findings_for_image(img.digest)
    assert sorted(f.finding.package_name for f in findings) == ["libcrypto3", "libssl3"]
    first = alerts(worker_settings)
    assert first and {a["subject"] for a in first} == {f"{server.host}/team/app:1.0"}
    assert "ALERT" in capsys.readouterr().out
    # the same event delivered again: one set of findings, no second alert, nothing pulled
    hits = len(server.hits)
    call("scan_worker", QueueMessage(push_message(server, img), id="msg-2"), Out())
    assert alerts(worker_settings) == first
    assert len(server.hits) == hits


def test_worker_poison_message_goes_to_the_poison_queue_with_its_reason(worker_settings: Settings) -> None:
    poison: Out[str] = Out()
    call("scan_worker", QueueMessage(b'{"action": "push", "registry": 42}', id="bad-1"), poison)
    record = json.loads(poison.get())
    assert record["message_id"] == "bad-1" and record["attempts"] == 1
    assert "validation error" in record["reason"] and record["message"].startswith('{"action"')


def test_worker_refuses_a_forged_registry_without_contacting_it(
    worker_settings: Settings, registry: tuple[FakeServer, I.Image]
) -> None:
    server, _ = registry
    forged = ScanMessage(
        action=Action.PUSH, registry="10.0.0.1:5000", repository="x", tag="1", source="acr", event_id="forged"
    )
    poison: Out[str] = Out()
    call("scan_worker", QueueMessage(forged.model_dump_json(), id="forged-1"), poison)
    assert "not a configured registry" in json.loads(poison.get())["reason"]
    assert server.hits == []


def test_worker_transient_failure_raises_for_a_retry_and_records_the_last_one(
    worker_settings: Settings, registry: tuple[FakeServer, I.Image]
) -> None:
    server, img = registry
    server.state["fail"] = 10_000  # type: ignore[attr-defined]
    body = push_message(server, img)
    with pytest.raises(Exception, match="503"):
        call("scan_worker", QueueMessage(body, id="flaky", dequeue_count=1), Out())
    failures = worker_settings.blob_dir / "failures"
    assert not failures.exists()  # not the last attempt: nothing recorded yet
    with pytest.raises(Exception, match="503"):
        call("scan_worker", QueueMessage(body, id="flaky", dequeue_count=3), Out())
    (record_file,) = list(failures.rglob("*.json"))
    record = json.loads(record_file.read_text())
    assert record["attempts"] == 3 and "503" in record["reason"] and record["message_id"] == "flaky"
    # the registry recovers: the platform's next delivery succeeds
    server.state["fail"] = 0  # type: ignore[attr-defined]
    call("scan_worker", QueueMessage(body, id="flaky", dequeue_count=1), Out())
    with SQLiteStore(worker_settings.sqlite_file) as store:
        assert store.get_image(img.digest) is not None


def test_worker_delete_resolves_the_images_findings(
    worker_settings: Settings, registry: tuple[FakeServer, I.Image]
) -> None:
    server, img = registry
    call("scan_worker", QueueMessage(push_message(server, img)), Out())
    delete = ScanMessage(
        action=Action.DELETE,
        registry=server.host,
        repository="team/app",
        digest=img.digest,
        source="acr",
        event_id="evt-del",
    )
    call("scan_worker", QueueMessage(delete.model_dump_json(), id="del"), Out())
    with SQLiteStore(worker_settings.sqlite_file) as store:
        image = store.get_image(img.digest)
        assert image is not None and image.deleted
        assert {f.status.value for f in store.findings_for_image(img.digest)} == {"resolved"}


GAR_REPO = "us-east1-docker.pkg.dev/my-project/my-repo/hello-world"
GAR_DIGEST = "sha256:6ec128e26cd5f0ee1e5a7c4b5ab1d3b2e2e6a7c1b0d4e8f9a3c5b7d9e1f3a5c7"  # the samples' image


def test_gar_delete_through_gar_push_and_the_worker_resolves_the_findings(
    worker_settings: Settings, registry: tuple[FakeServer, I.Image]
) -> None:
    server, img = registry
    settings = worker_settings.model_copy(update={"registry_allowlist": (server.host, "us-east1-docker.pkg.dev")})
    composition.reset(settings)
    # the image's inventory, from a real scan; then known under the GAR samples' digest, as if scanned in CI
    call("scan_worker", QueueMessage(push_message(server, img)), Out())
    with SQLiteStore(settings.sqlite_file) as store:
        scanned = store.get_image(img.digest)
    assert scanned is not None and scanned.inventory_key
    data = LocalBlobStore(settings.blob_dir).get(scanned.inventory_key)
    assert data is not None
    result = ScanResult.model_validate_json(data)
    result = result.model_copy(update={"image": result.image.model_copy(update={"digest": GAR_DIGEST})})
    composition.components().service().ingest(result, f"{GAR_REPO}:1.1", event_id="ci")

    # GAR's INSERT through the HTTP trigger and the worker: the digest is known, nothing is pulled
    out: Out[str] = Out()
    assert call("gar_push", push_request(gar_body()), out).status_code == 202
    call("scan_worker", QueueMessage(out.get(), id="gar-insert"), Out())
    with SQLiteStore(settings.sqlite_file) as store:
        image = store.get_image(GAR_DIGEST)
        assert image is not None and image.references == [f"{GAR_REPO}:1.1"] and not image.deleted
        findings = store.findings_for_image(GAR_DIGEST)
    assert sorted(f.finding.package_name for f in findings) == ["libcrypto3", "libssl3"]
    assert {f.status.value for f in findings} <= {"new", "active"}
    alerted = alerts(settings)

    # GAR's DELETE sample, as Pub/Sub pushes it, through gar_push; the worker resolves the image's findings
    deleted: Out[str] = Out()
    resp = call("gar_push", push_request(gar_body("gar-pubsub-push-delete.json")), deleted)
    assert resp.status_code == 202
    msg = queued(deleted)
    assert (msg.action, msg.registry, msg.repository, msg.digest, msg.source) == (
        Action.DELETE,
        "us-east1-docker.pkg.dev",
        "my-project/my-repo/hello-world",
        GAR_DIGEST,
        "gar",
    )
    poison: Out[str] = Out()
    call("scan_worker", QueueMessage(deleted.get(), id="gar-delete"), poison)
    assert poison.calls == 0
    with SQLiteStore(settings.sqlite_file) as store:
        image = store.get_image(GAR_DIGEST)
        assert image is not None and image.deleted and image.references == []
        assert sum(image.severity_counts.values()) == 0
        resolved = store.findings_for_image(GAR_DIGEST)
        other = store.get_image(img.digest)
    assert len(resolved) == 2 and {f.status.value for f in resolved} == {"resolved"}
    assert all(f.resolved_at is not None for f in resolved)
    assert other is not None and not other.deleted, "the same content under another digest is untouched"
    # Pub/Sub delivers at least once: the same DELETE again changes nothing and alerts nothing
    call("scan_worker", QueueMessage(deleted.get(), id="gar-delete-again"), Out())
    with SQLiteStore(settings.sqlite_file) as store:
        assert {f.status.value for f in store.findings_for_image(GAR_DIGEST)} == {"resolved"}
    assert alerts(settings) == alerted


# -- timers --------------------------------------------------------------------------------------------------------


#: Azure Storage queue messages are at most 64 KiB as stored; the Functions host base64-encodes what it writes.
AZURE_QUEUE_MESSAGE_LIMIT = 64 * 1024


def stored_copies(settings: Settings, digest: str, count: int) -> list[str]:
    """``count`` more stored images with the scanned image's inventory, as if pushed under other digests."""
    digests = [f"sha256:{n:064x}" for n in range(1, count + 1)]
    with SQLiteStore(settings.sqlite_file) as store:
        image = store.get_image(digest)
        assert image is not None
        for n, d in enumerate(digests, 1):
            store.put_image(
                image.model_copy(update={"digest": d, "references": [f"{image.references[0]}-copy{n}"], "etag": None})
            )
    return digests


def test_daily_rescan_fans_out_batch_messages_and_the_worker_handles_one(
    worker_settings: Settings, registry: tuple[FakeServer, I.Image]
) -> None:
    server, img = registry
    call("scan_worker", QueueMessage(push_message(server, img)), Out())
    copies = stored_copies(worker_settings, img.digest, 449)  # 450 stored images

    out: Out[list[str]] = Out()
    call("daily_rescan", TimerRequest(past_due=False), out)
    bodies = out.get()
    assert out.calls == 1
    msgs = [ScanMessage.model_validate_json(b) for b in bodies]
    # 450 images at 200 a message: three queue writes for the host, not 450
    assert [m.action for m in msgs] == [Action.RESCAN_BATCH] * 3
    assert [len(m.digests or ()) for m in msgs] == [200, 200, 50]
    named = [d for m in msgs for d in m.digests or ()]
    assert len(named) == 450 and set(named) == {img.digest, *copies}
    assert all(len(base64.b64encode(b.encode())) < AZURE_QUEUE_MESSAGE_LIMIT for b in bodies)

    # one image of the first message has a corrupt inventory: it fails alone, the other 199 are re-matched
    target = msgs[0]
    broken = next(d for d in target.digests or () if d != img.digest)
    with SQLiteStore(worker_settings.sqlite_file) as store:
        image = store.get_image(broken)
        assert image is not None
        store.put_image(image.model_copy(update={"inventory_key": "inventories/corrupt.json"}))
    (worker_settings.blob_dir / "inventories" / "corrupt.json").write_bytes(b"{truncated")
    started = datetime.now(UTC)
    hits = len(server.hits)
    poison: Out[str] = Out()
    call("scan_worker", QueueMessage(bodies[0], id="batch-0"), poison)
    assert poison.calls == 0, "the message completed: its other images are not poisoned with it"
    assert len(server.hits) == hits, "a rescan contacts no registry"
    with SQLiteStore(worker_settings.sqlite_file) as store:
        rematched = {d for d in named if (i := store.get_image(d)) and i.matched_at and i.matched_at >= started}
    assert rematched == set(target.digests or ()) - {broken}
    # the failed image is recorded as a single-image RESCAN that can be replayed
    (record_file,) = list((worker_settings.blob_dir / "failures" / worker_settings.scan_queue).glob("*.json"))
    record = json.loads(record_file.read_text())
    assert record["message_id"] == f"batch-0/{broken}" and "ValidationError" in record["reason"]
    replay = ScanMessage.model_validate_json(record["message"])
    assert (replay.action, replay.digest) == (Action.RESCAN, broken)


def test_worker_still_handles_a_single_image_rescan(
    worker_settings: Settings, registry: tuple[FakeServer, I.Image]
) -> None:
    server, img = registry
    call("scan_worker", QueueMessage(push_message(server, img)), Out())
    # the form the timer queued before rescans were batched
    body = json.dumps(
        {
            "action": "rescan",
            "registry": server.host,
            "repository": "team/app",
            "tag": "1.0",
            "digest": img.digest,
            "source": "rescan",
            "event_id": f"daily-20260101-{img.digest}",
            "event_time": None,
            "aws_account": None,
            "aws_region": None,
        }
    )
    started = datetime.now(UTC)
    hits = len(server.hits)
    poison: Out[str] = Out()
    call("scan_worker", QueueMessage(body, id="rescan"), poison)
    assert poison.calls == 0 and len(server.hits) == hits
    with SQLiteStore(worker_settings.sqlite_file) as store:
        image = store.get_image(img.digest)
        assert image is not None and image.matched_at is not None and image.matched_at >= started


def test_alerts_outbox_runs(worker_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert call("alerts_outbox", TimerRequest(past_due=True)) is None
    assert "alerts outbox: 0 published" in caplog.text


NEW_ZLIB_CRITICAL = {
    "id": "ALPINE-TEST-ZLIB-NEW",
    "modified": "2024-06-01T00:00:00Z",
    "aliases": ["CVE-2023-45853"],
    "summary": "zlib: integer overflow in MiniZip zipOpenNewFileInZip4_64",
    "details": "A critical zlib advisory arriving after the image was scanned.",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [
        {
            "package": {"ecosystem": "Alpine:v3.19", "name": "zlib"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
        }
    ],
}


@pytest.fixture
def osv_mirror(tmp_path: Path) -> Iterator[FakeServer]:
    """OSV's bucket, locally: ``/Alpine/all.zip`` holds the original advisory and a new critical one."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ALPINE-CVE-2024-0727.json", (DATA / "osv" / "ALPINE-CVE-2024-0727.json").read_bytes())
        zf.writestr("ALPINE-TEST-ZLIB-NEW.json", json.dumps(NEW_ZLIB_CRITICAL))
    archive = buf.getvalue()

    def respond(method: str, path: str, headers: dict[str, str]) -> Any:
        if path == "/Alpine/all.zip":
            if headers.get("If-None-Match") == '"v1"':
                return 304, {}, b""
            return 200, {"Content-Type": "application/zip", "ETag": '"v1"'}, archive
        return 404, {}, b""

    server = FakeServer(respond)
    try:
        yield server
    finally:
        server.stop()


def test_vulndb_refresh_publishes_a_version_and_rescans_only_affected_images(
    worker_settings: Settings, registry: tuple[FakeServer, I.Image], osv_mirror: FakeServer, tmp_path: Path
) -> None:
    server, img = registry
    call("scan_worker", QueueMessage(push_message(server, img)), Out())
    before = alerts(worker_settings)
    settings = worker_settings.model_copy(update={"osv_base_url": osv_mirror.url, "ecosystems": ("Alpine",)})
    composition.reset(settings)

    out: Out[list[str]] = Out()
    call("vulndb_refresh", TimerRequest(past_due=False), out)
    (body,) = out.get()
    msg = ScanMessage.model_validate_json(body)
    assert (msg.action, msg.digests) == (Action.RESCAN_BATCH, (img.digest,))

    channel = composition.components().vulndb_channel()
    current = channel.current()
    assert current is not None and channel.installed() == current.version
    # the worker re-matches at once: the new critical alerts
    call("scan_worker", QueueMessage(body, id="delta"), Out())
    new = [a for a in alerts(worker_settings) if a not in before]
    assert [a["data"]["vulnerability"]["id"] for a in new] == ["CVE-2023-45853"]

    # a second refresh: nothing changed upstream (304), the same version, nothing to rescan
    again: Out[list[str]] = Out()
    call("vulndb_refresh", TimerRequest(past_due=False), again)
    assert again.get() == []
    assert channel.current() == current

    # another worker instance (fresh disk) fetches the published version once, then keeps it
    fresh = settings.model_copy(update={"vulndb_path": tmp_path / "other-instance" / "vulndb.sqlite"})
    composition.reset(fresh)
    other = composition.components().vulndb_channel()
    assert other.sync() is True and other.installed() == current.version
    assert other.sync(force=True) is False
