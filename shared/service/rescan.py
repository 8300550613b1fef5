"""Rescans: which stored images to re-match, as batched RESCAN messages fanned out through the queue.

Two selections, both without pulling anything from a registry (a RESCAN
re-matches the stored inventory):

- **Daily** (:func:`daily_batches`): every image (not deleted) pushed, pulled or
  scanned in the last ``since_days`` days, plus images reported running.
- **On new vulnerability data** (:func:`delta_batches`): only the images whose
  inverted-index entries (ecosystem, normalised name) intersect the packages
  named by advisories added or changed since the last refresh
  (:func:`changed_advisory_keys`), so a new critical reaches the images already
  in production within minutes of the data, not the next day.

Both yield batches of single-image RESCAN messages; :func:`queue_messages` turns
each batch into *one* ``rescan-batch`` queue message naming its digests. That is
what makes 100,000 images fit in a timer's time limit: one queue write per
image would be 100,000 HTTP calls from the Functions host after the timer
returns (Azure Storage queues have no batch send) and 10,000
``SendMessageBatch`` calls on AWS; at :data:`DEFAULT_BATCH` images a message it
is 500 writes, and 50 SQS calls. A batch is also cut at
:data:`MAX_MESSAGE_BYTES` of digests, so a message stays under the queues'
size limits whatever the digests are (Azure: 64 KiB after the host's base64
encoding, which adds a third; SQS: 256 KiB). The timer only lists and enqueues;
the workers do the matching, one batch message each.

The index holds, per image, every (ecosystem, name) the matcher looks up for its
packages (:meth:`shared.vulndb.matcher.Matcher.lookup_keys`, versions dropped).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
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

#: Images per rescan-batch message. A worker re-matches one in roughly 10 ms, so a message is a few seconds
#: of work (a retry redoes little) and the queue spreads a daily rescan over many workers.
DEFAULT_BATCH = 200
#: The most bytes of JSON-encoded digests one batch message carries. Azure Storage allows 64 KiB per message
#: and the Functions host base64-encodes it (4/3): 40 KiB leaves 48 KiB of room for that and the envelope.
#: Ten such messages in one SQS ``SendMessageBatch`` would pass its 256 KiB, so the SQS sender also splits
#: by size. At 200 digests of 71 characters a message holds about 15 KB.
MAX_MESSAGE_BYTES = 40 * 1024
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


def _digest_bytes(msg: ScanMessage) -> int:
    """What one image adds to a batch message: its digest as a JSON string, and a comma."""
    return len(json.dumps(msg.digest or "")) + 1


def _batches(messages: Iterable[ScanMessage], batch_size: int) -> Iterator[list[ScanMessage]]:
    """Groups of at most ``batch_size`` messages whose digests fit in one queue message (MAX_MESSAGE_BYTES)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batch: list[ScanMessage] = []
    size = empty = 1  # the list's brackets, less the comma the last digest does not need
    for m in messages:
        cost = _digest_bytes(m)
        if batch and size + cost > MAX_MESSAGE_BYTES:
            yield batch
            batch, size = [], empty
        batch.append(m)
        size += cost
        if len(batch) >= batch_size:
            yield batch
            batch, size = [], empty
    if batch:
        yield batch


def batch_message(batch: Sequence[ScanMessage]) -> ScanMessage:
    """One rescan-batch queue message for a batch of single-image RESCANs: their digests, in order.

    Only the digests travel: a worker re-matching an image reads its record anyway
    (references, inventory key), so the registry and repository would be dead weight.
    The event id is the first image's, with how many more follow (logs can find the batch).
    """
    digests = tuple(m.digest for m in batch if m.digest)
    if not digests:
        raise ValueError("a rescan batch needs at least one image digest")
    first = next(m for m in batch if m.digest)
    return ScanMessage(
        action=Action.RESCAN_BATCH,
        registry="",
        repository="",
        digests=digests,
        source="rescan",
        event_id=f"{first.event_id}+{len(digests) - 1}",
    )


def queue_messages(batches: Iterable[Sequence[ScanMessage]]) -> Iterator[ScanMessage]:
    """The queue messages for batches of single-image RESCANs: one rescan-batch message per batch."""
    for batch in batches:
        if any(m.digest for m in batch):
            yield batch_message(batch)


def image_count(message: ScanMessage) -> int:
    """How many images a queue message names (a rescan-batch its digests, any other one)."""
    return len(message.digests) if message.digests is not None else 1


def daily_batches(
    store: Store, now: datetime, since_days: int = 30, batch_size: int = DEFAULT_BATCH
) -> Iterator[list[ScanMessage]]:
    """RESCAN messages for images seen in the window (plus running ones), in batches of one queue message each.

    A batch holds at most ``batch_size`` images and :data:`MAX_MESSAGE_BYTES` of digests;
    :func:`queue_messages` packs each into the rescan-batch message the triggers enqueue.
    """
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
    """RESCAN messages for the images whose indexed packages intersect ``keys``, batched as :func:`daily_batches`."""
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
