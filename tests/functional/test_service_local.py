"""The scan worker and ``hullwatch serve`` end to end against a real ``docker-registry``.

Images are built from the repository's Alpine package database
(tests/data/apk-installed, with openssl set back to the vulnerable 3.1.4-r4) and
pushed to a registry with htpasswd auth on 127.0.0.1; the service gets its
credentials through a CredentialProvider. The vulnerability database is built
by the real importer from tests/data/osv/ALPINE-CVE-2024-0727.json and a KEV
entry; the store is SQLite, blobs are local files. Every registry request the
service makes is recorded (a response hook on its HTTP session), so "not pulled
again" and "no registry request" are asserted, not assumed.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from shared.service import events
from shared.service.alerts import TYPE_KEV, TYPE_NEW
from shared.service.credentials import BasicCredentials
from shared.service.errors import RegistryNotAllowed
from shared.service.local import LocalConfig, StaticCredentials, make_app, rescan
from shared.service.messages import Action, ScanMessage, ScanOutcome
from shared.service.scan import ScanService, ServiceConfig
from shared.stores.blobs import LocalBlobStore
from shared.stores.models import AlertRecord, FindingStatus
from shared.stores.sqlite import SQLiteStore
from shared.vulndb.importer import import_paths
from tests.integration.conftest import _registry
from tests.support import images as I
from tests.support.registries import Registry, push

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parent.parent / "data"
EVENTS = Path(__file__).resolve().parent.parent / "events"
ALPINE_OS = I.file("etc/os-release", 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n')
KEV = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2024.03.01",
    "dateReleased": "2024-03-01T00:00:00.000Z",
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
#: Added by the "refresh" of the rescan tests. Synthetic: no such busybox advisory exists.
BUSYBOX_CRITICAL = {
    "id": "TEST-BUSYBOX-RESCAN",
    "modified": "2026-02-01T00:00:00Z",
    "summary": "busybox: synthetic critical advisory for the rescan tests",
    "details": "Not a real vulnerability: written for tests/functional/test_service_local.py.",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [
        {
            "package": {"ecosystem": "Alpine:v3.19", "name": "busybox"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.36.1-r99"}]}],
        }
    ],
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _registry(tmp_path_factory, "htpasswd")


@pytest.fixture(autouse=True)
def _no_host_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "docker-config"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))


def apk_db() -> bytes:
    real = (DATA / "apk-installed").read_bytes()
    assert real.count(b"V:3.1.4-r5") == 2
    return real.replace(b"V:3.1.4-r5", b"V:3.1.4-r4")  # the openssl build before the CVE-2024-0727 fix


def alpine_image(app_text: str = "hello\n", history: str = "COPY app /app") -> I.Image:
    base = I.layer([ALPINE_OS, I.file("lib/apk/db/installed", apk_db())])
    app = I.layer([I.file("app/hello.txt", app_text), I.file("app/run.sh", "#!/bin/sh\necho hi\n", mode=0o755)])
    return I.image([base, app], history=["ADD alpine-minirootfs /", history])


def vulndb(path: Path, extra: list[dict[str, Any]] | None = None) -> Path:
    src = path.parent / f"{path.stem}-src"
    src.mkdir(exist_ok=True)
    (src / "alpine.json").write_bytes((DATA / "osv" / "ALPINE-CVE-2024-0727.json").read_bytes())
    for i, rec in enumerate(extra or []):
        (src / f"extra{i}.json").write_text(json.dumps(rec))
    kev = path.parent / "kev.json"
    kev.write_text(json.dumps(KEV))
    import_paths(path, [src, kev])
    return path


class Recorder:
    """A publisher that records, and fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.published: list[AlertRecord] = []

    def publish(self, alert: AlertRecord) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("event topic answered HTTP 500")
        self.published.append(alert)


@dataclass
class Env:
    svc: ScanService
    store: SQLiteStore
    blobs: LocalBlobStore
    publisher: Recorder
    registry: Registry
    db: Path
    hits: list[tuple[str, str]] = field(default_factory=list)

    def blob_gets(self) -> list[str]:
        return [p for m, p in self.hits if m == "GET" and "/blobs/" in p]

    def layer_gets(self, img: I.Image) -> list[str]:
        layers = {lay.digest for lay in img.layers}
        return [p for p in self.blob_gets() if p.rsplit("/", 1)[-1] in layers]


