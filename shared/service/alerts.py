"""Alerts: which finding changes alert, the CloudEvents they become, and how they are published.

Event types (CloudEvents 1.0 ``type``), one family:

==================================== =======================================================================
``hullwatch.vulnerability.new``      A new finding a rule asked for (default rules: a new CRITICAL, a new
                                     HIGH with a fix available).
``hullwatch.vulnerability.kev``      A finding whose vulnerability is in CISA's Known Exploited
                                     Vulnerabilities catalogue: new, or already stored and just KEV-listed.
``hullwatch.vulnerability.reopened`` A resolved finding matched again (no default rule; opt in).
``hullwatch.vulnerability.resolved`` A finding no longer matched, or its image deleted (no default rule).
==================================== =======================================================================

Each alert is about one finding: ``subject`` is the image reference
(``registry/repository:tag``, or ``@digest`` when no tag is known) and ``data``
the finding summary (:func:`finding_summary`). The alert id is a fingerprint
of (type, image digest, vulnerability, package instance), so the same change
never alerts twice, however often its event is delivered; it is also the
CloudEvent ``id``, which lets a consumer deduplicate.

Rules are evaluated per finding transition, in order; the first rule that
matches decides the alert (so with the defaults a new KEV-listed critical gives
one ``kev`` alert, not a ``kev`` and a ``new`` one). Rules come from
configuration as a list of mappings (:func:`rules_from_config`), e.g. in YAML::

    - name: new-critical
      type: hullwatch.vulnerability.new
      transitions: [new]
      severities: [CRITICAL]
    - name: new-medium-fixable-npm
      type: hullwatch.vulnerability.new
      transitions: [new]
      severities: [MEDIUM]
      fix_available: true
      ecosystems: [npm]

Publication: an alert is stored first (``create_alerts``, create-if-absent,
the alerts of one image in one batched call), then handed to an
:class:`AlertPublisher`, then marked published (``mark_alerts``: the outcomes
of one image's alerts in one batched call, after they have all been handed
over). A publisher raises on failure; the alert then stays unpublished with
``attempts`` and ``last_error`` recorded, and :func:`publish_pending` (the
outbox timer) retries it later. The Event Grid publisher implements the same
protocol.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from shared.errors import InputError
from shared.service import lifecycle
from shared.stores.errors import PreconditionFailed
from shared.stores.fingerprints import alert_id
from shared.stores.models import AlertRecord, FindingRecord
from shared.stores.ports import Store

TYPE_NEW = "hullwatch.vulnerability.new"
TYPE_KEV = "hullwatch.vulnerability.kev"
TYPE_REOPENED = "hullwatch.vulnerability.reopened"
TYPE_RESOLVED = "hullwatch.vulnerability.resolved"
TYPES = (TYPE_NEW, TYPE_KEV, TYPE_REOPENED, TYPE_RESOLVED)

#: CloudEvent ``source`` unless configured: one hullwatch deployment.
DEFAULT_SOURCE = "/hullwatch"
MAX_ERROR_TEXT = 500


class AlertRuleError(InputError):
    """A rule in the configuration that cannot be used."""


@dataclass(frozen=True)
class AlertRule:
    """Which transitions alert, and as what type. ``None`` filters match anything."""

    name: str
    type: str = TYPE_NEW
    transitions: frozenset[str] = frozenset({lifecycle.NEW})
    severities: frozenset[str] | None = None
    kev: bool | None = None
    fix_available: bool | None = None
    ecosystems: frozenset[str] | None = None  # OSV ecosystem bases: npm, PyPI, Debian, Alpine, ...

    def matches(self, t: lifecycle.Transition) -> bool:
        if t.kind not in self.transitions:
            return False
        f = t.record.finding
        if self.severities is not None and t.record.severity not in self.severities:
            return False
        if self.kev is not None and (f.kev is not None) != self.kev:
            return False
        if self.fix_available is not None and f.fix_available != self.fix_available:
            return False
        return self.ecosystems is None or f.package_ecosystem.split(":", 1)[0] in self.ecosystems


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("new-kev", TYPE_KEV, frozenset({lifecycle.NEW, lifecycle.KEV_LISTED}), kev=True),
    AlertRule("new-critical", TYPE_NEW, frozenset({lifecycle.NEW}), severities=frozenset({"CRITICAL"})),
    AlertRule(
        "new-high-fixable", TYPE_NEW, frozenset({lifecycle.NEW}), severities=frozenset({"HIGH"}), fix_available=True
    ),
)

_RULE_KEYS = frozenset({"name", "type", "transitions", "severities", "kev", "fix_available", "ecosystems"})
_SEVERITIES = frozenset({"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"})


def _words(value: object, where: str, key: str) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AlertRuleError(where, f"{key} must be a list of strings")
    return frozenset(value)


def rules_from_config(items: Sequence[Mapping[str, Any]], where: str = "alert rules") -> tuple[AlertRule, ...]:
    """Rules from configuration (a list of mappings, keys as in :class:`AlertRule`)."""
    out = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise AlertRuleError(at, "a rule must be a mapping")
        unknown = set(item) - _RULE_KEYS
        if unknown:
            raise AlertRuleError(at, f"unknown keys {sorted(unknown)} (known: {sorted(_RULE_KEYS)})")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise AlertRuleError(at, "a rule needs a name")
        typ = item.get("type", TYPE_NEW)
        if typ not in TYPES:
            raise AlertRuleError(at, f"type {typ!r} is not one of {', '.join(TYPES)}")
        transitions = _words(item.get("transitions", [lifecycle.NEW]), at, "transitions")
        bad = transitions - set(lifecycle.TRANSITIONS)
        if bad:
            raise AlertRuleError(at, f"unknown transitions {sorted(bad)} (known: {', '.join(lifecycle.TRANSITIONS)})")
        severities = None
        if item.get("severities") is not None:
            severities = frozenset(s.upper() for s in _words(item["severities"], at, "severities"))
            if severities - _SEVERITIES:
                raise AlertRuleError(at, f"unknown severities {sorted(severities - _SEVERITIES)}")
        for flag in ("kev", "fix_available"):
            if item.get(flag) is not None and not isinstance(item[flag], bool):
                raise AlertRuleError(at, f"{flag} must be true or false")
        ecosystems = _words(item["ecosystems"], at, "ecosystems") if item.get("ecosystems") is not None else None
        out.append(
            AlertRule(
                name=name,
                type=typ,
                transitions=transitions,
                severities=severities,
                kev=item.get("kev"),
                fix_available=item.get("fix_available"),
                ecosystems=ecosystems,
            )
        )
    return tuple(out)


def load_rules(path: Path) -> tuple[AlertRule, ...]:
    """Rules from a JSON or YAML file holding a list of rules (or ``{"rules": [...]}``)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AlertRuleError(str(path), f"cannot read alert rules ({exc})") from None
    if isinstance(doc, dict) and "rules" in doc:
        doc = doc["rules"]
    if not isinstance(doc, list):
        raise AlertRuleError(str(path), "expected a list of rules")
    return rules_from_config(doc, str(path))


