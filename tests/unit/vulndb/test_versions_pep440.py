"""PyPI version ordering: PEP 440, and the legacy versions OSV orders before all of them."""

from __future__ import annotations

import itertools

import pytest
from packaging.version import Version

from shared.vulndb.versions import InvalidVersion, compare, parse_ok, sort_key
from shared.vulndb.versions.pep440 import is_pep440, legacy_parts

# PEP 440, "Summary of permitted suffixes and relative ordering": "the following
# example covers many of the possible combinations", in ascending order.
PEP440_EXAMPLE = [
    "1.dev0",
    "1.0.dev456",
    "1.0a1",
    "1.0a2.dev456",
    "1.0a12.dev456",
    "1.0a12",
    "1.0b1.dev456",
    "1.0b2",
    "1.0b2.post345.dev456",
    "1.0b2.post345",
    "1.0rc1.dev456",
    "1.0rc1",
    "1.0",
    "1.0+abc.5",
    "1.0+abc.7",
    "1.0+5",
    "1.0.post456.dev34",
    "1.0.post456",
    "1.0.15",
    "1.1.dev1",
]

# PEP 440 normalization: different spellings of one version (sections
# "Normalization", "Version epochs", "Local version identifiers").
PEP440_EQUAL = [
    ("1.0", "1.0.0"),
    ("1.0", "v1.0"),
    ("1.0a1", "1.0alpha1"),
    ("1.0b1", "1.0-beta.1"),
    ("1.0rc1", "1.0c1"),
    ("1.0rc1", "1.0pre1"),
    ("1.0rc1", "1.0preview1"),
    ("1.0.post1", "1.0-1"),
    ("1.0.post1", "1.0.r1"),
    ("1.0.post0", "1.0.post"),
    ("1.0.dev0", "1.0.dev"),
    ("1.0+ubuntu-1", "1.0+ubuntu.1"),
    ("0!1.0", "1.0"),
    ("01.02", "1.2"),
]

# Legacy (non PEP 440) versions that old PyPI releases carry. OSV sorts them with
# packaging.version.parse as it was up to packaging 21 (osv.dev,
# osv/ecosystems/pypi.py): LegacyVersion, epoch -1, below every PEP 440 version.
# Every expected order below was checked against packaging 21.3's LegacyVersion.
LEGACY = ["0.1dev-r1234", "2004d", "2.0.0-final", "1.0_final", "0.9.8-2build1", "1.0-a-x", "1.0.x", "1.0-1a"]
LEGACY_ORDERED = [
    # setuptools' parse_version rules: 'dev' sorts lowest, then words in
    # character order ('-' reads as 'final-'), numbers above words.
    ("0.1dev-r1234", "0.1dev-r1235"),
    ("1.0dev-r1", "1.0-a-x"),
    ("1.0-a-x", "1.0-final"),
    ("1.0-final", "1.0-final-1"),
    ("1.0-final", "1.0-x"),
    ("1.0-x", "1.0-1a"),
    ("1.0-x", "1.0.x"),
    ("1.0_final", "1.0.x"),
    ("2004d", "2005d"),
    ("0.9-final", "0.9.8-2build1"),
]
LEGACY_EQUAL = [
    ("1.0-final", "1.0.0-final"),
    ("2.0.0-final", "2-final"),
    ("1.0.x", "1.0.0.x"),
]


def test_pep440_example_order() -> None:
    for i, j in itertools.combinations(range(len(PEP440_EXAMPLE)), 2):
        a, b = PEP440_EXAMPLE[i], PEP440_EXAMPLE[j]
        assert compare("PyPI", a, b) == -1, (a, b)
        assert compare("PyPI", b, a) == 1, (b, a)


@pytest.mark.parametrize(("a", "b"), PEP440_EQUAL)
def test_pep440_spellings_are_equal(a: str, b: str) -> None:
    assert compare("PyPI", a, b) == 0
    assert sort_key("PyPI", a) == sort_key("PyPI", b)


def test_pep440_agrees_with_packaging() -> None:
    versions = [*PEP440_EXAMPLE, *(v for pair in PEP440_EQUAL for v in pair), "2!0.1", "1.0.post1.dev1", "1.0a1.post1"]
    for a, b in itertools.product(versions, repeat=2):
        va, vb = Version(a), Version(b)
        assert compare("PyPI", a, b) == (va > vb) - (va < vb), (a, b)


def test_legacy_versions_sort_before_every_pep440_version() -> None:
    for legacy in LEGACY:
        assert not is_pep440(legacy)
        assert parse_ok("PyPI", legacy)
        for modern in ["0.0.dev0", "0", "1.0", "9999"]:
            assert compare("PyPI", legacy, modern) == -1, (legacy, modern)
            assert compare("PyPI", modern, legacy) == 1, (modern, legacy)


@pytest.mark.parametrize(("a", "b"), LEGACY_ORDERED)
def test_legacy_order(a: str, b: str) -> None:
    assert not is_pep440(a)
    assert not is_pep440(b)
    assert compare("PyPI", a, b) == -1
    assert compare("PyPI", b, a) == 1


@pytest.mark.parametrize(("a", "b"), LEGACY_EQUAL)
def test_legacy_equal(a: str, b: str) -> None:
    assert not is_pep440(a)
    assert not is_pep440(b)
    assert compare("PyPI", a, b) == 0


def test_legacy_key_shape() -> None:
    # setuptools' parse_version key: zero-padded numbers, '*'-prefixed words,
    # trailing zeros dropped before a word, closed with '*final'.
    assert legacy_parts("0.1dev-r1234") == ("00000000", "00000001", "*@", "*final-", "*r", "00001234", "*final")
    assert legacy_parts("2004d") == ("00002004", "*d", "*final")


@pytest.mark.parametrize("version", ["", "   ", "1.0 beta", "1.0\t2"])
def test_empty_or_spaced_versions_are_refused(version: str) -> None:
    assert not parse_ok("PyPI", version)
    with pytest.raises(InvalidVersion, match="PyPI"):
        compare("PyPI", version, "1.0")
