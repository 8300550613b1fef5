"""``hullwatch db import``: OSV records (JSON, YAML, directories, all.zip), CISA KEV (JSON) and EPSS (CSV).

Everything of one import goes into a copy of the database that replaces the
original only when every input was read: a corrupt zip, a truncated JSON file
or an unreadable CSV stops the import with a message naming the file, and the
previous database stays as it was. A record that parses but is not a usable
OSV record (no id, no modified) is skipped with a warning naming the file.

Each import also stores what the matcher would otherwise compute for every row
it reads (see :mod:`shared.vulndb.db`): the sort keys of ranges that are one
interval, and the CVSS base scores of advisories. A database whose stored
values were made by other versions (of the sort keys, of the scoring) has them
recomputed first, so that every row of the file agrees with what ``meta`` says.

Speed: reading and parsing records (JSON, YAML) and turning them into rows is
most of the work, and each record is independent, so large inputs (many files,
or big ``all.zip`` files) are parsed by worker processes, one per core, in
chunks, while this process writes the rows in input order, chunk by chunk as
they arrive (so little is left to write when the last one is parsed). Results
are applied strictly in order and only a few chunks are in flight at a time, so
the outcome (rows, their order, statistics, warnings, the first error) is the
same as parsing everything here, and memory stays bounded whatever the input
size. Small inputs, a single core, or a process with threads running (where
forking is unsafe) parse here; so do directories of a few thousand files when
no other core is idle at the start (see ``PARALLEL_IDLE_MIN_FILES``). Whether a record is newer than the stored one is
decided per batch with one query per few hundred ids rather than one per record.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sqlite3
import sys
import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# OSV YAML (PyPA's advisories) parses at ~10,000 records/s with yaml-rs against
# ~600/s with PyYAML even on libyaml; a test checks both agree on the real corpus.
import yaml_rs

from shared import zipread
from shared.vulndb import db, risk
from shared.vulndb.errors import VulnDBError
from shared.vulndb.matcher import interval_of, pack_interval
from shared.vulndb.names import normalise
from shared.vulndb.versions import KEY_ENCODING


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
#: Work handed to a worker at a time: record files, or members of one zip.
FILES_PER_CHUNK = 48
MEMBERS_PER_CHUNK = 500
#: Inputs at least this large are parsed by worker processes, one per core (below it, starting them costs more
#: than it saves).
PARALLEL_MIN_FILES = 10_000
#: Directories of at least this many record files are parsed by workers too when, at the start of the import, a
#: core besides this process's is idle. Workers only pay off with an idle core: on a 2-core machine shared with
#: other work (load average about 3), PyPA's 2,661 files imported in 0.60 s parsed in this process against 0.71 s
#: with workers (medians of 45 imports each), while with a core idle they took 0.35 s against 0.52 s (medians of
#: 11, alternated); 1,000 files took 0.17 s against 0.20 s. See ``_idle_cores``.
PARALLEL_IDLE_MIN_FILES = 1_000
PARALLEL_MIN_ZIP_BYTES = 2 * 1024 * 1024
MAX_JOBS = 4
#: ids per "which of these are stored, and how new" query (SQLite allows 32,766 parameters).
_LOOKUP_CHUNK = 500


def _compact_encoder() -> Callable[[Any], str]:
    """Compact JSON (no spaces, UTF-8 kept), as ``json.dumps(o, separators=(",", ":"), ensure_ascii=False)``.

    ``JSONEncoder.encode`` builds a new C encoder on every call; building it once
    halves the cost for the small lists stored here. Falls back to the plain
    encoder where the C accelerator is missing.
    """
    plain = json.JSONEncoder(separators=(",", ":"), check_circular=False, ensure_ascii=False).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain

    def default(o: Any) -> Any:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    c_encode = make(None, default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    join = "".join

    def encode(o: Any) -> str:
        return join(c_encode(o, 0))

    return encode


_dumps = _compact_encoder()


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
    #: worker processes that parsed the inputs (0: this process did); not part of the outcome, which is the
    #: same either way
    workers: int = field(default=0, compare=False)


Warn = Callable[[str], None]


def import_paths(
    path: Path,
    inputs: Iterable[Path],
    sources: Iterable[tuple[str, str | None, str | None, str]] = (),
    *,
    jobs: int | None = None,
) -> ImportStats:
    """Import every input into the database at ``path`` (created if missing), atomically.

    ``sources`` records what ``db update`` fetched: (name, etag, last_modified, fetched_at).
    ``jobs``: processes parsing records (default: one per core, at most 4, for large inputs; 1 = this one).
    """
    stats = ImportStats()
    inputs = list(inputs)
    for p in inputs:
        if not p.exists():
            raise VulnDBError(str(p), "no such file or directory")
    files = [f for p in inputs for f in _walk(p)]
    runner = _Runner(_jobs_for(files, jobs))
    stats.workers = runner.workers
    try:
        with db.writable_copy(path) as conn:
            _refresh_derived(conn)
            writer = _Writer(conn, stats)
            for unit, events in runner.results(_plan(files)):
                _apply(unit, events, writer, stats)
            writer.finish()
            for name, etag, last_modified, fetched_at in sources:
                conn.execute(
                    "INSERT OR REPLACE INTO sources (name, etag, last_modified, fetched_at) VALUES (?, ?, ?, ?)",
                    (name, etag, last_modified, fetched_at),
                )
    finally:
        runner.close()
        _close_zip()
    return stats


#: Rows per query while derived values are recomputed.
_REFRESH_CHUNK = 20_000


def _refresh_derived(conn: sqlite3.Connection) -> None:
    """Recompute the derived columns of the rows already stored where ``meta`` says other versions made them (or
    none did: a file of schema 1), then name this code's versions; in a new file there is nothing to recompute.

    This happens once per change of version (a new hullwatch, a new cvss library), in the import's transaction;
    without it the file's old rows would go on being computed by every matcher, or, were their values read, be
    compared with keys of another encoding.
    """
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    keys = str(KEY_ENCODING)
    if meta.get(db.META_SORT_KEYS) != keys:
        _recompute(conn, "affected", "interval", "ecosystem, ranges", _interval_of_text)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (db.META_SORT_KEYS, keys))
    if meta.get(db.META_CVSS) != risk.SCORES_VERSION:
        _recompute(conn, "advisories", "cvss", "severity, withdrawn", _scores_of_text)
        if risk.SCORES_VERSION is None:
            conn.execute("DELETE FROM meta WHERE key = ?", (db.META_CVSS,))
        else:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (db.META_CVSS, risk.SCORES_VERSION))


def _recompute(conn: sqlite3.Connection, table: str, column: str, inputs: str, compute: Callable[..., Any]) -> None:
    """Set ``column`` of every row of ``table`` to ``compute(*inputs)`` where that differs, a chunk of rows at a
    time. (Only this module's constant names are interpolated.)"""
    sql = f"SELECT rowid, {inputs}, {column} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?"  # noqa: S608
    update = f"UPDATE {table} SET {column} = ? WHERE rowid = ?"  # noqa: S608
    last = 0
    while rows := conn.execute(sql, (last, _REFRESH_CHUNK)).fetchall():
        last = rows[-1][0]
        updates = []
        for row in rows:
            new = compute(*row[1:-1])
            if new != row[-1]:
                updates.append((new, row[0]))
        conn.executemany(update, updates)


def _interval_of_text(eco: str, ranges: str) -> str | None:
    try:
        return _interval(eco, json.loads(ranges))
    except (ValueError, TypeError, IndexError):  # not ranges this importer writes: left to the matcher
        return None


def _scores_of_text(severity: str, withdrawn: str | None) -> str | None:
    if withdrawn:
        return None  # a withdrawn advisory is never matched
    try:
        return _scores(json.loads(severity))
    except (ValueError, TypeError, AttributeError):  # not a severity list this importer writes
        return None


def _interval(eco: str, ranges: list[Any]) -> str | None:
    """The ``interval`` column of an affected row with these ranges (see shared.vulndb.matcher.pack_interval)."""
    if len(ranges) != 1 or len(ranges[0][1]) > 2:
        return None  # never one interval (interval_of says so too; this spares the call for most such rows)
    try:
        stored = interval_of(eco, ranges)
    except ValueError:  # what reading versions raises; interval_of catches it, but a row never stops an import
        return None
    return pack_interval(stored) if stored is not None else None


def _scores(severity: list[dict[str, str]]) -> str | None:
    """The ``cvss`` column of an advisory with this severity list: the base score of each entry (risk.scores_of)."""
    if not severity or risk.SCORES_VERSION is None:
        return None
    return _dumps(risk.scores_of(severity))


def _walk(p: Path) -> Iterator[str]:
    """``p`` itself, or the importable files under it in ``sorted(p.rglob("*"))`` order (without a stat per file)."""
    if not p.is_dir():
        yield str(p)
        return
    found: list[tuple[tuple[str, ...], str]] = []
    stack: list[tuple[str, tuple[str, ...]]] = [(str(p), ())]
    while stack:
        folder, parts = stack.pop()
        try:
            it = os.scandir(folder)
        except PermissionError:
            continue
        with it:
            for entry in it:
                name = entry.name
                try:
                    if entry.is_dir():
                        if not entry.is_symlink():  # like rglob: symlinked folders are not followed
                            stack.append((entry.path, (*parts, name)))
                        continue
                    if not entry.is_file():
                        continue
                except OSError:
                    continue
                dot = name.rfind(".")
                if 0 < dot < len(name) - 1 and name[dot:].lower() in (".json", ".yaml", ".yml", ".zip", ".csv", ".gz"):
                    found.append(((*parts, name), entry.path))
    found.sort()
    for _, f in found:
        yield f


def _jobs_for(files: list[str], jobs: int | None) -> int:
    if jobs is not None:
        return max(1, jobs)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if cores < 2 or sys.platform != "linux" or threading.active_count() > 1:
        return 1  # workers are forked: only done where that is cheap and safe
    n_records = 0
    zip_bytes = 0
    for f in files:
        name = f.rsplit(os.sep, 1)[-1].lower()
        if name.endswith(".zip"):
            try:
                zip_bytes += Path(f).stat().st_size
            except OSError:
                pass
        elif not name.endswith((".csv", ".csv.gz")):
            n_records += 1
    if n_records >= PARALLEL_MIN_FILES or zip_bytes >= PARALLEL_MIN_ZIP_BYTES:
        return min(cores, MAX_JOBS)
    if n_records >= PARALLEL_IDLE_MIN_FILES and _idle_cores(cores) >= 1:
        return min(cores, MAX_JOBS)
    return 1


_LOADAVG = "/proc/loadavg"


def _idle_cores(cores: int) -> int:
    """Cores nothing is running on right now besides this process (0 when unknown).

    From the kernel's count of runnable tasks in ``/proc/loadavg`` (this process is one of them): a sample
    of this moment, not the load average, which lags by a minute and counts this process's own past work.
    """
    try:
        with open(_LOADAVG, encoding="ascii") as f:
            runnable = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, cores - runnable)


