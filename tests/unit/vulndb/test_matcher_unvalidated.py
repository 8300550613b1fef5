"""Models the matcher builds without validation equal validated ones, and the shortcuts of loading agree.

- ``shared.domain.unvalidated`` models (CVSS scores, EPSS scores) equal the models validation makes of the same
  values: same field values and order, same set fields, still frozen. Values of any other type still go
  through validation, and are refused where validation refuses them.
- ``risk.priorities`` is ``risk.priority`` without and with a fix.
- Rows read for many keys at once, and from several imports, give what reading each key alone gives.
- Advisory texts parse as json.loads parses them, and texts it refuses are refused with its error.
- Stored intervals read in one step give what unpack_interval and _interval_ranges give.
- Explicitly listed versions are found, plain or not, with the listing test made once per version.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.findings import CVSSScore, EPSSScore, Severity
from shared.domain.models import Package
from shared.domain.unvalidated import unvalidated
from shared.vulndb import db, risk
from shared.vulndb import matcher as m
from shared.vulndb.importer import import_paths
from shared.vulndb.matcher import Matcher

VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def test_unvalidated_models_equal_validated_ones() -> None:
    made = unvalidated(CVSSScore, {"version": "3.1", "vector": VECTOR, "base_score": 9.8, "source": "GHSA-x"})
    validated = CVSSScore(version="3.1", vector=VECTOR, base_score=9.8, source="GHSA-x")
    assert made == validated
    assert made.model_dump_json() == validated.model_dump_json()
    assert list(made.__dict__) == list(CVSSScore.model_fields)
    assert made.model_fields_set == validated.model_fields_set
    assert made.model_fields_set is not unvalidated(CVSSScore, dict(made.__dict__)).model_fields_set
    with pytest.raises(ValidationError):
        made.base_score = 1.0  # type: ignore[misc]  # frozen, as validated models are
    epss = unvalidated(EPSSScore, {"score": 0.25, "percentile": 0.5})
    assert epss == EPSSScore(score=0.25, percentile=0.5)
    assert epss.model_fields_set == {"score", "percentile"}
    assert hash(epss) == hash(EPSSScore(score=0.25, percentile=0.5))


def test_assessed_scores_of_other_types_are_validated() -> None:
    def scores(stored: list[Any]) -> list[CVSSScore]:
        severity = [{"type": "CVSS_V3", "score": VECTOR}]
        return list(risk.assess([risk.SeverityInput("GHSA-x", severity, None, None, stored)]).cvss)

    typed = scores([["3.1", 9.0]])
    assert typed == [CVSSScore(version="3.1", vector=VECTOR, base_score=9.0, source="GHSA-x")]
    as_int = scores([["3.1", 9]])  # an int, which validation makes a float
    assert as_int == typed and type(as_int[0].base_score) is float
    with pytest.raises(ValidationError):
        scores([[3.1, 9.0]])  # a number for the version: refused, as validation always refused it


def test_priorities_are_priority_without_and_with_a_fix() -> None:
    for severity in Severity:
        for kev in (False, True):
            for epss in (None, 0.0, 0.013, 0.5, 1.0, 1.5):
                assert risk.priorities(severity, kev, epss) == (
                    risk.priority(severity, kev, epss, False),
                    risk.priority(severity, kev, epss, True),
                )


def _record(aid: str, ecosystem: str, name: str, fixed: str) -> dict[str, Any]:
    return {
        "id": aid,
        "modified": "2024-01-01T00:00:00Z",
        "aliases": [aid.replace("GHSA", "CVE")],
        "severity": [{"type": "CVSS_V3", "score": VECTOR}],
        "references": [
            {"type": "WEB", "url": "https://example.org/a"},
            {"type": "WEB", "url": "https://example.org/a"},
        ],
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }


def _package(name: str, version: str, ecosystem: str) -> Package:
    ptype = {"PyPI": "python", "npm": "npm"}[ecosystem]
    return Package(
        type=ptype, name=name, version=version, ecosystem=ecosystem, purl=f"pkg:{ptype}/{name}@{version}", found_in="m"
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    # two imports: the second appends rows of the keys of the first, so one key's rows are not all adjacent
    p = tmp_path / "v.sqlite"
    for n, batch in enumerate(
        [
            [_record("GHSA-2024-0001", "PyPI", "alpha", "2.0"), _record("GHSA-2024-0002", "npm", "alpha", "2.0.0")],
            [_record("GHSA-2024-0003", "PyPI", "alpha", "3.0"), _record("GHSA-2024-0004", "PyPI", "beta", "2.0")],
        ]
    ):
        f = tmp_path / f"recs{n}.json"
        f.write_text(json.dumps(batch))
        import_paths(p, [f])
    return p


PACKAGES = [
    _package("alpha", "1.0", "PyPI"),
    _package("alpha", "1.0.0", "npm"),
    _package("beta", "1.0", "PyPI"),
    _package("alpha", "2.5", "PyPI"),
]


def _dump(findings: list[Any]) -> list[dict[str, Any]]:
    return sorted((f.model_dump(mode="json") for f in findings), key=lambda d: (d["id"], d["package_purl"]))


def test_reading_many_keys_at_once_gives_what_each_key_alone_gives(path: Path) -> None:
    together = Matcher(db.open_readonly(path)).match(PACKAGES).findings
    alone = [f for p in PACKAGES for f in Matcher(db.open_readonly(path)).match([p]).findings]
    assert _dump(together) == _dump(alone)
    assert sorted((f.id, f.package_purl) for f in together) == [
        ("CVE-2024-0001", "pkg:python/alpha@1.0"),
        ("CVE-2024-0002", "pkg:npm/alpha@1.0.0"),
        ("CVE-2024-0003", "pkg:python/alpha@1.0"),
        ("CVE-2024-0003", "pkg:python/alpha@2.5"),
        ("CVE-2024-0004", "pkg:python/beta@1.0"),
    ]
    # a reference listed twice is listed once
    assert {f.references for f in together} == {("https://example.org/a",)}


def _set_epss(path: Path, score: Any) -> None:
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO epss (cve, score, percentile) VALUES ('CVE-2024-0004', ?, 0.75)", (score,))
    conn.commit()
    conn.close()


def test_epss_scores_read_as_floats_equal_validated_ones(path: Path) -> None:
    _set_epss(path, 0.5)
    (finding,) = Matcher(db.open_readonly(path)).match([_package("beta", "1.0", "PyPI")]).findings
    assert finding.epss == EPSSScore(score=0.5, percentile=0.75)
    assert finding.epss is not None and finding.epss.model_fields_set == {"score", "percentile"}
    assert finding.priority == risk.priority(Severity.CRITICAL, False, 0.5, True)


def test_epss_scores_of_other_types_are_still_validated(path: Path) -> None:
    _set_epss(path, "high")  # text a REAL column keeps as text
    with pytest.raises(ValidationError):
        Matcher(db.open_readonly(path)).match([_package("beta", "1.0", "PyPI")])


@pytest.mark.parametrize(
    "text",
    [
        '[[{"type":"CVSS_V3","score":"x"}],["CVE-1"],[{"url":"u"}],null]',
        '[[],[],[],[["3.1",9.8]]]',
        '"\\u00e9t\\u00e9"',
        "1.5",
        " [1] ",
        "[1]\n",
        '{"a": 1, "a": 2}',
    ],
)
def test_advisory_texts_parse_as_json_loads_parses_them(text: str) -> None:
    assert m._loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", " ", "[1] [2]", "[1,]", "[1", "nope", '["a\x01"]'])
def test_advisory_texts_json_refuses_are_refused_alike(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        m._loads(text)
    assert (got.value.msg, got.value.pos) == (expected.value.msg, expected.value.pos)


@pytest.mark.parametrize("ecosystem", ["npm", "PyPI", "Go", "Debian:12", "Hex"])
def test_stored_intervals_read_in_one_step_as_in_two(ecosystem: str) -> None:
    # every shape a stored interval has (range type, upper bound, introduced key or not), with keys and fixes
    # that are empty or not
    for letter in m._HEADS:
        for low, high, fix in [("k1", "k2", "2.0"), ("", "", ""), ("k1", "", "v1.0")]:
            text = f"{letter}{low}{m._SEP}{high}{m._SEP}{fix}"
            stored = m.unpack_interval(text)
            assert stored is not None
            assert m._stored_ranges(ecosystem, text) == m._interval_ranges(ecosystem, stored)
    # and what the importer stores for real ranges
    for ranges in [
        [("ECOSYSTEM", [("introduced", "0"), ("fixed", "1.2")])],
        [("SEMVER", [("introduced", "1.0.0"), ("last_affected", "1.4.0")])],
        [("ECOSYSTEM", [("introduced", "1.0")])],
        [("ECOSYSTEM", [("introduced", "0")])],
    ]:
        interval = m.interval_of(ecosystem, ranges)
        text = None if interval is None else m.pack_interval(interval)
        if text is not None:
            assert m._stored_ranges(ecosystem, text) == m._interval_ranges(ecosystem, interval)
    # the ranges' JSON is never read as an interval
    assert m._stored_ranges(ecosystem, '[["ECOSYSTEM",[["introduced","0"]]]]') is None


@pytest.mark.parametrize("simple", [True, False])
def test_listed_versions_are_found_whether_plain_or_not(simple: bool) -> None:
    # a plain version appears quoted in the list's JSON text; one with a quote or backslash is escaped there
    ranges_text = (
        '[["ECOSYSTEM",[["introduced","5.0"]]]]'
        if simple
        else '[["ECOSYSTEM",[["introduced","5.0"],["fixed","6.0"]]],["ECOSYSTEM",[["introduced","7.0"]]]]'
    )
    ranges, shape = m._compiled_ranges("PyPI", ranges_text)
    assert (shape is not None) == simple
    listed = json.dumps(["1.0", 'odd"1', "back\\slash"], separators=(",", ":"))
    entry = ("ADV-1", None, listed, ranges, shape)
    for version, hit in [("1.0", True), ('odd"1', True), ("back\\slash", True), ("1.1", False), ("odd", False)]:
        hits: list[Any] = []
        warnings: list[Any] = []
        m._evaluate_entries(version, [entry], set(), hits, warnings, {})
        assert bool(hits) == hit, version
        assert [h[0][0] for h in hits] == (["ADV-1"] if hit else [])
