"""The findings lifecycle: new -> active -> resolved -> reopened, timestamps, counts, transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.findings import EPSSScore, Finding, KEVEntry
from shared.service import lifecycle
from shared.stores.models import FindingStatus

D = "sha256:" + "1" * 64
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def f(vuln: str, severity: str = "HIGH", package: str = "openssl", **kw: object) -> Finding:
    doc: dict[str, object] = {
        "id": vuln,
        "package_type": "apk",
        "package_name": package,
        "package_purl": f"pkg:apk/alpine/{package}@1.0-r0",
        "package_ecosystem": "Alpine:v3.19",
        "installed_version": "1.0-r0",
        "fix_available": True,
        "fixed_versions": ["1.0-r1"],
        "found_in": "lib/apk/db/installed",
        "severity": severity,
        "priority": 1,
    }
    doc.update(kw)
    return Finding.model_validate(doc)


def kinds(res: lifecycle.LifecycleResult) -> list[tuple[str, str]]:
    return sorted((t.kind, t.record.vulnerability_id) for t in res.transitions)


def test_full_cycle() -> None:
    r1 = lifecycle.apply(D, [], [f("CVE-1"), f("CVE-2", "CRITICAL")], T0)
    assert kinds(r1) == [("new", "CVE-1"), ("new", "CVE-2")]
    assert {r.status for r in r1.records} == {FindingStatus.NEW}
    assert all(r.first_seen == r.last_seen == T0 for r in r1.records)
    assert r1.severity_counts() == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}
    assert len(r1.writes) == 2

    t1 = T0 + timedelta(hours=1)
    r2 = lifecycle.apply(D, r1.records, [f("CVE-1")], t1)  # CVE-2 no longer matched
    by = {r.vulnerability_id: r for r in r2.records}
    assert by["CVE-1"].status is FindingStatus.ACTIVE and by["CVE-1"].first_seen == T0
    assert by["CVE-2"].status is FindingStatus.RESOLVED and by["CVE-2"].resolved_at == t1
    assert kinds(r2) == [("resolved", "CVE-2")]
    assert r2.severity_counts()["CRITICAL"] == 0 and len(r2.open) == 1

    t2 = T0 + timedelta(hours=2)
    r3 = lifecycle.apply(D, r2.records, [f("CVE-1"), f("CVE-2", "CRITICAL")], t2)
    by = {r.vulnerability_id: r for r in r3.records}
    assert by["CVE-2"].status is FindingStatus.REOPENED
    assert by["CVE-2"].resolved_at is None and by["CVE-2"].first_seen == T0 and by["CVE-2"].last_seen == t2
    assert kinds(r3) == [("reopened", "CVE-2")]
    assert [w.vulnerability_id for w in r3.writes] == ["CVE-2"], "an unchanged active finding is not rewritten"

    r4 = lifecycle.apply(D, r3.records, [f("CVE-1"), f("CVE-2", "CRITICAL")], t2 + timedelta(hours=1))
    assert {r.status for r in r4.records} == {FindingStatus.ACTIVE}
    assert r4.transitions == []


def test_unchanged_image_writes_nothing_until_last_seen_is_stale() -> None:
    first = lifecycle.apply(D, [], [f("CVE-1")], T0)
    active = lifecycle.apply(D, first.records, [f("CVE-1")], T0 + timedelta(minutes=1)).records
    again = lifecycle.apply(D, active, [f("CVE-1", epss=EPSSScore(score=0.5, percentile=0.9))], T0 + timedelta(days=1))
    assert again.writes == [], "an EPSS change alone is not a write"
    stale = lifecycle.apply(D, active, [f("CVE-1")], T0 + timedelta(days=8))
    assert len(stale.writes) == 1 and stale.writes[0].last_seen == T0 + timedelta(days=8)
    assert stale.transitions == []


def test_content_change_is_written_and_kev_listing_is_a_transition() -> None:
    first = lifecycle.apply(D, [], [f("CVE-1")], T0).records
    changed = lifecycle.apply(D, first, [f("CVE-1", "CRITICAL", kev=KEVEntry())], T0 + timedelta(hours=1))
    assert len(changed.writes) == 1 and changed.writes[0].severity == "CRITICAL"
    assert kinds(changed) == [("kev-listed", "CVE-1")]


def test_resolved_stays_resolved_without_writes_and_resolve_all() -> None:
    first = lifecycle.apply(D, [], [f("CVE-1"), f("CVE-2")], T0).records
    gone = lifecycle.apply(D, first, [], T0 + timedelta(hours=1)).records
    again = lifecycle.apply(D, gone, [], T0 + timedelta(hours=2))
    assert again.writes == [] and again.transitions == []
    deleted = lifecycle.resolve_all(first, T0 + timedelta(hours=3))
    assert {r.status for r in deleted.records} == {FindingStatus.RESOLVED}
    assert kinds(deleted) == [("resolved", "CVE-1"), ("resolved", "CVE-2")]
    assert lifecycle.resolve_all(deleted.records, T0 + timedelta(hours=4)).writes == []


def test_same_vulnerability_in_two_package_instances_is_two_findings() -> None:
    res = lifecycle.apply(D, [], [f("CVE-1", package="libssl3"), f("CVE-1", package="libcrypto3"), f("CVE-1")], T0)
    assert len({r.id for r in res.records}) == 3
    dup = lifecycle.apply(D, [], [f("CVE-1"), f("CVE-1")], T0)
    assert len(dup.records) == 1