def recording_session(hits: list[tuple[str, str]]) -> Callable[[], requests.Session]:
    def make() -> requests.Session:
        s = requests.Session()
        s.hooks["response"].append(lambda r, *a, **k: hits.append((r.request.method or "", urlsplit(r.url).path)))
        return s

    return make


@pytest.fixture
def env(tmp_path: Path, registry: Registry) -> Iterator[Env]:
    store = SQLiteStore(tmp_path / "store.sqlite")
    blobs = LocalBlobStore(tmp_path / "blobs")
    pub = Recorder()
    hits: list[tuple[str, str]] = []
    assert registry.username and registry.password
    svc = ScanService(
        store,
        blobs,
        StaticCredentials({registry.host: BasicCredentials(registry.username, registry.password)}),
        pub,
        ServiceConfig(
            registries=[registry.host],
            db_path=vulndb(tmp_path / "vulndb.sqlite"),
            insecure_registries=frozenset({registry.host}),
        ),
        session_factory=recording_session(hits),
    )
    try:
        yield Env(svc, store, blobs, pub, registry, Path(svc.config.db_path), hits)
    finally:
        svc.close()
        store.close()


def acr_event(name: str, registry: Registry, repo: str, tag: str | None, digest: str | None, eid: str) -> bytes:
    """A documented ACR sample event, pointed at the local registry."""
    doc = json.loads((EVENTS / name).read_text())
    ev = doc[0]
    ev["id"] = eid
    ev["data"]["request"]["host"] = registry.host
    target = ev["data"]["target"]
    target["repository"] = repo
    for key, value in (("tag", tag), ("digest", digest)):
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    target["mediaType"] = I.OCI_MANIFEST
    return json.dumps(doc).encode()


def message(body: bytes) -> ScanMessage:
    delivery = events.parse_event_grid(body)
    (msg,) = delivery.items
    assert isinstance(msg, ScanMessage)
    return msg


def outcome(x: object) -> ScanOutcome:
    assert isinstance(x, ScanOutcome), x
    return x


# -- the worker -------------------------------------------------------------------------------------


