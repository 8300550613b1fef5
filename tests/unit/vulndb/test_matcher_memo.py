"""The matcher's shortcuts give what its general way gives.

- Ranges read from the importer's JSON text without json.loads, and one-interval ranges
  evaluated with one or two comparisons, agree with the general compilation and
  evaluation (property tests on generated events and versions).
- The memo of what a package version came to: a second match gives equal findings, as
  new objects that share only immutable values (tuples, frozen models) with earlier ones
  or with each other, whatever the caller did to the findings it was given, and whatever
  exemptions, VEX, reports and the findings lifecycle do with them; each package keeps
  its own fields and warnings; findings made without validation equal validated ones.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.domain.findings import Finding
from shared.domain.models import OSInfo, Package
from shared.vulndb import db, risk
from shared.vulndb import matcher as m
from shared.vulndb.matcher import Matcher
from shared.vulndb.versions import InvalidVersion, UnsupportedEcosystem
from tests.support.inventories import osv_database, package

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- compiling and evaluating ranges ----------------------------------------------

ECOSYSTEMS = ["npm", "PyPI", "Go", "Debian:12", "Hex"]  # Hex: a scheme nobody knows
VERSIONS = st.one_of(
    st.sampled_from(
        ["0", "1.0.0", "1.2.3", "2.0.0", "2.0.0-beta.1", "v1.5.0", "1.0", "1.2", "1:1.0-1", "not a version"]
    ),
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)).map(lambda t: f"{t[0]}.{t[1]}.{t[2]}"),
)
KINDS = st.sampled_from(["introduced", "introduced", "fixed", "fixed", "last_affected", "limit"])
EVENTS = st.lists(st.tuples(KINDS, VERSIONS), min_size=1, max_size=4)
RANGE_TYPES = st.sampled_from(["ECOSYSTEM", "SEMVER"])
# one interval (what the matcher evaluates with comparisons) half the time, anything else otherwise
INTERVAL = st.tuples(
    RANGE_TYPES,
    st.tuples(st.just("introduced"), VERSIONS),
    st.one_of(st.none(), st.tuples(st.sampled_from(["fixed", "last_affected"]), VERSIONS)),
).map(lambda t: [(t[0], [t[1]] + ([t[2]] if t[2] else []))])
RANGES = st.one_of(INTERVAL, st.lists(st.tuples(RANGE_TYPES, EVENTS), min_size=1, max_size=2))


def _json(ranges: list[tuple[str, list[tuple[str, str]]]]) -> str:
    # the importer's compact JSON
    return json.dumps([[t, [list(e) for e in events]] for t, events in ranges], separators=(",", ":"))


@SETTINGS
@given(st.sampled_from(ECOSYSTEMS), RANGES)
def test_ranges_read_from_their_text_compile_as_json_loads_would(ecosystem: str, ranges: Any) -> None:
    text = _json(ranges)
    general = m._compile(ecosystem, json.loads(text))
    assert m._compiled_ranges(ecosystem, text) == (general, m._simple(general))


@SETTINGS
@given(st.sampled_from(ECOSYSTEMS), RANGES, st.booleans())
def test_stored_intervals_rebuild_the_compiled_ranges(ecosystem: str, ranges: Any, spaced: bool) -> None:
    text = json.dumps(json.loads(_json(ranges))) if spaced else _json(ranges)  # json.dumps' default spacing too
    stored = m.stored_interval(ecosystem, text)
    compiled = m._compiled_ranges(ecosystem, text)
    if stored is None:
        assert compiled[1] is None
    else:
        assert m._interval_ranges(ecosystem, stored) == compiled


def _general_outcome(listed: bool, ranges: Any, version: str) -> tuple[bool, list[str], str | None]:
    try:
        hit, fixes = m._evaluate(listed, ranges, version)
    except (InvalidVersion, UnsupportedEcosystem) as exc:
        return False, [], str(exc)
    return hit, fixes, None


@SETTINGS
@given(st.sampled_from(ECOSYSTEMS), RANGES, st.data())
def test_entries_evaluate_as_the_general_evaluation(ecosystem: str, ranges: Any, data: st.DataObject) -> None:
    # versions at the ranges' bounds half the time: that is where evaluations differ if they do
    bounds = st.sampled_from([v for _, events in ranges for _, v in events])
    version = data.draw(st.one_of(bounds, VERSIONS))
    listed_versions = data.draw(st.lists(st.one_of(bounds, VERSIONS), max_size=3))
    compiled, simple = m._compiled_ranges(ecosystem, _json(ranges))
    listed_json = json.dumps(listed_versions, separators=(",", ":"))
    entry = ("ADV-1", None, listed_json, compiled, simple)
    hits: list[Any] = []
    warnings: list[Any] = []
    m._evaluate_entries(version, [entry], set(), hits, warnings, {})
    hit, fixes, error = _general_outcome(version in listed_versions, compiled, version)
    assert (bool(hits), hits[0][1] if hits else []) == (hit, fixes if hit else [])
    assert warnings == ([(version, error, "ADV-1")] if error else [])


@pytest.mark.parametrize("upper", ["fixed", "last_affected", None])
@pytest.mark.parametrize("lower", ["0", "1.0.0"])
def test_intervals_at_their_bounds(lower: str, upper: str | None) -> None:
    events = [("introduced", lower)] + ([(upper, "1.2.3")] if upper else [])
    compiled, simple = m._compiled_ranges("npm", _json([("SEMVER", events)]))
    assert simple is not None
    for version in ("0.0.1", "0.9.9", "1.0.0", "1.0.1", "1.2.2", "1.2.3", "1.2.4", "v1.2.3", "x"):
        hits: list[Any] = []
        warnings: list[Any] = []
        m._evaluate_entries(version, [("A", None, "[]", compiled, simple)], set(), hits, warnings, {})
        hit, fixes, error = _general_outcome(False, compiled, version)
        assert (bool(hits), hits[0][1] if hits else []) == (hit, fixes if hit else []), version
        assert bool(warnings) == bool(error)


def test_common_shapes_are_evaluated_as_intervals() -> None:
    # so that the property test above compares the interval evaluation with the general one
    shapes = [
        [("SEMVER", [("introduced", "0"), ("fixed", "1.2.3")])],
        [("SEMVER", [("introduced", "1.0.0"), ("fixed", "1.2.3")])],
        [("ECOSYSTEM", [("introduced", "1.0"), ("last_affected", "1.2")])],
        [("ECOSYSTEM", [("introduced", "1.0")])],
    ]
    for ranges in shapes:
        assert m._compiled_ranges("PyPI", _json(ranges))[1] is not None
    two = [("SEMVER", [("introduced", "0"), ("fixed", "1.0.0"), ("introduced", "2.0.0"), ("fixed", "2.1.0")])]
    assert m._compiled_ranges("npm", _json(two))[1] is None


# --- the memo -------------------------------------------------------------------------

RECORDS = [
    {
        "id": "GHSA-demo-0001",
        "modified": "2024-01-01T00:00:00Z",
        "aliases": ["CVE-2024-1001"],
        "summary": "demo overflow",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "references": [{"type": "WEB", "url": "https://example.org/1"}],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
            },
            {
                "package": {"ecosystem": "npm", "name": "demo-js"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"last_affected": "1.4.0"}]}],
            },
        ],
    },
    {
        "id": "PYSEC-2024-1",
        "modified": "2024-01-01T00:00:00Z",
        "aliases": ["CVE-2024-1001"],
        "references": [{"type": "ADVISORY", "url": "https://example.org/2"}],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.9"}]}],
            }
        ],
    },
    {
        "id": "DEBIAN-CVE-2024-2002",
        "modified": "2024-01-01T00:00:00Z",
        "summary": "libsrc issue",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "libsrc"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2-3"}]}],
                "versions": ["1.2-2+b9"],
            }
        ],
    },
]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return osv_database(tmp_path, RECORDS)


DEBIAN = OSInfo(family="debian", version_id="12")


def inventory() -> list[Package]:
    return [
        package("demo", "1.5", "PyPI"),
        package("demo", "1.5", "PyPI", found_in="other/lock"),  # the same version again: one evaluation, two findings
        package("demo-js", "1.2.0", "npm"),
        package("demo-js", "not-semver", "npm"),  # warned about
        package("libsrc1", "1.1-1", "Debian:12", source_name="libsrc"),
        package("libsrc-dev", "1.1-1", "Debian:12", source_name="libsrc", found_in="var/lib/dpkg/status.d/dev"),
        package("clean", "1.0", "PyPI"),
    ]


def dump(result: m.MatchResult) -> tuple[list[dict[str, Any]], list[str]]:
    return [f.model_dump(mode="json") for f in result.findings], result.warnings


#: The collection fields of a finding: tuples, which the findings of one advisory share.
COLLECTIONS = ("aliases", "advisories", "fixed_versions", "cvss", "references", "expired_exemptions")


def test_a_second_match_gives_equal_findings_as_new_objects(path: Path) -> None:
    matcher = Matcher(db.open_readonly(path))
    first = matcher.match(inventory(), DEBIAN)
    second = matcher.match(inventory(), DEBIAN)
    assert dump(second) == dump(first)
    assert dump(first) == dump(Matcher(db.open_readonly(path)).match(inventory(), DEBIAN))
    everything = first.findings + second.findings
    assert len(everything) == 10
    assert len({id(f) for f in everything}) == len(everything)
    dicts = [id(f.__dict__) for f in everything]
    assert len(set(dicts)) == len(dicts), "each finding has a field dict of its own"
    # what findings share is immutable: tuples of strings and frozen models
    for f in everything:
        for name in COLLECTIONS:
            assert type(getattr(f, name)) is tuple, name
        for value in (*f.cvss, f.kev, f.epss):
            assert value is None or value.model_config.get("frozen")


def test_what_a_caller_does_to_its_findings_does_not_reach_later_matches(path: Path) -> None:
    matcher = Matcher(db.open_readonly(path))
    first = matcher.match(inventory(), DEBIAN)  # findings made while preparing the memo
    before = dump(first)
    for f in first.findings + matcher.match(inventory(), DEBIAN).findings:
        # findings and what they hold refuse assignment: what they share cannot be changed through one of them
        with pytest.raises(ValidationError, match="frozen"):
            f.summary = "changed"
        with pytest.raises(ValidationError, match="frozen"):
            f.suppressed = None
        for score in f.cvss:
            with pytest.raises(ValidationError, match="frozen"):
                score.base_score = 0.0
        # a changed copy (how exemptions and VEX mark findings) has a set of set fields of its own
        copied = f.model_copy(update={"expired_exemptions": (), "summary": "changed"})
        assert "expired_exemptions" in copied.model_fields_set
        assert "expired_exemptions" not in f.model_fields_set
        f.__dict__["id"] = "changed"  # a finding's own field dict is its own
    assert dump(matcher.match(inventory(), DEBIAN)) == before
    assert all(f.model_fields_set == m._SET_FIELDS for f in matcher.match(inventory(), DEBIAN).findings)


def test_what_follows_matching_leaves_the_shared_values_alone(path: Path) -> None:
    """Exemptions, VEX, every report format and the service's findings lifecycle, run on findings made from the
    memo: none of them changes a finding (they would fail on a frozen one), and later matches are unchanged."""
    from datetime import UTC, date, datetime

    from rich.console import Console

    from shared.domain.models import ImageInfo, ScanResult, ToolInfo
    from shared.findings.exemptions import Exemption, ImageIdentity, VexStatement, apply
    from shared.report import cyclonedx, jsonout, sarif, table
    from shared.service import lifecycle
    from shared.vulndb.service import MatchOptions, visible

    matcher = Matcher(db.open_readonly(path))
    packages = inventory()
    before = dump(matcher.match(packages, DEBIAN))
    findings = matcher.match(packages, DEBIAN).findings  # copies of the memo's findings
    image = ImageIdentity(repository="registry.example/team/app", digest="sha256:" + "a" * 64)
    exemptions = [
        Exemption("policy.yaml#1", "CVE-2024-1001", None, None, None, None, "old waiver", date(2020, 1, 1)),
        Exemption("policy.yaml#2", None, "pkg:python/demo@*", None, None, None, "not reachable", None),
    ]
    vex = [
        VexStatement("vex.json#1", "DEBIAN-CVE-2024-2002", frozenset(), ("pkg:dpkg/libsrc1@1.1-1",), (), "fixed", "")
    ]
    applied = apply(findings, image, exemptions, vex, date(2026, 1, 1))
    assert {f.suppressed.kind for f in applied if f.suppressed is not None} == {"exemption", "vex"}
    assert any(f.expired_exemptions for f in applied)
    assert all(type(f.expired_exemptions) is tuple for f in applied)
    shown = visible(applied, MatchOptions(ignore_unfixed=True))
    result = ScanResult(
        tool=ToolInfo(version="0"),
        scanned_at=datetime(2026, 1, 1, tzinfo=UTC),
        image=ImageInfo(reference="registry.example/team/app:1", source="registry", digest=image.digest),
        os=DEBIAN,
        packages=packages,
        findings=shown + applied,
    )
    json.loads(jsonout.render([result]))
    doc = sarif.build([result])
    assert all(type(r["properties"]["fixedVersions"]) is list for r in doc["runs"][0]["results"])
    cyclonedx.render([result])
    with open(os.devnull, "w") as sink:
        table.print_tables([result], Console(file=sink, width=200))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    records = lifecycle.apply(image.digest or "", [], applied, now).records
    lifecycle.apply(image.digest or "", records, applied, now)
    assert [f.model_dump(mode="json") for f in findings] == before[0], "the findings handed in are unchanged"
    assert dump(matcher.match(packages, DEBIAN)) == before


def test_findings_made_without_validation_equal_validated_ones(path: Path) -> None:
    matcher = Matcher(db.open_readonly(path))
    for _ in range(2):  # the first match prepares, the second copies
        for f in matcher.match(inventory(), DEBIAN).findings:
            validated = Finding.model_validate(f.model_dump())
            assert f == validated
            assert f.model_dump_json() == validated.model_dump_json()
            assert list(f.__dict__) == list(Finding.model_fields)
            assert f.model_fields_set == set(Finding.model_fields) - {"suppressed", "expired_exemptions"}


def test_each_package_keeps_its_own_fields_and_warnings(path: Path) -> None:
    matcher = Matcher(db.open_readonly(path))
    for _ in range(2):
        res = matcher.match(inventory(), DEBIAN)
        got = sorted(
            (f.id, f.package_name, f.installed_version, f.found_in, tuple(f.fixed_versions)) for f in res.findings
        )
        assert got == [
            ("CVE-2024-1001", "demo", "1.5", "manifest", ("1.9", "2.0")),
            ("CVE-2024-1001", "demo", "1.5", "other/lock", ("1.9", "2.0")),
            ("CVE-2024-1001", "demo-js", "1.2.0", "manifest", ()),
            ("DEBIAN-CVE-2024-2002", "libsrc-dev", "1.1-1", "var/lib/dpkg/status.d/dev", ("1.2-3",)),
            ("DEBIAN-CVE-2024-2002", "libsrc1", "1.1-1", "manifest", ("1.2-3",)),
        ]
        (warning,) = res.warnings
        assert warning.startswith("demo-js not-semver (manifest): npm: invalid version 'not-semver'")
        assert warning.endswith("; GHSA-demo-0001 not evaluated")
    moved = inventory()[3].model_copy(update={"found_in": "elsewhere"})
    (warning,) = matcher.match([moved], DEBIAN).warnings
    assert warning.startswith("demo-js not-semver (elsewhere): ")
    # binaries of one source package share the evaluation of its version, and each is named in its warning
    binaries = [
        package(name, "1.0", "Debian:12", source_name="libsrc", source_version="1.0 bad") for name in ("a", "b")
    ]
    for _ in range(2):
        assert [w.split(":")[0] for w in matcher.match(binaries, DEBIAN).warnings] == [
            "a 1.0 bad (manifest)",
            "b 1.0 bad (manifest)",
        ]


def test_explicitly_listed_versions_are_affected(path: Path) -> None:
    matcher = Matcher(db.open_readonly(path))
    (f,) = matcher.match([package("libsrc1", "1.2-2+b9", "Debian:12", source_name="libsrc")], DEBIAN).findings
    assert (f.id, f.fixed_versions) == ("DEBIAN-CVE-2024-2002", ("1.2-3",))
    assert matcher.match([package("libsrc1", "1.2-3", "Debian:12", source_name="libsrc")], DEBIAN).findings == []


def test_forgetting_versions_changes_nothing_but_the_time(path: Path) -> None:
    matcher = Matcher(db.open_readonly(path))
    before = dump(matcher.match(inventory(), DEBIAN))
    matcher.forget_versions()
    assert not matcher._outcomes
    assert dump(matcher.match(inventory(), DEBIAN)) == before


def test_calls_in_any_order_give_what_a_fresh_matcher_gives(path: Path) -> None:
    a, b = inventory()[:3], inventory()[3:]
    matcher = Matcher(db.open_readonly(path))
    for packages in (a, b, a + b, b, a):
        assert dump(matcher.match(packages, DEBIAN)) == dump(Matcher(db.open_readonly(path)).match(packages, DEBIAN))


def test_one_package_object_twice_gives_its_findings_once(path: Path) -> None:
    p = package("demo", "1.5", "PyPI")
    matcher = Matcher(db.open_readonly(path))
    assert len(matcher.match([p, p]).findings) == 1


def test_values_of_unexpected_types_are_still_validated(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute('UPDATE advisories SET refs = \'[{"type": "WEB", "url": 5}]\' WHERE id = \'DEBIAN-CVE-2024-2002\'')
    conn.commit()
    conn.close()
    with pytest.raises(ValidationError):
        Matcher(db.open_readonly(path)).match([package("libsrc1", "1.1-1", "Debian:12", source_name="libsrc")], DEBIAN)


# --- CVSS ---------------------------------------------------------------------------


def test_cvss_scores_are_cached_and_each_assessment_gets_its_own() -> None:
    vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N"
    risk.base_score.cache_clear()
    a = risk.assess([risk.SeverityInput("GHSA-a", [{"type": "CVSS_V3", "score": vector}], None, None)])
    b = risk.assess([risk.SeverityInput("GHSA-b", [{"type": "CVSS_V3", "score": vector}], None, None)])
    assert risk.base_score.cache_info().misses == 1
    assert [(s.version, s.vector, s.base_score, s.source) for s in a.cvss + b.cvss] == [
        ("3.1", vector, 6.5, "GHSA-a"),
        ("3.1", vector, 6.5, "GHSA-b"),
    ]
    assert a.cvss[0].model_fields_set == {"version", "vector", "base_score", "source"}
    assert (a.severity.name, a.source) == ("MEDIUM", "cvss-v3 (GHSA-a)")
    first, again = risk.parse_vector("CVSS_V3", vector), risk.parse_vector("CVSS_V3", vector)
    assert first == again and first is not again
    assert risk.parse_vector("CVSS_V3", "CVSS:3.1/AV:X") is None
