"""Debian package versions (Debian, Ubuntu), ordered as ``dpkg --compare-versions`` orders them.

A version is ``[epoch:]upstream[-revision]`` (Debian Policy 5.6.12). Epochs
compare as integers; upstream and revision compare with dpkg's ``verrevcmp``:
each string is an alternation of a non-digit run and a digit run; non-digit runs
compare character by character where ``~`` sorts before everything (even the
end of the run), then the end of the run, then letters, then every other
character; digit runs compare as integers (an absent run is 0). The revision is
everything after the last hyphen; without one it is empty, so ``1.0 == 1.0-0``.

What dpkg reports as bad syntax (an error or a warning in ``parseversion``) is
refused here: an empty version or revision, embedded spaces, an epoch that is not
a non-negative integer below 2**31, an upstream version not starting with a
digit, or characters outside ``[A-Za-z0-9.+~-:]`` (``:`` and ``-`` only where
the epoch and revision rules allow them).
"""

from __future__ import annotations

import functools
import re

from shared.vulndb.versions._common import CACHE_SIZE, Items, Key, cached, digits_key, encode, padded
from shared.vulndb.versions.errors import InvalidVersion

SCHEME = "dpkg"

_UPSTREAM_OK = re.compile(r"[0-9][A-Za-z0-9.+~:-]*", re.ASCII)
_REVISION_OK = re.compile(r"[A-Za-z0-9.+~]+", re.ASCII)
_EPOCH_MAX = 2**31 - 1


def _weight(ch: str) -> int:
    """Rank of one character of a non-digit run (digits never reach here)."""
    if ch == "~":
        return -1
    if ch.isalpha():
        return ord(ch)
    return ord(ch) + 256


# Each non-digit character as an element of padded(): '~' below zero, the rest above.
_ELEMENT = {ch: (1 if _weight(ch) > 0 else -1, _weight(ch)) for ch in map(chr, range(128)) if not ch.isdigit()}
_RUNS = re.compile(r"([^0-9]*)([0-9]*)")


def _part_items(part: str) -> list[int | str]:
    # Flatten the alternation: the weights of a non-digit run, a 0 for its end,
    # then the digit run's value. Two strings line up item by item until their
    # first difference, and a finished string behaves as an endless run of
    # zeros, which is exactly what padded() encodes. (findall's final empty
    # match only adds zeros, which padded() absorbs.)
    elements: list[tuple[int, int | str] | None] = []
    for letters, digits in _RUNS.findall(part):
        elements += [_ELEMENT[ch] for ch in letters]
        elements.append(None)
        value = int(digits) if digits else 0
        elements.append((1, value) if value else None)
    return padded(elements)


def parse(version: str) -> Items:
    """Order items of a dpkg version; raises InvalidVersion where dpkg reports bad syntax."""
    text = version.strip(" \t")
    if not text:
        raise InvalidVersion(SCHEME, version, "version string is empty")
    if any(ch.isspace() for ch in text):
        raise InvalidVersion(SCHEME, version, "version string has embedded spaces")
    epoch = 0
    epoch_text, colon, rest = text.partition(":")
    if colon:
        if not epoch_text:
            raise InvalidVersion(SCHEME, version, "epoch in version is empty")
        if not (epoch_text.isascii() and epoch_text.isdigit()):
            raise InvalidVersion(SCHEME, version, "epoch in version is not a number")
        epoch = int(epoch_text)
        if epoch > _EPOCH_MAX:
            raise InvalidVersion(SCHEME, version, "epoch in version is too big")
        if not rest:
            raise InvalidVersion(SCHEME, version, "nothing after colon in version number")
        text = rest
    upstream, hyphen, revision = text.rpartition("-")
    if not hyphen:
        upstream, revision = text, ""
    elif not revision:
        raise InvalidVersion(SCHEME, version, "revision number is empty")
    if not upstream:
        raise InvalidVersion(SCHEME, version, "version number is empty")
    if not _UPSTREAM_OK.fullmatch(upstream):
        if not upstream[0].isdigit():
            raise InvalidVersion(SCHEME, version, "version number does not start with digit")
        raise InvalidVersion(SCHEME, version, "invalid character in version number")
    if revision and not _REVISION_OK.fullmatch(revision):
        raise InvalidVersion(SCHEME, version, "invalid character in revision number")
    # Each part ends with padded()'s final 0, so equal upstreams line up the revisions.
    return [epoch, *_part_items(upstream), *_part_items(revision)]


# The key of a version is the concatenation of the keys of its items, so it is built from three
# pieces: the epoch's, the upstream part's and the revision's. Parts recur far more often than whole
# versions (revisions such as "1" or "2+deb12u1" above all), so their keys are cached apart.
# A version this pattern reads whole is valid and splits the way parse() splits it: an epoch of
# at most 9 digits (below dpkg's limit), an upstream part without ':' or '-', and a revision after
# the only hyphen.
_SIMPLE = re.compile(r"(?:([0-9]{1,9}):)?([0-9][A-Za-z0-9.+~]*)(?:-([A-Za-z0-9.+~]+))?")
_DOTTED = re.compile(r"[0-9]{1,100}(?:\.[0-9]{1,100})*")
_EPOCH_ZERO = encode([0])
# items of a number n > 0 in a dotted part (no zeros before it), and of the '.' after a number
# that is or is not zero (two zeros before it then: the empty letter run and the zero itself)
_NUMBER_HEAD = encode([1, -1])
_DOT_AFTER_NUMBER = encode([1, 0, _ELEMENT["."][1]])
_DOT_AFTER_ZERO = encode([1, -2, _ELEMENT["."][1]])
_PART_END = encode([0])


@functools.lru_cache(maxsize=CACHE_SIZE)
def _part_key(part: str) -> Key:
    """encode(_part_items(part)), cached; dotted numbers ("1.2.10") are encoded straight from the text."""
    if not _DOTTED.fullmatch(part):
        return encode(_part_items(part))
    # What _part_items gives a dotted part, worked out: each number is an empty letter run (a zero
    # element) then its value (a zero element if it is 0); each '.' is one element above zero.
    out: list[str] = []
    for number in part.split("."):
        if number.strip("0"):
            out += (_NUMBER_HEAD, digits_key(number), _DOT_AFTER_NUMBER)
        else:
            out.append(_DOT_AFTER_ZERO)
    out[-1] = _PART_END  # no '.' after the last number; the part's zeros run on forever
    return "".join(out)


def _key(version: str) -> Key | None:
    m = _SIMPLE.fullmatch(version)
    if m is None:
        return None  # parse() decides, and names what is wrong
    epoch, upstream, revision = m.groups()
    return (_EPOCH_ZERO if epoch is None else digits_key(epoch)) + _part_key(upstream) + _part_key(revision or "")


key = cached(SCHEME, parse, _key)
