"""An image's alerts are written in batches: stored in one call before any is published, their outcomes
recorded in one more; a failed publication stays for the outbox; a second delivery creates nothing.

The store is SQLite behind a thin wrapper that records the alert calls the service makes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.service import alerts as alerting
from shared.service.messages import ScanOutcome
from shared.service.scan import ScanService, ServiceConfig
from shared.stores.blobs import LocalBlobStore
from shared.stores.models import AlertRecord
from shared.stores.sqlite import SQLiteStore
from shared.vulndb.importer import import_paths
from tests.support.inventories import NOW, REGISTRY, NoRegistry, advisory, apk, inventory

CRITICAL_PACKAGES = ("libalpha", "libbeta", "libgamma")


class AlertCalls:
    """The store, with a log of the alert calls made on it: (method, alert ids)."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self.calls: list[tuple[str, list[str]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create_alert(self, alert: AlertRecord) -> bool:
        self.calls.append(("create_alert", [alert.id]))
        return self._store.create_alert(alert)

    def create_alerts(self, digest: str, alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
        self.calls.append(("create_alerts", [a.id for a in alerts]))
        return self._store.create_alerts(digest, alerts)

    def mark_alert(self, alert: AlertRecord) -> AlertRecord:
        self.calls.append(("mark_alert", [alert.id]))
        return self._store.mark_alert(alert)

    def mark_alerts(self, digest: str, alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
        self.calls.append(("mark_alerts", [a.id for a in alerts]))
        return self._store.mark_alerts(digest, alerts)


class Publisher:
    """Checks that each alert is stored before it is published; fails for the packages in ``failing``."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.failing: set[str] = set()
        self.published: list[AlertRecord] = []
        self.on_publish: Any = None
        self.requests = 0  # the store requests this check made (not the service's)
        self.unstored: list[str] = []  # alerts handed over before they were stored (must stay empty)

    def publish(self, alert: AlertRecord) -> None:
        start = self.store.request_count
        if alert.id not in {a.id for a in self.store.unpublished_alerts(limit=1000)}:
            self.unstored.append(alert.id)  # recorded, not raised: the service treats a raise as a failed send
        self.requests += self.store.request_count - start
        if self.on_publish is not None:
            self.on_publish(alert)
        package = alert.data["package"]
        assert isinstance(package, dict)
        if package["name"] in self.failing:
            raise ConnectionError("topic answered HTTP 500")
        self.published.append(alert)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[ScanService, AlertCalls, Publisher, SQLiteStore]]:
    osv = tmp_path / "osv"
    osv.mkdir()
    for name in CRITICAL_PACKAGES:
        (osv / f"{name}.json").write_text(
            json.dumps(advisory(f"TEST-{name.upper()}-1", name, "2.0-r1", "2026-01-01T00:00:00Z"))
        )
    dbp = tmp_path / "vulndb.sqlite"
    import_paths(dbp, [osv])
    store = SQLiteStore(tmp_path / "store.sqlite")
    calls = AlertCalls(store)
    pub = Publisher(store)
    svc = ScanService(
        calls,  # type: ignore[arg-type]
        LocalBlobStore(tmp_path / "blobs"),
        NoRegistry(),
        pub,
        ServiceConfig(registries=[REGISTRY], db_path=dbp),
        now=lambda: NOW,
    )
    try:
        yield svc, calls, pub, store
    finally:
        svc.close()
        store.close()


def three_criticals(n: int = 1) -> Any:
    inv = inventory(n, False)
    return inv.model_copy(update={"packages": [*inv.packages, *(apk(p, "2.0-r0") for p in CRITICAL_PACKAGES)]})


def test_an_images_alerts_are_created_in_one_call_and_marked_in_one_more(
    env: tuple[ScanService, AlertCalls, Publisher, SQLiteStore],
) -> None:
    svc, calls, pub, store = env
    pub.failing = {"libbeta"}
    before = store.request_count
    out = svc.ingest(three_criticals(), f"{REGISTRY}/team/app1:1", pushed_at=NOW)
    assert isinstance(out, ScanOutcome)
    assert (out.alerts_created, out.alerts_published) == (3, 2)
    assert [name for name, _ in calls.calls] == ["create_alerts", "mark_alerts"]
    created_ids, marked_ids = calls.calls[0][1], calls.calls[1][1]
    assert len(created_ids) == 3 and sorted(marked_ids) == sorted(created_ids)
    # get image, get findings, create alerts, put findings, put image, index packages, mark alerts
    assert store.request_count - before - pub.requests == 7
    (pending,) = store.unpublished_alerts()
    assert pending.attempts == 1 and "HTTP 500" in (pending.last_error or "")
    assert pending.data["package"]["name"] == "libbeta"  # type: ignore[index]
    assert len(pub.published) == 2 and pub.unstored == []

    # delivered again: nothing is created, so nothing is published or marked
    calls.calls.clear()
    again = svc.ingest(three_criticals(), f"{REGISTRY}/team/app1:1", pushed_at=NOW)
    assert isinstance(again, ScanOutcome) and again.alerts_created == 0
    assert [name for name, _ in calls.calls] == ["create_alerts"]
    assert len(pub.published) == 2 and store.counts()["alerts"] == 3

    # the outbox publishes the failed one and records it in one call
    pub.failing = set()
    calls.calls.clear()
    report = svc.publish_pending()
    assert (report.published, report.failed) == (1, 0)
    assert calls.calls == [("mark_alerts", [pending.id])]
    assert store.unpublished_alerts() == []
    assert sorted(a.id for a in pub.published) == sorted(created_ids) and pub.unstored == []


def test_an_alert_someone_else_marked_meanwhile_keeps_their_mark(
    env: tuple[ScanService, AlertCalls, Publisher, SQLiteStore],
) -> None:
    svc, calls, pub, store = env
    pub.failing = {"libalpha", "libbeta", "libgamma"}
    outbox_mark: list[AlertRecord] = []

    def outbox_runs_now(alert: AlertRecord) -> None:
        # the outbox timer fires while the worker is publishing: it publishes libgamma's alert and marks it
        if alert.data["package"]["name"] == "libgamma" and not outbox_mark:  # type: ignore[index]
            (stored,) = [a for a in store.unpublished_alerts() if a.id == alert.id]
            done = stored.model_copy(update={"published_at": NOW + timedelta(seconds=1), "attempts": 7})
            outbox_mark.append(store.mark_alert(done))

    pub.on_publish = outbox_runs_now
    out = svc.ingest(three_criticals(), f"{REGISTRY}/team/app1:1", pushed_at=NOW)
    assert isinstance(out, ScanOutcome) and (out.alerts_created, out.alerts_published) == (3, 0)
    assert outbox_mark, "the outbox ran during the publications"
    # the batch met the changed alert and wrote nothing; the others were then recorded one by one
    names = [name for name, _ in calls.calls]
    assert names == ["create_alerts", "mark_alerts", "mark_alert", "mark_alert", "mark_alert"]
    pending = store.unpublished_alerts()
    assert sorted(a.data["package"]["name"] for a in pending) == ["libalpha", "libbeta"]  # type: ignore[index]
    assert all(a.attempts == 1 and "HTTP 500" in (a.last_error or "") for a in pending)
    assert store.counts()["alerts"] == 3
    # the outbox's record of libgamma stands: published, its attempts, no error of ours
    assert outbox_mark[0].id not in {a.id for a in pending}


def test_store_and_publish_groups_by_image(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        calls = AlertCalls(store)
        pub = Publisher(store)
        alerts = [
            AlertRecord(
                id=f"alert-{img}-{k}",
                type=alerting.TYPE_NEW,
                subject=f"{REGISTRY}/team/app{img}:1",
                image_digest=f"sha256:{img:064x}",
                created_at=NOW,
                data={"package": {"name": f"p{k}"}},
            )
            for img in (1, 2)
            for k in range(3)
        ]
        report = alerting.store_and_publish(calls, pub, alerts, lambda: NOW)  # type: ignore[arg-type]
        assert (report.created, report.published, report.failed) == (6, 6, 0) and pub.unstored == []
        assert [(name, len(ids)) for name, ids in calls.calls] == [
            ("create_alerts", 3),
            ("create_alerts", 3),
            ("mark_alerts", 3),
            ("mark_alerts", 3),
        ]
        assert store.unpublished_alerts() == []


def test_a_concurrent_delivery_that_stored_the_alerts_first_owns_them(
    env: tuple[ScanService, AlertCalls, Publisher, SQLiteStore],
) -> None:
    svc, calls, pub, store = env
    real = calls.create_alerts
    raced: list[AlertRecord] = []

    def other_worker_first(digest: str, alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
        # the same push delivered twice, handled at the same time: the other worker's batch lands first
        raced.extend(store.create_alerts(digest, alerts))
        return real(digest, alerts)

    calls.create_alerts = other_worker_first  # type: ignore[method-assign]
    out = svc.ingest(three_criticals(), f"{REGISTRY}/team/app1:1", pushed_at=NOW)
    assert isinstance(out, ScanOutcome) and len(raced) == 3
    assert (out.alerts_created, out.alerts_published) == (0, 0), "this worker publishes none of them"
    assert pub.published == [] and [name for name, _ in calls.calls] == ["create_alerts"]
    assert store.counts()["alerts"] == 3
