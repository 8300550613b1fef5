"""Order laws for every version scheme, on generated versions; and the public API's contract.

For each family the generators build versions from the scheme's grammar (not
random text), and the tests check that ``compare`` is a total order that
``sort_key`` reproduces: reflexive, antisymmetric, transitive, and sorting by
key equals sorting by pairwise comparison.
"""

from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from shared.vulndb.versions import (
    ECOSYSTEM_SCHEMES,
    InvalidVersion,
    UnsupportedEcosystem,
    VersionError,
    clear_caches,
    compare,
    parse_ok,
    scheme_of,
    sort_key,
)
from shared.vulndb.versions._common import MAX_LENGTH, encode

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

num = st.integers(min_value=0, max_value=30).map(str)
big = st.sampled_from(["123", "2010", "20100102", "99999"])
lower_word = st.sampled_from(["a", "b", "rc", "alpha", "beta", "dev", "pre", "post", "x", "zz"])


def joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


def optional(s: st.SearchStrategy[str], prefix: str = "") -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), s.map(lambda x: prefix + x))


def repeated(s: st.SearchStrategy[str], sep: str, min_size: int = 0, max_size: int = 4) -> st.SearchStrategy[str]:
    return st.lists(s, min_size=min_size, max_size=max_size).map(sep.join)


# dpkg: [epoch:]upstream[-revision]
dpkg_piece = st.sampled_from([".", "+", "~", "~~", "a", "b", "z", "Z", "+dfsg", "~rc", ".0", "+really"])
dpkg_upstream = joined(num, st.lists(st.tuples(dpkg_piece, optional(num)).map("".join), max_size=4).map("".join))
dpkg_revision = joined(
    num,
    st.lists(st.tuples(st.sampled_from(["+b", "ubuntu", "~bpo", "+deb", "."]), num).map("".join), max_size=3).map(
        "".join
    ),
)
dpkg_versions = joined(st.sampled_from(["", "", "1:", "2:"]), dpkg_upstream, optional(dpkg_revision, "-"))

