"""Semantic Versioning 2.0.0 (npm, crates.io), with precedence as semver.org section 11 defines it.

``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``: the three numbers compare as
integers; a version with a pre-release sorts before the same version without
one; pre-release identifiers compare left to right, numeric ones as integers,
alphanumeric ones in ASCII order, numeric below alphanumeric, and a shorter list
of equal leading identifiers first (``1.0.0-alpha < 1.0.0-alpha.1 <
1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 <
1.0.0``). Build metadata is ignored (``1.0.0+a == 1.0.0+b``).

The grammar is strict, as both ecosystems' tools are by default: no leading
zeros in numbers or numeric identifiers, no missing parts. npm's ``semver``
(``new SemVer(v)`` without ``loose``, which is how npm reads lock files) also
accepts surrounding whitespace and one leading ``v`` (``v1.2.3``), and refuses
numbers above 2**53-1; crates.io's ``semver`` crate accepts neither prefix nor
whitespace, and numbers up to 2**64-1.

Why not ``univers``: it was evaluated (32.0.1) for every scheme here. Its
classes compare through Python-level ``__lt__`` methods (about 10-30 thousand
comparisons a second, against the millions the string keys here give), and several of its
orders disagree with the ecosystems' tools (apk ``1.0 == 1.0-r0``, Maven
``2.0.a > 2-1`` and ``1.0.0.RC1 > 1.0.0-RC2``). So every scheme is written here,
against the tools' own documentation and test suites.
"""

from __future__ import annotations

import re

from shared.vulndb.versions._common import LENGTH_MARKS, Items, Key, cached, encode
from shared.vulndb.versions.errors import InvalidVersion

NUMBER = r"(?:0|[1-9][0-9]*)"
PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
BUILD_ID = r"[0-9A-Za-z-]+"
PRERELEASE = rf"{PRERELEASE_ID}(?:\.{PRERELEASE_ID})*"
BUILD = rf"{BUILD_ID}(?:\.{BUILD_ID})*"

_SEMVER = re.compile(rf"({NUMBER})\.({NUMBER})\.({NUMBER})(?:-({PRERELEASE}))?(?:\+({BUILD}))?")

_NPM_MAX = 2**53 - 1
_CARGO_MAX = 2**64 - 1


def prerelease_items(prerelease: str | None) -> list[int | str]:
    """Items for a pre-release: [1] without one, else 0 then (kind, value) per identifier."""
    if prerelease is None:
        return [1]
    out: list[int | str] = [0]
    for ident in prerelease.split("."):
        if ident.isdigit():
            out += (0, int(ident))
        else:
            out += (1, ident)
    return out


def _parse(scheme: str, version: str, text: str, limit: int) -> Items:
    m = _SEMVER.fullmatch(text)
    if m is None:
        raise InvalidVersion(scheme, version, "not MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] (semver 2.0.0)")
    major, minor, patch = int(m[1]), int(m[2]), int(m[3])
    if max(major, minor, patch) > limit:
        raise InvalidVersion(scheme, version, f"a number is larger than {limit}")
    return [major, minor, patch, *prerelease_items(m[4])]


def parse_npm(version: str) -> Items:
    """Order items of an npm version (strict semver, optional leading 'v', surrounding spaces ignored)."""
    text = version.strip()
    if len(text) > 256:
        raise InvalidVersion("npm", version, "longer than 256 characters")
    if text.startswith("v"):
        text = text[1:]
    return _parse("npm", version, text, _NPM_MAX)


def parse_cargo(version: str) -> Items:
    """Order items of a crates.io version (strict semver)."""
    return _parse("crates.io", version, version, _CARGO_MAX)


# Plain MAJOR.MINOR.PATCH, the form of most versions, optionally with the plainest pre-release (a word, then
# perhaps a number: "beta", "rc.1"): numbers of at most 15 digits stay below both ecosystems' limits (2**53-1
# is 16 digits long).
_PLAIN = re.compile(
    r"(0|[1-9][0-9]{0,14})\.(0|[1-9][0-9]{0,14})\.(0|[1-9][0-9]{0,14})(?:-([a-z]+)(?:\.(0|[1-9][0-9]{0,14}))?)?"
)
_NO_PRERELEASE = encode(prerelease_items(None))
_PRERELEASE_WORD = encode([0, 1])  # prerelease_items: 0 (a pre-release), then (1, word) for a word ...
_PRERELEASE_NUMBER = encode([0])  # ... and (0, number) for a number


def plain_key(version: str) -> Key | None:
    """The key of a plain ``MAJOR.MINOR.PATCH[-word[.number]]`` version, built from its text; None for any other."""
    m = _PLAIN.fullmatch(version)
    if m is None:
        return None
    a, b, c, word, number = m.groups()
    # encode() of a non-negative int below 150 digits: its length as one character, then its digits; of a
    # string without NUL: the string, then two NULs
    core = f"{LENGTH_MARKS[len(a)]}{a}{LENGTH_MARKS[len(b)]}{b}{LENGTH_MARKS[len(c)]}{c}"
    if word is None:
        return core + _NO_PRERELEASE
    if number is None:
        return f"{core}{_PRERELEASE_WORD}{word}\0\0"
    return f"{core}{_PRERELEASE_WORD}{word}\0\0{_PRERELEASE_NUMBER}{LENGTH_MARKS[len(number)]}{number}"


npm_key = cached("npm", parse_npm, plain_key)
cargo_key = cached("crates.io", parse_cargo, plain_key)
