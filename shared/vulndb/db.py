"""The local vulnerability database: one SQLite file with a schema version.

Tables:
- ``advisories``: one row per OSV record (id, modified, withdrawn, summary, severity, aliases, references).
- ``affected``: one row per (advisory, ecosystem, normalised package name), with the OSV ranges and
  explicit versions as compact JSON; indexed by (ecosystem, name), the matcher's only lookup. Each
  import appends its rows in that order, so one package's rows share pages. Withdrawn advisories
  have no rows here; a small partial index of ``advisories`` lists them.
- Derived values (schema 2), which the matcher would otherwise compute for every row it reads:
  ``affected.interval``, the ranges compiled into sort keys when they are one interval
  (``shared.vulndb.matcher.pack_interval``; NULL for other ranges), and ``advisories.cvss``, the
  base score of each severity vector (``shared.vulndb.risk.scores_of``). ``meta`` names what made
  them (``sort_key_encoding``, ``cvss_scores``); a reader whose versions differ, or a file of
  schema 1 without the columns, computes them instead, and an import recomputes them first.
- ``aliases``: alias -> advisory id, so findings merge by CVE.
- ``kev``: CISA Known Exploited Vulnerabilities; ``epss``: EPSS score and percentile per CVE.
- ``sources``: what ``db update`` fetched (ETag, Last-Modified) for conditional requests.
- ``meta``: schema version and bookkeeping.

Writers never modify the file in place: :func:`writable_copy` copies it next to
itself, the import happens there, and :func:`swap` replaces the original only
on success, so a corrupt or truncated input leaves the database as it was.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.vulndb.errors import VulnDBError

SCHEMA_VERSION = 2
#: Schema versions this code reads (and imports into, upgrading the file): 1 lacks the derived columns.
READABLE_VERSIONS = frozenset({1, 2})
#: ``meta`` keys naming the versions that made the derived columns' values.
META_SORT_KEYS = "sort_key_encoding"
META_CVSS = "cvss_scores"
#: Memory-map up to this much of a database opened for matching (address space, not memory).
MMAP_BYTES = 2 * 1024**3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS advisories (
    id TEXT PRIMARY KEY,
    modified TEXT NOT NULL,
    published TEXT,
    withdrawn TEXT,
    summary TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL DEFAULT '[]',
    db_severity TEXT,
    aliases TEXT NOT NULL DEFAULT '[]',
    refs TEXT NOT NULL DEFAULT '[]',
    source TEXT NOT NULL DEFAULT '',
    cvss TEXT
);
CREATE TABLE IF NOT EXISTS affected (
    advisory_id TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    ranges TEXT NOT NULL DEFAULT '[]',
    versions TEXT NOT NULL DEFAULT '[]',
    severity TEXT,
    binaries TEXT,
    interval TEXT
);
CREATE INDEX IF NOT EXISTS affected_lookup ON affected (ecosystem, name);
CREATE INDEX IF NOT EXISTS affected_advisory ON affected (advisory_id);
CREATE INDEX IF NOT EXISTS advisories_withdrawn ON advisories (id) WHERE withdrawn IS NOT NULL;
CREATE TABLE IF NOT EXISTS aliases (alias TEXT NOT NULL, advisory_id TEXT NOT NULL, PRIMARY KEY (alias, advisory_id))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_by_advisory ON aliases (advisory_id);
CREATE TABLE IF NOT EXISTS kev (
    cve TEXT PRIMARY KEY, date_added TEXT, due_date TEXT, ransomware TEXT, name TEXT
);
CREATE TABLE IF NOT EXISTS epss (cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, fetched_at TEXT, records INTEGER
);
"""


def default_path() -> Path:
    """$HULLWATCH_DB, else the user's cache directory (XDG_CACHE_HOME or ~/.cache)/hullwatch/vulndb.sqlite."""
    env = os.environ.get("HULLWATCH_DB")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hullwatch" / "vulndb.sqlite"


