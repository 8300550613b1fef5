"""Errors of the vulnerability database."""

from __future__ import annotations

from shared.errors import InputError


class VulnDBError(InputError):
    """The database file or an input to it is unusable; the message names it."""