# -- building alerts ------------------------------------------------------------------


def finding_summary(record: FindingRecord, subject: str) -> dict[str, object]:
    """The CloudEvent ``data``: what a receiver needs to act without reading the store."""
    f = record.finding
    return {
        "image": {"reference": subject, "digest": record.image_digest},
        "finding_id": record.id,
        "status": record.status.value,
        "vulnerability": {
            "id": f.id,
            "aliases": list(f.aliases),
            "summary": f.summary,
            "severity": f.severity,
            "cvss": [c.model_dump(mode="json") for c in f.cvss],
            "kev": f.kev.model_dump(mode="json") if f.kev else None,
            "epss": f.epss.model_dump(mode="json") if f.epss else None,
            "references": list(f.references[:10]),
        },
        "package": {
            "name": f.package_name,
            "version": f.installed_version,
            "purl": f.package_purl,
            "ecosystem": f.package_ecosystem,
            "found_in": f.found_in,
            "layer_diff_id": f.layer_diff_id,
        },
        "fix_available": f.fix_available,
        "fixed_versions": list(f.fixed_versions),
        "priority": f.priority,
        "first_seen": record.first_seen.isoformat(),
        "resolved_at": record.resolved_at.isoformat() if record.resolved_at else None,
    }


def evaluate(
    transitions: Iterable[lifecycle.Transition],
    subject: str,
    now: datetime,
    rules: Sequence[AlertRule] = DEFAULT_RULES,
) -> list[AlertRecord]:
    """One alert per transition that a rule matches (the first matching rule decides its type)."""
    out: dict[str, AlertRecord] = {}
    for t in transitions:
        rule = next((r for r in rules if r.matches(t)), None)
        if rule is None:
            continue
        f = t.record.finding
        aid = alert_id(rule.type, t.record.image_digest, f.id, f.package_purl, f.found_in)
        if aid in out:
            continue
        data = finding_summary(t.record, subject)
        data["rule"] = rule.name
        data["transition"] = t.kind
        out[aid] = AlertRecord(
            id=aid, type=rule.type, subject=subject, image_digest=t.record.image_digest, created_at=now, data=data
        )
    return list(out.values())


