"""Directory imports parsed by worker processes, and the importer's shortcuts for writing rows.

A directory of many small record files is parsed in chunks by forked workers while
this process writes: the database must come out exactly as when everything is
parsed here (rows, row order, statistics, warnings), and a bad file in the middle
must still stop the import by name with the previous database left as it was.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.vulndb import importer
from shared.vulndb.errors import VulnDBError
from shared.vulndb.importer import import_paths

YAML_RECORD = """\
id: {rid}
modified: {modified}
published: 2021-03-04T05:06:07Z
aliases:
- CVE-2021-{n:05d}
details: 'First line of {rid}.

  More text that is not the summary.'
affected:
- package:
    ecosystem: PyPI
    name: Demo_Package.{pkg}
  ranges:
  - type: ECOSYSTEM
    events:
    - introduced: "0"
    - fixed: "{n}.1"
  versions:
  - "0.1"
  - "{n}.0"
  - 1.0
references:
- type: WEB
  url: https://example.org/{rid}
"""


def _json_record(rid: str, modified: str, n: int, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": rid,
        "modified": modified,
        "summary": f'quoted "{rid}" \\ with\ttab and ünïcode',
        "aliases": [f"GHSA-{n:04d}", f"CVE-2022-{n:05d}", 7],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "database_specific": {"severity": "HIGH"},
        "affected": [
            {
                "package": {"ecosystem": "npm", "name": f"Pkg-{n % 7}"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": f"{n}.0.0"}]}],
                "versions": ["1.0.0", 'odd"one', "ctl\x01", None, "1.0.0-ä"],
                "ecosystem_specific": {"binaries": [{"binary_name": "b", "binary_version": "1"}]},
            },
            {"package": {"ecosystem": "Go", "name": "example.com/m/"}, "versions": [f"v{n}.0.0"]},
        ],
        "references": [
            {"type": "WEB", "url": f"https://example.org/{n}"},
            {"url": "https://example.org/no-type"},
            {"type": 3, "url": "https://example.org/number-type"},
            {"type": "ADVISORY", "url": 'https://example.org/"quoted"'},
        ],
    }
    rec.update(extra)
    return rec


def make_corpus(root: Path, n_files: int) -> None:
    """Nested folders of YAML and JSON records with the awkward cases the importer handles.

    Some ids recur with newer and older ``modified`` across chunks, one record is withdrawn,
    one file holds a list of records, one is not an OSV record (a warning), and strings that
    JSON must escape sit next to plain ones.
    """
    for i in range(n_files):
        folder = root / f"group-{i % 5}" / ("deep" if i % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        rid = f"REC-{i % (n_files - 20)}"  # the last 20 files repeat earlier ids
        modified = f"2024-01-{1 + (i * 7) % 28:02d}T00:00:00Z"
        if i >= n_files - 20:  # a repeat: newer or older than the first copy
            modified = "2025-06-01T00:00:00Z" if i % 3 else "2023-06-01T00:00:00Z"
        if i % 2:
            (folder / f"r{i:04d}.yaml").write_text(
                YAML_RECORD.format(rid=rid, modified=modified, n=i, pkg=i % 4), encoding="utf-8"
            )
        elif i == 10:
            (folder / f"r{i:04d}.json").write_text(
                json.dumps([_json_record(rid, modified, i), _json_record(f"LIST-{i}", modified, i + 1)])
            )
        elif i == 12:
            (folder / f"r{i:04d}.json").write_text(json.dumps({"summary": "no id"}))
        elif i == 14:
            rec = _json_record(f"GONE-{i}", modified, i, withdrawn="2024-02-01T00:00:00Z")
            (folder / f"r{i:04d}.json").write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
        else:
            (folder / f"r{i:04d}.json").write_text(json.dumps(_json_record(rid, modified, i), ensure_ascii=False))


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in stored (rowid) order and sorted, and the schema."""
    conn = sqlite3.connect(path)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for t in tables:
            out[t] = sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
        for t in ("advisories", "affected"):
            out[f"{t} in stored order"] = conn.execute(f"SELECT rowid, * FROM {t} ORDER BY rowid").fetchall()
        out["schema"] = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
        return out
    finally:
        conn.close()


