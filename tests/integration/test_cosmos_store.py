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
from typing import TYPE_CHECKING, Any

import pytest

from shared.stores.errors import StoreUnavailable
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
