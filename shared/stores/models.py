"""What the backend stores: image summaries, findings with a lifecycle, alerts, the layer-analysis cache.

Ids are deterministic fingerprints (:mod:`shared.stores.fingerprints`), so every
write is an idempotent upsert or a create-if-absent: a trigger delivered twice
writes the same documents twice and never a second alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.findings import Finding


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FindingStatus(StrEnum):
    NEW = "new"  # first seen in the latest match
    ACTIVE = "active"  # seen before and still matched
    RESOLVED = "resolved"  # no longer matched, or the image was deleted
    REOPENED = "reopened"  # matched again after being resolved


class ImageRecord(_Model):
    """One image (by manifest digest): what it is, where it was seen, where its inventory lives."""

    digest: str = Field(description="Manifest digest; the id and partition key.")
    references: list[str] = Field(default_factory=list, description="registry/repo[:tag] it was pushed as.")
    platform: str | None = None
    os: str | None = None
    inventory_key: str | None = Field(default=None, description="Blob key of the stored inventory (ScanResult).")
    package_count: int = 0
    pushed_at: datetime | None = None
    last_pulled_at: datetime | None = None
    scanned_at: datetime | None = None
    matched_at: datetime | None = None
    db_version: str | None = Field(default=None, description="Vulnerability data the findings come from.")
    running: bool = False
    deleted: bool = False
    severity_counts: dict[str, int] = Field(default_factory=dict, description="Open findings by severity.")
    etag: str | None = Field(default=None, description="Concurrency token of the stored document.")


class FindingRecord(_Model):
    id: str = Field(description="Fingerprint of (image digest, package instance, vulnerability id).")
    image_digest: str = Field(description="Partition key: an image's findings are read together.")
    vulnerability_id: str
    severity: str
    status: FindingStatus
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None = None
    finding: Finding
    etag: str | None = None


class AlertRecord(_Model):
    id: str = Field(description="Fingerprint of (alert type, image digest, vulnerability, package instance).")
    type: str = Field(description="CloudEvent type, e.g. hullwatch.vulnerability.new")
    subject: str = Field(description="The image reference the alert is about.")
    image_digest: str
    created_at: datetime
    published_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    data: dict[str, object] = Field(default_factory=dict)
    etag: str | None = None


def distinct_alerts(alerts: Iterable[AlertRecord]) -> list[AlertRecord]:
    """The first alert of each id, in order (a batch that names an alert twice creates it once)."""
    seen: set[str] = set()
    out: list[AlertRecord] = []
    for a in alerts:
        if a.id not in seen:
            seen.add(a.id)
            out.append(a)
    return out


def check_alert_batch(digest: str, alerts: Iterable[AlertRecord]) -> None:
    """An alert batch is one image's (one Cosmos DB partition); ValueError otherwise."""
    for a in alerts:
        if a.image_digest != digest:
            raise ValueError(f"alert {a.id} belongs to {a.image_digest}, not {digest}")


class LayerCacheEntry(_Model):
    key: str = Field(description="diff_id + hash of the analyzer (name, version) set.")
    diff_id: str
    result_key: str = Field(description="Blob key of the cached per-layer analysis.")
    created_at: datetime