# apk: digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]
apk_suffix = st.sampled_from(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"])
apk_versions = joined(
    num,
    repeated(st.one_of(num, st.sampled_from(["0", "00", "01", "007"])), ".", max_size=3).map(
        lambda s: "." + s if s else ""
    ),
    optional(st.sampled_from(list("abcz"))),
    st.lists(joined(st.just("_"), apk_suffix, optional(num)), max_size=2).map("".join),
    optional(st.sampled_from(["abc123", "0f", "deadbeef"]), "~"),
    optional(num, "-r"),
)

# rpm: [epoch:]version[-release]
rpm_atom = st.sampled_from(
    ["", "0", "1", "2", "10", "01", "a", "b", "rc", "Z", "~", "^", ".", "_", "+", "~rc1", "^git", "el9", "el9_2"]
)
rpm_part = joined(num, st.lists(rpm_atom, max_size=5).map("".join))
rpm_versions = joined(optional(num.map(lambda n: n + ":")), rpm_part, optional(rpm_part, "-"))

# PyPI: PEP 440 versions and legacy ones.
pep440_versions = joined(
    optional(num, "").map(lambda e: e + "!" if e else ""),
    repeated(num, ".", min_size=1, max_size=4),
    optional(joined(st.sampled_from(["a", "b", "rc", "c", "alpha", "-beta", ".pre"]), num)),
    optional(num, ".post"),
    optional(num, ".dev"),
    optional(repeated(st.one_of(num, lower_word), ".", min_size=1, max_size=3), "+"),
)
legacy_versions = st.sampled_from(
    ["0.1dev-r1234", "2004d", "2.0.0-final", "1.0_final", "0.9.8-2build1", "1.0-a-x", "1.0.x", "1.0-1a", "1.0-final-1"]
)
pypi_versions = st.one_of(pep440_versions, legacy_versions)

# SemVer (npm, crates.io).
pre_id = st.one_of(num, st.sampled_from(["alpha", "beta", "rc", "x-y", "1a", "-", "A", "Z"]))
semver_core = joined(num, st.just("."), num, st.just("."), num)
semver_versions = joined(
    semver_core,
    optional(repeated(pre_id, ".", min_size=1, max_size=3), "-"),
    optional(st.sampled_from(["build", "001", "sha.5114f85"]), "+"),
)
npm_versions = joined(st.sampled_from(["", "v"]), semver_versions)

# Go: module versions (v optional, shorthands), pseudo-versions, toolchain tags.
go_versions = st.one_of(
    joined(st.sampled_from(["", "v"]), semver_versions),
    joined(st.sampled_from(["v", ""]), num, optional(num, ".")),
    joined(st.just("v"), semver_core, st.just("-0.20191109021931-daa7c04131f5")),
    joined(st.just("v0.0.0-"), st.sampled_from(["20191109021931", "20200101000000"]), st.just("-daa7c04131f5")),
    joined(st.just("go1."), num, optional(num, "."), optional(joined(st.sampled_from(["rc", "beta"]), num))),
)

# Maven: items separated by '.', '-' or nothing, qualifiers in any case.
maven_item = st.sampled_from(
    [
        "0",
        "1",
        "2",
        "10",
        "00",
        "a",
        "b",
        "m",
        "alpha",
        "beta",
        "rc",
        "cr",
        "SNAPSHOT",
        "ga",
        "Final",
        "sp",
        "xyz",
        "redhat",
    ]
)
maven_versions = joined(num, st.lists(joined(st.sampled_from([".", "-", ""]), maven_item), max_size=5).map("".join))

# RubyGems: digits, then '.'-separated alphanumerics, optional '-' part.
gem_part = st.one_of(num, lower_word, st.sampled_from(["A", "rc1", "1a", "b2"]))
gem_versions = joined(num, st.lists(gem_part.map(lambda p: "." + p), max_size=4).map("".join), optional(gem_part, "-"))

# Packagist: what Composer normalises.
packagist_versions = joined(
    st.sampled_from(["", "v"]),
    repeated(st.one_of(num, big), ".", min_size=1, max_size=4),
    st.sampled_from(
        ["", "-dev", "-beta", "-beta2", "-b3", "-RC1", "rc2", "-alpha1", "-p1", "-patch2", "-beta2-dev", "+build"]
    ),
)

# NuGet: 1-4 numbers, labels, metadata.
nuget_label = st.one_of(num, st.sampled_from(["alpha", "BETA", "rc", "Rc", "x-y", "1a"]))
nuget_versions = joined(
    repeated(num, ".", min_size=1, max_size=4),
    optional(repeated(nuget_label, ".", min_size=1, max_size=3), "-"),
    optional(st.sampled_from(["build", "sha.1"]), "+"),
)

FAMILIES: dict[str, st.SearchStrategy[str]] = {
    "Debian:12": dpkg_versions,
    "Alpine:v3.19": apk_versions,
    "Red Hat": rpm_versions,
    "PyPI": pypi_versions,
    "npm": npm_versions,
    "crates.io": semver_versions,
    "Go": go_versions,
    "Maven": maven_versions,
    "RubyGems": gem_versions,
    "Packagist": packagist_versions,
    "NuGet": nuget_versions,
}


def _check_order_laws(ecosystem: str, versions: list[str]) -> None:
    valid = [v for v in versions if parse_ok(ecosystem, v)]
    for a in valid:
        assert compare(ecosystem, a, a) == 0
    for a, b in itertools.product(valid, repeat=2):
        assert compare(ecosystem, a, b) == -compare(ecosystem, b, a), (a, b)
        ka, kb = sort_key(ecosystem, a), sort_key(ecosystem, b)
        assert compare(ecosystem, a, b) == (ka > kb) - (ka < kb), (a, b)
    for a, b, c in itertools.permutations(valid, 3):
        if compare(ecosystem, a, b) <= 0 and compare(ecosystem, b, c) <= 0:
            assert compare(ecosystem, a, c) <= 0, (a, b, c)
    by_key = sorted(valid, key=lambda v: sort_key(ecosystem, v))
    by_compare = sorted(valid, key=functools.cmp_to_key(functools.partial(compare, ecosystem)))
    assert by_key == by_compare


@pytest.mark.parametrize("ecosystem", list(FAMILIES))
def test_order_laws(ecosystem: str) -> None:
    # The generators follow each grammar, so most generated versions must be
    # valid: the laws are then checked on real versions, not on refusals.
    valid = total = 0

    @SETTINGS
    @given(st.lists(FAMILIES[ecosystem], min_size=3, max_size=6))
    def check(versions: list[str]) -> None:
        nonlocal valid, total
        for version in versions:
            try:
                sort_key(ecosystem, version)
            except InvalidVersion as err:
                assert ecosystem in str(err)
            else:
                valid += 1
            total += 1
        _check_order_laws(ecosystem, versions)

    check()
    assert valid >= total // 2, (valid, total)


@SETTINGS
@given(st.lists(pep440_versions, min_size=2, max_size=5))
def test_pep440_agrees_with_packaging(versions: list[str]) -> None:
    for a, b in itertools.product(versions, repeat=2):
        va, vb = Version(a), Version(b)
        assert compare("PyPI", a, b) == (va > vb) - (va < vb), (a, b)


@SETTINGS
@given(semver_versions, semver_versions)
def test_go_v_prefix_and_build_do_not_matter(a: str, b: str) -> None:
    assert compare("Go", a, b) == compare("Go", "v" + a, b) == compare("Go", a, "v" + b)
    assert compare("Go", a.split("+")[0], b) == compare("Go", a, b)
    assert compare("npm", a, b) == compare("crates.io", a, b)


# Items of one "shape" (an int then a string, repeated), as every scheme's
# sequences are where they first differ: huge and negative ints, and strings
# with NULs and non-ASCII characters included.
item_pairs = st.lists(
    st.tuples(st.one_of(st.integers(-600, 5000), st.integers(-(10**120), 10**200)), st.text(max_size=4)), max_size=4
).map(lambda pairs: [x for pair in pairs for x in pair])


@SETTINGS
@given(item_pairs, item_pairs)
def test_key_encoding_preserves_tuple_order(a: list[int | str], b: list[int | str]) -> None:
    ta, tb = tuple(a), tuple(b)
    ka, kb = encode(a), encode(b)
    assert (ka > kb) - (ka < kb) == (ta > tb) - (ta < tb), (a, b)
    assert (ka == kb) == (ta == tb)


# --- the public API --------------------------------------------------------

OSV_ECOSYSTEMS = {
    "Debian": "dpkg",
    "Debian:12": "dpkg",
    "Ubuntu": "dpkg",
    "Ubuntu:22.04:LTS": "dpkg",
    "Ubuntu:Pro:18.04:LTS": "dpkg",
    "Alpine": "apk",
    "Alpine:v3.19": "apk",
    "Wolfi": "apk",
    "Chainguard": "apk",
    "Red Hat": "rpm",
    "Red Hat:enterprise_linux:9::appstream": "rpm",
    "Rocky Linux": "rpm",
    "Rocky Linux:9": "rpm",
    "AlmaLinux": "rpm",
    "AlmaLinux:8": "rpm",
    "SUSE": "rpm",
    "SUSE:Linux Enterprise Server 15 SP5": "rpm",
    "openSUSE": "rpm",
    "openSUSE:Leap 15.5": "rpm",
    "Azure Linux": "rpm",
    "Azure Linux:3": "rpm",
    "Amazon Linux:2": "rpm",
    "Fedora:39": "rpm",
    "Oracle Linux:9": "rpm",
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


@pytest.mark.parametrize(("ecosystem", "scheme"), OSV_ECOSYSTEMS.items())
def test_every_osv_ecosystem_string_finds_its_scheme(ecosystem: str, scheme: str) -> None:
    assert scheme_of(ecosystem) == scheme
    assert ecosystem.partition(":")[0] in ECOSYSTEM_SCHEMES


@pytest.mark.parametrize("ecosystem", ["", "debian", "Pypi", "NPM", "Hex", "Pub", "GIT", ":Debian", " Debian"])
def test_unknown_ecosystems_are_refused(ecosystem: str) -> None:
    for call in (
        lambda: compare(ecosystem, "1", "2"),
        lambda: sort_key(ecosystem, "1"),
        lambda: parse_ok(ecosystem, "1"),
        lambda: scheme_of(ecosystem),
    ):
        with pytest.raises(UnsupportedEcosystem) as err:
            call()
        assert repr(ecosystem) in str(err.value)
        assert isinstance(err.value, ValueError)
        assert isinstance(err.value, VersionError)


def test_invalid_version_names_the_ecosystem_and_the_version() -> None:
    with pytest.raises(InvalidVersion) as err:
        compare("Ubuntu:22.04:LTS", "1.0-1", "not a version")
    assert isinstance(err.value, ValueError)
    assert err.value.ecosystem == "Ubuntu:22.04:LTS"
    assert err.value.version == "not a version"
    assert "Ubuntu:22.04:LTS" in str(err.value)
    assert "'not a version'" in str(err.value)
    assert err.value.reason in str(err.value)


@pytest.mark.parametrize("ecosystem", list(FAMILIES))
def test_absurdly_long_versions_are_refused(ecosystem: str) -> None:
    with pytest.raises(InvalidVersion, match="longer than"):
        sort_key(ecosystem, "1" * (MAX_LENGTH + 1))
    with pytest.raises(InvalidVersion, match="longer than"):
        sort_key(ecosystem, "1." * MAX_LENGTH)


def test_compare_returns_minus_one_zero_or_one() -> None:
    assert compare("npm", "1.0.0", "2.0.0") == -1
    assert compare("npm", "2.0.0", "2.0.0") == 0
    assert compare("npm", "10.0.0", "2.0.0") == 1


def test_keys_are_cached_and_survive_a_cache_clear() -> None:
    first = sort_key("Maven", "1.2.3-SNAPSHOT")
    assert sort_key("Maven", "1.2.3-SNAPSHOT") is first
    clear_caches()
    again = sort_key("Maven", "1.2.3-SNAPSHOT")
    assert again == first
    assert hash(again) == hash(first)