def test_push_scan_once_per_digest_duplicates_and_delete(env: Env) -> None:
    reg = env.registry
    img = alpine_image()
    digest = push(reg.url, "team/web", "1", img, auth=reg.auth)
    push_event = acr_event("acr-eventgrid-image-pushed.json", reg, "team/web", "1", digest, "ev-1")

    first = outcome(env.svc.handle(message(push_event)))
    assert first.scanned and first.digest == digest
    assert (first.findings_new, first.findings_open, first.alerts_created, first.alerts_published) == (2, 2, 2, 2)
    assert len(env.layer_gets(img)) == 2, "the new digest was pulled"
    stored = env.store.findings_for_image(digest)
    assert sorted((r.finding.package_name, r.vulnerability_id, r.status) for r in stored) == [
        ("libcrypto3", "CVE-2024-0727", FindingStatus.NEW),
        ("libssl3", "CVE-2024-0727", FindingStatus.NEW),
    ]
    assert {a.type for a in env.publisher.published} == {TYPE_KEV}
    assert {a.subject for a in env.publisher.published} == {f"{reg.host}/team/web:1"}
    image = env.store.get_image(digest)
    assert image is not None and image.inventory_key and image.references == [f"{reg.host}/team/web:1"]
    assert image.severity_counts["UNKNOWN"] == 2 and image.package_count == 4 and image.os == "alpine 3.19.1"
    inventory = env.blobs.get(image.inventory_key)
    assert inventory is not None and b'"libssl3"' in inventory, "the inventory lives in the blob store"
    assert env.store.images_with_packages([("Alpine:v3.19", "openssl")]) == {digest}

    # the same event delivered again: no registry request, one set of findings, still two alerts
    env.hits.clear()
    again = outcome(env.svc.handle(message(push_event)))
    assert not again.scanned and again.findings_new == 0 and again.alerts_created == 0
    assert env.hits == []
    assert len(env.store.findings_for_image(digest)) == 2 and len(env.publisher.published) == 2

    # the same digest pushed to a second repository, announced by tag only: manifest and config, no layer
    push(reg.url, "team/api", "2", img, auth=reg.auth)
    env.hits.clear()
    by_tag = outcome(
        env.svc.handle(message(acr_event("acr-cloudevents-image-pushed.json", reg, "team/api", "2", None, "ev-2")))
    )
    assert not by_tag.scanned and by_tag.digest == digest
    assert env.hits and env.layer_gets(img) == [], "not pulled again"
    image = env.store.get_image(digest)
    assert image is not None and image.references == [f"{reg.host}/team/web:1", f"{reg.host}/team/api:2"]
    assert len(env.publisher.published) == 2

    # deleted from one repository: still referenced by the other, findings stay open
    env.hits.clear()
    deleted_api = acr_event("acr-eventgrid-image-deleted.json", reg, "team/api", None, digest, "ev-3")
    outcome(env.svc.handle(message(deleted_api)))
    assert {r.status for r in env.store.findings_for_image(digest)} == {FindingStatus.ACTIVE}
    # deleted from the last one: the image is gone and its findings resolved
    deleted_web = acr_event("acr-cloudevents-image-deleted.json", reg, "team/web", None, digest, "ev-4")
    gone = outcome(env.svc.handle(message(deleted_web)))
    assert gone.findings_resolved == 2 and gone.findings_open == 0
    assert {(r.status, r.resolved_at is not None) for r in env.store.findings_for_image(digest)} == {
        (FindingStatus.RESOLVED, True)
    }
    image = env.store.get_image(digest)
    assert image is not None and image.deleted and image.references == [] and sum(image.severity_counts.values()) == 0
    assert env.hits == [], "a deletion contacts no registry"
    assert env.store.findings_by_severity("UNKNOWN") == []
    # delivered twice: nothing changes
    assert outcome(env.svc.handle(message(deleted_web))).findings_resolved == 0


def test_rescan_with_new_advisory_alerts_without_registry(env: Env) -> None:
    reg = env.registry
    img = alpine_image("rescan\n")
    digest = push(reg.url, "team/rescan", "1", img, auth=reg.auth)
    outcome(
        env.svc.handle(message(acr_event("acr-eventgrid-image-pushed.json", reg, "team/rescan", "1", digest, "r1")))
    )
    assert len(env.publisher.published) == 2
    env.hits.clear()

    vulndb(env.db, [BUSYBOX_CRITICAL])  # the database refresh
    batches = list(env.svc.delta_rescan())
    msgs = [m for b in batches for m in b]
    assert [(m.action, m.digest) for m in msgs] == [(Action.RESCAN, digest)]
    (res,) = env.svc.run(batches)
    res = outcome(res)
    assert (res.findings_new, res.alerts_created, res.alerts_published) == (1, 1, 1)
    new_alert = env.publisher.published[-1]
    assert new_alert.type == TYPE_NEW and new_alert.data["vulnerability"]["id"] == "TEST-BUSYBOX-RESCAN"  # type: ignore[index]
    assert new_alert.subject == f"{reg.host}/team/rescan:1"
    assert env.hits == [], "a rescan re-matches the stored inventory: no registry request"
    crit = env.store.findings_by_severity("CRITICAL")
    assert [(r.image_digest, r.finding.package_name) for r in crit] == [(digest, "busybox")]
    # the daily rescan re-matches it again: nothing new, nothing alerted
    again = env.svc.run(env.svc.daily_rescan())
    assert [outcome(o).findings_new for o in again] == [0] and len(env.publisher.published) == 3
    assert env.hits == []


