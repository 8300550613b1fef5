"""Typed messages between triggers and the scan worker (queue payloads), and their outcomes.

Triggers only validate an event and enqueue a :class:`ScanMessage`; the worker
does the work. Messages are JSON on every queue (Azure Storage, SQS, local).

Rescans travel in batches: one ``rescan-batch`` message names up to a few
hundred stored images (``digests``), so the daily timer of 100,000 images
writes a few hundred queue messages rather than 100,000. A single-image
``rescan`` message is still accepted (messages queued before batches existed,
and replays of one failed image).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator


class Action(StrEnum):
    PUSH = "push"  # an image was pushed: scan it (once per digest)
    DELETE = "delete"  # an image was deleted: resolve its findings
    RESCAN = "rescan"  # re-match a stored inventory against current vulnerability data
    RESCAN_BATCH = "rescan-batch"  # re-match several stored inventories, one after the other


#: The most images one rescan-batch message may name. The producers stay far below it (see
#: :mod:`shared.service.rescan`); the cap keeps a hand-made message from holding a worker past its time limit.
MAX_BATCH_DIGESTS = 1000


class ScanMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    registry: str = Field(description="Registry host, e.g. myreg.azurecr.io")
    repository: str
    tag: str | None = None
    digest: str | None = Field(default=None, description="Manifest digest, when the event carries it.")
    source: str = Field(description="acr, ecr, gar or local: which credential flow applies.")
    event_id: str = Field(description="The delivering event's id: logs and idempotency keys use it.")
    event_time: datetime | None = None
    aws_account: str | None = None
    aws_region: str | None = None
    digests: tuple[str, ...] | None = Field(
        default=None, description="rescan-batch only: the stored images to re-match, in order."
    )

    @model_validator(mode="after")
    def _digests_only_in_batches(self) -> Self:
        if self.action is Action.RESCAN_BATCH:
            if not self.digests:
                raise ValueError("a rescan-batch message needs a non-empty digests list")
            if len(self.digests) > MAX_BATCH_DIGESTS:
                raise ValueError(f"a rescan-batch message names at most {MAX_BATCH_DIGESTS} images")
            if not all(self.digests):
                raise ValueError("a rescan-batch message names an empty digest")
        elif self.digests is not None:
            raise ValueError(f"only a rescan-batch message carries digests, not {self.action.value}")
        return self

    @model_serializer(mode="wrap")
    def _without_unused_digests(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Other messages leave the field out, so their JSON stays what workers deployed before it
        # existed accept (the model forbids unknown fields): a rolling deployment drains them.
        data = handler(self)
        if isinstance(data, dict) and data.get("digests") is None:
            data.pop("digests", None)
        return data

    @property
    def reference(self) -> str:
        """REGISTRY/REPO[:TAG|@DIGEST] as the registry source parses it."""
        base = f"{self.registry}/{self.repository}"
        if self.digest:
            return f"{base}@{self.digest}"
        return f"{base}:{self.tag or 'latest'}"


class Skip(BaseModel):
    """An event acknowledged and not acted on (a Helm chart, a signature, a failed push)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str
    event_id: str | None = None


class ScanOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    digest: str
    scanned: bool = Field(description="False when the digest's inventory already existed and was reused.")
    findings_open: int = 0
    findings_new: int = 0
    findings_resolved: int = 0
    alerts_created: int = 0
    alerts_published: int = 0


class ImageFailure(BaseModel):
    """One image of a rescan-batch that failed for a reason of its own (the others went on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: str
    reason: str


class BatchOutcome(BaseModel):
    """What a rescan-batch message did: one result per image re-matched or skipped, and the images that failed."""

    model_config = ConfigDict(extra="forbid")

    event_id: str
    results: list[ScanOutcome | Skip] = Field(default_factory=list)
    failures: list[ImageFailure] = Field(default_factory=list)

    @property
    def rescanned(self) -> int:
        return sum(1 for r in self.results if isinstance(r, ScanOutcome))

    @property
    def skipped(self) -> int:
        return sum(1 for r in self.results if isinstance(r, Skip))

    def summary(self) -> str:
        """One log line: counts, and which images failed."""
        new = sum(r.findings_new for r in self.results if isinstance(r, ScanOutcome))
        alerts = sum(r.alerts_created for r in self.results if isinstance(r, ScanOutcome))
        text = (
            f"{self.rescanned} re-matched, {self.skipped} skipped, {len(self.failures)} failed; "
            f"{new} new findings, {alerts} alerts"
        )
        if self.failures:
            text += " (failed: " + ", ".join(f.digest for f in self.failures[:5])
            text += ", ...)" if len(self.failures) > 5 else ")"
        return text
