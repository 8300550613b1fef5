"""RubyGems versions, ordered as ``Gem::Version#<=>`` orders them.

A version is digits, then ``.``-separated alphanumeric parts, optionally a ``-``
and more parts (``Gem::Version::ANCHORED_VERSION_PATTERN``); surrounding spaces
are ignored. ``-`` means ``.pre.``. The version is cut into runs of digits
(integers) and runs of letters (strings); any part containing a letter makes the
version a pre-release. Trailing zeros are dropped from the numeric head and from
the rest separately (``1.0 == 1.0.0``, ``1.0.a == 1.a``), then segments compare
left to right, a missing one counting as 0: integers by value, strings as bytes
(case-sensitive), and a string below any integer, 0 included (``1.0.a < 1.0 <
1.0.0.1``, ``1.0.b1 < 1.0.b2 < 1.0``).
"""

from __future__ import annotations

import re

from shared.vulndb.versions._common import Items, cached, padded
from shared.vulndb.versions.errors import InvalidVersion

SCHEME = "rubygems"

_VERSION = re.compile(r"[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?")
_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")


def _drop_trailing_zeros(segments: list[int | str]) -> list[int | str]:
    while segments and segments[-1] == 0:
        segments.pop()
    return segments


def parse(version: str) -> Items:
    """Order items of a gem version; raises InvalidVersion where Gem::Version.correct? is false."""
    text = version.strip()
    if not _VERSION.fullmatch(text):
        raise InvalidVersion(SCHEME, version, "not a Gem::Version (digits, then '.'-separated alphanumerics)")
    segments: list[int | str] = [int(s) if s.isdigit() else s for s in _SEGMENT.findall(text.replace("-", ".pre."))]
    head = 0
    while head < len(segments) and isinstance(segments[head], int):
        head += 1
    canonical = _drop_trailing_zeros(segments[:head]) + _drop_trailing_zeros(segments[head:])
    return padded(None if s == 0 else ((-1, s) if isinstance(s, str) else (1, s)) for s in canonical)


key = cached(SCHEME, parse)
