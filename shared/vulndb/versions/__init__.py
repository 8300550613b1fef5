"""Version ordering for every ecosystem OSV describes, as each ecosystem's own tool orders it.

Public API::

    compare(ecosystem, a, b) -> int      # -1, 0 or 1, like cmp(a, b)
    sort_key(ecosystem, version) -> key  # compare(e, a, b) == cmp(sort_key(e, a), sort_key(e, b))
    key_function(ecosystem) -> function  # version -> sort key, for keying many versions of one ecosystem
    parse_ok(ecosystem, version) -> bool
    scheme_of(ecosystem) -> str          # "dpkg", "apk", "rpm", "pep440", "npm", ...

``ecosystem`` is the OSV ecosystem string exactly as OSV writes it, release
suffix included ("Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.19",
"Red Hat:enterprise_linux:9::appstream", "PyPI", "crates.io", ...). The version
scheme is chosen by the part before the first ``:``:

==================  =========================================================
scheme              ecosystems
==================  =========================================================
dpkg                Debian, Ubuntu
apk                 Alpine, Wolfi, Chainguard
rpm                 Red Hat, Rocky Linux, AlmaLinux, SUSE, openSUSE, Azure
                    Linux, Amazon Linux, Fedora, Oracle Linux, Mageia,
                    openEuler, Photon OS
pep440              PyPI (legacy non-PEP 440 versions included)
npm                 npm (semver 2.0.0, optional leading ``v``)
cargo               crates.io (semver 2.0.0)
go                  Go (module versions with or without ``v``, go1.x tags)
maven               Maven (Maven 3.9 ComparableVersion)
rubygems            RubyGems (Gem::Version)
packagist           Packagist (Composer normalisation + version_compare)
nuget               NuGet (NuGet.Versioning)
==================  =========================================================

Each module of this package documents its scheme and its sources. An unknown
ecosystem raises :class:`UnsupportedEcosystem`; a version its scheme cannot read
raises :class:`InvalidVersion`; both are ``ValueError`` subclasses whose message
names the ecosystem and the version.

Speed: a key is a ``str`` whose plain string order is the version order (each
scheme reads a version into a flat sequence of ints and strings, which is then
encoded order-preservingly), so a matcher that computes keys once compares two
of them with one C string comparison, tens of nanoseconds, and can hash them.
Parsing is cached per scheme (``functools.lru_cache``, bounded), so
:func:`compare` and :func:`sort_key` on versions seen before cost a cache
lookup. Keys are only meaningful against keys of the same scheme. Versions
longer than 512 characters are refused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final

from shared.vulndb.versions import apk, dpkg, golang, maven, nuget, packagist, pep440, rpm, rubygems, semver
from shared.vulndb.versions._common import Key
from shared.vulndb.versions.errors import InvalidVersion, UnsupportedEcosystem, VersionError

__all__ = [
    "ECOSYSTEM_SCHEMES",
    "KEY_ENCODING",
    "InvalidVersion",
    "Key",
    "UnsupportedEcosystem",
    "VersionError",
    "clear_caches",
    "compare",
    "key_function",
    "parse_ok",
    "scheme_of",
    "sort_key",
]

#: The version of the keys this package makes: the key encoding and every scheme's reading of versions. Keys
#: outlive a process where a database stores them (the vulnerability database keeps the keys of its range bounds,
#: and names this version beside them so that keys made by another version are not compared with these). Bump it
#: whenever any key changes; tests/unit/vulndb/test_versions_fast.py pins a fingerprint of keys of every scheme
#: that fails until it is.
KEY_ENCODING: Final = 1

_KeyFunction = Callable[[str], Key]

# Scheme name -> cached key function.
_SCHEMES: Final[dict[str, _KeyFunction]] = {
    "dpkg": dpkg.key,
    "apk": apk.key,
    "rpm": rpm.key,
    "pep440": pep440.key,
    "npm": semver.npm_key,
    "cargo": semver.cargo_key,
    "go": golang.key,
    "maven": maven.key,
    "rubygems": rubygems.key,
    "packagist": packagist.key,
    "nuget": nuget.key,
}

# The one table: OSV ecosystem name (the part before the first ':') -> scheme.
ECOSYSTEM_SCHEMES: Final[dict[str, str]] = {
    "Debian": "dpkg",
    "Ubuntu": "dpkg",
    "Alpine": "apk",
    "Wolfi": "apk",
    "Chainguard": "apk",
    "Red Hat": "rpm",
    "Rocky Linux": "rpm",
    "AlmaLinux": "rpm",
    "SUSE": "rpm",
    "openSUSE": "rpm",
    "Azure Linux": "rpm",
    "Amazon Linux": "rpm",
    "Fedora": "rpm",
    "Oracle Linux": "rpm",
    "Mageia": "rpm",
    "openEuler": "rpm",
    "Photon OS": "rpm",
    "PyPI": "pep440",
    "npm": "npm",
    "crates.io": "cargo",
    "Go": "go",
    "Maven": "maven",
    "RubyGems": "rubygems",
    "Packagist": "packagist",
    "NuGet": "nuget",
}


@functools.lru_cache(maxsize=1024)
def _scheme(ecosystem: str) -> tuple[str, _KeyFunction]:
    name = ECOSYSTEM_SCHEMES.get(ecosystem.partition(":")[0])
    if name is None:
        raise UnsupportedEcosystem(ecosystem)
    return name, _SCHEMES[name]


def scheme_of(ecosystem: str) -> str:
    """The version scheme an OSV ecosystem uses ("dpkg", "rpm", ...); raises UnsupportedEcosystem."""
    return _scheme(ecosystem)[0]


def key_function(ecosystem: str, *, cached: bool = True) -> Callable[[str], Key]:
    """The key function of an ecosystem's scheme; raises UnsupportedEcosystem.

    ``key_function(e)(v) == sort_key(e, v)`` for every valid version, without looking the scheme up on each
    call (for callers that key many versions). The InvalidVersion it raises names the scheme, not ``e``:
    ``err.in_ecosystem(e)`` is what sort_key would have raised. ``cached=False``: the function without the
    scheme's parse cache, for a caller that keeps its own.
    """
    fn = _scheme(ecosystem)[1]
    return fn if cached else getattr(fn, "__wrapped__", fn)


def sort_key(ecosystem: str, version: str) -> Key:
    """A key whose ordering is the ecosystem's version ordering (cached).

    ``compare(e, a, b) == cmp(sort_key(e, a), sort_key(e, b))``. Keys are
    strings: cheap to compare and hash, meaningful only against keys of the same
    scheme, and not meant to be read. Raises UnsupportedEcosystem or InvalidVersion.
    """
    fn = _scheme(ecosystem)[1]
    try:
        return fn(version)
    except InvalidVersion as err:
        raise err.in_ecosystem(ecosystem) from None


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is older than, the same as, or newer than ``b`` in ``ecosystem``."""
    fn = _scheme(ecosystem)[1]
    try:
        ka = fn(a)
        kb = fn(b)
    except InvalidVersion as err:
        raise err.in_ecosystem(ecosystem) from None
    return (ka > kb) - (ka < kb)


def parse_ok(ecosystem: str, version: str) -> bool:
    """Whether ``version`` is a valid version of ``ecosystem``; raises UnsupportedEcosystem for an unknown one."""
    fn = _scheme(ecosystem)[1]
    try:
        fn(version)
    except InvalidVersion:
        return False
    return True


def clear_caches() -> None:
    """Empty the parse caches (for benchmarks and tests; never needed for correctness)."""
    for fn in _SCHEMES.values():
        cache_clear = getattr(fn, "cache_clear", None)
        if cache_clear is not None:
            cache_clear()
