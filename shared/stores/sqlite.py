"""The SQLite store: the embedded default behind :class:`~shared.stores.ports.Store`.

One database file in WAL mode (readers never block the writer), one table per
document kind. Each document is kept whole as JSON next to the few columns its
queries filter on; its ETag is a fresh random token on every write, and
``if_match`` compares against it inside the same transaction as the write.

What the port promises and how this adapter keeps it:

- ``put_findings`` writes an image's findings in one transaction: all or none.
  A record that carries an ``etag`` is written only if the stored one still
  has that ETag (else the whole batch is rolled back and
  :class:`~shared.stores.errors.PreconditionFailed` is raised); records
  without one are plain upserts.
- ``put_image``/``mark_alert`` with an ETag are conditional the same way.
- ``create_alert`` is ``INSERT OR IGNORE`` and says whether it inserted;
  ``create_alerts`` does the same for an image's alerts in one transaction.
- ``mark_alerts`` writes several alerts' publication state in one transaction:
  all or none, like ``put_findings``.
- ``request_count`` counts the statements or transactions each call issues, one
  per round trip a remote store would make (a page of an iterator is one).

A file that is not an SQLite database, or an SQLite database that is not a
hullwatch store, is refused with a message naming the file; nothing is written
to it.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.errors import InputError
from shared.stores.errors import PreconditionFailed, StoreUnavailable
from shared.stores.models import (
    AlertRecord,
    FindingRecord,
    FindingStatus,
    ImageRecord,
    LayerCacheEntry,
    check_alert_batch,
    distinct_alerts,
)

SCHEMA_VERSION = 1
_MARKER = "hullwatch-store"
#: Rows per page of an iterator, and (ecosystem, name) pairs per IN query.
PAGE = 500
_KEYS_PER_QUERY = 400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY,
    seen_at TEXT,
    running INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    etag TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY,
    image_digest TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    etag TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_by_image ON findings (image_digest);
CREATE INDEX IF NOT EXISTS findings_by_severity ON findings (severity, status, last_seen);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    published INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    etag TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_unpublished ON alerts (published, created_at);
CREATE TABLE IF NOT EXISTS layer_cache (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS package_index (
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (ecosystem, name, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS package_index_by_digest ON package_index (digest);
"""


_SCHEMA_META = (
    "INSERT OR IGNORE INTO store_meta VALUES ('kind', 'hullwatch-store');"
    "INSERT OR IGNORE INTO store_meta VALUES ('schema_version', '1');"
)
if f"'{_MARKER}'" not in _SCHEMA_META or f"'{SCHEMA_VERSION}'" not in _SCHEMA_META:
    raise RuntimeError("store_meta initialisation is out of step with _MARKER / SCHEMA_VERSION")


class StoreFileError(InputError):
    """The store file is corrupt, foreign, or from an incompatible hullwatch."""


