"""Rescans without a registry: the daily selection, and the database-delta rescan through the inverted index.

Inventories are synthetic (no image is pulled); the vulnerability database is
built from hand-written OSV records with the real importer; the store is SQLite
and the blobs local files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from shared.service import rescan
from shared.service.messages import Action, ScanOutcome, Skip
from shared.service.scan import ScanService, ServiceConfig
from shared.stores.blobs import LocalBlobStore
from shared.stores.models import FindingStatus
from shared.stores.sqlite import SQLiteStore
from shared.vulndb.importer import import_paths
from tests.support.inventories import NOW, REGISTRY, NoRegistry, Recorder, advisory, inventory


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def env(tmp_path: Path, clock: Clock) -> Iterator[tuple[ScanService, Recorder, Path, SQLiteStore]]:
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
        now=clock,
    )
    try:
        yield svc, rec, osv, store
    finally:
        svc.close()
        store.close()


#: The acceptance scale: a refresh names a package held by 50 of 10,000 stored images.
STORED = 10_000
AFFECTED = frozenset(n for n in range(STORED) if n % 200 == 7)
#: Images holding packages that only resemble the affected one (they must not be selected).
DECOYS = frozenset(n for n in range(STORED) if n % 200 == 107)


def test_delta_rescan_touches_only_the_affected_50_of_10000_images(
    env: tuple[ScanService, Recorder, Path, SQLiteStore], clock: Clock
) -> None:
    svc, rec, osv, store = env
    assert len(AFFECTED) == 50 and len(DECOYS) == 50
    want = {f"sha256:{n:064x}" for n in AFFECTED}
    # every image goes the push path minus the pull: inventory blob, findings, summary, package index
    for n in range(STORED):
        inv = inventory(n, n in AFFECTED, decoys=n in DECOYS)
        out = svc.ingest(inv, f"{REGISTRY}/team/app{n}:1", pushed_at=NOW)
        assert (out.findings_new, out.alerts_created) == (1, 0), "busybox's advisory has no severity: no alert"
    assert rec.alerts == []
    assert store.counts()["images"] == STORED
    # nothing changed yet: the delta finds nothing
    assert list(svc.delta_rescan()) == []

    # an hour later a refresh adds a critical advisory for libfoo (Alpine)
    clock.at = later = NOW + timedelta(hours=1)
    (osv / "libfoo.json").write_text(
        json.dumps(advisory("TEST-LIBFOO-1", "libfoo", "2.0-r1", "2026-02-20T08:30:00.5Z"))
    )
    import_paths(tmp_path_db(svc), [osv])
    batches = list(svc.delta_rescan(batch_size=20))
    assert [len(b) for b in batches] == [20, 20, 10]
    msgs = [m for b in batches for m in b]
    assert all(m.action is Action.RESCAN for m in msgs)
    assert {m.digest for m in msgs} == want, "selected: exactly the images holding libfoo"

    before = store.request_count
    outcomes = svc.run(batches)
    assert all(isinstance(o, ScanOutcome) and o.findings_new == 1 and o.alerts_published == 1 for o in outcomes)
    assert all(isinstance(o, ScanOutcome) and o.findings_open == 2 for o in outcomes)
    # per image: read it, read its findings, create its alert, write its findings, write it, mark the alert
    assert store.request_count - before <= 50 * 6
    # rescanned: exactly those 50 were matched again; the other 9,950 were left as they were
    rematched = {i.digest for i in store.images_seen_since(NOW - timedelta(days=1)) if i.matched_at == later}
    assert rematched == want
    # alerted once each
    assert len(rec.alerts) == 50
    assert {a.image_digest for a in rec.alerts} == want
    assert {a.type for a in rec.alerts} == {"hullwatch.vulnerability.new"}
    assert all(a.subject == f"{REGISTRY}/team/app{int(a.image_digest[7:], 16)}:1" for a in rec.alerts)
    assert store.counts()["alerts"] == 50 and store.unpublished_alerts() == []

    # a repeat: the same data imported again selects nothing; the same messages delivered again alert no more
    import_paths(tmp_path_db(svc), [osv])
    assert list(svc.delta_rescan()) == []
    clock.at = NOW + timedelta(hours=2)
    again = svc.run(batches)
    assert all(isinstance(o, ScanOutcome) and o.findings_new == 0 and o.alerts_created == 0 for o in again)
    assert len(rec.alerts) == 50 and store.counts()["alerts"] == 50
    crit = store.findings_by_severity("CRITICAL", limit=100)
    assert len(crit) == 50 and {r.status for r in crit} == {FindingStatus.ACTIVE}
    assert {r.image_digest for r in crit} == want


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
