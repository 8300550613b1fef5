"""Matching an inventory against the vulnerability database.

For each package the matcher looks up advisories by (OSV ecosystem, normalised
name) and evaluates their ``affected`` entries with the ecosystem's own version
ordering (:mod:`shared.vulndb.versions`):

- OS packages match only their distribution's own advisories for their release
  (``Debian:12``, ``Alpine:v3.19``, ``Ubuntu:22.04:LTS``), and Debian, Ubuntu and
  Alpine packages by their *source* package and source version, which is how
  those distributions publish fixes. Upstream version ranges are never applied
  to OS packages: a backported fix is fixed.
- ``versions`` lists match exactly; ``ECOSYSTEM`` and ``SEMVER`` ranges follow the
  OSV evaluation rules for ``introduced``, ``fixed``, ``last_affected`` and ``limit``.
- Aliases merge: one finding per (package instance, vulnerability), named by its
  CVE where it has one, listing every alias.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from shared.domain.findings import Finding
from shared.domain.models import OSInfo, Package
from shared.vulndb import risk
from shared.vulndb.names import ecosystem_base, normalise
from shared.vulndb.versions import InvalidVersion, UnsupportedEcosystem, sort_key

#: OSV range types that order package versions (GIT ranges name commits).
_SEMVER = "SEMVER"
#: OS package types whose advisories are keyed by source package.
_BY_SOURCE = frozenset({"dpkg", "apk"})


@dataclass(frozen=True, slots=True)
class Affected:
    advisory_id: str
    ecosystem: str
    ranges: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    versions: frozenset[str]
    severity: str | None


@dataclass
class Advisory:
    id: str
    summary: str
    severity: list[dict[str, str]]
    db_severity: str | None
    aliases: list[str]
    references: list[str]


@dataclass
class MatchResult:
    findings: list[Finding]
    warnings: list[str] = field(default_factory=list)


@lru_cache(maxsize=262_144)
def _key(scheme: str, version: str) -> Any:
    return sort_key(scheme, version)


def _scheme(range_type: str, ecosystem: str) -> str:
    # SEMVER ranges are plain SemVer 2.0 whatever the ecosystem (Go writes them without the 'v').
    return "npm" if range_type == _SEMVER else ecosystem


def _version_for(range_type: str, ecosystem: str, version: str) -> str:
    if range_type == _SEMVER or ecosystem_base(ecosystem) == "Go":
        return version[1:] if version.startswith("v") else version
    return version


def evaluate(entry: Affected, version: str) -> tuple[bool, list[str]]:
    """(affected?, fixed versions above it) for one affected entry. Raises InvalidVersion."""
    if version in entry.versions:
        return True, _fixes_above(entry, version)
    hit = False
    for rtype, events in entry.ranges:
        scheme = _scheme(rtype, entry.ecosystem)
        v = _key(scheme, _version_for(rtype, entry.ecosystem, version))
        if _in_range(scheme, rtype, entry.ecosystem, events, v):
            hit = True
    if not hit:
        return False, []
    return True, _fixes_above(entry, version)


def _in_range(scheme: str, rtype: str, eco: str, events: tuple[tuple[str, str], ...], v: Any) -> bool:
    ordered: list[tuple[int, Any, str]] = []
    limits: list[Any] = []
    for kind, ver in events:
        if kind == "introduced" and ver == "0":
            ordered.append((0, None, kind))
            continue
        k = _key(scheme, _version_for(rtype, eco, ver))
        if kind == "limit":
            limits.append(k)
        else:
            ordered.append((1, k, kind))
    if limits and all(v >= lim for lim in limits):
        return False
    ordered.sort(key=lambda t: (t[0], t[1]) if t[1] is not None else (0, 0))
    affected = False
    for _, k, kind in ordered:
        if kind == "introduced":
            if k is None or v >= k:  # type: ignore[redundant-expr,unused-ignore]
                affected = True
        elif kind == "fixed":
            if v >= k:
                affected = False
        elif kind == "last_affected" and v > k:
            affected = False
    return affected


def _fixes_above(entry: Affected, version: str) -> list[str]:
    out = []
    for rtype, events in entry.ranges:
        scheme = _scheme(rtype, entry.ecosystem)
        try:
            v = _key(scheme, _version_for(rtype, entry.ecosystem, version))
        except (InvalidVersion, UnsupportedEcosystem):
            continue
        for kind, ver in events:
            if kind != "fixed":
                continue
            try:
                if _key(scheme, _version_for(rtype, entry.ecosystem, ver)) > v:
                    out.append(ver)
            except (InvalidVersion, UnsupportedEcosystem):
                continue
    return sorted(set(out))


def _candidate_ecosystems(pkg_eco: str, os: OSInfo | None, known: frozenset[str]) -> list[str]:
    """Advisory ecosystems that speak for a package's ecosystem (its own, plus release-qualified forms)."""
    out = [pkg_eco]
    base = ecosystem_base(pkg_eco)
    if os is None or base not in ("Red Hat", "SUSE", "openSUSE"):
        return out
    major = os.version_id.split(".", 1)[0]
    for e in known:
        if not e.startswith(base + ":"):
            continue
        parts = e.split(":")
        if base == "Red Hat" and len(parts) > 2 and parts[2].split(".", 1)[0] == major:
            out.append(e)
        elif base == "SUSE" and os.version_id:
            want = os.version_id.replace(".", " SP") if "." in os.version_id else os.version_id
            if e.endswith(" " + want) or e.endswith(" " + os.version_id):
                out.append(e)
        elif base == "openSUSE" and os.version_id and e.endswith(" " + os.version_id):
            out.append(e)
    return out


