"""The one exception the rpmdb readers raise."""

from __future__ import annotations

from shared.scanning.parsers import ParseError


class RpmdbError(ParseError):
    """An rpm database or header is malformed. The message says what and where."""
