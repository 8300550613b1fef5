"""Typed messages between triggers and the scan worker (queue payloads), and their outcomes.

Triggers only validate an event and enqueue a :class:`ScanMessage`; the worker
does the work. Messages are JSON on every queue (Azure Storage, SQS, local).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Action(StrEnum):
    PUSH = "push"  # an image was pushed: scan it (once per digest)
    DELETE = "delete"  # an image was deleted: resolve its findings
    RESCAN = "rescan"  # re-match a stored inventory against current vulnerability data


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