# -- the work: units planned in input order, parsed here or in workers, applied in order ---------------------------
#
# A unit is ("files", [path, ...]) or ("zip", path, first member, end) -- parsing work -- or a step done here
# in order: ("zipfile", path) counts a zip read, ("epss", path) imports an EPSS file, ("fail", where, detail)
# stops the import. Parsing work yields events: ("rec", where, prepared record or None), ("kev", where, rows,
# warnings), ("err", where, detail) (stop), ("files", n) (files read).

Unit = tuple[Any, ...]
Event = tuple[Any, ...]


def _plan(files: list[str]) -> Iterator[Unit]:
    batch: list[str] = []
    for f in files:
        name = f.rsplit(os.sep, 1)[-1].lower()
        if name.endswith(".zip") or name.endswith(".csv") or name.endswith(".csv.gz"):
            if batch:
                yield ("files", batch)
                batch = []
            if name.endswith(".zip"):
                yield from _plan_zip(f)
            else:
                yield ("epss", f)
        else:
            batch.append(f)
            if len(batch) >= FILES_PER_CHUNK:
                yield ("files", batch)
                batch = []
    if batch:
        yield ("files", batch)


def _plan_zip(f: str) -> Iterator[Unit]:
    try:
        zf = _open_zip(f)
    except (zipfile.BadZipFile, EOFError) as exc:
        yield ("fail", f, f"not a valid zip archive, truncated or corrupt ({exc})")
        return
    except OSError as exc:
        yield ("fail", f, f"cannot read: {exc.strerror or exc}")
        return
    n = len(zf.infolist())
    yield ("zipfile", f)
    for start in range(0, n, MEMBERS_PER_CHUNK):
        yield ("zip", f, start, min(n, start + MEMBERS_PER_CHUNK))


