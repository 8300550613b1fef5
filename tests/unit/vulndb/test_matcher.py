"""Matching semantics on hand-written OSV records (each names the public advisory it mirrors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.domain.models import OSInfo, Package
from shared.vulndb import db
from shared.vulndb.importer import import_paths
from shared.vulndb.matcher import Affected, Matcher, evaluate

DATA = Path(__file__).resolve().parents[2] / "data" / "osv"


def entry(eco: str, *ranges: tuple[str, list[tuple[str, str]]], versions: tuple[str, ...] = ()) -> Affected:
    return Affected("X", eco, tuple((t, tuple(ev)) for t, ev in ranges), frozenset(versions), None)


@pytest.mark.parametrize(
    ("version", "hit", "fixes"),
    [
        ("0.9", False, []),
        ("1.0", True, ["1.2", "2.1"]),
        ("1.1", True, ["1.2", "2.1"]),
        ("1.2", False, []),
        ("1.9", False, []),
        ("2.0", True, ["2.1"]),
        ("2.1", False, []),
        ("3.0", True, []),
        ("3.5", True, []),
        ("3.6", False, []),
    ],
)
def test_osv_range_events(version: str, hit: bool, fixes: list[str]) -> None:
    e = entry(
        "PyPI",
        ("ECOSYSTEM", [("introduced", "1.0"), ("fixed", "1.2"), ("introduced", "2.0"), ("fixed", "2.1")]),
        ("ECOSYSTEM", [("introduced", "3.0"), ("last_affected", "3.5")]),
    )
    got = evaluate(e, version)
    assert got[0] is hit
    if hit:
        assert got[1] == fixes


def test_limit_and_versions_list() -> None:
    e = entry("PyPI", ("ECOSYSTEM", [("introduced", "0"), ("limit", "2.0")]), versions=("5.0",))
    assert evaluate(e, "1.5")[0] is True
    assert evaluate(e, "2.0")[0] is False
    assert evaluate(e, "5.0")[0] is True, "an explicitly listed version is affected"


def test_semver_ranges_for_go_compare_without_the_v() -> None:
    e = entry("Go", ("SEMVER", [("introduced", "0"), ("fixed", "1.21.5")]))
    assert evaluate(e, "v1.21.4") == (True, ["1.21.5"])
    assert evaluate(e, "v1.21.5")[0] is False


@pytest.fixture
def osdb(tmp_path: Path) -> Path:
    path = tmp_path / "v.sqlite"
    import_paths(path, [DATA])
    return path


def debian11(name: str, version: str, source: str, source_version: str) -> Package:
    return Package(
        type="dpkg",
        name=name,
        version=version,
        source_name=source,
        source_version=source_version,
        ecosystem="Debian:11",
        purl=f"pkg:deb/debian/{name}@{version}",
        found_in="var/lib/dpkg/status",
    )


def test_debian_backport_is_not_reported_and_older_revision_is(osdb: Path) -> None:
    """DSA-5343-1: bullseye's 1.1.1n-0+deb11u4 carries the fix although upstream fixed 1.1.1t."""
    os = OSInfo(family="debian", version_id="11")
    m = Matcher(db.open_readonly(osdb))
    fixed = m.match([debian11("libssl1.1", "1.1.1n-0+deb11u4", "openssl", "1.1.1n-0+deb11u4")], os)
    assert fixed.findings == []
    old = m.match([debian11("libssl1.1", "1.1.1n-0+deb11u3", "openssl", "1.1.1n-0+deb11u3")], os)
    (f,) = old.findings
    assert (f.id, f.package_name, f.fixed_versions) == ("CVE-2023-0286", "libssl1.1", ("1.1.1n-0+deb11u4",))
    assert f.aliases == ("DSA-5343-1",), "the upstream GIT-range record never matches an OS package"
    # other Debian releases' packages never match a Debian:11 record
    other = debian11("libssl1.1", "1.1.1n-0+deb11u3", "openssl", "1.1.1n-0+deb11u3").model_copy(
        update={"ecosystem": "Debian:12"}
    )
    assert m.match([other], OSInfo(family="debian", version_id="12")).findings == []


def test_alpine_matches_by_origin(osdb: Path) -> None:
    m = Matcher(db.open_readonly(osdb))
    pkgs = [
        Package(
            type="apk",
            name=n,
            version=v,
            source_name="openssl",
            source_version=v,
            ecosystem="Alpine:v3.19",
            purl=f"pkg:apk/alpine/{n}@{v}",
            found_in="lib/apk/db/installed",
        )
        for n, v in (("libcrypto3", "3.1.4-r4"), ("libssl3", "3.1.4-r5"))
    ]
    res = m.match(pkgs, OSInfo(family="alpine", version_id="3.19.1"))
    assert [(f.id, f.package_name, f.fixed_versions) for f in res.findings] == [
        ("CVE-2024-0727", "libcrypto3", ("3.1.4-r5",))
    ]


def test_aliases_merge_into_one_finding_per_package(tmp_path: Path) -> None:
    recs = [
        {
            "id": "PYSEC-1",
            "modified": "2024-01-01T00:00:00Z",
            "aliases": ["CVE-2024-1", "GHSA-aaaa"],
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "Demo_Pkg"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.5"}]}],
                }
            ],
        },
        {
            "id": "GHSA-aaaa",
            "modified": "2024-01-01T00:00:00Z",
            "aliases": ["CVE-2024-1"],
            "database_specific": {"severity": "HIGH"},
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "demo-pkg"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.4.2"}]}],
                }
            ],
        },
        {
            "id": "PYSEC-2",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "demo.pkg"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
            ],
        },
    ]
    f = tmp_path / "recs.json"
    f.write_text(json.dumps(recs))
    path = tmp_path / "v.sqlite"
    import_paths(path, [f])
    pkg = Package(
        type="python",
        name="demo.pkg",
        version="1.4.0",
        ecosystem="PyPI",
        purl="pkg:pypi/demo-pkg@1.4.0",
        found_in="x/METADATA",
    )
    res = Matcher(db.open_readonly(path)).match([pkg])
    by_id = {x.id: x for x in res.findings}
    assert sorted(by_id) == ["CVE-2024-1", "PYSEC-2"]
    cve = by_id["CVE-2024-1"]
    assert cve.aliases == ("GHSA-aaaa", "PYSEC-1")
    assert cve.advisories == ("GHSA-aaaa", "PYSEC-1")
    assert cve.fixed_versions == ("1.4.2", "1.5")
    assert cve.severity == "HIGH"
    unfixed = by_id["PYSEC-2"]
    assert (unfixed.fix_available, unfixed.fixed_versions) == (False, ())
    dev = pkg.model_copy(update={"dev": True})
    assert Matcher(db.open_readonly(path)).match([dev]).findings == []
    assert len(Matcher(db.open_readonly(path)).match([dev], include_dev=True).findings) == 2
