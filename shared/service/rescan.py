"""Rescans: which stored images to re-match, as RESCAN messages fanned out through the queue.

Two selections, both without pulling anything from a registry (a RESCAN
re-matches the stored inventory):

- **Daily** (:func:`daily_batches`): every image (not deleted) pushed, pulled or
  scanned in the last ``since_days`` days, plus images reported running. The
  timer only lists and enqueues, in batches (one queue send per batch), so
  100,000 images fit in a timer's time limit; the workers do the matching.
- **On new vulnerability data** (:func:`delta_batches`): only the images whose
  inverted-index entries (ecosystem, normalised package name) intersect the
  packages named by advisories added or changed since the last refresh
  (:func:`changed_advisory_keys`), so a new critical reaches the images already
  in production within minutes of the data, not the next day.

The index holds, per image, every (ecosystem, name) the matcher looks up for its
packages (:meth:`shared.vulndb.matcher.Matcher.lookup_keys`, versions dropped).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from shared.errors import UsageError
from shared.scanning import reference
from shared.service.messages import Action, ScanMessage
from shared.stores.models import ImageRecord
from shared.stores.ports import Store
from shared.vulndb import db
from shared.vulndb.names import ecosystem_base

DEFAULT_BATCH = 500
#: Ecosystem families whose advisories name release-qualified ecosystems ("Red Hat:enterprise_linux:9::...")
#: while packages carry the family's own name; a change is indexed under both.
_QUALIFIED_FAMILIES = frozenset({"Red Hat", "SUSE", "openSUSE"})
_CHUNK = 500


@dataclass(frozen=True)
class ChangedAdvisories:
    keys: frozenset[tuple[str, str]]  # (ecosystem, normalised name)
    advisories: frozenset[str]
    watermark: str | None  # the newest ``modified`` in the database: the next call's ``since``


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _after(modified: str, since: str, since_dt: datetime | None) -> bool:
    m = _when(modified)
    if m is not None and since_dt is not None:
        try:
            return m > since_dt
        except TypeError:  # one naive, one aware
            pass
    return modified > since


def changed_advisory_keys(db_path: Path, since: str | None) -> ChangedAdvisories:
    """Packages named by advisories modified after ``since`` (an OSV ``modified`` timestamp), read-only.

    Also counts a CVE added to the KEV catalogue on or after ``since``'s date: its
    findings change (and may alert) though no advisory did. Withdrawn advisories
    count too: their findings resolve. With ``since`` None there is no baseline:
    nothing is reported, and the returned watermark becomes the baseline.
    """
    conn = db.open_readonly(db_path)
    try:
        newest = conn.execute("SELECT max(modified) FROM advisories").fetchone()[0]
        if since is None:
            return ChangedAdvisories(frozenset(), frozenset(), newest)
        since_dt = _when(since)
        # coarse filter on the first 19 characters (to the second), exact comparison in Python
        rows = conn.execute(
            "SELECT id, modified FROM advisories WHERE substr(modified, 1, 19) >= substr(?, 1, 19)", (since,)
        ).fetchall()
        ids = {aid for aid, modified in rows if _after(modified, since, since_dt)}
        ids.update(_kev_added(conn, since[:10]))
        keys: set[tuple[str, str]] = set()
        ordered = sorted(ids)
        for i in range(0, len(ordered), _CHUNK):
            chunk = ordered[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            # only '?' placeholders are interpolated
            sql = f"SELECT DISTINCT ecosystem, name FROM affected WHERE advisory_id IN ({marks})"  # noqa: S608
            for eco, name in conn.execute(sql, chunk):
                keys.add((eco, name))
                base = ecosystem_base(eco)
                if base in _QUALIFIED_FAMILIES:
                    keys.add((base, name))
        return ChangedAdvisories(frozenset(keys), frozenset(ids), newest if newest else since)
    finally:
        conn.close()


def _kev_added(conn: sqlite3.Connection, since_date: str) -> set[str]:
    cves = [r[0] for r in conn.execute("SELECT cve FROM kev WHERE date_added >= ?", (since_date,))]
    out: set[str] = set()
    for i in range(0, len(cves), _CHUNK):
        chunk = cves[i : i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        out.update(r[0] for r in conn.execute(f"SELECT id FROM advisories WHERE id IN ({marks})", chunk))  # noqa: S608
        out.update(
            r[0]
            for r in conn.execute(f"SELECT advisory_id FROM aliases WHERE alias IN ({marks})", chunk)  # noqa: S608
        )
    return out


def rescan_message(image: ImageRecord, event_id: str) -> ScanMessage:
    """A RESCAN message for a stored image (registry and repository from its first reference)."""
    registry = repository = ""
    tag = None
    for ref_text in image.references:
        try:
            ref = reference.parse(ref_text)
        except UsageError:
            continue
        if isinstance(ref, reference.RegistryRef):
            registry, repository, tag = ref.registry, ref.repository, ref.tag
            break
    return ScanMessage(
        action=Action.RESCAN,
        registry=registry,
        repository=repository,
        tag=tag,
        digest=image.digest,
        source="rescan",
        event_id=event_id,
    )


def _batches(messages: Iterable[ScanMessage], batch_size: int) -> Iterator[list[ScanMessage]]:
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batch: list[ScanMessage] = []
    for m in messages:
        batch.append(m)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def daily_batches(
    store: Store, now: datetime, since_days: int = 30, batch_size: int = DEFAULT_BATCH
) -> Iterator[list[ScanMessage]]:
    """RESCAN messages for images seen in the window (plus running ones), ``batch_size`` at a time."""
    since = now - timedelta(days=since_days)
    stamp = now.strftime("%Y%m%d")

    def messages() -> Iterator[ScanMessage]:
        for img in store.images_seen_since(since, include_running=True):
            if img.deleted or not img.inventory_key:
                continue
            yield rescan_message(img, f"daily-{stamp}-{img.digest}")

    return _batches(messages(), batch_size)


def delta_batches(
    store: Store,
    keys: Iterable[tuple[str, str]],
    now: datetime,
    batch_size: int = DEFAULT_BATCH,
) -> Iterator[list[ScanMessage]]:
    """RESCAN messages for the images whose indexed packages intersect ``keys``."""
    wanted = set(keys)
    stamp = now.strftime("%Y%m%dT%H%M%S")

    def messages() -> Iterator[ScanMessage]:
        if not wanted:
            return
        # One index query; no image reads here: the worker skips deleted images when it reads them anyway.
        for digest in sorted(store.images_with_packages(wanted)):
            yield ScanMessage(
                action=Action.RESCAN,
                registry="",
                repository="",
                digest=digest,
                source="rescan",
                event_id=f"delta-{stamp}-{digest}",
            )

    return _batches(messages(), batch_size)