# One open zip per process (the one being read): its central directory is read once, not per chunk.
# Keyed by process id too, so a forked worker never shares the parent's file offset.
_ZIP: dict[str, Any] = {}


def _open_zip(path: str) -> zipfile.ZipFile:
    key = (path, os.getpid())
    if _ZIP.get("key") == key:
        zf: zipfile.ZipFile = _ZIP["zf"]
        return zf
    _close_zip()
    zf = zipfile.ZipFile(path)
    _ZIP.update(key=key, zf=zf)
    return zf


def _close_zip() -> None:
    zf = _ZIP.pop("zf", None)
    _ZIP.pop("key", None)
    if zf is not None:
        zf.close()  # in a forked worker this closes its own copy of the descriptor only


def _run(unit: Unit) -> list[Event]:
    """Parse one unit of work into events (in a worker process or here)."""
    out: list[Event] = []
    if unit[0] == "files":
        for name in unit[1]:
            out.append(("files", 1))
            try:
                data = _read_limited(name)
                doc = _decode(data, name, yaml_ok=name.lower().endswith((".yaml", ".yml")))
            except VulnDBError as exc:
                out.append(("err", exc.subject, exc.detail))
                return out
            except OSError as exc:
                out.append(("err", name, f"cannot read: {exc.strerror or exc}"))
                return out
            if not _prepare_doc(doc, name, out):
                return out
    elif unit[0] == "zip":
        _, path, start, end = unit
        try:
            zf = _open_zip(path)
            infos = zf.infolist()[start:end]
        except (zipfile.BadZipFile, EOFError) as exc:
            return [("err", path, f"not a valid zip archive, truncated or corrupt ({exc})")]
        except OSError as exc:
            return [("err", path, f"cannot read: {exc.strerror or exc}")]
        for info in infos:
            if info.is_dir() or not info.filename.lower().endswith(".json"):
                continue
            where = f"{path}!{info.filename}"
            if info.file_size > MAX_RECORD_BYTES:
                out.append(("err", where, f"{info.file_size} bytes is over the {MAX_RECORD_BYTES}-byte limit"))
                return out
            try:
                data = _member_bytes(zf, info)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                out.append(("err", where, f"corrupt zip member ({exc})"))
                return out
            except OSError as exc:
                out.append(("err", path, f"cannot read: {exc.strerror or exc}"))
                return out
            if len(data) > MAX_RECORD_BYTES:
                out.append(("err", where, "member inflates past its declared size (zip bomb?)"))
                return out
            try:
                doc = _decode(data, where, yaml_ok=False)
            except VulnDBError as exc:
                out.append(("err", exc.subject, exc.detail))
                return out
            if not _prepare_doc(doc, where, out):
                return out
    return out


