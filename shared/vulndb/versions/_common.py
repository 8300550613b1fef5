"""Pieces every scheme shares: the key encoding, the parse cache, and the zero-padded sequence."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

from shared.vulndb.versions.errors import InvalidVersion

# What a scheme's parser produces: a flat sequence of ints and strings whose
# tuple order is the scheme's version order. Two sequences of one scheme never
# hold an int and a string at the first position where they differ.
Items = Sequence[int | str]

# A sort key: the items encoded into one string whose plain string order is the
# items' tuple order (see encode). Comparing two keys is one memcmp-like string
# comparison in C, whatever the scheme, and keys hash and compare for equality
# as cheaply.
Key = str

# Parsed keys are cached per scheme. The same versions recur across images and
# advisories, so a few thousand entries already hit almost always; the bound
# keeps a long-running matcher's memory flat.
CACHE_SIZE = 16384

# No real version is longer; the bound also keeps every digit run well inside
# what int() converts.
MAX_LENGTH = 512

_COMPLEMENT = str.maketrans("0123456789", "9876543210")


def _encode_int(n: int) -> str:
    # One character giving the digit count (more digits sort higher for positive
    # numbers, lower for negative ones), then the digits (complemented for
    # negative numbers, so that larger magnitudes sort lower). Every encoding is
    # order-preserving and no encoding is a prefix of another.
    if n >= 0:
        digits = str(n)
        if len(digits) < 150:
            return chr(0x60 + len(digits)) + digits
        return "\xff" + _encode_int(len(digits)) + digits
    digits = str(-n).translate(_COMPLEMENT)
    if len(digits) < 90:
        return chr(0x5F - len(digits)) + digits
    return "\x01" + _encode_int(-len(digits)) + digits


def _encode_str(s: str) -> str:
    # The string itself, then a terminator below every character; a NUL inside
    # is escaped to a pair that sorts above the terminator and below any other
    # character, so the encoding stays order-preserving and prefix-free.
    if "\0" in s:
        s = s.replace("\0", "\0\1")
    return s + "\0\0"


# Encodings of the small ints that make up most items, precomputed.
_SMALL_INTS = {n: _encode_int(n) for n in range(-512, 4096)}


def encode(items: Iterable[int | str]) -> Key:
    """The key of a flat item sequence: string order of keys == tuple order of items.

    Each item is encoded so that encodings are order-preserving and
    prefix-free; concatenation then preserves lexicographic order, including
    "a sequence that is a prefix of another sorts first".
    """
    small = _SMALL_INTS.get
    return "".join(
        [
            (item + "\0\0" if "\0" not in item else _encode_str(item))
            if type(item) is str
            else (small(item) or _encode_int(item))  # type: ignore[arg-type]
            for item in items
        ]
    )


def digits_key(digits: str) -> Key:
    """The encoding of the int an ASCII digit string (leading zeros allowed, under 150 digits) spells.

    ``_encode_int`` of a non-negative int is its digit count as one character, then its digits; a
    digit string already holds those digits, so the int need not be built and printed again.
    """
    digits = digits.lstrip("0") or "0"
    return LENGTH_MARKS[len(digits)] + digits


# The first character of the encoding of a non-negative int of 0..149 digits (see _encode_int).
LENGTH_MARKS = tuple(chr(0x60 + n) for n in range(150))


def cached(
    scheme: str, parse: Callable[[str], Items], fast: Callable[[str], Key | None] | None = None
) -> Callable[[str], Key]:
    """The scheme's key function: length guard, parse, encode, behind a bounded LRU cache.

    ``fast``, if given, builds the key of the versions it recognises (the plain ones most
    advisories and inventories use, such as ``1.2.3``) straight from the text, and returns None for
    any other version, which then takes the general path. Its keys must equal the general path's
    (``encode(parse(version))``); the property tests check that on generated versions.
    """
    if fast is None:

        @functools.lru_cache(maxsize=CACHE_SIZE)
        def key(version: str) -> Key:
            if len(version) > MAX_LENGTH:
                raise InvalidVersion(scheme, version[:64] + "...", f"longer than {MAX_LENGTH} characters")
            return encode(parse(version))

        return key

    @functools.lru_cache(maxsize=CACHE_SIZE)
    def fast_key(version: str) -> Key:
        if len(version) > MAX_LENGTH:
            raise InvalidVersion(scheme, version[:64] + "...", f"longer than {MAX_LENGTH} characters")
        k = fast(version)
        return encode(parse(version)) if k is None else k

    return fast_key


def padded(elements: Iterable[tuple[int, int | str] | None]) -> list[int | str]:
    """Items for a sequence compared element by element with an implicit zero padding.

    Several schemes (dpkg, RubyGems) compare two sequences position by position,
    treating a missing element as a neutral "zero" that some elements sort below
    and some above. Plain tuple ordering gets that wrong: it ranks a tuple below
    every longer tuple that starts with it. Each element is therefore given as
    ``None`` (a zero) or ``(sign, value)`` with sign -1 (sorts below zero) or +1
    (above zero), values of one sign comparable with each other. Each non-zero
    element becomes three items: its sign, the number of zeros before it
    (negated for positive elements, so that a non-zero element met earlier
    outranks a zero in the same place), and its value; a final 0 stands for the
    zeros that pad the sequence forever, so it ranks above any negative group
    and below any positive one.
    """
    out: list[int | str] = []
    zeros = 0
    for element in elements:
        if element is None:
            zeros += 1
            continue
        sign, value = element
        out.append(sign)
        out.append(-zeros if sign > 0 else zeros)
        out.append(value)
        zeros = 0
    out.append(0)
    return out