def _ts(value: datetime | None) -> str | None:
    """A datetime as sortable UTC text (naive values are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _etag() -> str:
    return uuid.uuid4().hex


def _seen_at(image: ImageRecord) -> str | None:
    stamps = [t for t in (image.pushed_at, image.last_pulled_at, image.scanned_at) if t is not None]
    return _ts(max(stamps, key=lambda t: _ts(t) or "")) if stamps else None


class SQLiteStore:
    """The Store port on one SQLite file. Safe to share between threads of one process."""

    def __init__(self, path: Path | str, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.request_count = 0
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreFileError(str(self.path), f"cannot open the store ({exc})") from None
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreFileError(
                str(self.path), f"not a usable hullwatch store: corrupt or not SQLite ({exc})"
            ) from None
        except BaseException:
            self._conn.close()
            raise

    def _open(self) -> None:
        c = self._conn
        # Reading the schema first touches the file header: a non-database fails here, before any write.
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables:
            if "store_meta" not in tables:
                raise StoreFileError(
                    str(self.path), "an SQLite database but not a hullwatch store (no store_meta table); refusing it"
                )
            rows = dict(c.execute("SELECT key, value FROM store_meta").fetchall())
            if rows.get("kind") != _MARKER:
                raise StoreFileError(str(self.path), "an SQLite database but not a hullwatch store; refusing it")
            if int(rows.get("schema_version", "0")) != SCHEMA_VERSION:
                raise StoreFileError(
                    str(self.path),
                    f"store schema version {rows.get('schema_version')}, this hullwatch uses {SCHEMA_VERSION}",
                )
        c.execute("PRAGMA journal_mode = WAL")
        c.execute("PRAGMA synchronous = NORMAL")
        c.execute("PRAGMA foreign_keys = OFF")
        if not tables:
            # one script, one transaction: a concurrent opener either sees the whole schema or none of it
            c.executescript("BEGIN IMMEDIATE;" + _SCHEMA + _SCHEMA_META + "COMMIT;")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            self.request_count += 1
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(str(self.path), f"query failed ({exc})") from None

    class _Tx:
        def __init__(self, store: SQLiteStore) -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            self.store.request_count += 1
            try:
                self.store._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                self.store._lock.release()
                raise StoreUnavailable(str(self.store.path), f"cannot start a transaction ({exc})") from None
            return self.store._conn

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            try:
                if exc_type is None:
                    self.store._conn.execute("COMMIT")
                else:
                    self.store._conn.execute("ROLLBACK")
            finally:
                self.store._lock.release()

    def _tx(self) -> SQLiteStore._Tx:
        return SQLiteStore._Tx(self)

    # -- images -------------------------------------------------------------------

    @staticmethod
    def _image(doc: str, etag: str) -> ImageRecord:
        return ImageRecord.model_validate_json(doc).model_copy(update={"etag": etag})

    def get_image(self, digest: str) -> ImageRecord | None:
        rows = self._query("SELECT doc, etag FROM images WHERE digest = ?", (digest,))
        return self._image(*rows[0]) if rows else None

    def put_image(self, image: ImageRecord, if_match: str | None = None) -> ImageRecord:
        etag = _etag()
        doc = image.model_dump_json(exclude={"etag"})
        with self._tx() as c:
            if if_match is not None:
                row = c.execute("SELECT etag FROM images WHERE digest = ?", (image.digest,)).fetchone()
                if row is None or row[0] != if_match:
                    raise PreconditionFailed(
                        image.digest, "the image document changed since it was read (ETag mismatch)"
                    )
            c.execute(
                "INSERT INTO images (digest, seen_at, running, deleted, etag, doc) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (digest) DO UPDATE SET seen_at = excluded.seen_at, running = excluded.running, "
                "deleted = excluded.deleted, etag = excluded.etag, doc = excluded.doc",
                (image.digest, _seen_at(image), int(image.running), int(image.deleted), etag, doc),
            )
        return image.model_copy(update={"etag": etag})

    def images_seen_since(self, since: datetime, *, include_running: bool = True) -> Iterator[ImageRecord]:
        """Images (not deleted) pushed, pulled or scanned at or after ``since``, plus running ones; by digest."""
        after = ""
        since_text = _ts(since)
        while True:
            rows = self._query(
                "SELECT digest, doc, etag FROM images WHERE digest > ? AND deleted = 0 "
                "AND (seen_at >= ? OR (? AND running = 1)) ORDER BY digest LIMIT ?",
                (after, since_text, int(include_running), PAGE),
            )
            for _, doc, etag in rows:
                yield self._image(doc, etag)
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    # -- the inverted index ---------------------------------------------------------

    def index_packages(self, digest: str, keys: Iterable[tuple[str, str]]) -> None:
        """Replace the image's (ecosystem, normalised name) set."""
        rows = sorted({(eco, name, digest) for eco, name in keys})
        with self._tx() as c:
            c.execute("DELETE FROM package_index WHERE digest = ?", (digest,))
            c.executemany("INSERT OR IGNORE INTO package_index (ecosystem, name, digest) VALUES (?, ?, ?)", rows)

    def images_with_packages(self, keys: Iterable[tuple[str, str]]) -> set[str]:
        wanted = sorted(set(keys))
        out: set[str] = set()
        for i in range(0, len(wanted), _KEYS_PER_QUERY):
            chunk = wanted[i : i + _KEYS_PER_QUERY]
            values = ",".join(["(?, ?)"] * len(chunk))
            params = [x for k in chunk for x in k]
            # only '?' placeholders are interpolated
            sql = f"SELECT DISTINCT digest FROM package_index WHERE (ecosystem, name) IN (VALUES {values})"  # noqa: S608
            out.update(r[0] for r in self._query(sql, params))
        return out

    # -- findings ---------------------------------------------------------------------

    @staticmethod
    def _finding(doc: str, etag: str) -> FindingRecord:
        return FindingRecord.model_validate_json(doc).model_copy(update={"etag": etag})

    def findings_for_image(self, digest: str) -> list[FindingRecord]:
        rows = self._query("SELECT doc, etag FROM findings WHERE image_digest = ? ORDER BY id", (digest,))
        return [self._finding(doc, etag) for doc, etag in rows]

    def put_findings(self, digest: str, records: Sequence[FindingRecord]) -> None:
        for r in records:
            if r.image_digest != digest:
                raise ValueError(f"finding {r.id} belongs to {r.image_digest}, not {digest}")
        if not records:
            return
        rows = [
            (
                r.id,
                r.image_digest,
                r.severity,
                r.status.value,
                _ts(r.last_seen),
                _etag(),
                r.model_dump_json(exclude={"etag"}),
            )
            for r in records
        ]
        conditional = [(r.id, r.etag) for r in records if r.etag is not None]
        with self._tx() as c:
            for fid, etag in conditional:
                row = c.execute("SELECT etag FROM findings WHERE id = ?", (fid,)).fetchone()
                if row is None or row[0] != etag:
                    raise PreconditionFailed(fid, f"finding of {digest} changed since it was read (ETag mismatch)")
            c.executemany(
                "INSERT INTO findings (id, image_digest, severity, status, last_seen, etag, doc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET image_digest = excluded.image_digest, "
                "severity = excluded.severity, status = excluded.status, last_seen = excluded.last_seen, "
                "etag = excluded.etag, doc = excluded.doc",
                rows,
            )

    def findings_by_severity(self, severity: str, limit: int = 1000) -> list[FindingRecord]:
        """Open (not resolved) findings of one severity across images, most recently seen first."""
        rows = self._query(
            "SELECT doc, etag FROM findings WHERE severity = ? AND status != ? ORDER BY last_seen DESC, id LIMIT ?",
            (severity, FindingStatus.RESOLVED.value, limit),
        )
        return [self._finding(doc, etag) for doc, etag in rows]

    # -- alerts -------------------------------------------------------------------------

    @staticmethod
    def _alert(doc: str, etag: str) -> AlertRecord:
        return AlertRecord.model_validate_json(doc).model_copy(update={"etag": etag})

    def create_alert(self, alert: AlertRecord) -> bool:
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO alerts (id, published, created_at, etag, doc) VALUES (?, ?, ?, ?, ?)",
                (
                    alert.id,
                    int(alert.published_at is not None),
                    _ts(alert.created_at),
                    _etag(),
                    alert.model_dump_json(exclude={"etag"}),
                ),
            )
            return cur.rowcount == 1

    def create_alerts(self, digest: str, alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
        """Create the absent ones of an image's alerts, in one transaction; returns those created, with ETags."""
        check_alert_batch(digest, alerts)
        unique = distinct_alerts(alerts)
        if not unique:
            return []
        created: list[AlertRecord] = []
        with self._tx() as c:
            for a in unique:
                etag = _etag()
                cur = c.execute(
                    "INSERT OR IGNORE INTO alerts (id, published, created_at, etag, doc) VALUES (?, ?, ?, ?, ?)",
                    (
                        a.id,
                        int(a.published_at is not None),
                        _ts(a.created_at),
                        etag,
                        a.model_dump_json(exclude={"etag"}),
                    ),
                )
                if cur.rowcount == 1:
                    created.append(a.model_copy(update={"etag": etag}))
        return created

    def mark_alert(self, alert: AlertRecord) -> AlertRecord:
        """Store the alert's publication state (published_at, attempts, last_error); conditional on its ETag."""
        return self.mark_alerts(alert.image_digest, [alert])[0]

    def mark_alerts(self, digest: str, alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
        """Store several alerts' publication state in one transaction, each conditional on its ETag (when set).

        All or none: a missing alert or a stale ETag rolls the whole call back and
        raises PreconditionFailed.
        """
        check_alert_batch(digest, alerts)
        if len({a.id for a in alerts}) != len(alerts):
            raise ValueError("the same alert is listed twice")
        if not alerts:
            return []
        out = [a.model_copy(update={"etag": _etag()}) for a in alerts]
        with self._tx() as c:
            for a in alerts:
                row = c.execute("SELECT etag FROM alerts WHERE id = ?", (a.id,)).fetchone()
                if row is None:
                    raise PreconditionFailed(a.id, "no such alert (create it first)")
                if a.etag is not None and row[0] != a.etag:
                    raise PreconditionFailed(a.id, "the alert changed since it was read (ETag mismatch)")
            c.executemany(
                "UPDATE alerts SET published = ?, etag = ?, doc = ? WHERE id = ?",
                [(int(a.published_at is not None), a.etag, a.model_dump_json(exclude={"etag"}), a.id) for a in out],
            )
        return out

    def unpublished_alerts(self, limit: int = 100) -> list[AlertRecord]:
        rows = self._query(
            "SELECT doc, etag FROM alerts WHERE published = 0 ORDER BY created_at, id LIMIT ?",
            (limit,),
        )
        return [self._alert(doc, etag) for doc, etag in rows]

    # -- layer cache ----------------------------------------------------------------------

    def get_layer_cache(self, key: str) -> LayerCacheEntry | None:
        rows = self._query("SELECT doc FROM layer_cache WHERE key = ?", (key,))
        return LayerCacheEntry.model_validate_json(rows[0][0]) if rows else None

    def put_layer_cache(self, entry: LayerCacheEntry) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO layer_cache (key, doc) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET doc = excluded.doc",
                (entry.key, entry.model_dump_json()),
            )

    # -- diagnostics ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Documents per kind (for ``hullwatch serve`` status and tests); not part of the port."""
        out: dict[str, int] = {}
        for table in ("images", "findings", "alerts", "layer_cache", "package_index"):
            # table names come from the fixed tuple above
            out[table] = int(self._query(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608
        return out
