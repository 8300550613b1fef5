"""Python package versions (PyPI): PEP 440, and the legacy versions old releases carry.

PEP 440 versions are parsed by ``packaging.version.Version`` (the reference
implementation pip uses) and ordered as it orders them: epoch, release (trailing
zeros ignored), then ``.devN`` < ``aN`` < ``bN`` < ``rcN`` < release <
``.postN``, then the local label (``+ubuntu1``), where a version with a local
label sorts after the same version without one.

Old releases on PyPI also carry versions that are not PEP 440 at all
(``0.1dev-r1234``, ``1.0-beta``, ``2.0.0-final``, ``2004d``). OSV orders those
with ``packaging.version.parse`` as it was up to packaging 21, which returned a
``LegacyVersion`` for them (see osv.dev's ``osv/ecosystems/pypi.py``, whose sort
key is ``packaging.version.parse``): every legacy version sorts before every PEP
440 version (its epoch is -1), and legacy versions order among themselves by
setuptools' old ``parse_version`` key. packaging 22 removed ``LegacyVersion``, so
that key is rebuilt here: the lowercased string is cut into digit runs, letter
runs, ``.`` and ``-`` (anything else stays as it is); ``.`` is dropped; digit
runs are zero-padded to 8 characters; ``pre``/``preview``/``rc`` become ``c``,
``dev`` becomes ``@`` and ``-`` becomes ``final-``; other words are prefixed with
``*``; a ``*final`` closes the list; and before each word, trailing ``00000000``
parts are dropped, as are ``*final-`` parts before a word sorting below
``*final``.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion as _PackagingInvalidVersion
from packaging.version import Version

from shared.vulndb.versions._common import Items, Key, cached, digits_key, encode
from shared.vulndb.versions.errors import InvalidVersion

SCHEME = "pep440"

_PRE_RANK = {"a": 0, "b": 1, "rc": 2}

# packaging <= 21 and setuptools' old parse_version: the parts of a legacy version.
_LEGACY_PART = re.compile(r"(\d+|[a-z]+|\.|-)")
_LEGACY_REPLACE = {"pre": "c", "preview": "c", "-": "final-", "rc": "c", "dev": "@"}


def legacy_parts(text: str) -> tuple[str, ...]:
    """setuptools' old parse_version key of a legacy version (packaging <= 21 ``LegacyVersion``)."""
    parts: list[str] = []
    pieces = [_LEGACY_REPLACE.get(p, p) for p in _LEGACY_PART.split(text.lower())]
    for piece in [*pieces, "final"]:
        if not piece or piece == ".":
            continue
        if piece[0].isdigit() and piece[0].isascii():
            parts.append(piece.zfill(8))
            continue
        word = "*" + piece
        if word < "*final":
            while parts and parts[-1] == "*final-":
                parts.pop()
        while parts and parts[-1] == "00000000":
            parts.pop()
        parts.append(word)
    return tuple(parts)


def _pep440_items(v: Version) -> list[int | str]:
    release = list(v.release)
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    out: list[int | str] = [1, v.epoch, *release, -1]  # -1 ends the release, below any part
    # Missing segments sort as the infinities packaging uses: a dev release with
    # neither pre- nor post-release sorts before every pre-release of its version.
    if v.pre is not None:
        out += (1, _PRE_RANK[v.pre[0]], v.pre[1])
    elif v.post is None and v.dev is not None:
        out.append(0)
    else:
        out.append(2)
    out += (0,) if v.post is None else (1, v.post)
    out += (1,) if v.dev is None else (0, v.dev)
    if v.local is None:
        out.append(0)
    else:
        out.append(1)
        for segment in v.local.split("."):
            # Numeric segments sort after alphanumeric ones.
            out += (1, int(segment)) if segment.isdigit() else (0, segment)
    return out


def parse(version: str) -> Items:
    """Order items of a PyPI version, PEP 440 or legacy; raises InvalidVersion for an empty one."""
    text = version.strip()
    if not text or any(ch.isspace() for ch in text):
        raise InvalidVersion(SCHEME, version, "empty or contains whitespace")
    try:
        return _pep440_items(Version(text))
    except _PackagingInvalidVersion:
        return [0, *legacy_parts(text)]


# The canonical spellings most PyPI versions use (1.2.3, 1.2.3rc1, 1.2.post1, 1.2.dev0): no epoch,
# no local label, no alternative spelling. Parsing them with packaging costs several times what
# reading them here does; the keys are the same (the property tests compare the two).
_CANONICAL = re.compile(
    r"([0-9]{1,100}(?:\.[0-9]{1,100})*)(?:(a|b|rc)([0-9]{1,100}))?(?:\.post([0-9]{1,100}))?(?:\.dev([0-9]{1,100}))?"
)
_HEAD = encode([1, 0])  # a PEP 440 version, epoch 0
_END_RELEASE = encode([-1])
_NO_PRE = encode([2])
_DEV_ONLY = encode([0])
_PRE_HEAD = {kind: encode([1, rank]) for kind, rank in _PRE_RANK.items()}
_NO_POST = encode([0])
_POST_HEAD = encode([1])
_NO_DEV = encode([1])
_DEV_HEAD = encode([0])
_NO_LOCAL = encode([0])
_PLAIN_TAIL = _END_RELEASE + _NO_PRE + _NO_POST + _NO_DEV + _NO_LOCAL


def _canonical_key(version: str) -> Key | None:
    """The key of a canonical-form PEP 440 version, read from its text (as _pep440_items reads a Version)."""
    m = _CANONICAL.fullmatch(version)
    if m is None:
        return None
    release, pre, pre_n, post, dev = m.groups()
    parts = release.split(".")
    while len(parts) > 1 and not parts[-1].strip("0"):
        parts.pop()  # trailing zeros do not count: 1.0 == 1
    head = _HEAD + "".join([digits_key(p) for p in parts])
    if pre is None and post is None and dev is None:
        return head + _PLAIN_TAIL
    out = [head, _END_RELEASE]
    if pre is not None:
        out += (_PRE_HEAD[pre], digits_key(pre_n))
    elif post is None:
        out.append(_DEV_ONLY)
    else:
        out.append(_NO_PRE)
    out.append(_NO_POST if post is None else _POST_HEAD + digits_key(post))
    out.append(_NO_DEV if dev is None else _DEV_HEAD + digits_key(dev))
    out.append(_NO_LOCAL)
    return "".join(out)


key = cached(SCHEME, parse, _canonical_key)


def is_pep440(version: str) -> bool:
    """Whether a version is a PEP 440 version (rather than a legacy one)."""
    try:
        Version(version.strip())
    except _PackagingInvalidVersion:
        return False
    return True
