"""Alert rules, CloudEvents, the local publisher, and the outbox on a real SQLite store."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.domain.findings import Finding, KEVEntry
from shared.service import alerts, lifecycle
from shared.stores.models import AlertRecord
from shared.stores.sqlite import SQLiteStore

D = "sha256:" + "2" * 64
T0 = datetime(2026, 3, 1, tzinfo=UTC)
SUBJECT = "registry.example/app:1"


def f(vuln: str, severity: str, fix: bool = True, kev: bool = False, eco: str = "Alpine:v3.19") -> Finding:
    return Finding(
        id=vuln,
        package_type="apk",
        package_name="openssl",
        package_purl=f"pkg:apk/alpine/openssl@1.0-r0?v={vuln}",
        package_ecosystem=eco,
        installed_version="1.0-r0",
        fix_available=fix,
        fixed_versions=["1.0-r1"] if fix else [],
        found_in="lib/apk/db/installed",
        severity=severity,
        priority=1,
        kev=KEVEntry() if kev else None,
    )


def evaluate(*findings: Finding, rules: tuple[alerts.AlertRule, ...] = alerts.DEFAULT_RULES) -> list[AlertRecord]:
    res = lifecycle.apply(D, [], list(findings), T0)
    return alerts.evaluate(res.transitions, SUBJECT, T0, rules)


def test_default_rules() -> None:
    got = evaluate(
        f("CVE-C", "CRITICAL"),
        f("CVE-K", "LOW", kev=True),
        f("CVE-HF", "HIGH"),
        f("CVE-HN", "HIGH", fix=False),
        f("CVE-M", "MEDIUM"),
        f("CVE-CK", "CRITICAL", kev=True),
    )
    by = {a.data["vulnerability"]["id"]: a for a in got}  # type: ignore[index]
    assert set(by) == {"CVE-C", "CVE-K", "CVE-HF", "CVE-CK"}
    assert by["CVE-C"].type == alerts.TYPE_NEW and by["CVE-HF"].type == alerts.TYPE_NEW
    assert by["CVE-K"].type == alerts.TYPE_KEV
    assert by["CVE-CK"].type == alerts.TYPE_KEV, "the first matching rule decides: one alert per finding"
    assert by["CVE-C"].data["rule"] == "new-critical" and by["CVE-C"].subject == SUBJECT


def test_alert_ids_are_deterministic() -> None:
    a = evaluate(f("CVE-C", "CRITICAL"))
    b = evaluate(f("CVE-C", "CRITICAL"))
    assert [x.id for x in a] == [x.id for x in b] and len(a) == 1


def test_kev_listing_of_a_stored_finding_alerts() -> None:
    first = lifecycle.apply(D, [], [f("CVE-1", "LOW")], T0).records
    later = lifecycle.apply(D, first, [f("CVE-1", "LOW", kev=True)], T0 + timedelta(days=1))
    got = alerts.evaluate(later.transitions, SUBJECT, T0, alerts.DEFAULT_RULES)
    assert [a.type for a in got] == [alerts.TYPE_KEV]
    assert got[0].data["transition"] == "kev-listed"


def test_configured_rules() -> None:
    rules = alerts.rules_from_config(
        [
            {"name": "npm-medium", "severities": ["medium"], "ecosystems": ["npm"], "fix_available": True},
            {"name": "resolved", "type": alerts.TYPE_RESOLVED, "transitions": ["resolved"]},
        ]
    )
    got = evaluate(f("CVE-A", "MEDIUM", eco="npm"), f("CVE-B", "MEDIUM"), f("CVE-C", "CRITICAL"), rules=rules)
    assert [a.data["vulnerability"]["id"] for a in got] == ["CVE-A"]  # type: ignore[index]
    first = lifecycle.apply(D, [], [f("CVE-A", "LOW")], T0).records
    gone = lifecycle.apply(D, first, [], T0 + timedelta(hours=1))
    res = alerts.evaluate(gone.transitions, SUBJECT, T0, rules)
    assert [a.type for a in res] == [alerts.TYPE_RESOLVED]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"severities": ["HIGH"]}, "needs a name"),
        ({"name": "x", "type": "other.type"}, "is not one of"),
        ({"name": "x", "transitions": ["gone"]}, "unknown transitions"),
        ({"name": "x", "severities": ["SEVERE"]}, "unknown severities"),
        ({"name": "x", "kev": "yes"}, "kev must be true or false"),
        ({"name": "x", "colour": "red"}, "unknown keys"),
    ],
)
def test_bad_rules(rule: dict[str, object], message: str) -> None:
    with pytest.raises(alerts.AlertRuleError, match=message):
        alerts.rules_from_config([rule])


def test_load_rules_yaml(tmp_path: Path) -> None:
    p = tmp_path / "rules.yaml"
    p.write_text("rules:\n  - name: crit\n    severities: [CRITICAL]\n")
    (rule,) = alerts.load_rules(p)
    assert rule.severities == frozenset({"CRITICAL"}) and rule.type == alerts.TYPE_NEW


def test_cloudevent_shape() -> None:
    (a,) = evaluate(f("CVE-C", "CRITICAL"))
    ev = alerts.to_cloudevent(a, "/hullwatch/test")
    assert ev["specversion"] == "1.0" and ev["id"] == a.id and ev["type"] == "hullwatch.vulnerability.new"
    assert ev["subject"] == SUBJECT and ev["source"] == "/hullwatch/test"
    assert ev["time"] == "2026-03-01T00:00:00Z" and ev["datacontenttype"] == "application/json"
    data = ev["data"]
    assert isinstance(data, dict)
    assert data["package"]["purl"].startswith("pkg:apk/alpine/openssl")
    assert data["image"] == {"reference": SUBJECT, "digest": D}
    json.dumps(ev)  # serialisable as is


def test_local_publisher_appends_and_prints(tmp_path: Path) -> None:
    out = io.StringIO()
    pub = alerts.LocalAlertPublisher(tmp_path / "alerts.jsonl", stream=out)
    for a in evaluate(f("CVE-C", "CRITICAL"), f("CVE-K", "LOW", kev=True)):
        pub.publish(a)
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(x)["type"] for x in lines] == [alerts.TYPE_NEW, alerts.TYPE_KEV]
    printed = out.getvalue().splitlines()
    assert printed[0] == (
        f"ALERT hullwatch.vulnerability.new CRITICAL CVE-C in openssl 1.0-r0 (fixed in 1.0-r1) - {SUBJECT}"
    )
    assert " LOW KEV CVE-K " in printed[1]


class FlakyPublisher:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.published: list[str] = []

    def publish(self, alert: AlertRecord) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("topic answered HTTP 500")
        self.published.append(alert.id)


def test_store_first_then_publish_then_outbox(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        pub = FlakyPublisher(failures=1)
        batch = evaluate(f("CVE-C", "CRITICAL"), f("CVE-HF", "HIGH"))
        now = lambda: T0  # noqa: E731
        report = alerts.store_and_publish(store, pub, batch, now)
        assert (report.created, report.published, report.failed) == (2, 1, 1)
        (pending,) = store.unpublished_alerts()
        assert pending.attempts == 1 and "HTTP 500" in (pending.last_error or "")
        again = alerts.store_and_publish(store, pub, batch, now)
        assert again.created == 0, "a second delivery creates nothing"
        out = alerts.publish_pending(store, pub, now)
        assert (out.published, out.failed) == (1, 0)
        assert store.unpublished_alerts() == []
        assert sorted(pub.published) == sorted(a.id for a in batch)