class Matcher:
    """Matches inventories against one open database; keeps what it loaded warm between calls."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._affected: dict[tuple[str, str], list[Affected]] = {}
        self._advisories: dict[str, Advisory] = {}
        self._ecosystems: frozenset[str] | None = None

    # -- loading ---------------------------------------------------------------

    def known_ecosystems(self) -> frozenset[str]:
        if self._ecosystems is None:
            self._ecosystems = frozenset(r[0] for r in self.conn.execute("SELECT DISTINCT ecosystem FROM affected"))
        return self._ecosystems

    def _load(self, keys: Iterable[tuple[str, str]]) -> None:
        missing = [k for k in set(keys) if k not in self._affected]
        for k in missing:
            self._affected[k] = []
        for i in range(0, len(missing), 400):
            chunk = missing[i : i + 400]
            placeholders = ",".join(["(?, ?)"] * len(chunk))
            params = [x for k in chunk for x in k]
            # only '?' placeholders are interpolated into these queries
            sql = (
                "SELECT a.advisory_id, a.ecosystem, a.name, a.ranges, a.versions, a.severity FROM affected a "  # noqa: S608
                "JOIN advisories v ON v.id = a.advisory_id "
                f"WHERE (a.ecosystem, a.name) IN (VALUES {placeholders}) AND v.withdrawn IS NULL"
            )
            for adv, eco, name, ranges, versions, sev in self.conn.execute(sql, params):
                rs = tuple((t, tuple((ev[0], ev[1]) for ev in evs)) for t, evs in json.loads(ranges))
                self._affected[(eco, name)].append(Affected(adv, eco, rs, frozenset(json.loads(versions)), sev))

    def _load_advisories(self, ids: Iterable[str]) -> None:
        missing = [i for i in set(ids) if i not in self._advisories]
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, summary, severity, db_severity, aliases, refs FROM advisories WHERE id IN ({marks})"  # noqa: S608
            for aid, summary, sev, dbsev, aliases, refs in self.conn.execute(sql, chunk):
                self._advisories[aid] = Advisory(
                    aid, summary, json.loads(sev), dbsev, json.loads(aliases), [r["url"] for r in json.loads(refs)]
                )

    # -- matching ----------------------------------------------------------------

    def lookup_keys(self, p: Package, os: OSInfo | None) -> list[tuple[str, str, str]]:
        """(advisory ecosystem, normalised name, version to compare) for one package."""
        if not p.ecosystem or not p.version:
            return []  # e.g. a Go module replaced by a local directory: nothing to compare
        if p.type in _BY_SOURCE:
            name, version = p.source_name or p.name, p.source_version or p.version
        else:
            name, version = p.name, p.version
        out = []
        for eco in _candidate_ecosystems(p.ecosystem, os, self.known_ecosystems()):
            out.append((eco, normalise(eco, name), version))
            if p.type == "rpm" and p.source_name and p.source_name != p.name:
                out.append((eco, normalise(eco, p.source_name), version))
        return out

    def match(
        self,
        packages: Sequence[Package],
        os: OSInfo | None = None,
        *,
        include_dev: bool = False,
    ) -> MatchResult:
        warnings: list[str] = []
        plans = []
        for p in packages:
            if p.dev and not include_dev:
                continue
            keys = self.lookup_keys(p, os)
            if keys:
                plans.append((p, keys))
        self._load(k[:2] for _, keys in plans for k in keys)
        raw: list[tuple[Package, Affected, list[str]]] = []
        for p, keys in plans:
            seen: set[str] = set()
            for eco, name, version in keys:
                for entry in self._affected.get((eco, name), ()):
                    if entry.advisory_id in seen:
                        continue
                    try:
                        hit, fixes = evaluate(entry, version)
                    except (InvalidVersion, UnsupportedEcosystem) as exc:
                        warnings.append(f"{p.name} {version} ({p.found_in}): {exc}; {entry.advisory_id} not evaluated")
                        continue
                    if hit:
                        seen.add(entry.advisory_id)
                        raw.append((p, entry, fixes))
        self._load_advisories(e.advisory_id for _, e, _ in raw)
        findings = self._merge(raw)
        return MatchResult(findings=findings, warnings=warnings)

    def _merge(self, raw: list[tuple[Package, Affected, list[str]]]) -> list[Finding]:
        groups: dict[tuple[int, str], list[tuple[Package, Affected, list[str]]]] = {}
        ids: dict[int, Package] = {}
        for p, entry, fixes in raw:
            adv = self._advisories.get(entry.advisory_id)
            canonical = canonical_id(entry.advisory_id, adv.aliases if adv else [])
            groups.setdefault((id(p), canonical), []).append((p, entry, fixes))
            ids[id(p)] = p
        cves = self._kev_epss({cid for _, cid in groups})
        out = []
        for (pid, cid), items in groups.items():
            p = ids[pid]
            advisories = sorted({e.advisory_id for _, e, _ in items})
            names: set[str] = set(advisories)
            refs: list[str] = []
            summary = ""
            severities: list[risk.SeverityInput] = []
            fixed: set[str] = set()
            for _, entry, f in items:
                fixed.update(f)
                adv = self._advisories.get(entry.advisory_id)
                if adv is None:
                    continue
                names.update(adv.aliases)
                for r in adv.references:
                    if r not in refs:
                        refs.append(r)
                summary = summary or adv.summary
                severities.append(risk.SeverityInput(adv.id, adv.severity, adv.db_severity, entry.severity))
            names.discard(cid)
            kev, epss = cves.get(cid, (None, None))
            sev = risk.assess(severities)
            fixed_versions = sorted(fixed)
            finding = Finding(
                id=cid,
                aliases=sorted(names),
                advisories=advisories,
                summary=summary,
                package_type=p.type,
                package_name=p.name,
                package_purl=p.purl,
                package_ecosystem=p.ecosystem or "",
                installed_version=p.version,
                fixed_versions=fixed_versions,
                fix_available=bool(fixed_versions),
                found_in=p.found_in,
                layer_diff_id=p.layer_diff_id,
                severity=sev.severity.name,
                severity_source=sev.source,
                cvss=sev.cvss,
                kev=kev,
                epss=epss,
                priority=risk.priority(
                    sev.severity, kev is not None, epss.score if epss else None, bool(fixed_versions)
                ),
                references=refs,
            )
            out.append(finding)
        out.sort(key=lambda f: (-f.priority, f.id, f.package_name, f.installed_version, f.found_in))
        return out

    def _kev_epss(self, cve_ids: set[str]) -> dict[str, tuple[Any, Any]]:
        from shared.domain.findings import EPSSScore, KEVEntry

        ids = [c for c in cve_ids if c.startswith("CVE-")]
        out: dict[str, tuple[Any, Any]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = ",".join("?" * len(chunk))
            for cve, added, due, ransom in self.conn.execute(
                f"SELECT cve, date_added, due_date, ransomware FROM kev WHERE cve IN ({q})",  # noqa: S608
                chunk,
            ):
                out[cve] = (KEVEntry(date_added=added or None, due_date=due or None, ransomware=ransom), None)
            for cve, score, pct in self.conn.execute(
                f"SELECT cve, score, percentile FROM epss WHERE cve IN ({q})",  # noqa: S608
                chunk,
            ):
                kev = out.get(cve, (None, None))[0]
                out[cve] = (kev, EPSSScore(score=score, percentile=pct))
        return out


def canonical_id(advisory_id: str, aliases: Sequence[str]) -> str:
    """The CVE a record is known by (the lowest, if several); else the lowest of its own id and aliases.

    Records that alias each other without any CVE (a GHSA and a PYSEC) thus get the same id and merge.
    """
    if advisory_id.startswith("CVE-"):
        return advisory_id
    cves = sorted(a for a in aliases if a.startswith("CVE-"))
    return cves[0] if cves else min([advisory_id, *aliases])
