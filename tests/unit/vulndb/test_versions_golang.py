"""Go version ordering: module versions as golang.org/x/mod/semver orders them, and toolchain tags."""

from __future__ import annotations

import itertools

import pytest

from shared.vulndb.versions import InvalidVersion, compare, parse_ok

# golang.org/x/mod/semver's semver_test.go: the valid versions of its table, in
# ascending order; each group holds versions that compare equal (same
# canonical form). The invalid ones are in INVALID.
X_MOD_SEMVER = [
    ["v1.0.0-alpha"],
    ["v1.0.0-alpha.1"],
    ["v1.0.0-alpha.beta"],
    ["v1.0.0-beta"],
    ["v1.0.0-beta.2"],
    ["v1.0.0-beta.11"],
    ["v1.0.0-rc.1"],
    ["v1", "v1.0", "v1.0.0"],
    ["v1.2", "v1.2.0"],
    ["v1.2.3-456"],
    ["v1.2.3-456.789"],
    ["v1.2.3-456-789"],
    ["v1.2.3-456a"],
    ["v1.2.3-pre", "v1.2.3-pre+meta"],
    ["v1.2.3-pre.1"],
    ["v1.2.3-zzz"],
    ["v1.2.3", "v1.2.3+meta", "v1.2.3+meta-pre", "v1.2.3+meta-pre.sha.256a"],
]
INVALID = [
    "bad",
    "v1-alpha.beta.gamma",
    "v1-pre",
    "v1+meta",
    "v1-pre+meta",
    "v1.2-pre",
    "v1.2-pre+meta",
    "",
    "v",
    "v01.2.3",
    "v1.2.3-01",
    "v1.2.3.4",
    "go",
    "go1.21.x",
    "gov1.2.3",
]

# Pseudo-versions (go.dev/ref/mod#pseudo-versions): pre-releases of the next
# version, ordered by their timestamp, after the tagged version they build on.
PSEUDO = [
    "v0.0.0-20191109021931-daa7c04131f5",
    "v0.0.0-20200101000000-aaaaaaaaaaaa",
    "v0.1.0",
    "v0.1.1-0.20200101000000-bbbbbbbbbbbb",
    "v0.1.1",
    "v1.2.3-pre",
    "v1.2.3-pre.0.20200101000000-cccccccccccc",
    "v1.2.3",
]


def test_x_mod_semver_table() -> None:
    flat = [(group, v) for group, versions in enumerate(X_MOD_SEMVER) for v in versions]
    for ga, a in flat:
        for gb, b in flat:
            want = (ga > gb) - (ga < gb)
            assert compare("Go", a, b) == want, (a, b)
            # OSV's Go records drop the "v": the order must not depend on it.
            assert compare("Go", a.removeprefix("v"), b) == want, (a, b)


@pytest.mark.parametrize("version", INVALID)
def test_invalid_versions_are_refused(version: str) -> None:
    assert not parse_ok("Go", version)
    with pytest.raises(InvalidVersion, match="Go"):
        compare("Go", version, "v1.0.0")


def test_pseudo_versions_are_prereleases() -> None:
    for a, b in itertools.pairwise(PSEUDO):
        assert compare("Go", a, b) == -1, (a, b)
        assert compare("Go", b, a) == 1, (b, a)


def test_incompatible_build_suffix_does_not_change_the_order() -> None:
    assert compare("Go", "v2.0.0+incompatible", "v2.0.0") == 0
    assert compare("Go", "v2.0.1+incompatible", "v2.0.0+incompatible") == 1
    assert compare("Go", "2.0.0+incompatible", "v2.0.0-rc.1+incompatible") == 1


def test_toolchain_versions_as_osv_writes_them_and_as_go_tags() -> None:
    # The Go vulnerability database writes stdlib/toolchain versions as semver
    # without "v" (go1.21.5 -> 1.21.5, go1.22rc1 -> 1.22.0-rc.1, go1.20 -> 1.20.0).
    assert compare("Go", "go1.21.5", "1.21.5") == 0
    assert compare("Go", "go1.22rc1", "1.22.0-rc.1") == 0
    assert compare("Go", "go1.9beta2", "1.9.0-beta.2") == 0
    assert compare("Go", "go1.20", "1.20.0") == 0
    ordered = ["1.21.0-rc.1", "go1.21rc2", "1.21.0", "go1.21.1", "1.21.10", "1.22.0-rc.1", "go1.22.0"]
    for a, b in itertools.pairwise(ordered):
        assert compare("Go", a, b) == -1, (a, b)