def _check(conn: sqlite3.Connection, path: Path) -> None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise VulnDBError(str(path), f"not a hullwatch vulnerability database ({exc})") from None
    if row is None:
        raise VulnDBError(str(path), "not a hullwatch vulnerability database (no schema version)")
    if int(row[0]) not in READABLE_VERSIONS:
        raise VulnDBError(
            str(path), f"schema version {row[0]}, this hullwatch reads {SCHEMA_VERSION}: re-import or update it"
        )


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database (one open_readonly accepted)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0])


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing database for matching. Errors name the file and what is wrong."""
    if not path.exists():
        raise VulnDBError(
            str(path), "no vulnerability database here: run 'hullwatch db import' or 'hullwatch db update'"
        )
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        # Read pages through a memory map rather than one read() each: the matcher's lookups touch
        # thousands of pages on the first image. Writers replace the file, never rewrite it in place.
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        _check(conn, path)
    except sqlite3.DatabaseError as exc:
        raise VulnDBError(str(path), f"unreadable database file ({exc})") from None
    return conn


def initialise(conn: sqlite3.Connection) -> None:
    """Create the tables of a new database, or bring an older one to this schema (the importer then fills the
    derived columns: see shared.vulndb.importer)."""
    conn.executescript(_SCHEMA)
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )
    if schema_version(conn) == 1:
        # Schema 2 adds two nullable columns: NULL is what a row without a derived value holds anyway.
        for table, column in (("affected", "interval"), ("advisories", "cvss")):
            if column not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


@contextmanager
def writable_copy(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a copy of the database; the copy replaces the original only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".importing", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if path.exists():
            src = open_readonly(path)  # refuses a corrupt or foreign file before we build on it
            try:
                dst = sqlite3.connect(tmp)
                src.backup(dst)
                dst.close()
            finally:
                src.close()
        conn = sqlite3.connect(tmp, isolation_level=None)  # explicit BEGIN/COMMIT below
        try:
            conn.execute("PRAGMA journal_mode = OFF")  # the copy is throwaway until swapped in
            conn.execute("PRAGMA synchronous = OFF")
            initialise(conn)
            conn.execute("BEGIN")
            yield conn
            # statistics for the query planner from a sample of each index (a full pass reads the whole file),
            # gathered in the import's own transaction: run after it, in a journalled and synced transaction
            # of its own, it cost more than the import of a few thousand records writing the tables
            conn.execute("PRAGMA analysis_limit = 1000")
            conn.execute("ANALYZE")
            conn.execute("COMMIT")
        finally:
            conn.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # the one sync: the whole copy is on disk before it replaces the original
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def info(path: Path) -> dict[str, object]:
    """What ``hullwatch db info`` prints."""
    conn = open_readonly(path)
    try:
        per_eco = dict(
            conn.execute(
                "SELECT ecosystem, count(DISTINCT advisory_id) FROM affected GROUP BY ecosystem ORDER BY ecosystem"
            ).fetchall()
        )
        newest, total = conn.execute("SELECT max(modified), count(*) FROM advisories").fetchone()
        withdrawn = conn.execute("SELECT count(*) FROM advisories WHERE withdrawn IS NOT NULL").fetchone()[0]
        kev = conn.execute("SELECT count(*) FROM kev").fetchone()[0]
        epss = conn.execute("SELECT count(*) FROM epss").fetchone()[0]
        sources = conn.execute("SELECT name, etag, last_modified, fetched_at FROM sources ORDER BY name").fetchall()
        version = schema_version(conn)
    finally:
        conn.close()
    return {
        "path": str(path),
        "schema_version": version,
        "advisories": total,
        "withdrawn": withdrawn,
        "newest_modified": newest,
        "ecosystems": per_eco,
        "kev_entries": kev,
        "epss_scores": epss,
        "sources": [{"name": n, "etag": e, "last_modified": lm, "fetched_at": f} for n, e, lm, f in sources],
    }
