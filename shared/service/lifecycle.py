"""The findings lifecycle: what a new match (or a deletion) does to an image's stored findings.

States (:class:`~shared.stores.models.FindingStatus`)::

    (first match) -> NEW -> ACTIVE -> RESOLVED -> REOPENED -> ACTIVE -> ...

- A finding matched for the first time is NEW, with ``first_seen`` = ``last_seen`` = now.
- Matched again: ACTIVE (NEW and REOPENED become ACTIVE on the next match).
- No longer matched (the advisory was withdrawn or corrected), or the image was
  deleted: RESOLVED, with ``resolved_at``. A resolved finding that is not matched
  stays as it is (no write).
- Matched again after being resolved: REOPENED, ``resolved_at`` cleared,
  ``first_seen`` kept.

Only records that change are written, in one batch per image. A finding whose
status and content are unchanged is rewritten only to advance ``last_seen``
once it is older than ``last_seen_refresh`` (default 7 days), so re-matching an
unchanged image costs no finding writes; the image's ``matched_at`` says when
it was last matched exactly. A change of EPSS score alone is not a change (the
scores move daily); it is written with the next real change or refresh.

Transitions (what alert rules look at): ``new``, ``reopened``, ``resolved``,
and ``kev-listed`` (a finding already stored whose vulnerability has just
appeared in CISA's KEV catalogue).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.domain.findings import Finding, Severity
from shared.stores.fingerprints import finding_id
from shared.stores.models import FindingRecord, FindingStatus

NEW = "new"
REOPENED = "reopened"
RESOLVED = "resolved"
KEV_LISTED = "kev-listed"
TRANSITIONS = (NEW, REOPENED, RESOLVED, KEV_LISTED)

DEFAULT_LAST_SEEN_REFRESH = timedelta(days=7)
_OPEN = frozenset({FindingStatus.NEW, FindingStatus.ACTIVE, FindingStatus.REOPENED})


@dataclass(frozen=True)
class Transition:
    kind: str  # one of TRANSITIONS
    record: FindingRecord  # the finding after the change
    before: FindingRecord | None = None


@dataclass
class LifecycleResult:
    records: list[FindingRecord]  # every finding of the image after the change
    writes: list[FindingRecord]  # the ones to write (one batch)
    transitions: list[Transition] = field(default_factory=list)

    @property
    def open(self) -> list[FindingRecord]:
        return [r for r in self.records if r.status in _OPEN]

    def count(self, kind: str) -> int:
        return sum(1 for t in self.transitions if t.kind == kind)

    def severity_counts(self) -> dict[str, int]:
        return severity_counts(self.records)


def is_open(record: FindingRecord) -> bool:
    return record.status in _OPEN


def severity_counts(records: Iterable[FindingRecord]) -> dict[str, int]:
    """Open findings by severity; every severity is present (zero when none)."""
    out = {s.name: 0 for s in sorted(Severity, reverse=True)}
    for r in records:
        if r.status in _OPEN:
            out[r.severity] = out.get(r.severity, 0) + 1
    return out


def record_id(image_digest: str, f: Finding) -> str:
    return finding_id(image_digest, f.package_purl, f.found_in, f.id)


def _same(a: Finding, b: Finding) -> bool:
    return a.model_dump(exclude={"epss"}) == b.model_dump(exclude={"epss"})


def apply(
    image_digest: str,
    stored: Sequence[FindingRecord],
    current: Sequence[Finding],
    now: datetime,
    *,
    last_seen_refresh: timedelta = DEFAULT_LAST_SEEN_REFRESH,
) -> LifecycleResult:
    """The image's findings after a match that produced ``current``."""
    before = {r.id: r for r in stored}
    seen: set[str] = set()
    records: list[FindingRecord] = []
    writes: list[FindingRecord] = []
    transitions: list[Transition] = []
    for f in current:
        fid = record_id(image_digest, f)
        if fid in seen:
            continue  # the same package instance listed twice: one finding
        seen.add(fid)
        old = before.get(fid)
        if old is None:
            rec = FindingRecord(
                id=fid,
                image_digest=image_digest,
                vulnerability_id=f.id,
                severity=f.severity,
                status=FindingStatus.NEW,
                first_seen=now,
                last_seen=now,
                finding=f,
            )
            records.append(rec)
            writes.append(rec)
            transitions.append(Transition(NEW, rec))
            continue
        if old.status is FindingStatus.RESOLVED:
            rec = old.model_copy(
                update={
                    "status": FindingStatus.REOPENED,
                    "last_seen": now,
                    "resolved_at": None,
                    "severity": f.severity,
                    "finding": f,
                }
            )
            records.append(rec)
            writes.append(rec)
            transitions.append(Transition(REOPENED, rec, old))
            continue
        changed = old.status is not FindingStatus.ACTIVE or not _same(old.finding, f) or old.severity != f.severity
        stale = now - old.last_seen >= last_seen_refresh
        if changed or stale:
            rec = old.model_copy(
                update={"status": FindingStatus.ACTIVE, "last_seen": now, "severity": f.severity, "finding": f}
            )
            writes.append(rec)
        else:
            rec = old
        records.append(rec)
        if old.finding.kev is None and f.kev is not None:
            transitions.append(Transition(KEV_LISTED, rec, old))
    for old in stored:
        if old.id in seen:
            continue
        if old.status is FindingStatus.RESOLVED:
            records.append(old)
            continue
        rec = old.model_copy(update={"status": FindingStatus.RESOLVED, "resolved_at": now})
        records.append(rec)
        writes.append(rec)
        transitions.append(Transition(RESOLVED, rec, old))
    return LifecycleResult(records=records, writes=writes, transitions=transitions)


def resolve_all(stored: Sequence[FindingRecord], now: datetime) -> LifecycleResult:
    """Every open finding resolved (the image was deleted)."""
    records: list[FindingRecord] = []
    writes: list[FindingRecord] = []
    transitions: list[Transition] = []
    for old in stored:
        if old.status is FindingStatus.RESOLVED:
            records.append(old)
            continue
        rec = old.model_copy(update={"status": FindingStatus.RESOLVED, "resolved_at": now})
        records.append(rec)
        writes.append(rec)
        transitions.append(Transition(RESOLVED, rec, old))
    return LifecycleResult(records=records, writes=writes, transitions=transitions)