def _member_bytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """``zf.open(info).read(MAX_RECORD_BYTES + 1)`` with the same checks (header, name, size, CRC-32).

    Stored and deflated members are read in one go, without the per-member reader objects
    of :mod:`zipfile` (a third of the time spent on a small JSON member); anything else
    (encrypted, other compressions) goes through :mod:`zipfile`.
    """
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or zf.fp is None:
        with zf.open(info) as member:
            return member.read(MAX_RECORD_BYTES + 1)
    fp = zf.fp
    fp.seek(info.header_offset)
    flags, name_length, extra_length = zipread.local_header(fp.read(zipread.LOCAL_HEADER.size))
    zipread.check_local_name(fp.read(name_length), flags, info.orig_filename)
    if extra_length:
        fp.seek(extra_length, 1)
    raw = fp.read(info.compress_size)
    if len(raw) != info.compress_size:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")
    return zipread.inflate(raw, info.compress_type, info.file_size, info.CRC, MAX_RECORD_BYTES)


def _prepare_doc(doc: Any, where: str, out: list[Event]) -> bool:
    """Events for one parsed document; False after an error event."""
    if isinstance(doc, dict) and "vulnerabilities" in doc and "catalogVersion" in doc:
        rows, warnings = _kev_rows(doc, where)
        out.append(("kev", where, rows, warnings))
    elif isinstance(doc, dict):
        out.append(("rec", where, _prepare(doc, where)))
    elif isinstance(doc, list):
        for item in doc:
            out.append(("rec", where, _prepare(item, where)))
    else:
        out.append(("err", where, "neither an OSV record, a list of them, nor a KEV catalogue"))
        return False
    return True


