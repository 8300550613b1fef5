"""The fast paths of the version schemes give exactly the keys of the general path.

Several schemes build the key of their plainest versions (``1.2.3``, ``1.2.3rc1``,
``1:1.2.3-1+deb12u1``) straight from the text instead of parsing the version into
items and encoding those. These tests generate versions of those forms, near
misses that must take the general path, and the grammar-based versions of the order
law tests, and check that every key the fast path builds equals
``encode(parse(version))``, and that a version either path refuses is still refused.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.vulndb.versions import InvalidVersion, clear_caches, dpkg, golang, pep440, semver, sort_key
from shared.vulndb.versions._common import Items, Key, digits_key, encode
from tests.unit.vulndb.test_versions_properties import FAMILIES

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# numbers as versions write them, leading zeros and long runs included
digits = st.one_of(
    st.integers(min_value=0, max_value=40).map(str),
    st.sampled_from(["00", "01", "007", "10", "4095", "4096", "999999999999999", "1000000000000000"]),
    st.text(alphabet="0123456789", min_size=1, max_size=40),
)
dotted = st.lists(digits, min_size=1, max_size=5).map(".".join)
word = st.sampled_from(["alpha", "beta", "rc", "a", "b", "pre", "x", "Beta", "rc-1", ""])

semver_like = st.one_of(
    st.tuples(digits, digits, digits).map(".".join),
    st.tuples(digits, digits, digits, word).map(lambda t: f"{'.'.join(t[:3])}-{t[3]}"),
    st.tuples(digits, digits, digits, word, digits).map(lambda t: f"{'.'.join(t[:3])}-{t[3]}.{t[4]}"),
    dotted,
    FAMILIES["npm"],
)
pep440_like = st.one_of(
    dotted,
    st.tuples(dotted, st.sampled_from(["a", "b", "rc", "c", "alpha", "pre", ""]), digits).map("".join),
    st.tuples(dotted, st.sampled_from([".post", ".dev", "post", "-", ".post.dev"]), digits).map("".join),
    st.tuples(
        dotted, st.sampled_from(["a1", "rc2", ""]), st.sampled_from([".post3", ""]), st.sampled_from([".dev4", ""])
    ).map("".join),
    FAMILIES["PyPI"],
)
dpkg_revision = st.one_of(dotted, st.sampled_from(["1", "0", "2+deb12u1", "1~pre1", "0ubuntu0.22.04.1", "1+b1", ""]))
dpkg_like = st.one_of(
    st.tuples(st.sampled_from(["", "0:", "1:", "12:", "0001:", "9999999999:", ":"]), dotted, dpkg_revision).map(
        lambda t: f"{t[0]}{t[1]}-{t[2]}" if t[2] else f"{t[0]}{t[1]}"
    ),
    st.tuples(dotted, st.sampled_from(["+dfsg", "~rc1", "a", "-", "--1", ".", ""])).map("".join),
    FAMILIES["Debian:12"],
)


def _general(parse: Callable[[str], Items], version: str) -> Key | None:
    try:
        return encode(parse(version))
    except InvalidVersion:
        return None


def _check(fast: Callable[[str], Key | None], parse: Callable[[str], Items], version: str) -> None:
    key = fast(version)
    if key is not None:
        assert key == _general(parse, version), version


@SETTINGS
@given(semver_like)
def test_semver_fast_keys_are_the_general_keys(version: str) -> None:
    _check(semver.plain_key, semver.parse_npm, version)
    _check(semver.plain_key, semver.parse_cargo, version)
    _check(golang._plain_key, golang.parse, version)
    _check(golang._plain_key, golang.parse, "v" + version)


@SETTINGS
@given(pep440_like)
def test_pep440_fast_keys_are_the_general_keys(version: str) -> None:
    _check(pep440._canonical_key, pep440.parse, version)


@SETTINGS
@given(dpkg_like)
def test_dpkg_fast_keys_are_the_general_keys(version: str) -> None:
    _check(dpkg._key, dpkg.parse, version)


@SETTINGS
@given(st.one_of(dotted, dpkg_revision, st.text(alphabet="0123456789.+~abZ", max_size=12)))
def test_dpkg_part_keys_are_the_encoded_part_items(part: str) -> None:
    assert dpkg._part_key(part) == encode(dpkg._part_items(part)), part


@pytest.mark.parametrize(
    ("fast", "version"),
    [
        (semver.plain_key, "1.2.3"),
        (semver.plain_key, "1.2.3-beta.1"),
        (semver.plain_key, "0.0.0-rc"),
        (golang._plain_key, "v1.21.5"),
        (pep440._canonical_key, "1.2.3"),
        (pep440._canonical_key, "2.0rc1.post2.dev3"),
        (pep440._canonical_key, "1.0.0.0"),
        (dpkg._key, "1:2.36-9+deb12u4"),
        (dpkg._key, "20220623.1-1+deb12u2~pre1"),
        (dpkg._key, "1.0"),
    ],
)
def test_plain_versions_take_the_fast_path(fast: Callable[[str], Key | None], version: str) -> None:
    # so that the property tests above compare something
    assert fast(version) is not None


@pytest.mark.parametrize(
    ("fast", "version"),
    [
        (semver.plain_key, "01.2.3"),  # leading zero: invalid, for the general path to refuse
        (semver.plain_key, "1.2"),
        (semver.plain_key, "1.2.3-beta.01"),
        (semver.plain_key, "1.2.3+build"),
        (semver.plain_key, "1.2.3.4"),
        (semver.plain_key, "9999999999999999.0.0"),  # 16 digits: the general path checks the limit
        (pep440._canonical_key, "1!2.0"),
        (pep440._canonical_key, "1.0+local"),
        (pep440._canonical_key, "v1.0"),
        (pep440._canonical_key, "1.0-1"),
        (dpkg._key, "1.0-"),
        (dpkg._key, "a1.0"),
        (dpkg._key, "1:1.0-1-2"),
        (dpkg._key, "9999999999:1.0"),  # epoch over dpkg's limit: the general path refuses it
    ],
)
def test_other_versions_take_the_general_path(fast: Callable[[str], Key | None], version: str) -> None:
    assert fast(version) is None


@pytest.mark.parametrize(
    ("ecosystem", "version"),
    [("npm", "01.2.3"), ("crates.io", "1.2"), ("PyPI", ""), ("Debian:12", "1.0-"), ("Debian:12", "9999999999:1.0")],
)
def test_invalid_versions_are_still_refused(ecosystem: str, version: str) -> None:
    clear_caches()
    with pytest.raises(InvalidVersion):
        sort_key(ecosystem, version)


@SETTINGS
@given(digits)
def test_digits_key_is_the_encoded_int(text: str) -> None:
    assert digits_key(text) == encode([int(text)])


# --- the key encoding's version ---------------------------------------------------------

# Versions of every scheme, plain and not. Their keys are pinned by KEY_FINGERPRINT: keys outlive the process where
# a vulnerability database stores them, under the version KEY_ENCODING names, and a database written with other
# keys must not be read as if it held these.
KEY_SAMPLES = {
    "Debian:12": ["0", "1.0", "1:2.3-4", "2.3~rc1-1", "1.2.3+dfsg-1+deb12u1", "0.9a-2ubuntu1"],
    "Alpine:v3.19": ["1.2.3-r0", "1.2.3_rc1-r1", "2.0_p1-r3", "1.0a-r0"],
    "Red Hat": ["1.2-3.el9", "1:1.2.3-4.el9_2", "2.0~beta1-1", "1.0^git1-1"],
    "PyPI": ["0", "1.0", "1.0rc1", "1.0.post1", "1!2.0.dev3", "2.0+local.1", "0.9-legacy"],
    "npm": ["1.2.3", "1.2.3-beta.1", "v2.0.0", "1.0.0+build"],
    "crates.io": ["0.1.0", "1.0.0-alpha"],
    "Go": ["v1.2.3", "v0.0.0-20210101000000-abcdef123456", "v2.0.0+incompatible", "1.21.0"],
    "Maven": ["1.0", "1.0-SNAPSHOT", "1.0.RELEASE", "2.0-alpha-1"],
    "RubyGems": ["1.0", "1.0.pre", "2.0.0.rc1"],
    "Packagist": ["1.0.0", "v2.1-beta", "1.0.0-RC1"],
    "NuGet": ["1.0.0", "1.0.0-beta.2", "1.0.0.1"],
}
KEY_FINGERPRINT = {1: "a1c048b41846635e7410b22d97183f1632035f7ef0350e63c93dd7603bffaea7"}


def test_keys_are_those_their_encoding_version_names() -> None:
    """Changed keys need a new KEY_ENCODING (and this fingerprint under it): databases then recompute theirs."""
    import hashlib

    from shared.vulndb.versions import _SCHEMES, KEY_ENCODING, scheme_of

    assert {scheme_of(e) for e in KEY_SAMPLES} == set(_SCHEMES), "a sample of every scheme"
    lines = [f"{e}\t{v}\t{sort_key(e, v)!r}" for e, versions in KEY_SAMPLES.items() for v in versions]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == KEY_FINGERPRINT.get(KEY_ENCODING), (
        "the keys changed: bump shared.vulndb.versions.KEY_ENCODING and pin the new fingerprint under it"
    )