def test_same_layers_new_config_downloads_no_layer(env: Env) -> None:
    reg = env.registry
    a = alpine_image("stack\n", history="COPY app /app")
    b = alpine_image("stack\n", history="COPY app /app # relabelled")  # same layers, another config and digest
    assert [lay.diff_id for lay in a.layers] == [lay.diff_id for lay in b.layers] and a.digest != b.digest
    da = push(reg.url, "team/stack", "a", a, auth=reg.auth)
    outcome(env.svc.handle(message(acr_event("acr-eventgrid-image-pushed.json", reg, "team/stack", "a", da, "s1"))))
    assert len(env.layer_gets(a)) == 2
    env.hits.clear()
    db_ = push(reg.url, "team/stack", "b", b, auth=reg.auth)
    res = outcome(
        env.svc.handle(message(acr_event("acr-eventgrid-image-pushed.json", reg, "team/stack", "b", db_, "s2")))
    )
    assert not res.scanned and res.findings_new == 2, "a new image (new findings) from the cached layer stack"
    assert env.layer_gets(b) == [], "no layer downloaded"
    assert any("/manifests/" in p for _, p in env.hits)
    ia, ib = env.store.get_image(da), env.store.get_image(db_)
    assert ia is not None and ib is not None and ia.package_count == ib.package_count == 4


def test_publisher_failing_once_then_outbox(env: Env) -> None:
    env.publisher.failures = 1
    reg = env.registry
    digest = push(reg.url, "team/outbox", "1", alpine_image("outbox\n"), auth=reg.auth)
    res = outcome(
        env.svc.handle(message(acr_event("acr-eventgrid-image-pushed.json", reg, "team/outbox", "1", digest, "o1")))
    )
    assert (res.alerts_created, res.alerts_published) == (2, 1)
    (pending,) = env.store.unpublished_alerts()
    assert pending.attempts == 1 and "HTTP 500" in (pending.last_error or "")
    report = env.svc.publish_pending()
    assert (report.published, report.failed) == (1, 0)
    assert env.store.unpublished_alerts() == [] and len(env.publisher.published) == 2
    assert env.svc.publish_pending().published == 0


def test_forged_event_naming_an_unlisted_registry(env: Env) -> None:
    body = (EVENTS / "acr-eventgrid-image-pushed.json").read_bytes()  # demo.azurecr.io: not configured
    with pytest.raises(RegistryNotAllowed) as ei:
        env.svc.handle(message(body))
    assert "demo.azurecr.io" in str(ei.value) and "831e1650" in str(ei.value)
    assert env.hits == []
    assert all(v == 0 for v in env.store.counts().values()), "nothing stored"
    assert env.publisher.published == []


# -- hullwatch serve ------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, registry: Registry) -> Iterator[tuple[str, LocalConfig, io.StringIO, Any]]:
    out = io.StringIO()
    assert registry.username and registry.password
    config = LocalConfig(
        data_dir=tmp_path / "data",
        registries=[registry.host],
        db_path=vulndb(tmp_path / "vulndb.sqlite"),
        insecure_registries=[registry.host],
        port=0,
        credentials={registry.host: BasicCredentials(registry.username, registry.password)},
        stream=out,
    )
    server, worker = make_app(config)
    worker.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host!s}:{port}", config, out, worker
    finally:
        server.shutdown()
        server.server_close()
        worker.stop()


