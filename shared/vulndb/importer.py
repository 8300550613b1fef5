"""``hullwatch db import``: OSV records (JSON, YAML, directories, all.zip), CISA KEV (JSON) and EPSS (CSV).

Everything of one import goes into a copy of the database that replaces the
original only when every input was read: a corrupt zip, a truncated JSON file
or an unreadable CSV stops the import with a message naming the file, and the
previous database stays as it was. A record that parses but is not a usable
OSV record (no id, no modified) is skipped with a warning naming the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sqlite3
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# OSV YAML (PyPA's advisories) parses at ~10,000 records/s with yaml-rs against
# ~600/s with PyYAML even on libyaml; a test checks both agree on the real corpus.
import yaml_rs

from shared.vulndb import db
from shared.vulndb.errors import VulnDBError
from shared.vulndb.names import normalise


class _YamlLoader(yaml.SafeLoader):
    """PyYAML safe loading that keeps timestamps as strings: the reference the fast path is tested against."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def load_yaml(data: bytes, where: str) -> Any:
    """Parse one YAML document, timestamps left as strings."""
    try:
        return yaml_rs.loads(data.decode("utf-8"), parse_datetime=False)
    except (yaml_rs.YAMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise VulnDBError(where, f"not valid YAML ({_one_line(str(exc))})") from None


#: A single OSV record file larger than this is refused (the biggest real ones are a few MB).
MAX_RECORD_BYTES = 64 * 1024 * 1024
BATCH = 2000

# One reusable compact encoder: json.dumps with arguments builds a new encoder per call.
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False, ensure_ascii=False).encode


@dataclass
class ImportStats:
    files: int = 0
    records: int = 0
    written: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    kev: int = 0
    epss: int = 0
    warnings: list[str] = field(default_factory=list)


Warn = Callable[[str], None]


def import_paths(
    path: Path,
    inputs: Iterable[Path],
    sources: Iterable[tuple[str, str | None, str | None, str]] = (),
) -> ImportStats:
    """Import every input into the database at ``path`` (created if missing), atomically.

    ``sources`` records what ``db update`` fetched: (name, etag, last_modified, fetched_at).
    """
    stats = ImportStats()
    inputs = list(inputs)
    for p in inputs:
        if not p.exists():
            raise VulnDBError(str(p), "no such file or directory")
    with db.writable_copy(path) as conn:
        writer = _Writer(conn, stats)
        for p in inputs:
            for f in _walk(p):
                stats.files += 1
                _import_file(f, writer, stats)
        writer.flush()
        for name, etag, last_modified, fetched_at in sources:
            conn.execute(
                "INSERT OR REPLACE INTO sources (name, etag, last_modified, fetched_at) VALUES (?, ?, ?, ?)",
                (name, etag, last_modified, fetched_at),
            )
    return stats


def _walk(p: Path) -> Iterator[Path]:
    if p.is_dir():
        for child in sorted(p.rglob("*")):
            if child.is_file() and child.suffix.lower() in (".json", ".yaml", ".yml", ".zip", ".csv", ".gz"):
                yield child
    else:
        yield p


def _import_file(f: Path, writer: _Writer, stats: ImportStats) -> None:
    name = f.name.lower()
    try:
        if name.endswith(".zip"):
            _import_zip(f, writer, stats)
        elif name.endswith(".csv") or name.endswith(".csv.gz"):
            _import_epss(f, writer, stats)
        else:
            data = _read_limited(f)
            doc = _decode(data, str(f), yaml_ok=name.endswith((".yaml", ".yml")))
            _import_doc(doc, str(f), writer, stats)
    except OSError as exc:
        raise VulnDBError(str(f), f"cannot read: {exc.strerror or exc}") from None


def _read_limited(f: Path) -> bytes:
    size = f.stat().st_size
    if size > MAX_RECORD_BYTES and not f.name.lower().endswith(".json"):
        raise VulnDBError(str(f), f"{size} bytes is over the {MAX_RECORD_BYTES}-byte limit for one file")
    return f.read_bytes()


