"""The Cosmos DB store on the Cosmos DB stand-in (cosmosdb-server): the shared store contract, plus what only
Cosmos DB has (partition keys, throttling and unavailability retried, batches, request counting).

Throttling and 503s come from :class:`~tests.support.services.FaultProxy` in front of the stand-in: it answers
the first N matching requests itself, with ``x-ms-retry-after-ms``, then forwards.
"""

from __future__ import annotations

import itertools
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from shared.stores.errors import PreconditionFailed, StoreUnavailable
from shared.stores.models import FindingStatus
from tests.conftest import require_module
from tests.contract.store_contract import T0, StoreContract, alert, digest, finding, image
from tests.support.services import COSMOS_KEY, FaultProxy, ServiceProcess
from tests.support.services import cosmos_server as cosmos_server  # the session fixture

if TYPE_CHECKING:
    from shared.stores.cosmos import CosmosStore

pytestmark = [
    pytest.mark.integration,
    # the stand-in's self-signed certificate: the SDK skips verification for 127.0.0.1, urllib3 warns each time
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def make_store(url: str, database: str | None = None, **options: Any) -> CosmosStore:
    from shared.stores.cosmos import CosmosStore

    options.setdefault("enable_endpoint_discovery", False)  # the stand-in has one endpoint
    return CosmosStore(url, COSMOS_KEY, database or f"t{uuid.uuid4().hex[:12]}", **options)


def drop(url: str, database: str) -> None:
    from azure.cosmos import CosmosClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with CosmosClient(url, COSMOS_KEY, enable_endpoint_discovery=False) as client:
            client.delete_database(database)


@pytest.fixture
def fresh(cosmos_server: ServiceProcess) -> Iterator[CosmosStore]:
    s = make_store(cosmos_server.url)
    try:
        yield s
    finally:
        s.close()
        drop(cosmos_server.url, s.database_name)


@pytest.fixture
def proxy(cosmos_server: ServiceProcess) -> Iterator[FaultProxy]:
    p = FaultProxy(cosmos_server.url)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def proxied(cosmos_server: ServiceProcess, proxy: FaultProxy) -> Iterator[CosmosStore]:
    """A store that talks to the stand-in through the fault proxy (retry backoff kept short)."""
    s = make_store(proxy.url, backoff=0.02, max_backoff=0.1)
    try:
        yield s
    finally:
        s.close()
        drop(cosmos_server.url, s.database_name)


class TestCosmosStore(StoreContract):
    """The shared contract; the stand-in answers about a hundred requests a second, so fewer bulk images."""

    bulk_images = 450  # more than two pages of images_seen_since

    @pytest.fixture
    def store(self, fresh: CosmosStore) -> CosmosStore:
        return fresh


# -- layout ----------------------------------------------------------------------------------------


def test_containers_partition_keys_and_composite_indexes(fresh: CosmosStore) -> None:
    from shared.stores.cosmos import INDEXING_POLICIES, PARTITION_KEYS

    for name, path in PARTITION_KEYS.items():
        props = fresh._containers[name].read()
        assert props["partitionKey"]["paths"] == [path], name
        assert props["indexingPolicy"].get("compositeIndexes", []) == INDEXING_POLICIES[name].get(
            "compositeIndexes", []
        )
    assert PARTITION_KEYS == {
        "images": "/digest",
        "findings": "/image_digest",
        "alerts": "/image_digest",
        "layercache": "/key",
        "packageindex": "/digest",
    }


def test_creating_database_and_containers_is_idempotent(cosmos_server: ServiceProcess) -> None:
    name = f"t{uuid.uuid4().hex[:12]}"
    first = make_store(cosmos_server.url, name)
    try:
        first.put_image(image(1))
        second = make_store(cosmos_server.url, name)  # everything exists already
        assert second.get_image(digest(1)) is not None
        third = make_store(cosmos_server.url, name, create_if_missing=False)
        assert third.get_image(digest(1)) is not None
        for s in (second, third):
            s.close()
    finally:
        first.close()
        drop(cosmos_server.url, name)


def test_documents_keep_query_fields_and_read_back_clean(fresh: CosmosStore) -> None:
    fresh.put_image(image(1, last_pulled_at=T0 + timedelta(hours=3)))
    raw = fresh._containers["images"].read_item(digest(1), partition_key=digest(1))
    assert raw["id"] == digest(1) and raw["hw_seen_at"] == "2026-03-01T15:00:00.000000Z"
    got = fresh.get_image(digest(1))
    assert got is not None and got.etag == raw["_etag"]


# -- findings batches --------------------------------------------------------------------------------


def test_more_findings_than_one_batch(fresh: CosmosStore) -> None:
    recs = [finding(1, f"CVE-2026-{i:04d}") for i in range(250)]
    before = fresh.request_count
    fresh.put_findings(digest(1), recs)
    assert fresh.request_count - before == 3, "batches of at most 100 operations"
    assert len(fresh.findings_for_image(digest(1))) == 250


def test_create_batches_fall_back_to_concurrent_upserts(cosmos_server: ServiceProcess) -> None:
    s = make_store(cosmos_server.url, batch="create", concurrency=4)
    try:
        recs = [finding(1, f"CVE-2026-{i:04d}") for i in range(120)]
        before = s.request_count
        s.put_findings(digest(1), recs)
        assert s.request_count - before == 2, "new findings: two batches of creates"
        resolved = [r.model_copy(update={"status": FindingStatus.RESOLVED, "resolved_at": T0}) for r in recs]
        before = s.request_count
        s.put_findings(digest(1), resolved)
        # each batch meets a conflict on its first create, then its records are upserted one by one
        assert s.request_count - before == 2 + 120
        assert {r.status for r in s.findings_for_image(digest(1))} == {FindingStatus.RESOLVED}
        # records with an etag are conditional replaces
        stored = s.findings_for_image(digest(1))
        s.put_findings(digest(1), [stored[0].model_copy(update={"severity": "LOW"})])
        from shared.stores.errors import PreconditionFailed

        with pytest.raises(PreconditionFailed):
            s.put_findings(digest(1), [stored[0].model_copy(update={"severity": "MEDIUM"})])
        assert {r.id: r for r in s.findings_for_image(digest(1))}[stored[0].id].severity == "LOW"
    finally:
        s.close()
        drop(cosmos_server.url, s.database_name)


def test_package_index_overflow_matches_every_lookup(fresh: CosmosStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.stores.cosmos as cosmos

    fresh.index_packages(digest(1), [("npm", "left-pad")])
    monkeypatch.setattr(cosmos, "MAX_INDEX_BYTES", 100)
    fresh.index_packages(digest(2), [("npm", f"package-{i}") for i in range(50)])
    assert fresh.images_with_packages([("npm", "left-pad")]) == {digest(1), digest(2)}
    assert fresh.images_with_packages([("PyPI", "anything")]) == {digest(2)}
    monkeypatch.setattr(cosmos, "MAX_INDEX_BYTES", 1_800_000)
    fresh.index_packages(digest(2), [("npm", "package-1")])
    assert fresh.images_with_packages([("PyPI", "anything")]) == set()


# -- alert batches ------------------------------------------------------------------------------------


def test_alert_batches_are_one_request_per_hundred_alerts(fresh: CosmosStore) -> None:
    alerts = [alert(n) for n in range(150)]
    before = fresh.request_count
    created = fresh.create_alerts(digest(1), alerts)
    assert fresh.request_count - before == 2, "two transactional batches of creates"
    assert len(created) == 150 and all(a.etag for a in created)
    before = fresh.request_count
    assert fresh.create_alerts(digest(1), alerts) == []
    assert fresh.request_count - before == 2, "a batch that meets a conflict, then one query: all exist"
    before = fresh.request_count
    (new,) = fresh.create_alerts(digest(1), [*alerts, alert(150)])
    assert new.id == alert(150).id
    assert fresh.request_count - before == 3, "the conflict, the query, the batch of the one absent alert"
    before = fresh.request_count
    marked = fresh.mark_alerts(digest(1), [a.model_copy(update={"published_at": T0}) for a in [*created, new]])
    assert fresh.request_count - before == 2, "two transactional batches of conditional replaces"
    assert len(marked) == 151 and fresh.unpublished_alerts() == []


def test_alert_batch_conflict_the_query_cannot_see_falls_back_to_single_creates(
    fresh: CosmosStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh.create_alerts(digest(1), [alert(1)])
    monkeypatch.setattr(fresh, "_existing_alert_ids", lambda d, ids: set())
    created = fresh.create_alerts(digest(1), [alert(1), alert(2), alert(3)])
    assert [a.id for a in created] == [alert(2).id, alert(3).id]
    assert all(a.etag for a in created)
    assert len(fresh.unpublished_alerts()) == 3


def test_retried_batches_keep_their_etag_conditions(proxied: CosmosStore, proxy: FaultProxy) -> None:
    # the SDK takes each operation's if_match_etag out of the options it is given: a retry that re-sent the
    # same operations would go unconditional and overwrite what someone else wrote
    (a,) = proxied.create_alerts(digest(1), [alert(1)])
    proxied.mark_alert(a.model_copy(update={"published_at": T0, "attempts": 1, "etag": None}))  # someone else
    proxy.add_fault(503, 1, method="POST", path_contains="/colls/alerts/docs", retry_after_ms=10)
    with pytest.raises(PreconditionFailed):
        proxied.mark_alerts(digest(1), [a.model_copy(update={"attempts": 1, "last_error": "HTTP 500"})])
    assert [h.status for h in proxy.matching("POST", "/colls/alerts/docs")][-2:] == [503, 207]
    assert proxied.unpublished_alerts() == [], "the other writer's published_at stands"

    proxied.put_findings(digest(1), [finding(1, "CVE-2026-0001")])
    (stored,) = proxied.findings_for_image(digest(1))
    proxied.put_findings(digest(1), [stored.model_copy(update={"etag": None, "severity": "LOW"})])  # someone else
    proxy.add_fault(503, 1, method="POST", path_contains="/colls/findings/docs", retry_after_ms=10)
    with pytest.raises(PreconditionFailed):
        proxied.put_findings(digest(1), [stored.model_copy(update={"status": FindingStatus.RESOLVED})])
    assert [h.status for h in proxy.matching("POST", "/colls/findings/docs")][-2:] == [503, 207]
    (now,) = proxied.findings_for_image(digest(1))
    assert now.severity == "LOW" and now.status is FindingStatus.NEW


def test_alert_updates_without_replace_batches_are_conditional_replaces(cosmos_server: ServiceProcess) -> None:
    s = make_store(cosmos_server.url, batch="create", concurrency=4)
    try:
        created = s.create_alerts(digest(1), [alert(n) for n in range(5)])
        assert len(created) == 5
        s.mark_alert(created[0].model_copy(update={"published_at": T0, "etag": None}))
        before = s.request_count
        with pytest.raises(PreconditionFailed):
            s.mark_alerts(digest(1), [c.model_copy(update={"attempts": 1}) for c in created])
        assert s.request_count - before == 5, "one conditional replace per alert"
        pending = {a.id: a for a in s.unpublished_alerts()}
        # not atomic: the replaces whose condition held went through
        assert set(pending) == {c.id for c in created[1:]} and {a.attempts for a in pending.values()} == {1}
        marked = s.mark_alerts(digest(1), [a.model_copy(update={"published_at": T0}) for a in pending.values()])
        assert len(marked) == 4 and s.unpublished_alerts() == []
    finally:
        s.close()
        drop(cosmos_server.url, s.database_name)


# -- throttling, unavailability, request counting ------------------------------------------------------


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_throttled_write_waits_the_retry_after_then_succeeds(proxied: CosmosStore, proxy: FaultProxy) -> None:
    proxy.add_fault(429, 2, method="POST", path_contains="/colls/images/docs", retry_after_ms=50)
    before = proxied.request_count
    started = time.monotonic()
    written = proxied.put_image(image(1))
    elapsed = time.monotonic() - started
    assert written.etag
    hits = proxy.matching("POST", "/colls/images/docs")
    assert [h.status for h in hits] == [429, 429, 201]
    assert all(gap >= 0.05 for gap in _gaps([h.at for h in hits])), "each retry waited x-ms-retry-after-ms"
    assert elapsed >= 0.1
    assert proxied.request_count - before == 3, "retries are requests sent"
    assert proxied.get_image(digest(1)) is not None


def test_throttling_the_sdk_gives_up_on_is_retried_by_the_adapter(
    cosmos_server: ServiceProcess, proxy: FaultProxy
) -> None:
    s = make_store(proxy.url, throttle_retries=1, backoff=0.02)
    try:
        proxy.add_fault(429, 3, method="POST", path_contains="/colls/alerts/docs", retry_after_ms=50)
        assert s.create_alert(alert(1)) is True
        hits = proxy.matching("POST", "/colls/alerts/docs")
        # SDK: 429, retry, 429 -> gives up; adapter waits, SDK: 429, retry -> created
        assert [h.status for h in hits] == [429, 429, 429, 201]
        assert all(gap >= 0.05 for gap in _gaps([h.at for h in hits]))
        assert [a.id for a in s.unpublished_alerts()] == [alert(1).id]
    finally:
        s.close()
        drop(cosmos_server.url, s.database_name)


def test_unavailable_is_retried_honouring_retry_after(proxied: CosmosStore, proxy: FaultProxy) -> None:
    proxied.put_findings(digest(1), [finding(1, "CVE-2026-0001")])
    proxy.add_fault(503, 2, method="POST", path_contains="/colls/findings/docs", retry_after_ms=60)
    proxied.put_findings(digest(1), [finding(1, "CVE-2026-0002")])
    hits = proxy.matching("POST", "/colls/findings/docs")[1:]
    assert [h.status for h in hits] == [503, 503, 200]
    assert all(gap >= 0.06 for gap in _gaps([h.at for h in hits]))
    assert len(proxied.findings_for_image(digest(1))) == 2


def test_unavailable_without_retry_after_backs_off(proxied: CosmosStore, proxy: FaultProxy) -> None:
    proxy.add_fault(503, 2, method="GET", path_contains="/colls/layercache/docs")
    assert proxied.get_layer_cache("layer-x") is None
    hits = proxy.matching("GET", "/colls/layercache/docs")
    assert [h.status for h in hits] == [503, 503, 404]
    assert all(gap >= 0.01 for gap in _gaps([h.at for h in hits])), "at least half the backoff step"


def test_unavailable_beyond_the_retries_raises_store_unavailable(
    cosmos_server: ServiceProcess, proxy: FaultProxy
) -> None:
    s = make_store(proxy.url, retries=2, backoff=0.01, max_backoff=0.02)
    try:
        proxy.add_fault(503, 1000, method="POST", path_contains="/colls/images/docs", retry_after_ms=10)
        with pytest.raises(StoreUnavailable, match=r"after 3 attempts \(HTTP 503\)"):
            s.put_image(image(1))
        assert len(proxy.matching("POST", "/colls/images/docs")) == 3, "bounded: the first try and two retries"
    finally:
        s.close()
        drop(cosmos_server.url, s.database_name)


def test_request_count_is_every_request_sent(proxied: CosmosStore, proxy: FaultProxy) -> None:
    proxy.clear()
    before = proxied.request_count
    proxied.put_image(image(1))
    proxied.get_image(digest(1))
    proxied.get_image(digest(2))
    proxied.put_findings(digest(1), [finding(1, f"CVE-2026-{i:04d}") for i in range(20)])
    proxied.findings_for_image(digest(1))
    proxied.findings_by_severity("HIGH")
    proxied.index_packages(digest(1), [("npm", f"p{i}") for i in range(100)])
    proxied.images_with_packages([("npm", "p1")])
    proxied.create_alert(alert(1))
    proxied.create_alert(alert(1))
    list(proxied.images_seen_since(T0))
    assert proxied.request_count - before == len(proxy.requests) >= 11


def test_unreachable_endpoint_is_store_unavailable() -> None:
    require_module("azure.cosmos", "pip install -e '.[azure]'")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"connect to .* failed after 2 attempts \(ServiceRequestError\)"):
        make_store("https://127.0.0.1:1", retries=1, backoff=0.01)
    assert time.monotonic() - started < 30


# -- the worker on this store ------------------------------------------------------------------------------


def test_worker_on_cosmos_stores_an_images_alerts_in_one_batch_and_alerts_once(
    fresh: CosmosStore, tmp_path: Path
) -> None:
    import json

    from shared.service.scan import ScanService, ServiceConfig
    from shared.stores.blobs import LocalBlobStore
    from shared.stores.models import AlertRecord
    from shared.vulndb.importer import import_paths
    from tests.support.inventories import NOW, REGISTRY, NoRegistry, advisory, apk, inventory

    names = ("libalpha", "libbeta", "libgamma")
    osv = tmp_path / "osv"
    osv.mkdir()
    for name in names:
        (osv / f"{name}.json").write_text(json.dumps(advisory(f"TEST-{name}", name, "2.0-r1", "2026-01-01T00:00:00Z")))
    import_paths(tmp_path / "vulndb.sqlite", [osv])

    class Topic:
        """Fails for libbeta until told otherwise."""

        def __init__(self) -> None:
            self.up = False
            self.published: list[str] = []

        def publish(self, alert: AlertRecord) -> None:
            package = alert.data["package"]
            assert isinstance(package, dict)
            if package["name"] == "libbeta" and not self.up:
                raise ConnectionError("topic answered HTTP 500")
            self.published.append(alert.id)

    topic = Topic()
    svc = ScanService(
        fresh,
        LocalBlobStore(tmp_path / "blobs"),
        NoRegistry(),
        topic,
        ServiceConfig(registries=[REGISTRY], db_path=tmp_path / "vulndb.sqlite"),
        now=lambda: NOW,
    )
    base = inventory(1, False)
    inv = base.model_copy(update={"packages": [*base.packages, *(apk(n, "2.0-r0") for n in names)]})
    try:
        before = fresh.request_count
        out = svc.ingest(inv, f"{REGISTRY}/team/app1:1", pushed_at=NOW)
        assert (out.findings_new, out.alerts_created, out.alerts_published) == (3, 3, 2)
        # read the image and its findings; create the 3 alerts; write the findings, the image and its index;
        # record the 3 outcomes: one request each, whatever the number of alerts
        assert fresh.request_count - before == 7
        (pending,) = fresh.unpublished_alerts()
        assert pending.attempts == 1 and "HTTP 500" in (pending.last_error or "")

        # delivered again: the same findings, no alert created, published or recorded
        before = fresh.request_count
        again = svc.ingest(inv, f"{REGISTRY}/team/app1:1", pushed_at=NOW)
        assert (again.findings_new, again.alerts_created) == (0, 0)
        # its findings are no longer new, so no alert is even tried: image, findings, findings, image, index
        assert fresh.request_count - before == 5
        assert len(topic.published) == 2
        assert fresh.counts()["alerts"] == 3 and len(fresh.findings_for_image(inv.image.digest or "")) == 3

        topic.up = True
        report = svc.publish_pending()
        assert (report.published, report.failed) == (1, 0)
        assert fresh.unpublished_alerts() == [] and len(set(topic.published)) == 3
    finally:
        svc.close()
