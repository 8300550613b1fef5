"""Packagist (Composer) versions: Composer's normalisation, then PHP's ``version_compare``.

Composer compares versions the way ``composer/semver`` does: it first
normalises them (``VersionParser::normalize``), then orders the normalised
strings with PHP's ``version_compare``. Normalisation:

- strips a leading ``v`` and build metadata (``+...``), pads the number to four
  parts (``1.2`` -> ``1.2.0.0``), or keeps a date-like number as dot-separated
  digits (``20230101`` -> ``20230101``);
- rewrites the stability suffix: ``a``/``alpha`` -> ``alpha``, ``b``/``beta`` ->
  ``beta``, ``RC``, ``p``/``pl``/``patch`` -> ``patch``, with its number
  (``1.0.0-beta.2`` -> ``1.0.0.0-beta2``), and a trailing ``dev``
  (``1.0.x-dev``, ``1.0.0-dev``); ``stable`` is dropped.

``version_compare`` then splits the string at ``.``, ``-``, ``_``, ``+`` and
every change between digits and non-digits, and compares part by part: numbers
as integers; words by the order ``dev < alpha = a < beta = b < RC = rc <
(a number) < pl = p`` (a word counts as the first of those it starts with; any
other word sorts below ``dev``); where one string has ended, a number left on the
other makes it newer and a word is compared as if against a number. So
``1.0.0-dev < 1.0.0-alpha1 < 1.0.0-beta2 < 1.0.0-RC1 < 1.0.0 < 1.0.0-patch1 <
1.0.1``.

Branches: the default branch names ``master``, ``trunk``, ``default`` (and
``dev-`` + those) sort as ``9999999-dev``, newer than any release, as Composer's
own ``Semver::sort`` places them (``normalizeDefaultBranch``). Other branch names
(``dev-main``, ``dev-feature/x``) are not versions: Composer never orders them
against versions, so they raise InvalidVersion, as do strings Composer cannot
normalise.
"""

from __future__ import annotations

import re

from shared.vulndb.versions._common import Items, cached
from shared.vulndb.versions.errors import InvalidVersion

SCHEME = "packagist"

_MODIFIER = r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*+)?)?([.-]?dev)?"
_CLASSICAL = re.compile(rf"v?(\d{{1,5}}+)(\.\d++)?(\.\d++)?(\.\d++)?{_MODIFIER}", re.IGNORECASE | re.ASCII)
_DATETIME = re.compile(rf"v?(\d{{4}}(?:[.:-]?\d{{2}}){{1,6}}(?:[.:-]?\d{{1,3}}){{0,2}}){_MODIFIER}", re.I | re.A)
_BUILD = re.compile(r"([^,\s+]++)\+[^\s]++")
_DEV_SUFFIX = re.compile(r"(.*?)[.-]?dev", re.IGNORECASE | re.ASCII)
_BRANCH = re.compile(r"v?(\d++)(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?", re.IGNORECASE | re.ASCII)
_STABILITY = {"a": "alpha", "b": "beta", "p": "patch", "pl": "patch", "rc": "RC"}

# PHP's special version words and their order; a number ranks as "#" (4).
_SPECIAL_FORMS = (
    ("dev", 0),
    ("alpha", 1),
    ("a", 1),
    ("beta", 2),
    ("b", 2),
    ("RC", 3),
    ("rc", 3),
    ("#", 4),
    ("pl", 5),
    ("p", 5),
)
_NUMBER_RANK = 4


def normalize(version: str) -> str:
    """Composer's normalised form of a version (``VersionParser::normalize``); raises InvalidVersion."""
    text = version.strip()
    if text in ("master", "trunk", "default"):
        text = "dev-" + text
    if text[:4].lower() == "dev-":
        return "dev-" + text[4:]
    m = _BUILD.fullmatch(text)
    if m is not None:
        text = m[1]
    groups: tuple[str | None, ...] | None = None
    m = _CLASSICAL.fullmatch(text)
    if m is not None:
        normalized = m[1] + (m[2] or ".0") + (m[3] or ".0") + (m[4] or ".0")
        groups = m.groups()[4:]
    else:
        m = _DATETIME.fullmatch(text)
        if m is not None:
            normalized = re.sub(r"\D", ".", m[1], flags=re.ASCII)
            groups = m.groups()[1:]
    if groups is not None:
        stability, number, dev = groups
        if stability:
            if stability == "stable":
                return normalized
            normalized += "-" + _STABILITY.get(stability.lower(), stability.lower()) + (number or "").lstrip(".-")
        if dev:
            normalized += "-dev"
        return normalized
    m = _DEV_SUFFIX.fullmatch(text)
    if m is not None:
        branch = _BRANCH.fullmatch(m[1].strip())
        if branch is not None:
            parts = [(p or ".x").replace("*", "x").replace("X", "x") for p in branch.groups()]
            return "".join(parts).replace("x", "9999999") + "-dev"
    raise InvalidVersion(SCHEME, version, "Composer cannot normalise it")


def _special_rank(word: str) -> int:
    for form, rank in _SPECIAL_FORMS:
        if word.startswith(form):
            return rank
    return -1


def _php_parts(text: str) -> list[str]:
    """The parts PHP's version_compare compares (php_canonicalize_version, then split on '.')."""
    out = [text[0]]
    previous = text[0]
    for ch in text[1:]:
        if ch in "-_+":
            if out[-1] != ".":
                out.append(".")
        elif (ch.isdigit() != previous.isdigit()) and ch != "." and previous != ".":
            if out[-1] != ".":
                out.append(".")
            out.append(ch)
        elif not ch.isalnum():
            if out[-1] != ".":
                out.append(".")
        else:
            out.append(ch)
        previous = ch
    return "".join(out).split(".")


def parse(version: str) -> Items:
    """Order items of a Packagist version; raises InvalidVersion for branches and what Composer rejects."""
    normalized = normalize(version)
    if normalized in ("dev-master", "dev-trunk", "dev-default"):
        normalized = "9999999-dev"
    if normalized.startswith("dev-"):
        raise InvalidVersion(SCHEME, version, "a development branch, which Composer does not order against versions")
    out: list[int | str] = []
    for part in _php_parts(normalized):
        if part[:1].isdigit():
            out += (_NUMBER_RANK, int(part))
        else:
            out += (_special_rank(part), 0)
    # Where one version has ended, it counts as a number smaller than every
    # number and as "#" against words.
    out += (_NUMBER_RANK, -1)
    return out


key = cached(SCHEME, parse)
