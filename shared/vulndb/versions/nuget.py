"""NuGet versions, ordered as NuGet.Versioning's ``VersionComparer.Default`` orders them.

A version is 1 to 4 dot-separated numbers (each up to 2**31-1, leading zeros
allowed), an optional ``-`` and dot-separated release labels (``[0-9A-Za-z-]``,
no leading zeros in numeric labels), and optional ``+`` build metadata.
Missing numbers are 0 (``1.0 == 1.0.0.0``). Versions compare by the four
numbers, then a version without labels after one with labels, then labels left
to right: numeric labels (that fit a 32-bit int) as integers and before
alphanumeric ones, alphanumeric labels case-insensitively (``1.0.0-ALPHA ==
1.0.0-alpha``), fewer labels first. Metadata is ignored.
"""

from __future__ import annotations

import re

from shared.vulndb.versions._common import Items, cached
from shared.vulndb.versions.errors import InvalidVersion

SCHEME = "nuget"

_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+){0,3}")
_LABEL = re.compile(r"[0-9A-Za-z-]+")
_INT32_MAX = 2**31 - 1


def parse(version: str) -> Items:
    """Order items of a NuGet version; raises InvalidVersion where NuGetVersion.TryParse fails."""

    def bad(reason: str) -> InvalidVersion:
        return InvalidVersion(SCHEME, version, reason)

    text = version.strip()
    text, plus, metadata = text.partition("+")
    if plus and not all(_LABEL.fullmatch(part) for part in metadata.split(".")):
        raise bad("invalid build metadata")
    numbers_text, hyphen, release = text.partition("-")
    if not _NUMBERS.fullmatch(numbers_text):
        raise bad("not 1 to 4 dot-separated numbers")
    numbers = [int(n) for n in numbers_text.split(".")]
    if max(numbers) > _INT32_MAX:
        raise bad(f"a number is larger than {_INT32_MAX}")
    numbers += [0] * (4 - len(numbers))
    if not hyphen:
        return [*numbers, 1]
    out: list[int | str] = [*numbers, 0]
    for label in release.split("."):
        if not _LABEL.fullmatch(label):
            raise bad(f"invalid release label {label!r}")
        if label.isdigit():
            if len(label) > 1 and label[0] == "0":
                raise bad(f"numeric release label {label!r} has a leading zero")
            if int(label) <= _INT32_MAX:
                out += (0, int(label))
                continue
        out += (1, label.upper())
    return out


key = cached(SCHEME, parse)
