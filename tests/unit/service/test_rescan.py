"""Rescans without a registry: the daily selection, and the database-delta rescan through the inverted index.

Inventories are synthetic (no image is pulled); the vulnerability database is
built from hand-written OSV records with the real importer; the store is SQLite
and the blobs local files.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.errors import InputError
from shared.service import rescan
from shared.service.errors import Retryable
from shared.service.messages import MAX_BATCH_DIGESTS, Action, BatchOutcome, ScanMessage, ScanOutcome, Skip
from shared.service.scan import ScanService, ServiceConfig
from shared.stores.blobs import LocalBlobStore
from shared.stores.errors import StoreUnavailable
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


# -- batched rescan messages -------------------------------------------------------------------------------------------

#: Azure Storage queue messages are at most 64 KiB as stored, and the Functions host base64-encodes them.
AZURE_QUEUE_LIMIT = 64 * 1024
#: SQS: one message, and one SendMessageBatch in all.
SQS_LIMIT = 256 * 1024


def _stored(store: SQLiteStore, digest: str, ref: str, when: datetime) -> None:
    from shared.stores.models import ImageRecord

    store.put_image(ImageRecord(digest=digest, references=[ref], inventory_key=f"inv/{digest}", pushed_at=when))


def test_daily_batches_pack_into_messages_under_the_queue_limits(tmp_path: Path) -> None:
    # the longest names the registries allow: a 253-character host, a 255-character repository and a
    # 128-character tag; digests are sha256 (71 characters)
    host = ".".join(["r" * 63, "e" * 63, "g" * 63, "i" * 59, "io"])[:253]
    repo = "/".join(["team" + "x" * 120, "svc" + "y" * 126])[:255]
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        for n in range(1001):
            _stored(store, f"sha256:{n:064x}", f"{host}/{repo}:{'t' * 127}{n % 10}", NOW)
        batches = list(rescan.daily_batches(store, NOW))
    assert [len(b) for b in batches] == [200, 200, 200, 200, 200, 1]
    messages = list(rescan.queue_messages(batches))
    assert len(messages) == 6
    assert all(m.action is Action.RESCAN_BATCH and m.digest is None for m in messages)
    named = [d for m in messages for d in m.digests or ()]
    assert len(named) == 1001 and set(named) == {f"sha256:{n:064x}" for n in range(1001)}
    assert sum(rescan.image_count(m) for m in messages) == 1001
    for m in messages:
        body = m.model_dump_json().encode()
        assert len(base64.b64encode(body)) < AZURE_QUEUE_LIMIT // 2, "a full message is a fraction of the limit"
        assert len(body) < SQS_LIMIT // 10, "ten of them fit one SendMessageBatch"
        assert host not in body.decode(), "only digests travel: a rescan reads the image record anyway"
        assert ScanMessage.model_validate_json(body) == m
    first = messages[0]
    assert first.event_id == f"daily-20260301-{(first.digests or ())[0]}+199"


def test_batches_are_cut_by_size_whatever_the_digests(tmp_path: Path) -> None:
    # sha512 digests (135 characters) and a batch size far above the default: the byte budget cuts first
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        for n in range(1000):
            _stored(store, f"sha512:{n:0128x}", f"{REGISTRY}/team/app{n}:1", NOW)
        messages = list(rescan.queue_messages(rescan.daily_batches(store, NOW, batch_size=1000)))
        with pytest.raises(ValueError, match="at least 1"):
            list(rescan.daily_batches(store, NOW, batch_size=0))
    assert len(messages) > 1
    assert sum(rescan.image_count(m) for m in messages) == 1000
    for m in messages:
        body = m.model_dump_json().encode()
        assert len(base64.b64encode(body)) <= AZURE_QUEUE_LIMIT
        assert len(json.dumps(list(m.digests or ()), separators=(",", ":"))) <= rescan.MAX_MESSAGE_BYTES
        assert len(body) <= rescan.MAX_MESSAGE_BYTES + 1024, "the envelope is small"


def test_rescan_batch_message_validation_and_the_old_single_form() -> None:
    base = {"registry": "", "repository": "", "source": "rescan", "event_id": "e"}
    with pytest.raises(ValidationError, match="non-empty digests"):
        ScanMessage.model_validate({**base, "action": "rescan-batch"})
    with pytest.raises(ValidationError, match="non-empty digests"):
        ScanMessage.model_validate({**base, "action": "rescan-batch", "digests": []})
    with pytest.raises(ValidationError, match="at most"):
        ScanMessage.model_validate(
            {**base, "action": "rescan-batch", "digests": [f"sha256:{n:064x}" for n in range(MAX_BATCH_DIGESTS + 1)]}
        )
    with pytest.raises(ValidationError, match="only a rescan-batch"):
        ScanMessage.model_validate({**base, "action": "push", "digests": ["sha256:" + "a" * 64]})
    # a single-image RESCAN as queued before batches existed still parses, and is written the same way
    old = (
        '{"action":"rescan","registry":"r.example","repository":"team/app","tag":null,'
        '"digest":"sha256:' + "a" * 64 + '","source":"rescan","event_id":"daily-20260101-x",'
        '"event_time":null,"aws_account":null,"aws_region":null}'
    )
    msg = ScanMessage.model_validate_json(old)
    assert msg.action is Action.RESCAN and msg.digests is None
    assert msg.model_dump_json() == old


def _ingested(svc: ScanService, count: int) -> list[str]:
    for n in range(count):
        svc.ingest(inventory(n, n % 2 == 0), f"{REGISTRY}/team/app{n}:1", pushed_at=NOW)
    return [f"sha256:{n:064x}" for n in range(count)]


def test_a_failing_image_does_not_stop_its_batch_and_is_reported(
    env: tuple[ScanService, Recorder, Path, SQLiteStore], clock: Clock
) -> None:
    svc, _, _, store = env
    digests = _ingested(svc, 5)
    # image 2's inventory blob is corrupt: its own failure; an unknown digest is skipped
    broken = store.get_image(digests[2])
    assert broken is not None and broken.inventory_key
    svc.blobs.put(broken.inventory_key, b"{not an inventory")
    unknown = f"sha256:{99:064x}"
    clock.at = later = NOW + timedelta(hours=1)
    msg = ScanMessage(
        action=Action.RESCAN_BATCH,
        registry="",
        repository="",
        source="rescan",
        event_id="batch-1",
        digests=(*digests[:3], unknown, *digests[3:]),
    )
    out = svc.handle(msg)
    assert isinstance(out, BatchOutcome)
    assert [f.digest for f in out.failures] == [digests[2]]
    assert "ValidationError" in out.failures[0].reason
    assert (out.rescanned, out.skipped) == (4, 1)
    assert [r.digest for r in out.results if isinstance(r, ScanOutcome)] == [digests[n] for n in (0, 1, 3, 4)]
    rematched = {i.digest for i in store.images_seen_since(NOW - timedelta(days=1)) if i.matched_at == later}
    assert rematched == {digests[n] for n in (0, 1, 3, 4)}, "the images after the failing one were re-matched"
    assert "1 failed" in out.summary() and digests[2] in out.summary()
    # in-process, run() does not pass a failed image over in silence
    with pytest.raises(InputError, match="rescan failed"):
        svc.run([[msg]])


class FlakyBlobs:
    """The service's blob store, throttled past its retries for one key until told otherwise."""

    def __init__(self, inner: LocalBlobStore) -> None:
        self.inner = inner
        self.failing: str | None = None

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)

    def get(self, key: str) -> bytes | None:
        if key == self.failing:
            raise StoreUnavailable(f"blobs: cannot read {key} (HTTP 503)")
        return self.inner.get(key)

    def put_file(self, key: str, path: Path) -> None:
        self.inner.put_file(key, path)

    def get_file(self, key: str, path: Path) -> bool:
        return self.inner.get_file(key, path)