def _apply(unit: Unit, events: list[Event] | None, writer: _Writer, stats: ImportStats) -> None:
    """Apply one unit's outcome, in input order."""
    kind = unit[0]
    if kind == "fail":
        raise VulnDBError(unit[1], unit[2])
    if kind == "zipfile":
        stats.files += 1
        return
    if kind == "epss":
        stats.files += 1
        f = unit[1]
        try:
            _import_epss(Path(f), writer, stats)
        except OSError as exc:
            raise VulnDBError(f, f"cannot read: {exc.strerror or exc}") from None
        return
    for ev in events or ():
        tag = ev[0]
        if tag == "rec":
            writer.record(ev[2], ev[1])
        elif tag == "files":
            stats.files += ev[1]
        elif tag == "kev":
            _, _, rows, warnings = ev
            stats.warnings.extend(warnings)
            writer.conn.execute("DELETE FROM kev")  # the catalogue is published whole
            writer.conn.executemany("INSERT OR REPLACE INTO kev VALUES (?, ?, ?, ?, ?)", rows)
            stats.kev += len(rows)
        elif tag == "err":
            raise VulnDBError(ev[1], ev[2])
    # Written unit by unit, while the workers parse the next ones: what is left to write once the
    # last unit is parsed is one unit's records, not a whole batch.
    writer.flush()