def to_cloudevent(alert: AlertRecord, source: str = DEFAULT_SOURCE) -> dict[str, object]:
    """The alert as a CloudEvents 1.0 structured-mode JSON event."""
    return {
        "specversion": "1.0",
        "id": alert.id,
        "source": source,
        "type": alert.type,
        "subject": alert.subject,
        "time": alert.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": alert.data,
    }


def one_line(alert: AlertRecord) -> str:
    """A human summary: type, severity, vulnerability, package, fix, image."""
    d = alert.data
    vuln = d.get("vulnerability") if isinstance(d.get("vulnerability"), dict) else {}
    pkg = d.get("package") if isinstance(d.get("package"), dict) else {}
    assert isinstance(vuln, dict) and isinstance(pkg, dict)
    fixed = d.get("fixed_versions") or []
    fix = f"fixed in {', '.join(str(v) for v in fixed)}" if isinstance(fixed, list) and fixed else "no fix yet"
    kev = " KEV" if vuln.get("kev") else ""
    return (
        f"ALERT {alert.type} {vuln.get('severity', '?')}{kev} {vuln.get('id', '?')} in "
        f"{pkg.get('name', '?')} {pkg.get('version', '?')} ({fix}) - {alert.subject}"
    )


# -- publishing --------------------------------------------------------------------------


class AlertPublisher(Protocol):
    """Delivers one alert (as a CloudEvent) somewhere; raises on any failure."""

    def publish(self, alert: AlertRecord) -> None: ...


class LocalAlertPublisher:
    """Appends each alert as a CloudEvent JSON line to a file and prints a one-line summary."""

    def __init__(self, path: Path | str, stream: IO[str] | None = None, source: str = DEFAULT_SOURCE) -> None:
        self.path = Path(path)
        self.stream = stream
        self.source = source
        self._lock = threading.Lock()

    def publish(self, alert: AlertRecord) -> None:
        line = json.dumps(to_cloudevent(alert, self.source), sort_keys=True, separators=(",", ":"))
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
            out = self.stream if self.stream is not None else sys.stdout
            print(one_line(alert), file=out, flush=True)


@dataclass
class PublishReport:
    created: int = 0
    published: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text[:MAX_ERROR_TEXT]


def _mark(store: Store, digest: str, outcomes: Sequence[AlertRecord]) -> None:
    """Store the outcomes of one image's publications in one batched call."""
    try:
        store.mark_alerts(digest, outcomes)
    except PreconditionFailed:
        # Someone else (the outbox, a concurrent delivery) changed one of them since it was read, and the batch
        # wrote nothing: record the others one by one and leave that one as its other writer left it.
        for a in outcomes:
            try:
                store.mark_alert(a)
            except PreconditionFailed:
                continue


def publish_batch(
    store: Store, publisher: AlertPublisher, alerts: Sequence[AlertRecord], now: Callable[[], datetime]
) -> PublishReport:
    """Publish stored alerts one by one, then record the outcomes with one batched update per image.

    Published alerts get ``published_at``; the others ``attempts`` and
    ``last_error`` and stay unpublished, for the outbox. Never raises for a
    publisher failure. A worker that stops between publishing and recording
    leaves published alerts marked unpublished: the outbox sends them again,
    with the same CloudEvent ``id``, which receivers use to deduplicate.
    """
    report = PublishReport()
    outcomes: dict[str, list[AlertRecord]] = {}
    for a in alerts:
        try:
            publisher.publish(a)
        except Exception as exc:
            res = a.model_copy(update={"attempts": a.attempts + 1, "last_error": _error_text(exc)})
            report.failed += 1
            report.errors.append(f"{a.id}: {res.last_error}")
        else:
            res = a.model_copy(update={"attempts": a.attempts + 1, "published_at": now(), "last_error": None})
            report.published += 1
        outcomes.setdefault(a.image_digest, []).append(res)
    for digest, group in outcomes.items():
        _mark(store, digest, group)
    return report


def store_and_publish(
    store: Store,
    publisher: AlertPublisher,
    alerts: Iterable[AlertRecord],
    now: Callable[[], datetime],
) -> PublishReport:
    """Create the alerts that are absent (one batched call per image), publish the ones created, mark them."""
    by_image: dict[str, list[AlertRecord]] = {}
    for a in alerts:
        by_image.setdefault(a.image_digest, []).append(a)
    created = [c for digest, group in by_image.items() for c in store.create_alerts(digest, group)]
    report = publish_batch(store, publisher, created, now)
    report.created = len(created)
    return report


def publish_pending(
    store: Store, publisher: AlertPublisher, now: Callable[[], datetime], limit: int = 100
) -> PublishReport:
    """The outbox: publish alerts whose publication failed (or never happened), oldest first."""
    return publish_batch(store, publisher, store.unpublished_alerts(limit), now)
