"""Go module and toolchain versions (Go), ordered as ``golang.org/x/mod/semver`` orders them.

Module versions are semantic versions with a leading ``v``: ``vMAJOR[.MINOR[.PATCH
[-PRERELEASE][+BUILD]]]``, where ``v1`` and ``v1.2`` stand for ``v1.0.0`` and
``v1.2.0`` (``x/mod/semver`` accepts those shorthands, without suffixes). OSV's
Go records write versions without the ``v`` (``1.2.3``) - the Go vulnerability
database strips it - so the ``v`` is optional here. Precedence is semver's:
pre-release identifiers as in semver.org, build metadata ignored, so
``+incompatible`` does not change the order. Pseudo-versions
(``v0.0.0-20191109021931-daa7c04131f5``, ``v1.2.4-0.20191109021931-daa7c04131f5``)
are pre-releases and sort where ``go`` sorts them: after the tagged versions they
build on and before the next release.

The standard library and toolchain have their own tags (``go1.21.5``,
``go1.21rc2``, ``go1.9beta1``); OSV writes them as semver the way the Go
vulnerability database converts them (``1.21.5``, ``1.21.0-rc.2``,
``1.9.0-beta.1``, ``go1.20`` -> ``1.20.0``). Both spellings are accepted.
"""

from __future__ import annotations

import re

from shared.vulndb.versions._common import Items, Key, cached
from shared.vulndb.versions.errors import InvalidVersion
from shared.vulndb.versions.semver import BUILD, NUMBER, PRERELEASE, plain_key, prerelease_items

SCHEME = "go"

_MODULE = re.compile(rf"v?({NUMBER})(?:\.({NUMBER})(?:\.({NUMBER})(?:-({PRERELEASE}))?(?:\+({BUILD}))?)?)?")
_TOOLCHAIN = re.compile(rf"go({NUMBER})(?:\.({NUMBER}))?(?:\.({NUMBER}))?(?:(alpha|beta|rc)({NUMBER}))?")


def parse(version: str) -> Items:
    """Order items of a Go module version (``v`` optional) or a ``go1.x`` toolchain tag."""
    m = _MODULE.fullmatch(version)
    if m is not None:
        return [int(m[1]), int(m[2] or 0), int(m[3] or 0), *prerelease_items(m[4])]
    t = _TOOLCHAIN.fullmatch(version)
    if t is not None:
        pre = f"{t[4]}.{t[5]}" if t[4] else None
        return [int(t[1]), int(t[2] or 0), int(t[3] or 0), *prerelease_items(pre)]
    raise InvalidVersion(SCHEME, version, "not a Go semantic version (v1.2.3, 1.2.3-pre+build) nor a go1.x tag")


def _plain_key(version: str) -> Key | None:
    # v1.2.3 and 1.2.3 read as semver's 1.2.3 (numbers unbounded in Go, but 15 digits take the fast way)
    return plain_key(version[1:] if version.startswith("v") else version)


key = cached(SCHEME, parse, _plain_key)
