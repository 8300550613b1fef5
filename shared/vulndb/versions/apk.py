"""Alpine package versions (Alpine, Wolfi, Chainguard), ordered as apk-tools orders them.

The grammar is apk-tools' (``src/version.c``)::

    digits {.digits}... {letter} {_suffix{digits}}... {~hash} {-r digits}

with the suffixes ``alpha beta pre rc`` (pre-releases, in that order, all before
the bare version) and ``cvs svn git hg p`` (after it). A version is read as a
list of typed tokens, and two versions compare token by token while both have a
token of the same type:

- the first number and ``_suffix`` / ``-r`` numbers compare as integers;
- a later ``.number`` compares as an integer, unless either side starts with
  ``0``: then the digit strings compare as text (the Gentoo rule, so
  ``1.02 < 1.1`` and ``1.001 < 1.01``);
- a letter compares by character, a suffix by its rank, a ``~hash`` as text.

Where the token types first differ, the version that goes on with a pre-release
suffix is the older; otherwise the one whose token type comes later in the
grammar (or that has ended) is the older. So ``1.0_rc1 < 1.0 < 1.0_p1``,
``1.0 < 1.0-r0 < 1.0.1`` and ``1.0 < 1.0a``.

A version apk-tools would not validate (``apk_version_validate``) raises
InvalidVersion: uppercase letters, a letter after a letter, an unknown suffix,
a hyphen not followed by ``r`` and digits, anything out of the grammar's order.
"""

from __future__ import annotations

from shared.vulndb.versions._common import Items, cached
from shared.vulndb.versions.errors import InvalidVersion

SCHEME = "apk"

# Token types, in apk-tools' order (their position in the grammar).
_INITIAL, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _HASH, _REVISION, _END = range(8)

# Suffix ranks as apk-tools numbers them; 5 is "no suffix".
_SUFFIX_RANK = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}
_NO_SUFFIX = 5

# Each token becomes three key items: its rank, then two values. The rank is the
# negated token type, so that where types differ the later type sorts lower; a
# pre-release suffix gets a rank below every other, so that it sorts below even
# the end of the other version.
_PRE_SUFFIX_RANK = -100
_END_RANK = -_END

_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_HEX = frozenset("0123456789abcdef")


def _span(text: str, start: int, allowed: frozenset[str]) -> int:
    end = start
    while end < len(text) and text[end] in allowed:
        end += 1
    return end


def parse(version: str) -> Items:
    """Order items of an apk version; raises InvalidVersion for what apk-tools would not validate."""

    def bad(reason: str) -> InvalidVersion:
        return InvalidVersion(SCHEME, version, reason)

    text = version
    end = _span(text, 0, _DIGITS)
    if end == 0:
        raise bad("must start with a digit")
    out: list[int | str] = [-_INITIAL, int(text[:end]), 0]
    previous = _INITIAL
    i = end
    while i < len(text):
        ch = text[i]
        if ch in _LOWER:
            if previous > _DIGIT:
                raise bad(f"letter {ch!r} out of place")
            out += (-_LETTER, ord(ch), 0)
            previous = _LETTER
            i += 1
        elif ch == "." or ch in _DIGITS:
            if ch == ".":
                if previous > _DIGIT:
                    raise bad("'.' out of place")
                i += 1
            if previous in (_INITIAL, _DIGIT):
                token = _DIGIT
            elif previous == _SUFFIX and ch != ".":
                token = _SUFFIX_NO
            else:
                raise bad("number out of place")
            end = _span(text, i, _DIGITS)
            if end == i:
                raise bad("missing number")
            digits = text[i:end]
            if token == _SUFFIX_NO:
                out += (-_SUFFIX_NO, int(digits), 0)
            elif digits[0] == "0":
                out += (-_DIGIT, 0, digits)
            else:
                out += (-_DIGIT, 1, int(digits))
            previous = token
            i = end
        elif ch == "_":
            if previous > _SUFFIX_NO:
                raise bad("'_' out of place")
            end = _span(text, i + 1, _LOWER)
            rank = _SUFFIX_RANK.get(text[i + 1 : end])
            if rank is None:
                raise bad(f"unknown suffix {text[i + 1 : end]!r}")
            out += (_PRE_SUFFIX_RANK if rank < _NO_SUFFIX else -_SUFFIX, rank, 0)
            previous = _SUFFIX
            i = end
        elif ch == "~":
            if previous >= _HASH:
                raise bad("'~' out of place")
            end = _span(text, i + 1, _HEX)
            if end == i + 1:
                raise bad("'~' must be followed by a lowercase hex commit hash")
            out += (-_HASH, text[i + 1 : end], 0)
            previous = _HASH
            i = end
        elif ch == "-":
            if previous >= _REVISION or not text.startswith("-r", i):
                raise bad("'-' must start the final '-r<number>' revision")
            end = _span(text, i + 2, _DIGITS)
            if end == i + 2:
                raise bad("'-r' must be followed by a number")
            out += (-_REVISION, int(text[i + 2 : end]), 0)
            previous = _REVISION
            i = end
        else:
            raise bad(f"unexpected character {ch!r}")
    out.append(_END_RANK)
    return out


key = cached(SCHEME, parse)