def test_a_transient_failure_stops_the_batch_for_a_retry_that_is_harmless(
    env: tuple[ScanService, Recorder, Path, SQLiteStore], tmp_path: Path
) -> None:
    svc, rec, osv, store = env
    flaky = FlakyBlobs(LocalBlobStore(tmp_path / "blobs"))
    svc.blobs = flaky
    digests = _ingested(svc, 4)
    msg = rescan.batch_message([rescan.rescan_message(store.get_image(d), "t") for d in digests])  # type: ignore[arg-type]
    svc.handle(msg)  # NEW -> ACTIVE
    # a new critical for libfoo (images 0 and 2), and the store throttling image 2's inventory read
    (osv / "libfoo.json").write_text(json.dumps(advisory("TEST-LIBFOO-9", "libfoo", "2.0-r1", "2026-03-01T00:00:00Z")))
    import_paths(tmp_path_db(svc), [osv])
    second = store.get_image(digests[2])
    assert second is not None and second.inventory_key
    flaky.failing = second.inventory_key
    with pytest.raises(StoreUnavailable, match="503"):
        svc.handle(msg)
    assert [a.image_digest for a in rec.alerts] == [digests[0]], "image 0 was done before the stop"
    # the platform delivers the message again once the store recovers: image 0 is not alerted twice
    flaky.failing = None
    out = svc.handle(msg)
    assert isinstance(out, BatchOutcome) and out.failures == [] and out.rescanned == 4
    assert sorted(a.image_digest for a in rec.alerts) == [digests[0], digests[2]]


def test_an_unusable_database_stops_the_batch_for_a_retry(env: tuple[ScanService, Recorder, Path, SQLiteStore]) -> None:
    svc, _, _, _ = env
    digests = _ingested(svc, 2)
    tmp_path_db(svc).unlink()  # every image would fail alike: not recorded one by one, the message is retried
    msg = ScanMessage(
        action=Action.RESCAN_BATCH, registry="", repository="", source="rescan", event_id="b", digests=tuple(digests)
    )
    with pytest.raises(Retryable, match="vulnerability database unusable"):
        svc.handle(msg)