class _Recording(importer._Runner):
    pools: ClassVar[list[bool]] = []

    def __init__(self, jobs: int) -> None:
        super().__init__(jobs)
        _Recording.pools.append(self.pool is not None)


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    _Recording.pools = []
    monkeypatch.setattr(importer, "_Runner", _Recording)
    return _Recording.pools


def test_a_directory_parsed_by_workers_gives_the_same_database(tmp_path: Path, recording: list[bool]) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 5 * importer.FILES_PER_CHUNK + 7)
    serial = import_paths(tmp_path / "serial.sqlite", [corpus], jobs=1)
    parallel = import_paths(tmp_path / "parallel.sqlite", [corpus], jobs=2)
    assert recording == [False, True], "the second import used worker processes"
    assert (serial.workers, parallel.workers) == (0, 2), "and says so"
    assert serial == parallel
    assert serial.files == 5 * importer.FILES_PER_CHUNK + 7
    assert serial.unchanged > 0 and serial.withdrawn == 1 and len(serial.warnings) == 1
    a, b = dump(tmp_path / "serial.sqlite"), dump(tmp_path / "parallel.sqlite")
    assert a == b
    assert a["sqlite_stat1"], "planner statistics are gathered"
    # and the rows are what the records say, escapes and all
    conn = sqlite3.connect(tmp_path / "parallel.sqlite")
    try:
        refs = conn.execute("SELECT refs FROM advisories WHERE id = 'LIST-10'").fetchone()[0]
        versions = conn.execute("SELECT versions FROM affected WHERE ecosystem = 'npm' LIMIT 1").fetchone()[0]
    finally:
        conn.close()
    assert json.loads(refs)[1:] == [
        {"type": "", "url": "https://example.org/no-type"},
        {"type": 3, "url": "https://example.org/number-type"},
        {"type": "ADVISORY", "url": 'https://example.org/"quoted"'},
    ]
    assert json.loads(versions) == ["1.0.0", 'odd"one', "ctl\x01", "1.0.0-ä"]


@pytest.mark.parametrize("kind", ["bad-yaml", "truncated-json"])
def test_a_bad_file_in_the_middle_of_a_parallel_import_is_named(
    tmp_path: Path, kind: str, recording: list[bool]
) -> None:
    path = tmp_path / "v.sqlite"
    first = tmp_path / "first"
    make_corpus(first, 30)
    import_paths(path, [first], jobs=1)
    before = path.read_bytes()
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 6 * importer.FILES_PER_CHUNK)
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    bad = files[len(files) // 2]
    if kind == "bad-yaml":
        bad = bad.with_suffix(".yaml")
        bad.write_text("id: BAD-1\nmodified: [unclosed\n")
        needle = "not valid YAML"
    else:
        bad = bad.with_suffix(".json")
        bad.write_text(json.dumps(_json_record("BAD-1", "2024-01-01T00:00:00Z", 1))[:50])
        needle = "not valid JSON"
    with pytest.raises(VulnDBError) as exc:
        import_paths(path, [corpus], jobs=2)
    assert recording[-1], "the failing import used worker processes"
    assert str(bad) in str(exc.value) and needle in str(exc.value)
    assert path.read_bytes() == before, "the database file is untouched"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".importing")], "no copy left behind"


def test_a_file_is_read_whole_and_an_oversized_yaml_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    assert importer._read_limited(str(empty)) == b""
    body = tmp_path / "body.json"
    body.write_bytes(b"x" * 100_000)
    assert importer._read_limited(str(body)) == b"x" * 100_000
    monkeypatch.setattr(importer, "MAX_RECORD_BYTES", 1000)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: b\n" * 1000)
    with pytest.raises(VulnDBError, match="over the 1000-byte limit"):
        importer._read_limited(str(big))
    assert importer._read_limited(str(body)) == b"x" * 100_000, "JSON files may be larger (KEV catalogues)"
    with pytest.raises(FileNotFoundError):
        importer._read_limited(str(tmp_path / "missing.json"))