def test_serve_handshakes_push_and_refusal(
    served: tuple[str, LocalConfig, io.StringIO, Any], registry: Registry
) -> None:
    base, config, out, worker = served
    r = requests.get(f"{base}/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"

    validation = (EVENTS / "eventgrid-subscription-validation.json").read_bytes()
    r = requests.post(f"{base}/eventgrid", data=validation, headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200 and r.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    r = requests.options(f"{base}/eventgrid", headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=10)
    assert r.status_code == 200 and r.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"

    img = alpine_image("served\n")
    digest = push(registry.url, "team/served", "7", img, auth=registry.auth)
    body = acr_event("acr-cloudevents-image-pushed.json", registry, "team/served", "7", digest, "serve-1")
    r = requests.post(
        f"{base}/eventgrid", data=body, headers={"Content-Type": "application/cloudevents-batch+json"}, timeout=10
    )
    assert r.status_code == 202 and r.json() == {"accepted": 1, "skipped": []}
    assert worker.wait_idle(60)
    assert worker.failed == []

    with SQLiteStore(config.data_dir / "store.sqlite") as store:
        found = store.findings_for_image(digest)
        assert sorted(f.finding.package_name for f in found) == ["libcrypto3", "libssl3"]
    lines = (config.data_dir / "alerts.jsonl").read_text().splitlines()
    events_out = [json.loads(x) for x in lines]
    assert {e["type"] for e in events_out} == {TYPE_KEV} and len(events_out) == 2
    assert {e["subject"] for e in events_out} == {f"{registry.host}/team/served:7"}
    printed = out.getvalue()
    assert f"ALERT {TYPE_KEV} UNKNOWN KEV CVE-2024-0727 in libssl3 3.1.4-r4 (fixed in 3.1.4-r5)" in printed
    assert "2 open findings (2 new, 0 resolved), 2 alerts" in printed

    # a Helm chart is acknowledged and skipped; a forged registry is refused with nothing enqueued
    chart = (EVENTS / "acr-eventgrid-chart-pushed.json").read_bytes()
    r = requests.post(f"{base}/eventgrid", data=chart, timeout=10)
    assert r.status_code == 202 and r.json()["accepted"] == 0 and "Helm chart" in r.json()["skipped"][0]
    forged = (EVENTS / "acr-eventgrid-image-pushed.json").read_bytes()
    r = requests.post(f"{base}/eventgrid", data=forged, timeout=10)
    assert r.status_code == 400 and "demo.azurecr.io" in r.json()["error"]
    r = requests.post(f"{base}/eventgrid", data=b"{not json", timeout=10)
    assert r.status_code == 400 and "not JSON" in r.json()["error"]

    # a Pub/Sub push (tag only) for the same image in another repository: re-matched, not pulled
    push(registry.url, "team/mirror", "1", img, auth=registry.auth)
    data = {"action": "INSERT", "tag": f"{registry.host}/team/mirror:1"}
    envelope = {
        "message": {"data": base64.b64encode(json.dumps(data).encode()).decode(), "messageId": "77"},
        "subscription": "projects/p/subscriptions/s",
    }
    r = requests.post(f"{base}/pubsub/gar", json=envelope, timeout=10)
    assert r.status_code == 202 and r.json()["accepted"] == 1
    assert worker.wait_idle(60) and worker.failed == []
    assert "re-matched " + digest in out.getvalue()
    assert len((config.data_dir / "alerts.jsonl").read_text().splitlines()) == 2, "no second alert"
    r = requests.get(f"{base}/healthz", timeout=10)
    assert r.json()["processed"] == 2 and r.json()["failed"] == 0


def test_rescan_command_function(served: tuple[str, LocalConfig, io.StringIO, Any], registry: Registry) -> None:
    base, config, _, worker = served
    digest = push(registry.url, "team/cli", "1", alpine_image("cli\n"), auth=registry.auth)
    body = acr_event("acr-eventgrid-image-pushed.json", registry, "team/cli", "1", digest, "cli-1")
    assert requests.post(f"{base}/eventgrid", data=body, timeout=10).status_code == 202
    assert worker.wait_idle(60) and worker.failed == []

    printed = io.StringIO()
    daily = rescan(config.data_dir, config.db_path, stream=printed)
    assert (daily.rescanned, daily.new_findings, daily.alerts, daily.failed) == (1, 0, 0, 0)
    assert printed.getvalue().startswith("rescan daily (30 days): 1 images re-matched")

    vulndb(config.db_path, [BUSYBOX_CRITICAL])
    printed = io.StringIO()
    delta = rescan(config.data_dir, config.db_path, delta=True, stream=printed)
    assert (delta.messages, delta.rescanned, delta.new_findings, delta.alerts) == (1, 1, 1, 1)
    assert "ALERT hullwatch.vulnerability.new CRITICAL TEST-BUSYBOX-RESCAN in busybox" in printed.getvalue()
    assert rescan(config.data_dir, config.db_path, delta=True, stream=io.StringIO()).messages == 0
    lines = (config.data_dir / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(x)["type"] for x in lines].count(TYPE_NEW) == 1
