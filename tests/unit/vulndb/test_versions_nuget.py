"""NuGet version ordering, against NuGet.Versioning's tests and NuGet's documented normalisation."""

from __future__ import annotations

import pytest

from shared.vulndb.versions import InvalidVersion, compare, parse_ok

# NuGet.Client test/NuGet.Core.Tests/NuGet.Versioning.Test/VersionComparerTests.cs:
# VersionComparisonDefaultEqual and VersionComparisonDefaultLess.
DEFAULT_EQUAL = [
    ("1.0.0", "1.0.0"),
    ("1.0.0-BETA", "1.0.0-beta"),
    ("1.0.0-BETA+AA", "1.0.0-beta+aa"),
    ("1.0.0-BETA.X.y.5.77.0+AA", "1.0.0-beta.x.y.5.77.0+aa"),
]
DEFAULT_LESS = [
    ("0.0.0", "1.0.0"),
    ("1.0.0", "1.1.0"),
    ("1.0.0", "1.0.1"),
    ("1.999.9999", "2.1.1"),
    ("1.0.0-BETA", "1.0.0-beta2"),
    ("1.0.0-beta+AA", "1.0.0+aa"),
    ("1.0.0-BETA", "1.0.0-beta.1+AA"),
    ("1.0.0-BETA.X.y.5.77.0+AA", "1.0.0-beta.x.y.5.79.0+aa"),
    ("1.0.0-BETA.X.y.5.79.0+AA", "1.0.0-beta.x.y.5.790.0+abc"),
]

# NuGet docs, "Package versioning", normalized version numbers: missing parts are
# zero, leading zeros are dropped, a zero fourth part is omitted, metadata is
# dropped; the fourth (revision) part counts when it is not zero.
NORMALIZED_EQUAL = [
    ("1.0", "1.0.0.0"),
    ("1", "1.0.0"),
    ("1.01.1", "1.1.1"),
    ("1.00", "1.0.0"),
    ("1.0.0.0", "1.0.0"),
    ("1.0.01.0", "1.0.1"),
    ("1.0.0+git.hash", "1.0.0"),
]
LESS = [
    ("1.0.0", "1.0.0.1"),
    ("1.0.0.1", "1.0.1"),
    ("1.0.0-alpha", "1.0.0"),
    ("1.0.0-alpha.2", "1.0.0-alpha.10"),
    ("1.0.0-alpha.10", "1.0.0-alpha.a"),
    ("1.0.0-alpha", "1.0.0-alpha.1"),
    ("1.0.0-rc.1", "1.0.0-RC.2"),
    ("1.0.0-alpha-1", "1.0.0-alpha1"),
]

INVALID = ["", "a", "1.0.0.0.0", "1.0.0-", "1.0.0-01", "1.0.0-a..b", "1.0.0+", "1.0.0-a_b", "v1.0.0", "2147483648.0.0"]


@pytest.mark.parametrize(("a", "b"), DEFAULT_EQUAL + NORMALIZED_EQUAL)
def test_equal(a: str, b: str) -> None:
    assert compare("NuGet", a, b) == 0
    assert compare("NuGet", b, a) == 0


@pytest.mark.parametrize(("lower", "higher"), DEFAULT_LESS + LESS)
def test_less(lower: str, higher: str) -> None:
    assert compare("NuGet", lower, higher) == -1
    assert compare("NuGet", higher, lower) == 1


def test_numeric_labels_beyond_int32_compare_as_text() -> None:
    # CompareRelease uses Int32.TryParse: a larger number is an alphanumeric label.
    assert compare("NuGet", "1.0.0-2147483648", "1.0.0-9") == 1
    assert compare("NuGet", "1.0.0-2147483648", "1.0.0-a") == -1


@pytest.mark.parametrize("version", INVALID)
def test_invalid_versions_are_refused(version: str) -> None:
    assert not parse_ok("NuGet", version)
    with pytest.raises(InvalidVersion, match="NuGet"):
        compare("NuGet", version, "1.0.0")