def _reference_json(o: Any) -> str:
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


_ITEMS = st.lists(st.one_of(st.text(), st.integers(), st.none(), st.floats(allow_nan=False)), max_size=8)


@given(_ITEMS)
def test_string_lists_encode_like_json_dumps(items: list[Any]) -> None:
    assert importer._json_strs(items) == _reference_json([x for x in items if isinstance(x, str)])


@given(st.lists(st.tuples(st.one_of(st.text(), st.integers(), st.none()), st.text()), max_size=5))
def test_references_encode_like_json_dumps(refs: list[tuple[Any, str]]) -> None:
    assert importer._refs_json(refs) == _reference_json([{"type": t, "url": u} for t, u in refs])


def test_where_rows_go_does_not_depend_on_where_batches_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 3 * importer.FILES_PER_CHUNK + 20)  # ids recur within and across chunks

    def stored_order(path: Path) -> dict[str, list[tuple[Any, ...]]]:
        conn = sqlite3.connect(path)
        try:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in ("advisories", "affected")}
        finally:
            conn.close()

    import_paths(tmp_path / "chunks.sqlite", [corpus], jobs=1)
    monkeypatch.setattr(importer, "FILES_PER_CHUNK", 10_000)
    monkeypatch.setattr(importer, "BATCH", 10_000)
    import_paths(tmp_path / "one-batch.sqlite", [corpus], jobs=1)
    assert stored_order(tmp_path / "chunks.sqlite") == stored_order(tmp_path / "one-batch.sqlite")


def test_workers_are_used_for_large_inputs_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(importer.threading, "active_count", lambda: 1)
    monkeypatch.setattr(importer.sys, "platform", "linux")
    monkeypatch.setattr(importer, "_idle_cores", lambda _cores: 0)
    small = [str(tmp_path / f"r{i}.yaml") for i in range(importer.PARALLEL_MIN_FILES - 1)]
    assert importer._jobs_for(small, None) == 1, "with no idle core, a directory like PyPA's is parsed here"
    assert importer._jobs_for([*small, str(tmp_path / "one-more.json")], None) == 2
    monkeypatch.setattr(importer, "_idle_cores", lambda _cores: 1)
    assert importer._jobs_for(small, None) == 2, "with a core idle, it is parsed by workers"
    tiny = small[: importer.PARALLEL_IDLE_MIN_FILES - 1]
    assert importer._jobs_for(tiny, None) == 1, "a few hundred files are not worth starting workers"
    assert importer._jobs_for(small, 1) == 1, "an explicit count wins"
    monkeypatch.setattr(importer, "_idle_cores", lambda _cores: 0)
    big_zip = tmp_path / "all.zip"
    big_zip.write_bytes(b"\0" * importer.PARALLEL_MIN_ZIP_BYTES)
    assert importer._jobs_for([str(big_zip)], None) == 2
    assert importer._jobs_for([str(big_zip)], 1) == 1, "an explicit count wins"
    monkeypatch.setattr(importer.threading, "active_count", lambda: 2)
    assert importer._jobs_for([str(big_zip)], None) == 1, "no forking with other threads running"


def test_idle_cores_counts_the_runnable_tasks_besides_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(importer, "_LOADAVG", str(loadavg))
    loadavg.write_text("0.50 0.40 0.30 1/120 4242\n")
    assert importer._idle_cores(2) == 1, "only this process runs: one core idle"
    loadavg.write_text("2.10 1.90 1.50 3/120 4242\n")
    assert importer._idle_cores(2) == 0, "two others run: none idle"
    assert importer._idle_cores(4) == 1
    loadavg.write_text("garbage")
    assert importer._idle_cores(2) == 0, "unreadable counts as busy"
    loadavg.unlink()
    assert importer._idle_cores(2) == 0, "missing (not Linux) counts as busy"
