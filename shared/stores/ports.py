"""The store port: one interface, two adapters (Cosmos DB, SQLite), one contract test suite.

Design rules every adapter keeps:
- Ids are deterministic; ``upsert_*`` are idempotent; ``create_alert`` is
  create-if-absent and says whether it created.
- State changes use ETag conditions (``if_match``) and raise
  :class:`~shared.stores.errors.PreconditionFailed` when the document changed.
- Throttling and transient unavailability (Cosmos 429/503) are retried inside
  the adapter honouring the server's retry-after, a bounded number of times.
- An image's findings are written in one batched call, and so are its alerts:
  ``create_alerts`` creates the absent ones of one image and returns those it
  created; ``mark_alerts`` stores the publication state of several alerts of
  one image, all or none when any ETag condition fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from shared.stores.models import AlertRecord, FindingRecord, ImageRecord, LayerCacheEntry


class Store(Protocol):
    # images
    def get_image(self, digest: str) -> ImageRecord | None: ...
    def put_image(self, image: ImageRecord, if_match: str | None = None) -> ImageRecord: ...
    def images_seen_since(self, since: datetime, *, include_running: bool = True) -> Iterator[ImageRecord]: ...

    # the inverted index for database-delta rescans: (ecosystem, normalised name) -> image digests
    def index_packages(self, digest: str, keys: Iterable[tuple[str, str]]) -> None: ...
    def images_with_packages(self, keys: Iterable[tuple[str, str]]) -> set[str]: ...

    # findings
    def findings_for_image(self, digest: str) -> list[FindingRecord]: ...
    def put_findings(self, digest: str, records: Sequence[FindingRecord]) -> None: ...
    def findings_by_severity(self, severity: str, limit: int = 1000) -> list[FindingRecord]: ...

    # alerts (stored first, then published, then marked published)
    def create_alert(self, alert: AlertRecord) -> bool: ...
    def create_alerts(self, digest: str, alerts: Sequence[AlertRecord]) -> list[AlertRecord]: ...
    def mark_alert(self, alert: AlertRecord) -> AlertRecord: ...
    def mark_alerts(self, digest: str, alerts: Sequence[AlertRecord]) -> list[AlertRecord]: ...
    def unpublished_alerts(self, limit: int = 100) -> list[AlertRecord]: ...

    # layer-analysis cache
    def get_layer_cache(self, key: str) -> LayerCacheEntry | None: ...
    def put_layer_cache(self, entry: LayerCacheEntry) -> None: ...

    # how many requests the adapter has sent (benchmarks count requests per image)
    request_count: int


class BlobStore(Protocol):
    """Large documents (inventories, layer results): local files, Azure Blob Storage or S3.

    ``put``/``get`` hold the whole document in memory: fine for inventories. The
    vulnerability database (a gigabyte, on functions with 2 GB of memory) goes
    through ``put_file``/``get_file``, which stream between a local file and the
    store in bounded chunks. ``get_file`` returns False, leaving ``path`` alone,
    when the key does not exist; otherwise it overwrites ``path`` (callers that
    need an atomic replace give it a temporary file).
    """

    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get_file(self, key: str, path: Path) -> bool: ...
