"""The Store contract: what every adapter of :class:`shared.stores.ports.Store` must do, tested the same way.

An adapter's test module subclasses :class:`StoreContract` and provides a
``store`` fixture giving a fresh, empty store for each test::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(...)

Only the port is used here, never an adapter's internals. Class attributes
tune the volume for slower backends (``bulk_images``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.findings import Finding, KEVEntry
from shared.stores import fingerprints as fp
from shared.stores.errors import PreconditionFailed
from shared.stores.models import AlertRecord, FindingRecord, FindingStatus, ImageRecord, LayerCacheEntry
from shared.stores.ports import Store

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def image(n: int, **kw: object) -> ImageRecord:
    doc: dict[str, object] = {
        "digest": digest(n),
        "references": [f"registry.example/app{n}:1"],
        "pushed_at": T0,
        "inventory_key": fp.inventory_key(digest(n)),
        "package_count": 3,
    }
    doc.update(kw)
    return ImageRecord.model_validate(doc)


def finding(img: int, vuln: str, severity: str = "HIGH", package: str = "openssl", **kw: object) -> FindingRecord:
    purl = f"pkg:apk/alpine/{package}@1.0-r0"
    f = Finding(
        id=vuln,
        package_type="apk",
        package_name=package,
        package_purl=purl,
        package_ecosystem="Alpine:v3.19",
        installed_version="1.0-r0",
        fix_available=True,
        fixed_versions=["1.0-r1"],
        found_in="lib/apk/db/installed",
        severity=severity,
        priority=10,
        kev=KEVEntry() if kw.pop("kev", False) else None,
    )
    doc: dict[str, object] = {
        "id": fp.finding_id(digest(img), purl, f.found_in, vuln),
        "image_digest": digest(img),
        "vulnerability_id": vuln,
        "severity": severity,
        "status": FindingStatus.NEW,
        "first_seen": T0,
        "last_seen": T0,
        "finding": f,
    }
    doc.update(kw)
    return FindingRecord.model_validate(doc)


def alert(n: int, created: datetime = T0, img: int = 1, **kw: object) -> AlertRecord:
    doc: dict[str, object] = {
        "id": fp.alert_id("hullwatch.vulnerability.new", digest(img), f"CVE-2026-{n:04d}", "pkg:apk/alpine/x@1", "f"),
        "type": "hullwatch.vulnerability.new",
        "subject": f"registry.example/app{img}:1",
        "image_digest": digest(img),
        "created_at": created,
        "data": {"vulnerability": {"id": f"CVE-2026-{n:04d}", "severity": "CRITICAL"}, "n": n},
    }
    doc.update(kw)
    return AlertRecord.model_validate(doc)


def same(a: object, b: object) -> bool:
    """Equal ignoring etag (pydantic models)."""
    assert hasattr(a, "model_copy") and hasattr(b, "model_copy")
    return bool(a.model_copy(update={"etag": None}) == b.model_copy(update={"etag": None}))


class StoreContract:
    """Subclass it and provide a ``store`` fixture (a fresh, empty store per test)."""

    #: Images written for the paging test (an adapter pages well below this).
    bulk_images = 1200

    # -- images -------------------------------------------------------------------------

    def test_image_round_trip_and_missing(self, store: Store) -> None:
        assert store.get_image(digest(1)) is None
        rec = image(1, severity_counts={"CRITICAL": 1, "HIGH": 0}, platform="linux/amd64", os="alpine 3.19.1")
        written = store.put_image(rec)
        assert written.etag
        got = store.get_image(digest(1))
        assert got is not None and got.etag == written.etag
        assert same(got, rec)
        assert got.pushed_at == T0 and got.pushed_at.tzinfo is not None

    def test_image_upsert_is_idempotent_and_changes_the_etag(self, store: Store) -> None:
        a = store.put_image(image(1))
        b = store.put_image(image(1))
        assert a.etag != b.etag
        got = store.get_image(digest(1))
        assert got is not None and same(got, image(1)) and got.etag == b.etag

    def test_image_if_match(self, store: Store) -> None:
        first = store.put_image(image(1))
        assert first.etag is not None
        second = store.put_image(image(1, references=["registry.example/a:1", "registry.example/b:1"]), first.etag)
        with pytest.raises(PreconditionFailed):
            store.put_image(image(1, deleted=True), if_match=first.etag)  # stale
        got = store.get_image(digest(1))
        assert got is not None and not got.deleted and got.etag == second.etag
        assert got.references == ["registry.example/a:1", "registry.example/b:1"]
        with pytest.raises(PreconditionFailed):
            store.put_image(image(2), if_match="no-such-etag")  # a condition on a missing document fails
        assert store.get_image(digest(2)) is None

    def test_images_seen_since_window_running_and_deleted(self, store: Store) -> None:
        now = T0 + timedelta(days=40)
        store.put_image(image(1, pushed_at=now - timedelta(days=1)))
        store.put_image(image(2, pushed_at=now - timedelta(days=60)))  # too old
        store.put_image(image(3, pushed_at=now - timedelta(days=90), running=True))  # old but running
        store.put_image(image(4, pushed_at=now - timedelta(days=90), last_pulled_at=now - timedelta(days=2)))
        store.put_image(image(5, pushed_at=now - timedelta(days=1), deleted=True))  # deleted
        since = now - timedelta(days=30)
        assert {i.digest for i in store.images_seen_since(since)} == {digest(1), digest(3), digest(4)}
        assert {i.digest for i in store.images_seen_since(since, include_running=False)} == {digest(1), digest(4)}

    def test_images_seen_since_pages_through_everything(self, store: Store) -> None:
        for n in range(self.bulk_images):
            store.put_image(image(n, pushed_at=T0 + timedelta(seconds=n)))
        got = [i.digest for i in store.images_seen_since(T0)]
        assert len(got) == self.bulk_images and len(set(got)) == self.bulk_images

    # -- inverted index -------------------------------------------------------------------

    def test_inverted_index(self, store: Store) -> None:
        store.index_packages(digest(1), [("Alpine:v3.19", "openssl"), ("Alpine:v3.19", "zlib")])
        store.index_packages(digest(2), [("Alpine:v3.19", "zlib"), ("npm", "lodash")])
        store.index_packages(digest(3), [("PyPI", "requests")])
        assert store.images_with_packages([("Alpine:v3.19", "zlib")]) == {digest(1), digest(2)}
        assert store.images_with_packages([("npm", "lodash"), ("PyPI", "requests")]) == {digest(2), digest(3)}
        assert store.images_with_packages([("npm", "openssl")]) == set()  # the ecosystem is part of the key
        assert store.images_with_packages([]) == set()
        # re-indexing replaces the image's entries
        store.index_packages(digest(1), [("Alpine:v3.19", "musl")])
        assert store.images_with_packages([("Alpine:v3.19", "openssl")]) == set()
        assert store.images_with_packages([("Alpine:v3.19", "musl")]) == {digest(1)}
        store.index_packages(digest(1), [])
        assert store.images_with_packages([("Alpine:v3.19", "musl")]) == set()

    def test_inverted_index_many_keys(self, store: Store) -> None:
        store.index_packages(digest(1), [("npm", f"pkg{i}") for i in range(1000)])
        store.index_packages(digest(2), [("npm", "pkg999")])
        keys = [("npm", f"pkg{i}") for i in range(500, 1500)]
        assert store.images_with_packages(keys) == {digest(1), digest(2)}

    # -- findings ---------------------------------------------------------------------------

    def test_findings_batch_and_idempotent(self, store: Store) -> None:
        recs = [finding(1, f"CVE-2026-{i:04d}") for i in range(50)]
        store.put_findings(digest(1), recs)
        store.put_findings(digest(1), recs)  # delivered twice: same documents
        got = store.findings_for_image(digest(1))
        assert sorted(r.id for r in got) == sorted(r.id for r in recs)
        assert all(r.etag for r in got)
        by_id = {r.id: r for r in got}
        assert all(same(by_id[r.id], r) for r in recs)
        assert store.findings_for_image(digest(2)) == []

    def test_findings_update_in_place(self, store: Store) -> None:
        rec = finding(1, "CVE-2026-0001")
        store.put_findings(digest(1), [rec])
        later = T0 + timedelta(days=1)
        store.put_findings(digest(1), [rec.model_copy(update={"status": FindingStatus.RESOLVED, "resolved_at": later})])
        (got,) = store.findings_for_image(digest(1))
        assert got.status is FindingStatus.RESOLVED and got.resolved_at == later

    def test_findings_of_another_image_are_refused(self, store: Store) -> None:
        with pytest.raises(ValueError):
            store.put_findings(digest(1), [finding(2, "CVE-2026-0001")])
        assert store.findings_for_image(digest(2)) == []

    def test_findings_batch_is_conditional_and_atomic(self, store: Store) -> None:
        a, b = finding(1, "CVE-2026-0001"), finding(1, "CVE-2026-0002")
        store.put_findings(digest(1), [a, b])
        stored = {r.id: r for r in store.findings_for_image(digest(1))}
        fresh_a = stored[a.id]
        # someone else updates b after we read it
        store.put_findings(digest(1), [stored[b.id].model_copy(update={"etag": None, "severity": "LOW"})])
        stale_b = stored[b.id]
        c = finding(1, "CVE-2026-0003")
        batch = [
            fresh_a.model_copy(update={"status": FindingStatus.ACTIVE}),
            stale_b.model_copy(update={"status": FindingStatus.ACTIVE}),
            c,
        ]
        with pytest.raises(PreconditionFailed):
            store.put_findings(digest(1), batch)
        after = {r.id: r for r in store.findings_for_image(digest(1))}
        assert set(after) == {a.id, b.id}, "nothing of the failed batch was written"
        assert after[a.id].status is FindingStatus.NEW and after[b.id].severity == "LOW"
        # with the current etags the same batch goes through
        ok = [
            after[a.id].model_copy(update={"status": FindingStatus.ACTIVE}),
            after[b.id].model_copy(update={"status": FindingStatus.ACTIVE}),
            c,
        ]
        store.put_findings(digest(1), ok)
        assert {r.status for r in store.findings_for_image(digest(1))} == {FindingStatus.ACTIVE, FindingStatus.NEW}

    def test_findings_by_severity_across_images(self, store: Store) -> None:
        store.put_findings(digest(1), [finding(1, "CVE-2026-0001", "CRITICAL"), finding(1, "CVE-2026-0002", "LOW")])
        store.put_findings(
            digest(2),
            [
                finding(2, "CVE-2026-0001", "CRITICAL"),
                finding(2, "CVE-2026-0003", "CRITICAL", status=FindingStatus.RESOLVED, resolved_at=T0),
            ],
        )
        store.put_findings(digest(3), [finding(3, "CVE-2026-0004", "CRITICAL", status=FindingStatus.REOPENED)])
        crit = store.findings_by_severity("CRITICAL")
        assert {(r.image_digest, r.vulnerability_id) for r in crit} == {
            (digest(1), "CVE-2026-0001"),
            (digest(2), "CVE-2026-0001"),
            (digest(3), "CVE-2026-0004"),
        }, "open findings only, from every image"
        assert len(store.findings_by_severity("CRITICAL", limit=2)) == 2
        assert [r.vulnerability_id for r in store.findings_by_severity("LOW")] == ["CVE-2026-0002"]
        assert store.findings_by_severity("MEDIUM") == []

    # -- alerts ----------------------------------------------------------------------------------

    def test_create_alert_is_create_if_absent(self, store: Store) -> None:
        a = alert(1)
        assert store.create_alert(a) is True
        assert store.create_alert(a) is False
        assert store.create_alert(a.model_copy(update={"subject": "changed"})) is False
        (got,) = store.unpublished_alerts()
        assert got.id == a.id and got.subject == a.subject and got.etag
        assert got.data == a.data

    def test_unpublished_listing_and_marking(self, store: Store) -> None:
        for n in range(5):
            store.create_alert(alert(n, created=T0 + timedelta(minutes=n)))
        pending = store.unpublished_alerts()
        assert [a.data["n"] for a in pending] == [0, 1, 2, 3, 4], "oldest first"
        assert len(store.unpublished_alerts(limit=2)) == 2
        done = store.mark_alert(pending[0].model_copy(update={"published_at": T0, "attempts": 1}))
        assert done.etag and done.etag != pending[0].etag
        failed = store.mark_alert(pending[1].model_copy(update={"attempts": 1, "last_error": "HTTP 500"}))
        left = store.unpublished_alerts()
        assert [a.data["n"] for a in left] == [1, 2, 3, 4]
        assert left[0].attempts == 1 and left[0].last_error == "HTTP 500" and left[0].etag == failed.etag
        # a second publisher racing on the same alert loses
        with pytest.raises(PreconditionFailed):
            store.mark_alert(pending[1].model_copy(update={"published_at": T0}))
        # without an etag, marking is unconditional
        store.mark_alert(left[0].model_copy(update={"published_at": T0, "etag": None}))
        assert [a.data["n"] for a in store.unpublished_alerts()] == [2, 3, 4]

    def test_mark_alert_that_was_never_created(self, store: Store) -> None:
        with pytest.raises(PreconditionFailed):
            store.mark_alert(alert(9).model_copy(update={"published_at": T0}))
        assert store.unpublished_alerts() == []

    def test_created_published_alert_is_not_pending(self, store: Store) -> None:
        assert store.create_alert(alert(1, published_at=T0))
        assert store.unpublished_alerts() == []

    def test_create_alerts_creates_the_absent_ones_in_one_call(self, store: Store) -> None:
        first = [alert(1), alert(2), alert(3)]
        created = store.create_alerts(digest(1), first)
        assert [a.id for a in created] == [a.id for a in first]
        assert all(a.etag for a in created)
        assert all(same(c, a) for c, a in zip(created, first, strict=True))
        # delivered again with one more: only that one is created, and what is stored is not overwritten
        again = [a.model_copy(update={"subject": "changed"}) for a in first] + [alert(4)]
        (fourth,) = store.create_alerts(digest(1), again)
        assert fourth.id == alert(4).id
        stored = {a.id: a for a in store.unpublished_alerts()}
        assert set(stored) == {alert(n).id for n in (1, 2, 3, 4)}
        assert {a.subject for a in stored.values()} == {"registry.example/app1:1"}
        assert {a.id: a.etag for a in [*created, fourth]} == {i: a.etag for i, a in stored.items()}
        assert store.create_alerts(digest(1), again) == []
        assert store.create_alerts(digest(1), []) == []
        # an alert listed twice is created once
        assert [a.id for a in store.create_alerts(digest(1), [alert(5), alert(5), alert(6)])] == [
            alert(5).id,
            alert(6).id,
        ]
        assert len(store.unpublished_alerts()) == 6

    def test_create_alerts_of_another_image_are_refused(self, store: Store) -> None:
        with pytest.raises(ValueError):
            store.create_alerts(digest(1), [alert(1), alert(2, img=2)])
        assert store.unpublished_alerts() == []
        # the same alert number on two images: two alerts, one call each
        assert len(store.create_alerts(digest(1), [alert(1)])) == 1
        assert len(store.create_alerts(digest(2), [alert(1, img=2)])) == 1
        assert len(store.unpublished_alerts()) == 2

    def test_mark_alerts_records_the_outcomes_in_one_call(self, store: Store) -> None:
        created = store.create_alerts(digest(1), [alert(n, created=T0 + timedelta(minutes=n)) for n in range(4)])
        outcomes = [
            created[0].model_copy(update={"published_at": T0, "attempts": 1}),
            created[1].model_copy(update={"attempts": 1, "last_error": "HTTP 500"}),
            created[2].model_copy(update={"published_at": T0, "attempts": 1}),
        ]
        marked = store.mark_alerts(digest(1), outcomes)
        assert [a.id for a in marked] == [a.id for a in outcomes]
        assert all(m.etag and m.etag != o.etag for m, o in zip(marked, outcomes, strict=True))
        left = store.unpublished_alerts()
        assert [a.data["n"] for a in left] == [1, 3], "the published ones are no longer pending"
        assert left[0].attempts == 1 and left[0].last_error == "HTTP 500" and left[0].etag == marked[1].etag
        assert left[1].attempts == 0 and left[1].etag == created[3].etag
        assert store.mark_alerts(digest(1), []) == []

    def test_mark_alerts_is_conditional_and_atomic(self, store: Store) -> None:
        created = store.create_alerts(digest(1), [alert(n) for n in range(3)])
        # the outbox publishes alert 1 after we created it and before we record our attempts
        store.mark_alert(created[1].model_copy(update={"published_at": T0, "attempts": 1}))
        ours = [c.model_copy(update={"attempts": 1, "last_error": "HTTP 500"}) for c in created]
        with pytest.raises(PreconditionFailed):
            store.mark_alerts(digest(1), ours)
        pending = {a.id: a for a in store.unpublished_alerts()}
        assert set(pending) == {created[0].id, created[2].id}
        assert all(a.attempts == 0 and a.last_error is None for a in pending.values()), "nothing was written"
        # an alert that was never created fails its batch as well
        fresh = pending[created[0].id].model_copy(update={"published_at": T0})
        with pytest.raises(PreconditionFailed):
            store.mark_alerts(digest(1), [fresh, alert(9).model_copy(update={"published_at": T0})])
        assert created[0].id in {a.id for a in store.unpublished_alerts()}
        with pytest.raises(ValueError):
            store.mark_alerts(digest(1), [fresh, fresh])
        with pytest.raises(ValueError):
            store.mark_alerts(digest(2), [fresh])
        # with the current etags the batch goes through
        store.mark_alerts(digest(1), [fresh, pending[created[2].id].model_copy(update={"published_at": T0})])
        assert store.unpublished_alerts() == []

    # -- layer cache ---------------------------------------------------------------------------------

    def test_layer_cache(self, store: Store) -> None:
        key = fp.layer_chain_key(["sha256:" + "d" * 64], {"apk": 1})
        assert store.get_layer_cache(key) is None
        entry = LayerCacheEntry(key=key, diff_id="sha256:" + "d" * 64, result_key="layers/x.json", created_at=T0)
        store.put_layer_cache(entry)
        store.put_layer_cache(entry)
        assert store.get_layer_cache(key) == entry
        moved = entry.model_copy(update={"result_key": "layers/y.json"})
        store.put_layer_cache(moved)
        assert store.get_layer_cache(key) == moved

    # -- requests -----------------------------------------------------------------------------------

    def test_request_count(self, store: Store) -> None:
        def cost(fn: object, *args: object) -> int:
            before = store.request_count
            assert callable(fn)
            fn(*args)
            return store.request_count - before

        assert cost(store.get_image, digest(1)) >= 1
        assert 1 <= cost(store.put_image, image(1)) <= 2
        assert 1 <= cost(store.findings_for_image, digest(1)) <= 2
        recs = [finding(1, f"CVE-2026-{i:04d}") for i in range(50)]
        assert 1 <= cost(store.put_findings, digest(1), recs) <= 2, "an image's findings are one batched call"
        assert 1 <= cost(store.index_packages, digest(1), [("npm", f"p{i}") for i in range(300)]) <= 2
        assert 1 <= cost(store.create_alert, alert(1)) <= 2
        alerts = [alert(n) for n in range(10, 30)]
        assert 1 <= cost(store.create_alerts, digest(1), alerts) <= 2, "an image's alerts are one batched call"
        assert 1 <= cost(store.create_alerts, digest(1), alerts) <= 2, "so is a duplicate delivery of them"
        assert 1 <= cost(store.create_alerts, digest(1), [*alerts, alert(30)]) <= 3, "and a partly new one"
        outcomes = [a.model_copy(update={"published_at": T0}) for a in store.unpublished_alerts(limit=100)]
        assert len(outcomes) == 22
        assert 1 <= cost(store.mark_alerts, digest(1), outcomes) <= 2, "their outcomes are one batched call"
        assert cost(store.create_alerts, digest(1), []) == cost(store.mark_alerts, digest(1), []) == 0
