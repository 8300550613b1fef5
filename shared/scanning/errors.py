"""Errors raised while reading images."""

from __future__ import annotations

from shared.errors import InputError


class ImageError(InputError):
    """The image (or one of its parts) is bad or cannot be reached."""


class DigestMismatch(ImageError):
    """A manifest or blob does not hash to the digest it was asked for by."""


class LimitExceeded(ImageError):
    """A size limit set against hostile images was crossed."""
