"""Store errors: a condition that no longer holds, and a store that cannot be reached."""

from __future__ import annotations

from shared.errors import HullwatchError


class PreconditionFailed(HullwatchError):
    """An ETag condition failed: someone else changed the document first. Re-read and retry."""


class StoreUnavailable(HullwatchError):
    """The store did not answer after the retries the adapter allows; the platform should retry later."""
