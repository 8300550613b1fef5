"""Service errors and how platforms should treat them (the mapping to HTTP/retry lives per platform)."""

from __future__ import annotations

from shared.errors import HullwatchError, InputError


class InvalidEvent(InputError):
    """A malformed or forged event: acknowledged with an error, never retried."""


class RegistryNotAllowed(InvalidEvent):
    """The event names a registry that is not in the configuration (no server-side request forgery)."""


class Retryable(HullwatchError):
    """A transient failure (store throttled, registry 5xx after retries): let the platform retry."""