def _decode(data: bytes, where: str, yaml_ok: bool) -> Any:
    if yaml_ok:
        return load_yaml(data, where)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VulnDBError(where, f"not valid JSON, truncated or corrupt ({exc})") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _import_zip(f: Path, writer: _Writer, stats: ImportStats) -> None:
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise VulnDBError(str(f), f"not a valid zip archive, truncated or corrupt ({exc})") from None
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".json"):
                continue
            where = f"{f}!{info.filename}"
            if info.file_size > MAX_RECORD_BYTES:
                raise VulnDBError(where, f"{info.file_size} bytes is over the {MAX_RECORD_BYTES}-byte limit")
            try:
                with zf.open(info) as member:
                    data = member.read(MAX_RECORD_BYTES + 1)
            except (zipfile.BadZipFile, EOFError, zlib_error()) as exc:
                raise VulnDBError(where, f"corrupt zip member ({exc})") from None
            if len(data) > MAX_RECORD_BYTES:
                raise VulnDBError(where, "member inflates past its declared size (zip bomb?)")
            _import_doc(_decode(data, where, yaml_ok=False), where, writer, stats)


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def _import_doc(doc: Any, where: str, writer: _Writer, stats: ImportStats) -> None:
    if isinstance(doc, dict) and "vulnerabilities" in doc and "catalogVersion" in doc:
        _import_kev(doc, where, writer, stats)
    elif isinstance(doc, dict):
        writer.record(doc, where)
    elif isinstance(doc, list):
        for item in doc:
            writer.record(item, where)
    else:
        raise VulnDBError(where, "neither an OSV record, a list of them, nor a KEV catalogue")


def _import_kev(doc: dict[str, Any], where: str, writer: _Writer, stats: ImportStats) -> None:
    rows = []
    for v in doc.get("vulnerabilities") or []:
        if not isinstance(v, dict) or not isinstance(v.get("cveID"), str):
            stats.warnings.append(f"{where}: a KEV entry without cveID was skipped")
            continue
        rows.append(
            (
                v["cveID"],
                v.get("dateAdded"),
                v.get("dueDate"),
                v.get("knownRansomwareCampaignUse"),
                v.get("vulnerabilityName"),
            )
        )
    writer.conn.execute("DELETE FROM kev")  # the catalogue is published whole
    writer.conn.executemany("INSERT OR REPLACE INTO kev VALUES (?, ?, ?, ?, ?)", rows)
    stats.kev += len(rows)


