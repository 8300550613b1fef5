"""The vulnerability database: imports (OSV JSON/YAML/zip, KEV, EPSS), incrementality, atomicity.

Uses the real PyPA advisory corpus (pypa/advisory-database, CC-BY-4.0) and the
real CISA KEV catalogue (CC0-1.0) from the shared corpora.
"""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from shared.vulndb import db
from shared.vulndb.errors import VulnDBError
from shared.vulndb.importer import import_paths

CORPORA = Path(__file__).resolve().parents[3].parent / "shared" / "corpora"
PYPA = CORPORA / "osv-pypa" / "vulns"
KEV = CORPORA / "cisa-kev" / "known_exploited_vulnerabilities.json"
UBUNTU = CORPORA / "osv-ubuntu-samples"


def record(rid: str, modified: str, name: str = "demo", fixed: str = "2.0", **extra: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "id": rid,
        "modified": modified,
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }
    rec.update(extra)
    return rec


def write(p: Path, doc: object) -> Path:
    p.write_text(json.dumps(doc))
    return p


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_pypa_corpus_and_kev_import(tmp_path: Path) -> None:
    if not PYPA.is_dir():
        pytest.fail(f"the shared corpora are missing: {PYPA}")
    path = tmp_path / "v.sqlite"
    stats = import_paths(path, [PYPA, KEV, UBUNTU])
    n_yaml = len(list(PYPA.rglob("*.yaml")))
    assert stats.records == n_yaml + 2
    assert stats.written == n_yaml + 2
    assert stats.kev == len(json.loads(KEV.read_text())["vulnerabilities"])
    info = db.info(path)
    ecos = info["ecosystems"]
    assert isinstance(ecos, dict)
    assert ecos["PyPI"] > 2000 and ecos["Ubuntu:22.04:LTS"] == 2
    assert info["schema_version"] == db.SCHEMA_VERSION
    # aliases are kept: PYSEC-2007-1 is CVE-2007-5712
    assert ("CVE-2007-5712", "PYSEC-2007-1") in rows(path, "SELECT alias, advisory_id FROM aliases")
    # the same corpus again writes nothing
    again = import_paths(path, [PYPA])
    assert (again.written, again.unchanged) == (0, n_yaml)


def test_incremental_by_modified_and_withdrawn(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    import_paths(path, [write(tmp_path / "a.json", record("OSV-1", "2024-01-01T00:00:00Z", fixed="2.0"))])
    older = write(tmp_path / "b.json", record("OSV-1", "2023-01-01T00:00:00Z", fixed="9.0"))
    assert import_paths(path, [older]).unchanged == 1
    assert rows(path, "SELECT ranges FROM affected") == [('[["ECOSYSTEM",[["introduced","0"],["fixed","2.0"]]]]',)]
    newer = write(tmp_path / "c.json", record("OSV-1", "2024-06-01T00:00:00Z", fixed="3.0"))
    assert import_paths(path, [newer]).written == 1
    assert rows(path, "SELECT ranges FROM affected") == [('[["ECOSYSTEM",[["introduced","0"],["fixed","3.0"]]]]',)]
    gone = write(tmp_path / "d.json", record("OSV-1", "2024-07-01T00:00:00Z", withdrawn="2024-07-01T00:00:00Z"))
    assert import_paths(path, [gone]).withdrawn == 1
    assert rows(path, "SELECT count(*) FROM affected") == [(0,)]
    assert rows(path, "SELECT withdrawn FROM advisories") == [("2024-07-01T00:00:00Z",)]


def test_osv_all_zip_and_epss(tmp_path: Path) -> None:
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(3):
            zf.writestr(
                f"OSV-{i}.json", json.dumps(record(f"OSV-{i}", "2024-01-01T00:00:00Z", aliases=[f"CVE-2024-{i}"]))
            )
    epss = tmp_path / "epss.csv"
    epss.write_text(
        "#model_version:v2025.03.14,score_date:2025-08-25T00:00:00+0000\ncve,epss,percentile\n"
        "CVE-2024-0,0.97,0.999\nCVE-2024-1,0.001,0.2\n"
    )
    path = tmp_path / "v.sqlite"
    stats = import_paths(path, [z, epss])
    assert (stats.written, stats.epss) == (3, 2)
    assert rows(path, "SELECT cve, score, percentile FROM epss ORDER BY cve") == [
        ("CVE-2024-0", 0.97, 0.999),
        ("CVE-2024-1", 0.001, 0.2),
    ]


@pytest.mark.parametrize("kind", ["truncated-json", "corrupt-zip", "truncated-zip", "bad-yaml", "bad-epss"])
def test_a_corrupt_input_leaves_the_previous_database_usable(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "v.sqlite"
    import_paths(path, [write(tmp_path / "good.json", record("OSV-1", "2024-01-01T00:00:00Z"))])
    before = path.read_bytes()
    good2 = write(tmp_path / "good2.json", record("OSV-2", "2024-01-01T00:00:00Z"))
    bad = tmp_path / "bad"
    if kind == "truncated-json":
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(record("OSV-3", "2024-01-01T00:00:00Z"))[:40])
        needle = "not valid JSON"
    elif kind == "bad-yaml":
        bad = tmp_path / "bad.yaml"
        bad.write_text("id: OSV-3\nmodified: [unclosed\n")
        needle = "not valid YAML"
    elif kind == "bad-epss":
        bad = tmp_path / "epss.csv"
        bad.write_text("cve,epss,percentile\nCVE-2024-1,0.5")
        needle = "not a valid EPSS row"
    else:
        z = tmp_path / "src.zip"
        with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for i in range(50):
                zf.writestr(f"OSV-{i}.json", json.dumps(record(f"Z-{i}", "2024-01-01T00:00:00Z", details="x" * 500)))
        data = z.read_bytes()
        bad = tmp_path / "bad.zip"
        if kind == "truncated-zip":
            bad.write_bytes(data[: len(data) // 2])
            needle = "not a valid zip"
        else:
            mid = len(data) // 3
            bad.write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 200]) + data[mid + 200 :])
            needle = "corrupt"
    with pytest.raises(VulnDBError) as exc:
        import_paths(path, [good2, bad])
    assert str(bad) in str(exc.value) and needle in str(exc.value)
    assert path.read_bytes() == before, "the database file is untouched"
    assert rows(path, "SELECT id FROM advisories") == [("OSV-1",)], "and still usable"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".importing")], "no copy left behind"


def test_a_corrupt_database_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00garbage" * 100)
    with pytest.raises(VulnDBError, match=r"v\.sqlite"):
        db.open_readonly(path)
    with pytest.raises(VulnDBError, match=r"v\.sqlite"):
        import_paths(path, [write(tmp_path / "a.json", record("OSV-1", "2024-01-01T00:00:00Z"))])
    assert path.read_bytes().startswith(b"SQLite format 3\x00\x00garbage")


def test_records_without_id_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    f = write(tmp_path / "mixed.json", [record("OSV-1", "2024-01-01T00:00:00Z"), {"summary": "no id"}])
    stats = import_paths(path, [f])
    assert stats.written == 1
    assert stats.warnings == [f"{f}: not an OSV record (needs string 'id' and 'modified'); skipped"]


def test_yaml_fast_path_agrees_with_pyyaml_on_the_real_corpus() -> None:
    import yaml

    from shared.vulndb import importer

    files = sorted(PYPA.rglob("*.yaml"))[::10]
    for f in files:
        data = f.read_bytes()
        assert importer.load_yaml(data, str(f)) == yaml.load(data, Loader=importer._YamlLoader), f
