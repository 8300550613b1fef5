"""The Cosmos DB store: the :class:`~shared.stores.ports.Store` port on Azure Cosmos DB (NoSQL API).

Containers and partition keys, chosen for the queries the backend runs:

================ ================= ===============================================================================
container        partition key     why
================ ================= ===============================================================================
``images``       ``/digest``       every access is a point read or write by manifest digest (id = digest);
                                   ``images_seen_since`` is the one cross-partition query (a timer's sweep).
``findings``     ``/image_digest`` an image's findings are read together (one single-partition query) and
                                   written together (transactional batches, which need one partition);
                                   findings by severity is a cross-partition query on ``c.severity``.
``alerts``       ``/image_digest`` an image's alerts are one partition, so the alerts one match raises are
                                   created in one transactional batch and marked published in another (the
                                   record carries its image digest); the outbox query (unpublished, oldest
                                   first) fans out either way, so ``/id`` would buy nothing but the batches.
``layercache``   ``/key``          point reads and writes by cache key (id = key).
``packageindex`` ``/digest``       one document per image (id = digest) listing its ``"ecosystem|name"``
                                   keys: indexing an image is one upsert that replaces its whole set (the port
                                   allows an image's index one or two requests; one item per (package, image)
                                   in ``"ecosystem|name"`` partitions would cost a write per package). Which
                                   images hold some packages (a database delta) is one cross-partition query
                                   per :data:`KEYS_PER_QUERY` keys, ``EXISTS`` over the indexed ``keys`` array.
                                   An image whose key list would not fit in one document (more than about
                                   :data:`MAX_INDEX_BYTES`) is stored as ``overflow`` and matches every lookup:
                                   it is rescanned on every delta rather than missed.
================ ================= ===============================================================================

Documents are the records' own fields (``model_dump(mode="json")``, without
``etag``) plus ``id``, the partition key field where the record lacks one,
and a few ``hw_*`` query fields: UTC timestamps as sortable text
(``hw_seen_at``, ``hw_last_seen``, ``hw_created_at``) and ``hw_published``.
On read only the record's fields are kept; the ETag comes from ``_etag``.
The two multi-property ORDER BY queries need the composite indexes in
:data:`INDEXING_POLICIES`; a deployment that creates the containers itself
must give them the same policies.

How the port's rules are kept:

- Idempotent writes: ids are the records' deterministic ids; writes are
  upserts, ``create_alert`` is ``create_item`` and a 409 conflict means
  "already there" (``False``). ``create_alerts`` sends an image's alerts as a
  transactional batch of creates; a 409 there fails the whole batch, so the
  ids that exist are read (one query) and the others created in a new batch.
- ETag conditions: ``put_image(if_match=...)``, ``mark_alert`` with an etag
  and findings that carry an etag are replaces with
  ``match_condition=IfNotModified``; a 412 (or a 404: the document is gone)
  raises :class:`~shared.stores.errors.PreconditionFailed`.
- Throttling: the SDK retries 429 itself, honouring ``x-ms-retry-after-ms``
  (``throttle_retries`` times, at most ``max_throttle_wait`` seconds in all).
  On top of that every call is retried here, a bounded number of times
  (``retries``), on 429 the SDK gave up on, 503, 408 and 449 and on connection
  errors, sleeping the server's ``x-ms-retry-after-ms`` when it sent one and
  an exponential backoff otherwise; then
  :class:`~shared.stores.errors.StoreUnavailable` is raised. A retried write
  may find its own first attempt: a retried ``create_alert`` can answer
  ``False`` for an alert it created, and a retried ``create_alerts`` leave it
  out of its list (it stays unpublished, so the outbox publishes it); a
  retried conditional replace can raise PreconditionFailed (re-read and you
  see what was written). A retried batch is rebuilt for each attempt, so it
  keeps its ETag conditions (the SDK consumes them from the operations).
- Batched findings: an image's findings go in transactional batches of at
  most :data:`MAX_BATCH_OPERATIONS` operations (and about
  :data:`MAX_BATCH_BYTES`), one partition each; a batch is all or nothing,
  so an image with more than 100 findings is written in several atomic
  steps. ``batch="upsert"`` (the default, what Cosmos DB supports) sends
  upserts, and replaces with ``if_match_etag`` for records that carry an
  etag. ``batch="create"`` is the fallback for Cosmos DB stand-ins whose
  batches only support ``create`` (``@vercel/cosmosdb-server`` as published):
  new findings go in a batch of creates; when one already exists (409) the
  batch is abandoned and its records are written with bounded concurrent
  upserts, ``concurrency`` at a time; records with an etag are always
  conditional replaces, one request each, concurrently. That fallback is not
  atomic: a failed condition leaves the other records written.
- Batched alert updates: ``mark_alerts`` is a transactional batch of
  replaces (``if_match_etag`` when the record carries one) in the image's
  partition, at most 100 per batch; a missing alert or a stale ETag is
  :class:`~shared.stores.errors.PreconditionFailed` and its batch writes nothing.
  With ``batch="create"`` they are conditional replaces, one request each,
  concurrently, and not atomic. (``@vercel/cosmosdb-server`` as published
  applies a batch's creates but not atomically: a batch that meets an existing
  alert leaves the new ones before it written. ``create_alerts`` stays correct
  there: the alerts it cannot tell it created stay unpublished, for the outbox.)
- ``request_count`` counts every HTTP request the SDK sends, retries included
  (a client-wide ``raw_request_hook``), from the client's creation on.

Databases and containers are created when missing (idempotent;
``create_if_missing=False`` for deployments whose infrastructure owns them).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, TypeVar

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy, PartitionKey
from azure.cosmos.exceptions import (
    CosmosBatchOperationError,
    CosmosHttpResponseError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)
from pydantic import BaseModel

from shared.stores.errors import PreconditionFailed, StoreUnavailable
from shared.stores.models import (
    AlertRecord,
    FindingRecord,
    FindingStatus,
    ImageRecord,
    LayerCacheEntry,
    check_alert_batch,
    distinct_alerts,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

IMAGES = "images"
FINDINGS = "findings"
ALERTS = "alerts"
LAYER_CACHE = "layercache"
PACKAGE_INDEX = "packageindex"

#: Partition key path of each container.
PARTITION_KEYS: Mapping[str, str] = {
    IMAGES: "/digest",
    FINDINGS: "/image_digest",
    ALERTS: "/image_digest",
    LAYER_CACHE: "/key",
    PACKAGE_INDEX: "/digest",
}


def _policy(excluded: Sequence[str] = (), composite: Sequence[Sequence[tuple[str, str]]] = ()) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "indexingMode": "consistent",
        "automatic": True,
        "includedPaths": [{"path": "/*"}],
        "excludedPaths": [{"path": '/"_etag"/?'}, *({"path": p} for p in excluded)],
    }
    if composite:
        policy["compositeIndexes"] = [[{"path": p, "order": o} for p, o in index] for index in composite]
    return policy


#: Indexing policy of each container: large nested documents are not indexed; the composite indexes serve
#: findings by severity (newest first) and the alert outbox (oldest first).
INDEXING_POLICIES: Mapping[str, dict[str, Any]] = {
    IMAGES: _policy(excluded=["/references/*", "/severity_counts/*"]),
    FINDINGS: _policy(excluded=["/finding/*"], composite=[[("/hw_last_seen", "descending"), ("/id", "ascending")]]),
    ALERTS: _policy(excluded=["/data/*"], composite=[[("/hw_created_at", "ascending"), ("/id", "ascending")]]),
    LAYER_CACHE: _policy(),
    PACKAGE_INDEX: _policy(),
}

#: A transactional batch holds at most 100 operations and 2 MB; this leaves room for the envelope.
MAX_BATCH_OPERATIONS = 100
MAX_BATCH_BYTES = 1_800_000
#: Images per page of ``images_seen_since``; package keys per ``images_with_packages`` query.
PAGE = 200
KEYS_PER_QUERY = 500
#: Largest key list one package-index document holds (a document is at most 2 MB).
MAX_INDEX_BYTES = 1_800_000

#: Statuses retried by the adapter (after the SDK's own retries): throttled, unavailable, timeout, retry-with.
RETRYABLE_STATUS = frozenset({408, 429, 449, 503})
_RETRY_AFTER_HEADER = "x-ms-retry-after-ms"

_RECORD_FIELDS = {"etag"}


def sortable_time(value: datetime | None) -> str | None:
    """A datetime as UTC text that sorts like the instant (naive values are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seen_at(image: ImageRecord) -> str | None:
    stamps = [s for s in (sortable_time(t) for t in (image.pushed_at, image.last_pulled_at, image.scanned_at)) if s]
    return max(stamps) if stamps else None


def _doc(record: BaseModel, **extra: object) -> dict[str, Any]:
    body = record.model_dump(mode="json", exclude=_RECORD_FIELDS)
    body.update(extra)
    return body


def _record(model: type[M], item: Mapping[str, Any]) -> M:
    fields = model.model_fields
    data = {k: v for k, v in item.items() if k in fields and k not in _RECORD_FIELDS}
    if "etag" in fields:
        data["etag"] = item.get("_etag")
    return model.model_validate(data)


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    if not headers:
        return None
    for k, v in headers.items():
        if k.lower() == name:
            return str(v)
    return None


def _creates(docs: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [("create", (d,)) for d in docs]


def _package_key(ecosystem: str, name: str) -> str:
    return f"{ecosystem}|{name}"


class CosmosStore:
    """The Store port on one Cosmos DB database. Safe to share between threads.

    ``credential`` is an account key or an Entra ``TokenCredential`` (for example
    ``DefaultAzureCredential()``: managed identity in Azure). ``client_options``
    go to :class:`~azure.cosmos.CosmosClient` as they are (``preferred_locations``,
    ``connection_verify``, ...).
    """

    def __init__(
        self,
        endpoint: str,
        credential: str | TokenCredential,
        database: str = "hullwatch",
        *,
        create_if_missing: bool = True,
        batch: Literal["upsert", "create"] = "upsert",
        concurrency: int = 8,
        retries: int = 5,
        throttle_retries: int = 9,
        max_throttle_wait: float = 30.0,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        enable_endpoint_discovery: bool = True,
        throughput: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **client_options: Any,
    ) -> None:
        if batch not in ("upsert", "create"):
            raise ValueError(f"batch must be 'upsert' or 'create', not {batch!r}")
        if concurrency < 1 or retries < 0 or throttle_retries < 1:
            raise ValueError("concurrency and throttle_retries must be at least 1, retries at least 0")
        self.endpoint = endpoint
        self.database_name = database
        self.batch = batch
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_wait = max_throttle_wait
        self.request_count = 0
        self._sleep = sleep
        self._count_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

        def count_request(_request: object) -> None:
            with self._count_lock:
                self.request_count += 1

        def connect() -> CosmosClient:
            return CosmosClient(
                endpoint,
                credential,
                enable_endpoint_discovery=enable_endpoint_discovery,
                retry_throttle_total=throttle_retries,
                retry_throttle_backoff_max=max_throttle_wait,
                raw_request_hook=count_request,
                **client_options,
            )

        self._client = self._call(f"connect to {endpoint}", connect)
        if create_if_missing:
            self._db = self._call(
                f"create database {database}",
                lambda: self._client.create_database_if_not_exists(database, offer_throughput=throughput),
            )
        else:
            self._db = self._client.get_database_client(database)
        self._containers = {name: self._container(self._db, name, create_if_missing) for name in PARTITION_KEYS}

    def _container(self, db: DatabaseProxy, name: str, create: bool) -> ContainerProxy:
        if not create:
            return db.get_container_client(name)
        return self._call(
            f"create container {name}",
            lambda: db.create_container_if_not_exists(
                name, PartitionKey(PARTITION_KEYS[name]), indexing_policy=INDEXING_POLICIES[name]
            ),
        )

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        self._client.close()

    def __enter__(self) -> CosmosStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------

    def _delay(self, attempt: int, headers: Mapping[str, Any] | None) -> float:
        after = _header(headers, _RETRY_AFTER_HEADER)
        if after is not None:
            try:
                return min(max(float(after) / 1000.0, 0.0), self.max_retry_wait)
            except ValueError:
                pass
        ceiling = min(self.backoff * float(2**attempt), self.max_backoff)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter, not security)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried on throttling, unavailability and connection errors; then StoreUnavailable."""
        attempt = 0
        while True:
            try:
                return fn()
            except CosmosHttpResponseError as exc:
                if exc.status_code not in RETRYABLE_STATUS:
                    raise
                error: Exception = exc
                headers: Mapping[str, Any] | None = exc.headers
                detail = f"HTTP {exc.status_code}"
            except (ServiceRequestError, ServiceResponseError) as exc:
                error, headers, detail = exc, None, type(exc).__name__
            if attempt >= self.retries:
                raise StoreUnavailable(
                    f"Cosmos DB {self.endpoint}: {what} failed after {attempt + 1} attempts ({detail})"
                ) from error
            delay = self._delay(attempt, headers)
            log.info("Cosmos DB %s: %s; retrying in %.3f s", what, detail, delay)
            self._sleep(delay)
            attempt += 1

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="cosmos-store")
            return self._pool

    def _concurrently(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        """Run the jobs, ``concurrency`` at a time; every job runs, then the first error is raised."""
        if not jobs:
            return []
        if len(jobs) == 1:
            return [jobs[0]()]
        futures = [self._executor().submit(job) for job in jobs]
        first: BaseException | None = None
        for f in futures:
            exc = f.exception()
            if exc is not None and first is None:
                first = exc
        if first is not None:
            raise first
        return [f.result() for f in futures]

    def _query(
        self,
        container: str,
        sql: str,
        params: Mapping[str, object] | None = None,
        *,
        partition_key: str | None = None,
    ) -> list[Any]:
        """All results of one query (single-partition when ``partition_key`` is given), retried as a whole."""
        c = self._containers[container]
        parameters: list[dict[str, object]] = [{"name": f"@{k}", "value": v} for k, v in (params or {}).items()]

        def run() -> list[Any]:
            if partition_key is not None:
                items = c.query_items(sql, parameters=parameters, partition_key=partition_key)
            else:
                items = c.query_items(sql, parameters=parameters, enable_cross_partition_query=True)
            return list(items)

        return self._call(f"query {container}", run)

    def _read(self, container: str, item: str, partition_key: str) -> dict[str, Any] | None:
        c = self._containers[container]

        def run() -> dict[str, Any] | None:
            try:
                return dict(c.read_item(item, partition_key=partition_key))
            except CosmosResourceNotFoundError:
                return None

        return self._call(f"read {container}/{item}", run)

    def _upsert(self, container: str, body: dict[str, Any]) -> dict[str, Any]:
        c = self._containers[container]
        return self._call(f"upsert {container}/{body['id']}", lambda: dict(c.upsert_item(body)))

    def _replace_if(self, container: str, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        """Replace an existing document, only if its ETag is still ``etag`` (when given)."""
        c = self._containers[container]
        what = f"replace {container}/{body['id']}"

        def run() -> dict[str, Any]:
            try:
                if etag is None:
                    return dict(c.replace_item(body["id"], body))
                return dict(c.replace_item(body["id"], body, etag=etag, match_condition=MatchConditions.IfNotModified))
            except CosmosResourceNotFoundError:
                raise PreconditionFailed(f"{body['id']}: no such document in {container}") from None
            except CosmosHttpResponseError as exc:
                if exc.status_code == 412:
                    raise PreconditionFailed(
                        f"{body['id']}: the {container} document changed since it was read (ETag mismatch)"
                    ) from None
                raise

        return self._call(what, run)

    # -- images -------------------------------------------------------------------

    @staticmethod
    def _image_doc(image: ImageRecord) -> dict[str, Any]:
        return _doc(image, id=image.digest, hw_seen_at=_seen_at(image))

    def get_image(self, digest: str) -> ImageRecord | None:
        item = self._read(IMAGES, digest, digest)
        return _record(ImageRecord, item) if item is not None else None

    def put_image(self, image: ImageRecord, if_match: str | None = None) -> ImageRecord:
        body = self._image_doc(image)
        if if_match is None:
            stored = self._upsert(IMAGES, body)
        else:
            stored = self._replace_if(IMAGES, body, if_match)
        return image.model_copy(update={"etag": stored.get("_etag")})

    def images_seen_since(self, since: datetime, *, include_running: bool = True) -> Iterator[ImageRecord]:
        """Images (not deleted) pushed, pulled or scanned at or after ``since``, plus running ones; by digest.

        Keyset pages of :data:`PAGE` images (``c.id > last``), each one query, so a
        long sweep never holds a continuation token across retries.
        """
        seen = "c.hw_seen_at >= @since OR c.running = true" if include_running else "c.hw_seen_at >= @since"
        sql = f"SELECT TOP {PAGE} * FROM c WHERE c.id > @after AND c.deleted = false AND ({seen}) ORDER BY c.id"  # noqa: S608 (fixed text)
        after = ""
        while True:
            items = self._query(IMAGES, sql, {"after": after, "since": sortable_time(since)})
            for item in items:
                yield _record(ImageRecord, item)
            if len(items) < PAGE:
                return
            after = items[-1]["id"]

    # -- the inverted index ---------------------------------------------------------

    def index_packages(self, digest: str, keys: Iterable[tuple[str, str]]) -> None:
        """Replace the image's (ecosystem, normalised name) set: one upsert of its index document."""
        wanted = sorted({_package_key(eco, name) for eco, name in keys})
        body: dict[str, Any] = {"id": digest, "digest": digest, "keys": wanted, "overflow": False}
        if len(json.dumps(wanted)) > MAX_INDEX_BYTES:
            log.warning(
                "package index of %s: %d keys do not fit one document; it matches every lookup", digest, len(wanted)
            )
            body.update(keys=[], overflow=True)
        self._upsert(PACKAGE_INDEX, body)

    def images_with_packages(self, keys: Iterable[tuple[str, str]]) -> set[str]:
        wanted = sorted({_package_key(eco, name) for eco, name in keys})
        out: set[str] = set()
        for i in range(0, len(wanted), KEYS_PER_QUERY):
            rows = self._query(
                PACKAGE_INDEX,
                "SELECT VALUE c.digest FROM c WHERE c.overflow = true "
                "OR EXISTS(SELECT VALUE k FROM k IN c.keys WHERE ARRAY_CONTAINS(@keys, k))",
                {"keys": wanted[i : i + KEYS_PER_QUERY]},
            )
            out.update(str(d) for d in rows)
        return out

    # -- findings ---------------------------------------------------------------------

    @staticmethod
    def _finding_doc(record: FindingRecord) -> dict[str, Any]:
        return _doc(record, hw_last_seen=sortable_time(record.last_seen))

    def findings_for_image(self, digest: str) -> list[FindingRecord]:
        rows = self._query(FINDINGS, "SELECT * FROM c WHERE c.image_digest = @d", {"d": digest}, partition_key=digest)
        return sorted((_record(FindingRecord, r) for r in rows), key=lambda f: f.id)

    def put_findings(self, digest: str, records: Sequence[FindingRecord]) -> None:
        for r in records:
            if r.image_digest != digest:
                raise ValueError(f"finding {r.id} belongs to {r.image_digest}, not {digest}")
        if not records:
            return
        if self.batch == "upsert":
            for chunk in self._chunks(records):
                self._findings_batch(digest, chunk, partial(self._batch_ops, chunk))
            return
        conditional = [r for r in records if r.etag is not None]
        plain = [r for r in records if r.etag is None]
        for chunk in self._chunks(plain):
            try:
                self._findings_batch(digest, chunk, partial(_creates, [self._finding_doc(r) for r in chunk]))
            except CosmosBatchOperationError as exc:
                if exc.status_code != 409:
                    raise
                self._concurrently([self._upsert_job(r) for r in chunk])
        self._concurrently([self._replace_job(r) for r in conditional])

    def _upsert_job(self, record: FindingRecord) -> Callable[[], None]:
        body = self._finding_doc(record)

        def run() -> None:
            self._upsert(FINDINGS, body)

        return run

    def _replace_job(self, record: FindingRecord) -> Callable[[], None]:
        body = self._finding_doc(record)

        def run() -> None:
            self._replace_if(FINDINGS, body, record.etag)

        return run

    def _batch_ops(self, records: Sequence[FindingRecord]) -> list[tuple[Any, ...]]:
        ops: list[tuple[Any, ...]] = []
        for r in records:
            body = self._finding_doc(r)
            if r.etag is None:
                ops.append(("upsert", (body,)))
            else:
                ops.append(("replace", (r.id, body), {"if_match_etag": r.etag}))
        return ops

    @staticmethod
    def _chunks(records: Sequence[M]) -> Iterator[Sequence[M]]:
        start, size = 0, 0
        for i, r in enumerate(records):
            n = len(r.model_dump_json()) + 200
            if i > start and (i - start >= MAX_BATCH_OPERATIONS or size + n > MAX_BATCH_BYTES):
                yield records[start:i]
                start, size = i, 0
            size += n
        yield records[start:]

    def _execute_batch(
        self, container: str, digest: str, what: str, build: Callable[[], list[tuple[Any, ...]]]
    ) -> list[dict[str, Any]]:
        """One transactional batch in the ``digest`` partition, retried like every call.

        The operations are built anew for every attempt: the SDK consumes each
        operation's options (it pops ``if_match_etag`` from the dict it is given), so
        a retry that re-sent the same list would go without its ETag conditions.
        """
        c = self._containers[container]

        def run() -> list[dict[str, Any]]:
            return [dict(r) for r in c.execute_item_batch(build(), partition_key=digest)]

        return self._call(what, run)

    def _findings_batch(
        self, digest: str, records: Sequence[FindingRecord], build: Callable[[], list[tuple[Any, ...]]]
    ) -> None:
        try:
            self._execute_batch(FINDINGS, digest, f"batch of {len(records)} findings of {digest}", build)
        except CosmosBatchOperationError as exc:
            index = exc.error_index if isinstance(exc.error_index, int) else 0
            failed = records[index] if 0 <= index < len(records) else records[0]
            if exc.status_code in (404, 412) and failed.etag is not None:
                raise PreconditionFailed(
                    f"{failed.id}: finding of {digest} changed since it was read (ETag mismatch)"
                ) from None
            raise

    def findings_by_severity(self, severity: str, limit: int = 1000) -> list[FindingRecord]:
        """Open (not resolved) findings of one severity across images, most recently seen first."""
        if limit <= 0:
            return []
        rows = self._query(
            FINDINGS,
            f"SELECT TOP {int(limit)} * FROM c WHERE c.severity = @s AND c.status != @resolved "  # noqa: S608 (an int)
            "ORDER BY c.hw_last_seen DESC, c.id ASC",
            {"s": severity, "resolved": FindingStatus.RESOLVED.value},
        )
        return [_record(FindingRecord, r) for r in rows]

    # -- alerts -------------------------------------------------------------------------

    @staticmethod
    def _alert_doc(alert: AlertRecord) -> dict[str, Any]:
        return _doc(alert, hw_created_at=sortable_time(alert.created_at), hw_published=alert.published_at is not None)

    def _create_one(self, alert: AlertRecord) -> AlertRecord | None:
        """The alert as created (with its ETag), or None when it exists already."""
        c = self._containers[ALERTS]
        body = self._alert_doc(alert)

        def run() -> dict[str, Any] | None:
            try:
                return dict(c.create_item(body))
            except CosmosResourceExistsError:
                return None

        stored = self._call(f"create alert {alert.id}", run)
        return alert.model_copy(update={"etag": stored.get("_etag")}) if stored is not None else None

    def create_alert(self, alert: AlertRecord) -> bool:
        return self._create_one(alert) is not None

    def create_alerts(self, digest: str, alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
        """Create the absent ones of an image's alerts; returns those created (with their ETags).

        Transactional batches of creates in the image's partition: when none of
        the alerts exists (a first delivery), one request per 100 alerts. A batch
        is all or nothing, so one existing alert (a duplicate delivery, a retried
        worker) fails its whole batch with 409; the ids that exist are then read
        (one query) and the rest created in a new batch. Whoever's create went
        through owns the alert; everyone else gets it left out of their list.
        """
        check_alert_batch(digest, alerts)
        pending = distinct_alerts(alerts)
        created: list[AlertRecord] = []
        while pending:
            chunk = next(self._chunks(pending))
            docs = [self._alert_doc(a) for a in chunk]
            try:
                results = self._execute_batch(
                    ALERTS,
                    digest,
                    f"batch of {len(chunk)} alerts of {digest}",
                    partial(_creates, docs),
                )
            except CosmosBatchOperationError as exc:
                if exc.status_code != 409:
                    raise
                existing = self._existing_alert_ids(digest, [a.id for a in pending])
                if existing.isdisjoint(a.id for a in chunk):
                    # a conflict the query does not show (the document went away meanwhile): one at a time
                    created.extend(a for a in (self._create_one(x) for x in chunk) if a is not None)
                    pending = pending[len(chunk) :]
                else:
                    pending = [a for a in pending if a.id not in existing]
                continue
            created.extend(a.model_copy(update={"etag": r.get("eTag")}) for a, r in zip(chunk, results, strict=True))
            pending = pending[len(chunk) :]
        return created

    def _existing_alert_ids(self, digest: str, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for i in range(0, len(ids), KEYS_PER_QUERY):
            rows = self._query(
                ALERTS,
                # the partition key in the filter too: the stand-in insists on it for single-partition queries
                "SELECT VALUE c.id FROM c WHERE c.image_digest = @d AND ARRAY_CONTAINS(@ids, c.id)",
                {"d": digest, "ids": list(ids[i : i + KEYS_PER_QUERY])},
                partition_key=digest,
            )
            out.update(str(x) for x in rows)
        return out

    def mark_alert(self, alert: AlertRecord) -> AlertRecord:
        """Store the alert's publication state (published_at, attempts, last_error); conditional on its ETag."""
        stored = self._replace_if(ALERTS, self._alert_doc(alert), alert.etag)
        return alert.model_copy(update={"etag": stored.get("_etag")})

    def mark_alerts(self, digest: str, alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
        """Store several alerts' publication state: transactional batches of replaces, conditional on each ETag.

        Up to 100 alerts are one atomic batch (more are several, each atomic); a
        missing alert or a stale ETag raises PreconditionFailed and its batch writes nothing.
        """
        check_alert_batch(digest, alerts)
        if len({a.id for a in alerts}) != len(alerts):
            raise ValueError("the same alert is listed twice")
        if self.batch == "create":  # a stand-in whose batches cannot replace: conditional replaces, concurrently
            stored = self._concurrently([partial(self._replace_if, ALERTS, self._alert_doc(a), a.etag) for a in alerts])
            return [a.model_copy(update={"etag": d.get("_etag")}) for a, d in zip(alerts, stored, strict=True)]
        out: list[AlertRecord] = []
        for chunk in self._chunks(alerts) if alerts else ():
            docs = [(a, self._alert_doc(a)) for a in chunk]

            def build(d: list[tuple[AlertRecord, dict[str, Any]]] = docs) -> list[tuple[Any, ...]]:
                return [
                    ("replace", (a.id, body), {"if_match_etag": a.etag} if a.etag is not None else {}) for a, body in d
                ]

            try:
                results = self._execute_batch(ALERTS, digest, f"batch of {len(chunk)} alert updates of {digest}", build)
            except CosmosBatchOperationError as exc:
                if exc.status_code not in (404, 412):
                    raise
                index = exc.error_index if isinstance(exc.error_index, int) else 0
                failed = chunk[index] if 0 <= index < len(chunk) else chunk[0]
                why = "no such alert (create it first)" if exc.status_code == 404 else "it changed since it was read"
                raise PreconditionFailed(f"{failed.id}: alert of {digest} not updated: {why}") from None
            out.extend(a.model_copy(update={"etag": r.get("eTag")}) for a, r in zip(chunk, results, strict=True))
        return out

    def unpublished_alerts(self, limit: int = 100) -> list[AlertRecord]:
        if limit <= 0:
            return []
        rows = self._query(
            ALERTS,
            f"SELECT TOP {int(limit)} * FROM c WHERE c.hw_published = false "  # noqa: S608 (an int)
            "ORDER BY c.hw_created_at ASC, c.id ASC",
        )
        return [_record(AlertRecord, r) for r in rows]

    # -- layer cache ----------------------------------------------------------------------

    def get_layer_cache(self, key: str) -> LayerCacheEntry | None:
        item = self._read(LAYER_CACHE, key, key)
        return _record(LayerCacheEntry, item) if item is not None else None

    def put_layer_cache(self, entry: LayerCacheEntry) -> None:
        self._upsert(LAYER_CACHE, _doc(entry, id=entry.key))

    # -- diagnostics ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Documents per container (for status pages and tests); not part of the port."""
        out: dict[str, int] = {}
        for name in PARTITION_KEYS:
            out[name] = sum(int(n) for n in self._query(name, "SELECT VALUE COUNT(1) FROM c"))
        return out