def _import_epss(f: Path, writer: _Writer, stats: ImportStats) -> None:
    raw = f.read_bytes()
    if f.name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise VulnDBError(str(f), f"corrupt gzip ({exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise VulnDBError(str(f), "not UTF-8 text") from None
    lines = text.splitlines()
    if lines and lines[0].startswith("#"):  # "#model_version:...,score_date:..."
        lines = lines[1:]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if reader.fieldnames is None or not {"cve", "epss", "percentile"} <= set(reader.fieldnames):
        raise VulnDBError(str(f), "not an EPSS CSV (expected the columns cve, epss, percentile)")
    rows = []
    for n, row in enumerate(reader, start=2):
        try:
            rows.append((row["cve"], float(row["epss"]), float(row["percentile"])))
        except (TypeError, ValueError):
            raise VulnDBError(str(f), f"line {n}: not a valid EPSS row (truncated?)") from None
    writer.conn.executemany("INSERT OR REPLACE INTO epss VALUES (?, ?, ?)", rows)
    stats.epss += len(rows)


def _str_list(v: Any) -> list[str]:
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


class _Writer:
    """Batches record writes; skips records not newer than what is stored."""

    def __init__(self, conn: sqlite3.Connection, stats: ImportStats) -> None:
        self.conn = conn
        self.stats = stats
        self._adv: list[tuple[Any, ...]] = []
        self._aff: list[tuple[Any, ...]] = []
        self._ali: list[tuple[str, str]] = []
        self._del: list[tuple[str]] = []
        self._pending: dict[str, str] = {}

    def record(self, rec: Any, where: str) -> None:
        self.stats.records += 1
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), str) or not isinstance(rec.get("modified"), str):
            self.stats.warnings.append(f"{where}: not an OSV record (needs string 'id' and 'modified'); skipped")
            return
        rid, modified = rec["id"], rec["modified"]
        stored = self._pending.get(rid)
        if stored is None:
            row = self.conn.execute("SELECT modified FROM advisories WHERE id = ?", (rid,)).fetchone()
            stored = row[0] if row else None
        if stored is not None and stored >= modified:
            self.stats.unchanged += 1
            return
        self._pending[rid] = modified
        self._del.append((rid,))
        withdrawn = rec.get("withdrawn") if isinstance(rec.get("withdrawn"), str) else None
        aliases = sorted(set(_str_list(rec.get("aliases"))) | set(_str_list(rec.get("upstream"))))
        refs = [
            {"type": r.get("type", ""), "url": r["url"]}
            for r in rec.get("references") or []
            if isinstance(r, dict) and isinstance(r.get("url"), str)
        ]
        severity = [
            {"type": s["type"], "score": s["score"]}
            for s in rec.get("severity") or []
            if isinstance(s, dict) and isinstance(s.get("type"), str) and isinstance(s.get("score"), str)
        ]
        dbs = rec.get("database_specific")
        db_sev = dbs.get("severity") if isinstance(dbs, dict) and isinstance(dbs.get("severity"), str) else None
        summary = rec.get("summary") if isinstance(rec.get("summary"), str) else ""
        if not summary and isinstance(rec.get("details"), str):
            summary = rec["details"].strip().split("\n", 1)[0][:300]
        self._adv.append(
            (
                rid,
                modified,
                rec.get("published") if isinstance(rec.get("published"), str) else None,
                withdrawn,
                summary,
                _dumps(severity),
                db_sev,
                _dumps(aliases),
                _dumps(refs),
                where,
            )
        )
        if withdrawn:
            self.stats.withdrawn += 1
        else:
            for alias in aliases:
                self._ali.append((alias, rid))
            self._ali.append((rid, rid))
            for aff in rec.get("affected") or []:
                row = _affected_row(rid, aff)
                if row is not None:
                    self._aff.append(row)
        self.stats.written += 1
        if len(self._adv) >= BATCH:
            self.flush()

    def flush(self) -> None:
        c = self.conn
        if self._del:
            c.executemany("DELETE FROM affected WHERE advisory_id = ?", self._del)
            c.executemany("DELETE FROM aliases WHERE advisory_id = ?", self._del)
        c.executemany("INSERT OR REPLACE INTO advisories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self._adv)
        c.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?, ?)", self._aff)
        c.executemany("INSERT OR IGNORE INTO aliases VALUES (?, ?)", self._ali)
        self._adv, self._aff, self._ali, self._del = [], [], [], []
        self._pending.clear()


def _affected_row(rid: str, aff: Any) -> tuple[Any, ...] | None:
    if not isinstance(aff, dict):
        return None
    pkg = aff.get("package")
    if not isinstance(pkg, dict) or not isinstance(pkg.get("ecosystem"), str) or not isinstance(pkg.get("name"), str):
        return None
    eco = pkg["ecosystem"]
    ranges = []
    for r in aff.get("ranges") or []:
        if not isinstance(r, dict) or r.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue  # GIT ranges name commits, not package versions
        events = []
        for e in r.get("events") or []:
            if isinstance(e, dict) and len(e) == 1:
                ((kind, version),) = e.items()
                if kind in ("introduced", "fixed", "last_affected", "limit") and isinstance(version, str):
                    events.append([kind, version])
        if events:
            ranges.append([r["type"], events])
    versions = _str_list(aff.get("versions"))
    if not ranges and not versions:
        return None
    sev = None
    for holder in (aff.get("ecosystem_specific"), aff.get("database_specific")):
        if isinstance(holder, dict) and isinstance(holder.get("severity"), str):
            sev = holder["severity"]
            break
    binaries = None
    es = aff.get("ecosystem_specific")
    if isinstance(es, dict) and isinstance(es.get("binaries"), list):
        names: set[str] = set()
        for b in es["binaries"]:
            if isinstance(b, dict):
                names.update(k for k in b if isinstance(k, str) and k not in ("binary_name", "binary_version"))
                if isinstance(b.get("binary_name"), str):
                    names.add(b["binary_name"])
        binaries = _dumps(sorted(names))
    return (
        rid,
        eco,
        normalise(eco, pkg["name"]),
        _dumps(ranges),
        _dumps(versions),
        sev,
        binaries,
    )
