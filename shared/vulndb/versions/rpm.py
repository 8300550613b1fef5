"""RPM package versions (Red Hat and its rebuilds, SUSE, Fedora, Azure Linux, Amazon Linux, ...).

A version is ``[epoch:]version[-release]``: the epoch is the leading digits
before a ``:`` (0 when absent), the release whatever follows the last ``-``.
Epochs compare as integers, then version and release with rpm's ``rpmvercmp``
(rpm >= 4.15):

- each string is a sequence of segments: runs of ASCII digits, runs of ASCII
  letters, and the marks ``~`` and ``^``; every other character only separates
  (so ``1.0 == 1_0`` and ``1.0a == 1.0.a``);
- digit runs compare as integers, letter runs as bytes, and a digit run is newer
  than a letter run;
- ``~`` sorts before everything, even the end of the string (``1.0~rc1 < 1.0``);
- ``^`` sorts after the end of the string but before any other segment
  (``1.0 < 1.0^git1 < 1.0.1``).

A missing release sorts before every release (``1.0 < 1.0-1``, ``1.0 <
1.0-~1``), as rpm's own EVR comparison (``rpm.ver`` in rpm's Lua) orders it.
"""

from __future__ import annotations

from shared.vulndb.versions._common import Items, cached
from shared.vulndb.versions.errors import InvalidVersion

SCHEME = "rpm"

# Segment classes, in rpmvercmp's order. Every segment is two key items (class,
# value) so that values are only ever compared within one class; the end of the
# string is one item.
_TILDE, _END, _CARET, _ALPHA, _NUMBER = range(5)
_NO_RELEASE = -1


def vercmp_items(text: str) -> list[int | str]:
    """Items whose tuple order is ``rpmvercmp`` order on version or release strings."""
    out: list[int | str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "~":
            out += (_TILDE, 0)
            i += 1
        elif ch == "^":
            out += (_CARET, 0)
            i += 1
        elif "0" <= ch <= "9":
            j = i + 1
            while j < n and "0" <= text[j] <= "9":
                j += 1
            out += (_NUMBER, int(text[i:j]))
            i = j
        elif ch.isascii() and ch.isalpha():
            j = i + 1
            while j < n and text[j].isascii() and text[j].isalpha():
                j += 1
            out += (_ALPHA, text[i:j])
            i = j
        else:
            i += 1
    out.append(_END)
    return out


def parse(version: str) -> Items:
    """Order items of an rpm ``[epoch:]version[-release]``; raises InvalidVersion when a part is empty."""
    if not version or any(ch.isspace() for ch in version):
        raise InvalidVersion(SCHEME, version, "empty or contains whitespace")
    epoch = 0
    rest = version
    digits = 0
    while digits < len(version) and "0" <= version[digits] <= "9":
        digits += 1
    if digits < len(version) and version[digits] == ":":
        epoch = int(version[:digits]) if digits else 0
        rest = version[digits + 1 :]
    upstream, hyphen, release = rest.rpartition("-")
    if not hyphen:
        upstream, release = rest, ""
    elif not release:
        raise InvalidVersion(SCHEME, version, "release after '-' is empty")
    if not upstream:
        raise InvalidVersion(SCHEME, version, "version part is empty")
    # The version items end with their end mark, so equal versions line up the releases.
    return [epoch, *vercmp_items(upstream), *(vercmp_items(release) if hyphen else [_NO_RELEASE])]


key = cached(SCHEME, parse)
