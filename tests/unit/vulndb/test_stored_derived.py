"""What the importer stores for the matcher: interval sort keys and CVSS base scores.

- An affected row whose ranges are one interval carries its compiled form (``interval``), which
  rebuilds exactly what compiling the ranges gives; every other row carries none.
- An advisory carries the base score of each of its CVSS vectors (``cvss``).
- The matcher reads them only where ``meta`` names the versions that made them (the sort-key
  encoding; the scoring and the cvss library) and they are this code's; a file of another
  version, or of the first schema (without the columns), is matched by computing them, with the
  same findings. An import brings such a file up to date first.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.models import OSInfo, Package
from shared.vulndb import db, risk
from shared.vulndb import matcher as m
from shared.vulndb.importer import import_paths
from shared.vulndb.matcher import Matcher
from shared.vulndb.service import db_info
from shared.vulndb.versions import KEY_ENCODING
from tests.support.inventories import osv_database, package
from tests.unit.vulndb.test_matcher_memo import ECOSYSTEMS, RANGES, _json

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PYPA = Path(__file__).resolve().parents[3].parent / "shared" / "corpora" / "osv-pypa" / "vulns"

CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
MEDIUM = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N"  # 6.5


def _record(rid: str, ecosystem: str, name: str, events: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    rtype = extra.pop("range_type", "ECOSYSTEM")
    ranges = extra.pop("ranges", [{"type": rtype, "events": events}])
    return {
        "id": rid,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": ecosystem, "name": name}, "ranges": ranges, **extra.pop("aff", {})}],
        **extra,
    }


# One record of each shape the matcher compiles: intervals closed by a fix or a last affected version, open
# intervals, SEMVER ranges, ranges of several intervals, explicit versions, versions a scheme refuses.
RECORDS = [
    _record(
        "GHSA-fix",
        "PyPI",
        "demo",
        [{"introduced": "1.0"}, {"fixed": "2.0"}],
        aliases=["CVE-2024-0001"],
        severity=[{"type": "CVSS_V3", "score": CRITICAL}],
    ),
    _record("PYSEC-from-zero", "PyPI", "demo", [{"introduced": "0"}, {"fixed": "1.9"}], aliases=["CVE-2024-0001"]),
    _record(
        "GHSA-last",
        "npm",
        "demo-js",
        [{"introduced": "1.0.0"}, {"last_affected": "1.4.0"}],
        range_type="SEMVER",
        severity=[{"type": "CVSS_V3", "score": MEDIUM}, {"type": "CVSS_V3", "score": "not a vector"}],
    ),
    _record("GHSA-open", "npm", "demo-js", [{"introduced": "1.2.0"}], range_type="SEMVER"),
    _record(
        "GHSA-two",
        "Go",
        "example.com/mod",
        [],
        ranges=[
            {
                "type": "SEMVER",
                "events": [{"introduced": "0"}, {"fixed": "1.1.0"}, {"introduced": "2.0.0"}, {"fixed": "2.1.0"}],
            }
        ],
    ),
    _record("GHSA-go", "Go", "example.com/mod", [{"introduced": "v2.0.0"}, {"fixed": "v2.0.5"}]),
    _record(
        "DEBIAN-CVE-2024-0002",
        "Debian:12",
        "libsrc",
        [{"introduced": "0"}, {"fixed": "1.2-3"}],
        aff={"versions": ["1.2-2+b9"]},
        severity=[{"type": "Debian", "score": "high"}],
    ),
    _record("GHSA-bad", "PyPI", "demo", [{"introduced": "1.0"}, {"fixed": "not a version"}]),
    _record("GHSA-reversed", "PyPI", "demo", [{"introduced": "3.0"}, {"fixed": "2.0"}]),
    _record(
        "GHSA-gone",
        "PyPI",
        "demo",
        [{"introduced": "0"}],
        withdrawn="2024-02-01T00:00:00Z",
        severity=[{"type": "CVSS_V3", "score": CRITICAL}],
    ),
]

DEBIAN = OSInfo(family="debian", version_id="12")


def inventory() -> list[Package]:
    out = [package("demo", v, "PyPI") for v in ("0.5", "1.0", "1.5", "1.9", "2.0", "2.5")]
    out += [package("demo-js", v, "npm") for v in ("0.9.0", "1.0.0", "1.3.0", "1.4.0", "1.4.1", "v1.2.0")]
    out += [package("example.com/mod", v, "Go") for v in ("v1.0.0", "v1.1.0", "v2.0.1", "v2.0.5", "v2.2.0")]
    out += [
        package(f"libsrc-{v}", v, "Debian:12", source_name="libsrc", source_version=v)
        for v in ("1.1-1", "1.2-2+b9", "1.2-3")
    ]
    return out


def dump(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    res = Matcher(db.open_readonly(path)).match(inventory(), DEBIAN)
    return [f.model_dump(mode="json") for f in res.findings], res.warnings


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return osv_database(tmp_path, RECORDS)


def edited(path: Path, name: str, *sql: str) -> Path:
    """A copy of the database with statements applied."""
    out = path.with_name(name)
    shutil.copy(path, out)
    conn = sqlite3.connect(out)
    for s in sql:
        conn.execute(s)
    conn.commit()
    conn.close()
    return out


def computed(path: Path) -> Path:
    """A copy whose derived values are not trusted (no version named): everything is computed."""
    return edited(path, "computed.sqlite", "DELETE FROM meta WHERE key IN ('sort_key_encoding', 'cvss_scores')")


def schema_1(path: Path) -> Path:
    """A copy as the first schema had it: no derived columns, nothing named in meta."""
    return edited(
        path,
        "schema1.sqlite",
        "ALTER TABLE affected DROP COLUMN interval",
        "ALTER TABLE advisories DROP COLUMN cvss",
        "DELETE FROM meta WHERE key IN ('sort_key_encoding', 'cvss_scores')",
        "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
    )


def column(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] if len(r) == 1 else r for r in conn.execute(sql)]
    finally:
        conn.close()


# --- the stored form of intervals ------------------------------------------------------


@SETTINGS
@given(st.sampled_from(ECOSYSTEMS), RANGES)
def test_stored_text_rebuilds_what_compiling_the_ranges_gives(ecosystem: str, ranges: Any) -> None:
    text = _json(ranges)
    compiled = m._compiled_ranges(ecosystem, text)
    interval = m.interval_of(ecosystem, json.loads(text))
    assert (interval is None) == (compiled[1] is None)
    if interval is not None:
        packed = m.pack_interval(interval)
        assert packed is not None and not packed.startswith("[")
        assert m.unpack_interval(packed) == interval
        assert m._interval_ranges(ecosystem, interval) == compiled


def test_values_holding_the_separator_are_not_stored() -> None:
    assert m.pack_interval(("ECOSYSTEM", "a\x1fb", None, False, None)) is None
    assert m.pack_interval(("SEMVER", None, "k", False, "1.0\x1f")) is None
    assert m.pack_interval(("ECOSYSTEM", None, None, False, None)) == "A\x1f\x1f"
    for text in ("[]", '[["ECOSYSTEM",[["introduced","0"]]]]', ' [["SEMVER",[]]]', ""):
        assert m.unpack_interval(text) is None, "the ranges' JSON is never read as an interval"


def test_the_importer_stores_every_interval_of_the_real_corpus(tmp_path: Path) -> None:
    p = tmp_path / "pypa.sqlite"
    import_paths(p, [PYPA])
    rows = column(p, "SELECT ecosystem, ranges, interval FROM affected")
    stored = 0
    for ecosystem, ranges, interval in rows:
        compiled = m._compiled_ranges(ecosystem, ranges)
        if compiled[1] is None:
            assert interval is None
            continue
        unpacked = m.unpack_interval(interval)
        assert unpacked is not None and m._interval_ranges(ecosystem, unpacked) == compiled
        stored += 1
    assert stored > len(rows) // 2, "most rows are one interval"
    # and each advisory's CVSS scores, one per severity entry
    scored = 0
    for severity, withdrawn, cvss in column(p, "SELECT severity, withdrawn, cvss FROM advisories"):
        entries = json.loads(severity)
        if not entries or withdrawn:
            assert cvss is None, "nothing to score, or never matched"
            continue
        assert json.loads(cvss) == [list(s) if s else None for s in risk.scores_of(entries)]
        scored += cvss != "[null]"
    assert scored > 50
    meta = dict(column(p, "SELECT key, value FROM meta"))
    assert meta[db.META_SORT_KEYS] == str(KEY_ENCODING) and meta[db.META_CVSS] == risk.SCORES_VERSION
    assert meta["schema_version"] == str(db.SCHEMA_VERSION) == "2"


# --- the matcher reads them only when it can trust them ---------------------------------


def test_stored_and_computed_values_give_the_same_findings(path: Path) -> None:
    expected = dump(computed(path))
    assert len(expected[0]) >= 10 and expected[1], "findings and warnings of every shape"
    assert column(path, "SELECT count(*) FROM affected WHERE interval IS NOT NULL") == [6]
    assert column(path, "SELECT cvss FROM advisories WHERE id = 'GHSA-gone'") == [None], "withdrawn: never matched"
    assert dump(path) == expected
    # rows without a stored interval (NULL) are compiled from their ranges
    assert dump(edited(path, "nulls.sqlite", "UPDATE affected SET interval = NULL WHERE rowid % 2 = 0")) == expected
    assert dump(edited(path, "no-scores.sqlite", "UPDATE advisories SET cvss = NULL")) == expected


def test_intervals_of_another_key_encoding_are_not_read(path: Path) -> None:
    everything = m.pack_interval(("ECOSYSTEM", None, None, False, None))  # "affected from the start, no fix"
    rewritten = edited(path, "everything.sqlite", f"UPDATE affected SET interval = '{everything}'")
    # read where the version is this one: the stored values decide (every version of these packages is affected)
    assert len(dump(rewritten)[0]) > len(dump(path)[0])
    # not read where the file names another encoding, nor without a name: computed from the ranges
    for other in ("0", str(KEY_ENCODING + 1)):
        foreign = edited(
            rewritten, f"other-{other}.sqlite", f"UPDATE meta SET value = '{other}' WHERE key = '{db.META_SORT_KEYS}'"
        )
        assert dump(foreign) == dump(path)
    assert dump(edited(rewritten, "unnamed.sqlite", f"DELETE FROM meta WHERE key = '{db.META_SORT_KEYS}'")) == dump(
        path
    )


def test_scores_of_another_cvss_version_are_not_read(path: Path) -> None:
    def severity_of(p: Path) -> tuple[str, list[float]]:
        res = Matcher(db.open_readonly(p)).match([package("demo", "1.5", "PyPI")])
        (f,) = res.findings
        return f.severity, [c.base_score for c in f.cvss]

    assert severity_of(path) == ("CRITICAL", [9.8])
    low = edited(path, "low.sqlite", "UPDATE advisories SET cvss = '[[\"3.1\",1.0]]' WHERE id = 'GHSA-fix'")
    assert severity_of(low) == ("LOW", [1.0]), "the stored score is what the matcher uses"
    other = f"UPDATE meta SET value = 'x/cvss 0.1' WHERE key = '{db.META_CVSS}'"
    assert severity_of(edited(low, "other-cvss.sqlite", other)) == ("CRITICAL", [9.8])
    for wrong in ('[["3.1",1.0],null]', '[["3.1","1.0"]]', "[1.0]", "{}"):
        bad = edited(path, "bad.sqlite", f"UPDATE advisories SET cvss = '{wrong}' WHERE id = 'GHSA-fix'")
        assert severity_of(bad) == ("CRITICAL", [9.8]), f"{wrong}: not the importer's shape, so computed"


def test_a_file_of_the_first_schema_is_read_and_upgraded_by_an_import(path: Path, tmp_path: Path) -> None:
    expected = dump(path)
    old = schema_1(path)
    assert db.info(old)["schema_version"] == 1
    conn = db.open_readonly(old)
    assert db_info(conn, old).schema_version == 1
    conn.close()
    assert dump(old) == expected
    # any import upgrades the file: the columns, their values for the rows already there, the versions
    kev = tmp_path / "kev.json"
    kev.write_text(json.dumps({"catalogVersion": "1", "vulnerabilities": []}))
    import_paths(old, [kev])
    assert db.info(old)["schema_version"] == db.SCHEMA_VERSION
    query = "SELECT advisory_id, interval FROM affected ORDER BY rowid"
    assert column(old, query) == column(path, query)
    query = "SELECT id, cvss FROM advisories ORDER BY id"
    assert column(old, query) == column(path, query)
    assert dict(column(old, "SELECT key, value FROM meta")) == dict(column(path, "SELECT key, value FROM meta"))
    assert dump(old) == expected


def test_an_import_recomputes_values_another_version_stored(path: Path, tmp_path: Path) -> None:
    stale = edited(
        path,
        "stale.sqlite",
        "UPDATE affected SET interval = 'A\x1f\x1f'",
        "UPDATE advisories SET cvss = '[[\"3.1\",1.0]]' WHERE id = 'GHSA-fix'",
        f"UPDATE meta SET value = '0' WHERE key = '{db.META_SORT_KEYS}'",
        f"UPDATE meta SET value = 'x/cvss 0.1' WHERE key = '{db.META_CVSS}'",
    )
    more = tmp_path / "more.json"
    more.write_text(json.dumps(_record("GHSA-new", "PyPI", "other", [{"introduced": "0"}, {"fixed": "1.0"}])))
    import_paths(stale, [more])
    query = "SELECT advisory_id, interval FROM affected WHERE advisory_id != 'GHSA-new' ORDER BY rowid"
    assert column(stale, query) == column(path, query)
    query = "SELECT id, cvss FROM advisories WHERE id != 'GHSA-new' ORDER BY id"
    assert column(stale, query) == column(path, query)
    meta = dict(column(stale, "SELECT key, value FROM meta"))
    assert meta[db.META_SORT_KEYS] == str(KEY_ENCODING) and meta[db.META_CVSS] == risk.SCORES_VERSION
    new = m.pack_interval(("ECOSYSTEM", None, m._key("PyPI", "1.0"), False, "1.0"))
    assert column(stale, "SELECT interval FROM affected WHERE advisory_id = 'GHSA-new'") == [new]
    assert dump(stale) == dump(path)
