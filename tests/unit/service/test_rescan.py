"""Rescans without a registry: the daily selection, and the database-delta rescan through the inverted index.

Inventories are synthetic (no image is pulled); the vulnerability database is
built from hand-written OSV records with the real importer; the store is SQLite
and the blobs local files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.domain.models import ImageInfo, OSInfo, Package, ScanResult, ToolInfo
from shared.service import rescan
from shared.service.messages import Action, ScanOutcome, Skip
from shared.service.scan import ScanService, ServiceConfig
from shared.stores.blobs import LocalBlobStore
from shared.stores.models import AlertRecord, FindingStatus
from shared.stores.sqlite import SQLiteStore
from shared.vulndb.importer import import_paths

REGISTRY = "registry.example"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def advisory(aid: str, name: str, fixed: str, modified: str, score: str | None = CRITICAL) -> dict[str, object]:
    rec: dict[str, object] = {
        "id": aid,
        "modified": modified,
        "summary": f"{name}: test advisory",
        "details": "Synthetic record for the rescan tests (no such vulnerability exists).",
        "affected": [
            {
                "package": {"ecosystem": "Alpine:v3.19", "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }
    if score:
        rec["severity"] = [{"type": "CVSS_V3", "score": score}]
    return rec


def apk(name: str, version: str) -> Package:
    return Package(
        type="apk",
        name=name,
        version=version,
        source_name=name,
        ecosystem="Alpine:v3.19",
        purl=f"pkg:apk/alpine/{name}@{version}?distro=alpine-3.19.1",
        found_in="lib/apk/db/installed",
    )


def inventory(n: int, with_libfoo: bool, scanned_at: datetime = NOW) -> ScanResult:
    digest = f"sha256:{n:064x}"
    pkgs = [apk("musl", "1.2.4-r2"), apk("busybox", "1.36.1-r15"), apk(f"app{n % 20}", "1.0-r0")]
    if with_libfoo:
        pkgs.append(apk("libfoo", "2.0-r0"))
    return ScanResult(
        tool=ToolInfo(version="0.1.0"),
        scanned_at=scanned_at,
        image=ImageInfo(
            reference=f"{REGISTRY}/team/app{n}:1",
            source="registry",
            registry=REGISTRY,
            repository=f"team/app{n}",
            tag="1",
            digest=digest,
        ),
        os=OSInfo(family="alpine", version_id="3.19.1"),
        packages=pkgs,
    )


class Recorder:
    def __init__(self) -> None:
        self.alerts: list[AlertRecord] = []

    def publish(self, alert: AlertRecord) -> None:
        self.alerts.append(alert)


class NoRegistry:
    def credentials(self, registry: str, repository: str) -> None:
        raise AssertionError("a rescan must not ask for registry credentials")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[ScanService, Recorder, Path, SQLiteStore]]:
    osv = tmp_path / "osv"
    osv.mkdir()
    (osv / "busybox.json").write_text(
        json.dumps(advisory("TEST-BUSYBOX-1", "busybox", "1.36.1-r16", "2026-01-01T00:00:00Z", score=None))
    )
    dbp = tmp_path / "vulndb.sqlite"
    import_paths(dbp, [osv])
    store = SQLiteStore(tmp_path / "store.sqlite")
    rec = Recorder()
    svc = ScanService(
        store,
        LocalBlobStore(tmp_path / "blobs"),
        NoRegistry(),
        rec,
        ServiceConfig(registries=[REGISTRY], db_path=dbp),
        now=lambda: NOW,
    )
    try:
        yield svc, rec, osv, store
    finally:
        svc.close()
        store.close()


def test_delta_rescan_touches_only_the_affected_images(env: tuple[ScanService, Recorder, Path, SQLiteStore]) -> None:
    svc, rec, osv, store = env
    affected = {n for n in range(1000) if n % 20 == 7}  # 50 of 1,000
    for n in range(1000):
        out = svc.ingest(inventory(n, n in affected), f"{REGISTRY}/team/app{n}:1", pushed_at=NOW)
        assert (out.findings_new, out.alerts_created) == (1, 0), "busybox's advisory has no severity: no alert"
    assert rec.alerts == []
    # nothing changed yet: the delta finds nothing
    assert list(svc.delta_rescan()) == []

    # a refresh adds a critical advisory for libfoo
    (osv / "libfoo.json").write_text(
        json.dumps(advisory("TEST-LIBFOO-1", "libfoo", "2.0-r1", "2026-02-20T08:30:00.5Z"))
    )
    import_paths(tmp_path_db(svc), [osv])
    batches = list(svc.delta_rescan(batch_size=20))
    assert [len(b) for b in batches] == [20, 20, 10]
    msgs = [m for b in batches for m in b]
    assert all(m.action is Action.RESCAN for m in msgs)
    assert {m.digest for m in msgs} == {f"sha256:{n:064x}" for n in affected}

    before = store.request_count
    outcomes = svc.run(batches)
    assert all(isinstance(o, ScanOutcome) and o.findings_new == 1 and o.alerts_published == 1 for o in outcomes)
    assert all(isinstance(o, ScanOutcome) and o.findings_open == 2 for o in outcomes)
    assert len(rec.alerts) == 50
    assert {a.image_digest for a in rec.alerts} == {f"sha256:{n:064x}" for n in affected}
    assert {a.type for a in rec.alerts} == {"hullwatch.vulnerability.new"}
    assert rec.alerts[0].subject.startswith(f"{REGISTRY}/team/app")
    assert store.request_count - before < 50 * 8

    # the watermark moved: the same refresh is not rescanned twice; rerunning the messages alerts no more
    assert list(svc.delta_rescan()) == []
    again = svc.run(batches)
    assert all(isinstance(o, ScanOutcome) and o.findings_new == 0 for o in again)
    assert len(rec.alerts) == 50
    crit = store.findings_by_severity("CRITICAL", limit=100)
    assert len(crit) == 50 and {r.status for r in crit} == {FindingStatus.ACTIVE}


def tmp_path_db(svc: ScanService) -> Path:
    return Path(svc.config.db_path)


def test_changed_keys_helper(tmp_path: Path) -> None:
    osv = tmp_path / "osv"
    osv.mkdir()
    (osv / "a.json").write_text(json.dumps(advisory("T-A", "alpha", "2", "2026-01-01T00:00:00Z")))
    (osv / "b.json").write_text(json.dumps(advisory("T-B", "beta", "2", "2026-02-01T00:00:00.25Z")))
    kev = tmp_path / "kev.json"
    kev.write_text(
        json.dumps(
            {
                "title": "CISA Catalog of Known Exploited Vulnerabilities",
                "catalogVersion": "2026.02.15",
                "dateReleased": "2026-02-15T00:00:00.000Z",
                "count": 1,
                "vulnerabilities": [
                    {"cveID": "CVE-2026-0001", "dateAdded": "2026-02-15", "dueDate": "2026-03-01"},
                ],
            }
        )
    )
    rec = advisory("T-C", "gamma", "2", "2025-06-01T00:00:00Z")
    rec["aliases"] = ["CVE-2026-0001"]
    (osv / "c.json").write_text(json.dumps(rec))
    dbp = tmp_path / "db.sqlite"
    import_paths(dbp, [osv, kev])
    none = rescan.changed_advisory_keys(dbp, None)
    assert none.keys == frozenset() and none.watermark == "2026-02-01T00:00:00.25Z"
    got = rescan.changed_advisory_keys(dbp, "2026-01-01T00:00:00Z")
    assert got.advisories == frozenset({"T-B", "T-C"}), "modified after the watermark, or newly KEV-listed"
    assert got.keys == frozenset({("Alpine:v3.19", "beta"), ("Alpine:v3.19", "gamma")})
    # the same second but a later fraction counts; the same instant does not
    assert rescan.changed_advisory_keys(dbp, "2026-02-01T00:00:00Z").advisories >= {"T-B"}
    assert "T-B" not in rescan.changed_advisory_keys(dbp, "2026-02-01T00:00:00.25Z").advisories


def test_daily_rescan_selection_and_request_budget(env: tuple[ScanService, Recorder, Path, SQLiteStore]) -> None:
    svc, rec, _, store = env
    for n in range(30):
        pushed = NOW - timedelta(days=5 if n < 20 else 90)
        svc.ingest(inventory(n, False, scanned_at=pushed), f"{REGISTRY}/team/app{n}:1", pushed_at=pushed)
    old_running = store.get_image(f"sha256:{25:064x}")
    assert old_running is not None
    store.put_image(old_running.model_copy(update={"running": True}))
    gone = store.get_image(f"sha256:{3:064x}")
    assert gone is not None
    store.put_image(gone.model_copy(update={"deleted": True}))
    batches = list(svc.daily_rescan(since_days=30, batch_size=8))
    digests = [m.digest for b in batches for m in b]
    expected = {f"sha256:{n:064x}" for n in range(20) if n != 3} | {f"sha256:{25:064x}"}
    assert set(digests) == expected and len(digests) == len(expected)
    assert max(len(b) for b in batches) == 8
    assert all(m.registry == REGISTRY and m.repository.startswith("team/app") for b in batches for m in b)

    # busybox is affected in every image (no CVSS: UNKNOWN severity, so no alert): open findings exist
    svc.run(batches)  # NEW -> ACTIVE writes once
    before = store.request_count
    outcomes = svc.run(batches)
    per_image = (store.request_count - before) / len(expected)
    assert per_image <= 3, f"an unchanged image costs {per_image} store requests"
    assert all(isinstance(o, ScanOutcome) and o.findings_open == 1 for o in outcomes)
    assert rec.alerts == []


def test_rescan_of_unknown_or_deleted_image_is_skipped(env: tuple[ScanService, Recorder, Path, SQLiteStore]) -> None:
    svc, _, _, store = env
    svc.ingest(inventory(1, False), f"{REGISTRY}/team/app1:1")
    img = store.get_image(f"sha256:{1:064x}")
    assert img is not None
    msg = rescan.rescan_message(img, "t")
    assert isinstance(svc.handle(msg), ScanOutcome)
    store.put_image(img.model_copy(update={"deleted": True}))
    assert isinstance(svc.handle(msg), Skip)
    other = msg.model_copy(update={"digest": f"sha256:{2:064x}"})
    assert isinstance(svc.handle(other), Skip)