class _Runner:
    """Runs parsing units here or in worker processes; yields (unit, events) strictly in plan order."""

    def __init__(self, jobs: int) -> None:
        self.pool: ProcessPoolExecutor | None = None
        # Units in flight: enough to keep every worker busy while this process writes (with two per worker,
        # workers ran dry whenever a few units' rows were being written), few enough to bound memory.
        self.window = 4 * jobs + 4 if jobs > 1 else 0
        if jobs > 1:
            import multiprocessing

            try:
                self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"))
            except (OSError, ValueError, ImportError, NotImplementedError):
                self.pool = None  # no working semaphores (some sandboxes): parse here
                self.window = 0
        self.workers = jobs if self.pool is not None else 0

    def results(self, units: Iterator[Unit]) -> Iterator[tuple[Unit, list[Event] | None]]:
        pending: deque[tuple[Unit, Future[list[Event]] | None]] = deque()
        for unit in units:
            fut = None
            if self.pool is not None and unit[0] in ("files", "zip"):
                try:
                    fut = self.pool.submit(_run, unit)
                except (BrokenProcessPool, RuntimeError, OSError):
                    self._broken()
            pending.append((unit, fut))
            while len(pending) > self.window:
                yield self._resolve(*pending.popleft())
        if self.pool is not None:
            # everything is submitted: the workers leave once the queue is drained, while this process
            # still writes, rather than being stopped and waited for at the end
            self.pool.shutdown(wait=False)
        while pending:
            yield self._resolve(*pending.popleft())

    def _resolve(self, unit: Unit, fut: Future[list[Event]] | None) -> tuple[Unit, list[Event] | None]:
        if fut is not None:
            try:
                return unit, fut.result()
            except (BrokenProcessPool, OSError):
                self._broken()  # a worker died (killed, out of memory): do its share here
        if unit[0] in ("files", "zip"):
            return unit, _run(unit)
        return unit, None

    def _broken(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
            self.window = 0

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _read_limited(f: str) -> bytes:
    # os.open/os.read rather than open(): no file object, buffer or extra fstat per file, half the
    # cost of reading a small advisory file (thousands of them in a directory import).
    fd = os.open(f, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if size > MAX_RECORD_BYTES and not f.lower().endswith(".json"):
            raise VulnDBError(f, f"{size} bytes is over the {MAX_RECORD_BYTES}-byte limit for one file")
        data = os.read(fd, size + 1)
        if len(data) == size:
            return data  # the usual case: one read returned the whole file and stopped at its end
        parts = [data]  # a short read, or the file grew since fstat: read on to the end, as read() does
        while True:
            more = os.read(fd, 1 << 20)
            if not more:
                return b"".join(parts)
            parts.append(more)
    finally:
        os.close(fd)


def _decode(data: bytes, where: str, yaml_ok: bool) -> Any:
    if yaml_ok:
        return load_yaml(data, where)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VulnDBError(where, f"not valid JSON, truncated or corrupt ({exc})") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def zlib_error() -> type[Exception]:
    return zlib.error


def _kev_rows(doc: dict[str, Any], where: str) -> tuple[list[tuple[Any, ...]], list[str]]:
    rows = []
    warnings = []
    for v in doc.get("vulnerabilities") or []:
        if not isinstance(v, dict) or not isinstance(v.get("cveID"), str):
            warnings.append(f"{where}: a KEV entry without cveID was skipped")
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
    return rows, warnings


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


_JUST_STR = {str}
#: What JSON escapes in a string when non-ASCII is kept (``ensure_ascii=False``): controls, quote, backslash.
#: In UTF-8 these are single bytes that never occur inside the encoding of another character.
_ESCAPED_BYTES = bytes(range(0x20)) + b'"\\'


def _plain(text: str) -> bool:
    """True when JSON would write ``text`` as it is between the quotes."""
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw.translate(None, _ESCAPED_BYTES)) == len(raw)


def _json_strs(items: list[Any]) -> str:
    """``_dumps(_str_list(items))``, the JSON list of the strings in ``items``.

    Version lists are most of a PyPI advisory (a hundred versions is common), and encoding
    them string by string was a fifth of preparing a record. They almost never hold anything
    but strings, nor a character JSON escapes, so the text is joined directly when both hold.
    """
    if not items:
        return "[]"
    try:
        text = "".join(items)
    except TypeError:  # not only strings: the others are dropped
        items = _str_list(items)
        if not items:
            return "[]"
        text = "".join(items)
    if _plain(text):
        return '["' + '","'.join(items) + '"]'
    return _dumps(items)


def _refs_json(refs: list[tuple[Any, str]]) -> str:
    """``_dumps([{"type": t, "url": u} ...])``, joined directly when types are strings and nothing needs escaping."""
    if not refs:
        return "[]"
    types = [t for t, _ in refs]
    if set(map(type, types)) <= _JUST_STR and _plain("".join(types) + "".join([u for _, u in refs])):
        return "[" + ",".join(['{"type":"%s","url":"%s"}' % ref for ref in refs]) + "]"  # noqa: UP031
    return _dumps([{"type": t, "url": u} for t, u in refs])


#: What a record becomes before it is written: (id, modified, withdrawn?, advisories row, affected rows, alias rows).
Prepared = tuple[str, str, bool, tuple[Any, ...], list[tuple[Any, ...]], list[tuple[str, str]]]


def _prepare(rec: Any, where: str) -> Prepared | None:
    """The rows of one OSV record; None when it is not one (no string id and modified)."""
    if not isinstance(rec, dict):
        return None
    rid = rec.get("id")
    modified = rec.get("modified")
    if not isinstance(rid, str) or not isinstance(modified, str):
        return None
    get = rec.get
    withdrawn = get("withdrawn")
    if not isinstance(withdrawn, str):
        withdrawn = None
    aliases = sorted(set(_str_list(get("aliases"))) | set(_str_list(get("upstream"))))
    refs = [
        (r.get("type", ""), url)
        for r in get("references") or []
        if isinstance(r, dict) and isinstance(url := r.get("url"), str)
    ]
    severity = [
        {"type": s["type"], "score": s["score"]}
        for s in get("severity") or []
        if isinstance(s, dict) and isinstance(s.get("type"), str) and isinstance(s.get("score"), str)
    ]
    dbs = get("database_specific")
    db_sev = dbs.get("severity") if isinstance(dbs, dict) and isinstance(dbs.get("severity"), str) else None
    summary = get("summary")
    if not isinstance(summary, str):
        summary = ""
    if not summary:
        details = get("details")
        if isinstance(details, str):
            summary = details.strip().split("\n", 1)[0][:300]
    published = get("published")
    adv = (
        rid,
        modified,
        published if isinstance(published, str) else None,
        withdrawn,
        summary,
        _dumps(severity) if severity else "[]",
        db_sev,
        _json_strs(aliases),
        _refs_json(refs),
        where,
        None if withdrawn else _scores(severity),  # (a withdrawn advisory is never matched)
    )
    aff_rows: list[tuple[Any, ...]] = []
    ali_rows: list[tuple[str, str]] = []
    if not withdrawn:
        ali_rows = [(alias, rid) for alias in aliases]
        ali_rows.append((rid, rid))
        for aff in get("affected") or []:
            row = _affected_row(rid, aff)
            if row is not None:
                aff_rows.append(row)
    return (rid, modified, bool(withdrawn), adv, aff_rows, ali_rows)


class _Writer:
    """Batches record writes; skips records not newer than what is stored (or than an earlier one of the input)."""

    def __init__(self, conn: sqlite3.Connection, stats: ImportStats) -> None:
        self.conn = conn
        self.stats = stats
        self._staged: list[Prepared] = []
        self._staging = False

    def record(self, prepared: Prepared | None, where: str) -> None:
        self.stats.records += 1
        if prepared is None:
            self.stats.warnings.append(f"{where}: not an OSV record (needs string 'id' and 'modified'); skipped")
            return
        self._staged.append(prepared)
        if len(self._staged) >= BATCH:
            self.flush()

    def _stored(self, ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            # only '?' placeholders are interpolated
            sql = f"SELECT id, modified FROM advisories WHERE id IN ({marks})"  # noqa: S608
            out.update(self.conn.execute(sql, chunk).fetchall())
        return out

    def flush(self) -> None:
        staged, self._staged = self._staged, []
        if not staged:
            return
        stored = self._stored(list({p[0] for p in staged}))
        stats = self.stats
        chosen: dict[str, Prepared] = {}
        for p in staged:
            rid, modified = p[0], p[1]
            earlier = chosen.get(rid)
            current = earlier[1] if earlier is not None else stored.get(rid)
            if current is not None and current >= modified:
                stats.unchanged += 1
                continue
            if earlier is not None:
                # A newer copy of a record seen earlier in this batch replaces it whole, and in its own place:
                # where a record's rows go then depends on the input order only, not on where batches end
                # (across batches the earlier copy's rows are deleted and the newer ones appended).
                del chosen[rid]
            chosen[rid] = p
            stats.written += 1
            if p[2]:
                stats.withdrawn += 1
        c = self.conn
        if not self._staging:
            c.execute("CREATE TEMP TABLE affected_staged AS SELECT * FROM main.affected WHERE 0")
            self._staging = True
        gone = [(rid,) for rid in chosen if rid in stored]  # rows to replace; new ids have none
        if gone:
            # Only replacing rows needs to find staged ones by advisory: an import of new records only
            # (into a fresh database) never builds this index, the others build it once, here.
            c.execute("CREATE INDEX IF NOT EXISTS temp.affected_staged_advisory ON affected_staged (advisory_id)")
            c.executemany("DELETE FROM main.affected WHERE advisory_id = ?", gone)
            c.executemany("DELETE FROM affected_staged WHERE advisory_id = ?", gone)
            c.executemany("DELETE FROM aliases WHERE advisory_id = ?", gone)
        c.executemany(
            "INSERT OR REPLACE INTO advisories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [p[3] for p in chosen.values()],
        )
        c.executemany(
            "INSERT INTO affected_staged VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [r for p in chosen.values() for r in p[4]]
        )
        c.executemany("INSERT OR IGNORE INTO aliases VALUES (?, ?)", [r for p in chosen.values() for r in p[5]])

    def finish(self) -> None:
        """Write what is staged; the import's affected rows go in in (ecosystem, name) order.

        The matcher reads every row of a few hundred (ecosystem, name) keys per image. Rows written
        record by record would be scattered over the table, one page per row to read; written in key
        order (rows of one key in input order), a key's rows are neighbours: several times fewer
        pages, warm or cold. They wait in a temporary table until then.
        """
        self.flush()
        if self._staging:
            self.conn.execute("INSERT INTO main.affected SELECT * FROM affected_staged ORDER BY ecosystem, name, rowid")
            self.conn.execute("DROP TABLE affected_staged")
            self._staging = False


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
    versions = aff.get("versions")
    versions_json = _json_strs(versions) if isinstance(versions, list) else "[]"
    if not ranges and versions_json == "[]":
        return None
    sev = None
    es = aff.get("ecosystem_specific")
    for holder in (es, aff.get("database_specific")):
        if isinstance(holder, dict) and isinstance(holder.get("severity"), str):
            sev = holder["severity"]
            break
    binaries = None
    if isinstance(es, dict) and isinstance(es.get("binaries"), list):
        names: set[str] = set()
        for b in es["binaries"]:
            if isinstance(b, dict):
                names.update(k for k in b if isinstance(k, str) and k not in ("binary_name", "binary_version"))
                if isinstance(b.get("binary_name"), str):
                    names.add(b["binary_name"])
        binaries = _dumps(sorted(names))
    name = pkg["name"]
    norm = _NAMES.get((eco, name))
    if norm is None:
        if len(_NAMES) >= 100_000:
            _NAMES.clear()
        norm = _NAMES[(eco, name)] = normalise(eco, name)
    return (
        rid,
        eco,
        norm,
        _dumps(ranges),
        versions_json,
        sev,
        binaries,
        _interval(eco, ranges),
    )


#: Normalised package names: the same few thousand names recur across tens of thousands of records.
_NAMES: dict[tuple[str, str], str] = {}
