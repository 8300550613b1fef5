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

Speed: a :class:`Matcher` keeps what it loaded (it reads a database that does
not change under it): each affected entry is compiled once into the sort keys
of its range events, already ordered, so evaluating a package against it costs
a few string comparisons; normalised names, candidate ecosystems, advisories,
severity assessments and KEV/EPSS lookups are kept too. A package without
advisories costs one dictionary lookup once its key is known.
"""

from __future__ import annotations

import gc
import json
import re
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
#: Ecosystems whose advisories name a release inside the ecosystem string ("Red Hat:enterprise_linux:9::appstream").
_QUALIFIED = frozenset({"Red Hat", "SUSE", "openSUSE"})
#: Bound on the per-matcher caches of names and keys (a long-running matcher sees ever new packages).
_CACHE_LIMIT = 200_000


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


def _strips_v(range_type: str, ecosystem: str) -> bool:
    return range_type == _SEMVER or ecosystem_base(ecosystem) == "Go"


def _version_for(range_type: str, ecosystem: str, version: str) -> str:
    if _strips_v(range_type, ecosystem):
        return version[1:] if version.startswith("v") else version
    return version


# A compiled range: (scheme, strip a leading 'v'?, first unreadable event version or None, limit keys,
# the other events as (key or None for 'introduced 0', kind) in evaluation order, (key, version) of fixes).
_Range = tuple[str, bool, str | None, tuple[Any, ...], tuple[tuple[Any, str], ...], tuple[tuple[Any, str], ...]]


def _compile(ecosystem: str, ranges: Iterable[Sequence[Any]]) -> tuple[_Range, ...]:
    """Ranges ((type, ((kind, version), ...)), ...) with every event version turned into its sort key once,
    the events in evaluation order."""
    out = []
    for rtype, events in ranges:
        scheme, strip = _range_scheme(rtype, ecosystem)
        ordered: list[tuple[int, Any, str]] = []
        limits: list[Any] = []
        fixes: list[tuple[Any, str]] = []
        bad: str | None = None
        for kind, ver in events:
            if kind == "introduced" and ver == "0":
                ordered.append((0, None, kind))
                continue
            v = ver[1:] if strip and ver.startswith("v") else ver
            try:
                k = _key(scheme, v)
            except (InvalidVersion, UnsupportedEcosystem):
                if bad is None:
                    bad = v  # evaluation raises on it, as it always did; fixes skip it
                continue
            if kind == "limit":
                limits.append(k)
            else:
                ordered.append((1, k, kind))
                if kind == "fixed":
                    fixes.append((k, ver))
        if len(ordered) > 2 or (len(ordered) == 2 and ordered[0][1] is not None):
            ordered.sort(key=lambda t: (t[0], t[1]) if t[1] is not None else (0, 0))
        out.append((scheme, strip, bad, tuple(limits), tuple([(k, kind) for _, k, kind in ordered]), tuple(fixes)))
    return tuple(out)


@lru_cache(maxsize=1024)
def _range_scheme(range_type: str, ecosystem: str) -> tuple[str, bool]:
    return _scheme(range_type, ecosystem), _strips_v(range_type, ecosystem)


@lru_cache(maxsize=4096)
def _compiled(entry: Affected) -> tuple[_Range, ...]:
    return _compile(entry.ecosystem, entry.ranges)


def evaluate(entry: Affected, version: str) -> tuple[bool, list[str]]:
    """(affected?, fixed versions above it) for one affected entry. Raises InvalidVersion."""
    return _evaluate(version in entry.versions, _compiled(entry), version)


def _evaluate(listed: bool, ranges: tuple[_Range, ...], version: str) -> tuple[bool, list[str]]:
    """``listed``: the version is in the entry's explicit ``versions``."""
    if listed:
        return True, _fixes_above(ranges, version)
    hit = False
    for scheme, strip, bad, limits, ordered, _ in ranges:
        v = _key(scheme, version[1:] if strip and version.startswith("v") else version)
        if bad is not None:
            _key(scheme, bad)  # raises InvalidVersion / UnsupportedEcosystem naming the event's version
        if limits and all(v >= lim for lim in limits):
            continue
        affected = False
        for k, kind in ordered:
            if kind == "introduced":
                if k is None or v >= k:
                    affected = True
            elif kind == "fixed":
                if v >= k:
                    affected = False
            elif kind == "last_affected" and v > k:
                affected = False
        if affected:
            hit = True
    if not hit:
        return False, []
    return True, _fixes_above(ranges, version)


def _fixes_above(ranges: tuple[_Range, ...], version: str) -> list[str]:
    out: list[str] = []
    for scheme, strip, _, _, _, fixes in ranges:
        if not fixes:
            continue
        try:
            v = _key(scheme, version[1:] if strip and version.startswith("v") else version)
        except (InvalidVersion, UnsupportedEcosystem):
            continue
        out.extend(ver for k, ver in fixes if k > v)
    return sorted(set(out)) if len(out) > 1 else out


def _candidate_ecosystems(pkg_eco: str, os: OSInfo | None, known: frozenset[str]) -> list[str]:
    """Advisory ecosystems that speak for a package's ecosystem (its own, plus release-qualified forms)."""
    out = [pkg_eco]
    base = ecosystem_base(pkg_eco)
    if os is None or base not in _QUALIFIED:
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


class _Entry:
    """An affected entry as the matcher keeps it: advisory, severity, explicit versions, compiled ranges.

    The explicit versions stay the JSON text they are stored as until a version is found in it
    (most entries are never asked about a version they list), then become a set.
    """

    __slots__ = ("_versions", "advisory_id", "ranges", "severity", "versions_json")

    def __init__(self, advisory_id: str, severity: str | None, versions_json: str, ranges: tuple[_Range, ...]):
        self.advisory_id = advisory_id
        self.severity = severity
        self.versions_json = versions_json
        self._versions: frozenset[str] | None = None
        self.ranges = ranges

    def lists(self, version: str) -> bool:
        """Whether ``version`` is one of the entry's explicit versions."""
        if self._versions is None:
            text = self.versions_json
            if text == "[]":
                return False
            # A plain version (no quote, backslash or control character) appears in the compact JSON
            # exactly as itself between quotes; if it does not, it is not listed.
            if f'"{version}"' not in text and _PLAIN.fullmatch(version):
                return False
            self._versions = frozenset(json.loads(text))
        return version in self._versions


_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')


class _Group:
    """What the findings of one set of advisories share, whatever the package: computed once.

    Once a group has had a finding, the next one is validated like any and kept (a copy) as
    ``template``; later findings of the group are shallow copies of it with the package's fields,
    which costs half as much. (A group seen once, the usual case on a first image, costs no copy.)
    """

    __slots__ = (
        "advisories",
        "aliases",
        "assessment",
        "epss",
        "kev",
        "priorities",
        "references",
        "summary",
        "template",
        "uses",
    )

    def __init__(
        self,
        advisories: list[str],
        aliases: list[str],
        references: list[str],
        summary: str,
        assessment: risk.Assessment,
        kev: Any,
        epss: Any,
    ) -> None:
        self.advisories = advisories
        self.aliases = aliases
        self.references = references
        self.summary = summary
        self.assessment = assessment
        self.kev = kev
        self.epss = epss
        score = epss.score if epss else None
        # priority without and with a fix
        self.priorities = (
            risk.priority(assessment.severity, kev is not None, score, False),
            risk.priority(assessment.severity, kev is not None, score, True),
        )
        self.template: Finding | None = None
        self.uses = 0


class Matcher:
    """Matches inventories against one open database; keeps what it loaded warm between calls."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._affected: dict[tuple[str, str], list[_Entry]] = {}
        self._advisories: dict[str, Advisory] = {}
        self._canonical: dict[str, str] = {}
        self._ecosystems: frozenset[str] | None = None
        self._names: dict[tuple[str, str], str] = {}
        self._candidates: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._qualified: dict[str, bool] = {}
        self._groups: dict[Any, _Group] = {}  # by entry (one advisory) or tuple of entries
        self._cves: dict[str, tuple[Any, Any]] = {}
        self._compiled: dict[tuple[str, str], tuple[_Range, ...]] = {}
        self._withdrawn_ids: frozenset[str] | None = None
        self._withdrawn_indexed: bool | None = None

    # -- loading ---------------------------------------------------------------

    def known_ecosystems(self) -> frozenset[str]:
        if self._ecosystems is None:
            # DISTINCT by skipping through the (ecosystem, name) index: one seek per ecosystem, not a full scan
            sql = (
                "WITH RECURSIVE e(x) AS (SELECT min(ecosystem) FROM affected "
                "UNION ALL SELECT (SELECT min(ecosystem) FROM affected WHERE ecosystem > x) FROM e "
                "WHERE x IS NOT NULL) SELECT x FROM e WHERE x IS NOT NULL"
            )
            self._ecosystems = frozenset(r[0] for r in self.conn.execute(sql))
        return self._ecosystems

    def _withdrawn(self) -> frozenset[str] | None:
        """Ids of withdrawn advisories, read once from their small index; None for files without that index."""
        if self._withdrawn_indexed is None:
            self._withdrawn_indexed = bool(
                self.conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'advisories_withdrawn'"
                ).fetchone()
            )
        if not self._withdrawn_indexed:
            return None
        if self._withdrawn_ids is None:
            rows = self.conn.execute(
                "SELECT id FROM advisories INDEXED BY advisories_withdrawn WHERE withdrawn IS NOT NULL"
            )
            self._withdrawn_ids = frozenset(r[0] for r in rows)
        return self._withdrawn_ids

    def _load(self, keys: Iterable[tuple[str, str]]) -> None:
        missing = [k for k in set(keys) if k not in self._affected]
        if not missing:
            return
        found: dict[tuple[str, str], list[_Entry]] = {k: [] for k in missing}
        withdrawn = self._withdrawn()
        # The keys drive the query (CROSS JOIN fixes the join order): each is one seek in the (ecosystem, name)
        # index, never a scan. Withdrawn advisories have no affected rows; the set of their ids (or, in files
        # without its index, a join with the advisories) keeps it so whatever wrote the file.
        if withdrawn is not None:
            tail = ""
        else:
            tail = " CROSS JOIN advisories v ON v.id = a.advisory_id WHERE v.withdrawn IS NULL"
            withdrawn = frozenset()
        compiled = self._compiled
        loads = json.loads
        for i in range(0, len(missing), 400):
            chunk = missing[i : i + 400]
            placeholders = ",".join(["(?, ?)"] * len(chunk))
            params = [x for k in chunk for x in k]
            # only '?' placeholders are interpolated into the query
            sql = (
                f"WITH k(e, n) AS (VALUES {placeholders}) "  # noqa: S608
                "SELECT a.advisory_id, a.ecosystem, a.name, a.ranges, a.versions, a.severity "
                "FROM k CROSS JOIN affected a ON a.ecosystem = k.e AND a.name = k.n" + tail
            )
            for adv, eco, name, ranges, versions, sev in self.conn.execute(sql, params):
                if adv in withdrawn:
                    continue
                ck = (eco, ranges)
                rs = compiled.get(ck)
                if rs is None:
                    if len(compiled) >= _CACHE_LIMIT:
                        compiled.clear()
                    rs = compiled[ck] = _compile(eco, loads(ranges))
                found[(eco, name)].append(_Entry(adv, sev, versions, rs))
        self._affected.update(found)

    def _load_advisories(self, ids: Iterable[str]) -> None:
        missing = [i for i in set(ids) if i not in self._advisories]
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            marks = ",".join("?" * len(chunk))
            # severity, aliases and references in one JSON document: one parse per advisory, not three
            sql = (
                "SELECT id, summary, db_severity, '[' || severity || ',' || aliases || ',' || refs || ']' "  # noqa: S608
                f"FROM advisories WHERE id IN ({marks})"
            )
            for aid, summary, dbsev, lists in self.conn.execute(sql, chunk):
                sev, aliases, refs = json.loads(lists)
                adv = Advisory(aid, summary, sev, dbsev, aliases, [r["url"] for r in refs])
                self._advisories[aid] = adv
                self._canonical[aid] = canonical_id(aid, adv.aliases)

    # -- matching ----------------------------------------------------------------

    def _normalised(self, eco: str, name: str) -> str:
        k = (eco, name)
        n = self._names.get(k)
        if n is None:
            if len(self._names) >= _CACHE_LIMIT:
                self._names.clear()
            n = self._names[k] = normalise(eco, name)
        return n

    def _candidate(self, pkg_eco: str, os: OSInfo | None) -> tuple[str, ...]:
        if os is None or ecosystem_base(pkg_eco) not in _QUALIFIED:
            return (pkg_eco,)
        k = (pkg_eco, os.version_id)
        c = self._candidates.get(k)
        if c is None:
            c = self._candidates[k] = tuple(_candidate_ecosystems(pkg_eco, os, self.known_ecosystems()))
        return c

    def lookup_keys(self, p: Package, os: OSInfo | None) -> list[tuple[str, str, str]]:
        """(advisory ecosystem, normalised name, version to compare) for one package."""
        pkg_eco = p.ecosystem
        if not pkg_eco or not p.version:
            return []  # e.g. a Go module replaced by a local directory: nothing to compare
        if p.type in _BY_SOURCE:
            name, version = p.source_name or p.name, p.source_version or p.version
        else:
            name, version = p.name, p.version
        if os is None or ecosystem_base(pkg_eco) not in _QUALIFIED:
            out = [(pkg_eco, self._normalised(pkg_eco, name), version)]
            if p.type == "rpm" and p.source_name and p.source_name != p.name:
                out.append((pkg_eco, self._normalised(pkg_eco, p.source_name), version))
            return out
        out = []
        for eco in self._candidate(pkg_eco, os):
            out.append((eco, self._normalised(eco, name), version))
            if p.type == "rpm" and p.source_name and p.source_name != p.name:
                out.append((eco, self._normalised(eco, p.source_name), version))
        return out

    def match(
        self,
        packages: Sequence[Package],
        os: OSInfo | None = None,
        *,
        include_dev: bool = False,
    ) -> MatchResult:
        # Matching allocates tens of thousands of small objects (findings above all) and makes no reference
        # cycles; the cyclic garbage collector, left on, would walk the matcher's caches again and again
        # meanwhile (a third of the time of a warm match). It is paused for the call, and resumed after it
        # if it was on.
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self._match(packages, os, include_dev)
        finally:
            if paused:
                gc.enable()

    def _match(self, packages: Sequence[Package], os: OSInfo | None, include_dev: bool) -> MatchResult:
        warnings: list[str] = []
        affected = self._affected
        names = self._names
        qualified = self._qualified
        # Pass 1: each package's lookup keys. The common case -- one key, its name seen before -- is inlined:
        # a few attribute reads and dictionary lookups, and nothing more when the key has no advisories.
        # A plan is (package, key, version) or, for several keys, (package, None, keys).
        plans: list[tuple[Package, Any, Any]] = []
        missing: set[tuple[str, str]] = set()
        for p in packages:
            if p.dev and not include_dev:
                continue
            eco = p.ecosystem
            if not eco or not p.version:
                continue
            ptype = p.type
            q = qualified.get(eco)
            if q is None:
                q = qualified[eco] = ecosystem_base(eco) in _QUALIFIED
            if (q and os is not None) or ptype == "rpm":
                keys = self.lookup_keys(p, os)
                if keys:
                    plans.append((p, None, keys))
                    missing.update(k[:2] for k in keys if k[:2] not in affected)
                continue
            if ptype in _BY_SOURCE:
                name, version = p.source_name or p.name, p.source_version or p.version
            else:
                name, version = p.name, p.version
            norm = names.get((eco, name))
            if norm is None:
                norm = self._normalised(eco, name)
            key = (eco, norm)
            entries = affected.get(key)
            if entries is None:
                missing.add(key)
            elif not entries:
                continue  # no advisory names this package
            plans.append((p, key, version))
        if missing:
            self._load(missing)
        # Pass 2: evaluate the affected entries of the packages that have some, in inventory order.
        raw: list[tuple[Package, _Entry, list[str]]] = []
        evaluate_entries = self._evaluate_entries
        for p, key, version in plans:
            if key is not None:
                entries = affected[key]
                if entries:
                    evaluate_entries(p, version, entries, set(), raw, warnings)
                continue
            seen: set[str] = set()
            for eco, name, v in version:
                entries = affected[(eco, name)]
                if entries:
                    evaluate_entries(p, v, entries, seen, raw, warnings)
        self._load_advisories(e.advisory_id for _, e, _ in raw if e.advisory_id not in self._advisories)
        findings = self._merge(raw)
        return MatchResult(findings=findings, warnings=warnings)

    @staticmethod
    def _evaluate_entries(
        p: Package,
        version: str,
        entries: list[_Entry],
        seen: set[str],
        raw: list[tuple[Package, _Entry, list[str]]],
        warnings: list[str],
    ) -> None:
        for entry in entries:
            if entry.advisory_id in seen:
                continue
            try:
                hit, fixes = _evaluate(entry.versions_json != "[]" and entry.lists(version), entry.ranges, version)
            except (InvalidVersion, UnsupportedEcosystem) as exc:
                warnings.append(f"{p.name} {version} ({p.found_in}): {exc}; {entry.advisory_id} not evaluated")
                continue
            if hit:
                seen.add(entry.advisory_id)
                raw.append((p, entry, fixes))

    def _group(
        self, cid: str, items: list[tuple[Package, _Entry, list[str]]], cves: dict[str, tuple[Any, Any]]
    ) -> _Group:
        """Aliases, references, summary, severity and priority of the advisories behind a finding (cached)."""
        gkey: Any = items[0][1] if len(items) == 1 else tuple(e for _, e, _ in items)
        g = self._groups.get(gkey)
        if g is not None:
            return g
        names: set[str] = set()
        refs: list[str] = []
        seen_refs: set[str] = set()
        summary = ""
        severities: list[risk.SeverityInput] = []
        for _, entry, _ in items:
            names.add(entry.advisory_id)
            adv = self._advisories.get(entry.advisory_id)
            if adv is None:
                continue
            names.update(adv.aliases)
            for r in adv.references:
                if r not in seen_refs:
                    seen_refs.add(r)
                    refs.append(r)
            summary = summary or adv.summary
            severities.append(risk.SeverityInput(adv.id, adv.severity, adv.db_severity, entry.severity))
        advisories = sorted({e.advisory_id for _, e, _ in items})
        names.discard(cid)
        kev, epss = cves.get(cid, (None, None))
        if len(self._groups) >= _CACHE_LIMIT:
            self._groups.clear()
        g = self._groups[gkey] = _Group(advisories, sorted(names), refs, summary, risk.assess(severities), kev, epss)
        return g

    def _merge(self, raw: list[tuple[Package, _Entry, list[str]]]) -> list[Finding]:
        groups: dict[tuple[int, str], list[tuple[Package, _Entry, list[str]]]] = {}
        ids: dict[int, Package] = {}
        canonical = self._canonical
        for item in raw:
            p, entry, _ = item
            aid = entry.advisory_id
            cid = canonical.get(aid) or canonical_id(aid, [])
            k = (id(p), cid)
            group = groups.get(k)
            if group is None:
                groups[k] = [item]
                ids[k[0]] = p
            else:
                group.append(item)
        cves = self._kev_epss({cid for _, cid in groups})
        out = []
        package_fields: dict[int, dict[str, Any]] = {}
        for (pid, cid), items in groups.items():
            g = self._group(cid, items, cves)
            pf = package_fields.get(pid)
            if pf is None:
                p = ids[pid]
                pf = package_fields[pid] = {
                    "package_type": p.type,
                    "package_name": p.name,
                    "package_purl": p.purl,
                    "package_ecosystem": p.ecosystem or "",
                    "installed_version": p.version,
                    "found_in": p.found_in,
                    "layer_diff_id": p.layer_diff_id,
                }
            if len(items) == 1:
                fixed_versions = list(items[0][2])
            else:
                fixed: set[str] = set()
                for _, _, f in items:
                    fixed.update(f)
                fixed_versions = sorted(fixed)
            fixable = bool(fixed_versions)
            sev = g.assessment
            fields: dict[str, Any] = {
                **pf,
                "aliases": g.aliases[:],
                "advisories": g.advisories[:],
                "fixed_versions": fixed_versions,
                "fix_available": fixable,
                "cvss": sev.cvss[:],
                "priority": g.priorities[fixable],
                "references": g.references[:],
            }
            if g.template is None:
                g.uses += 1
                finding = Finding(
                    id=cid,
                    summary=g.summary,
                    severity=sev.severity.name,
                    severity_source=sev.source,
                    kev=g.kev,
                    epss=g.epss,
                    **fields,
                )
                if g.uses > 1:
                    g.template = finding.model_copy(
                        update={k: list(v) for k, v in fields.items() if isinstance(v, list)}
                    )
            else:
                # every field given was validated in the template or comes from a validated Package
                finding = g.template.model_copy(update=fields)
                finding.__dict__["expired_exemptions"] = []  # not shared with the template (not "set", as before)
            out.append(finding)
        out.sort(key=lambda f: (-f.priority, f.id, f.package_name, f.installed_version, f.found_in))
        return out

    def _kev_epss(self, cve_ids: set[str]) -> dict[str, tuple[Any, Any]]:
        from shared.domain.findings import EPSSScore, KEVEntry

        known = self._cves
        out: dict[str, tuple[Any, Any]] = {}
        ids = []
        for c in cve_ids:
            if not c.startswith("CVE-"):
                continue
            hit = known.get(c)
            if hit is None:
                ids.append(c)
            elif hit[0] is not None or hit[1] is not None:
                out[c] = hit
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            got: dict[str, tuple[Any, Any]] = {}
            q = ",".join("?" * len(chunk))
            for cve, added, due, ransom in self.conn.execute(
                f"SELECT cve, date_added, due_date, ransomware FROM kev WHERE cve IN ({q})",  # noqa: S608
                chunk,
            ):
                got[cve] = (KEVEntry(date_added=added or None, due_date=due or None, ransomware=ransom), None)
            for cve, score, pct in self.conn.execute(
                f"SELECT cve, score, percentile FROM epss WHERE cve IN ({q})",  # noqa: S608
                chunk,
            ):
                kev = got.get(cve, (None, None))[0]
                got[cve] = (kev, EPSSScore(score=score, percentile=pct))
            out.update(got)
            if len(known) + len(chunk) > _CACHE_LIMIT:
                known.clear()
            for c in chunk:
                known[c] = got.get(c, (None, None))
        return out


def canonical_id(advisory_id: str, aliases: Sequence[str]) -> str:
    """The CVE a record is known by (the lowest, if several); else the lowest of its own id and aliases.

    Records that alias each other without any CVE (a GHSA and a PYSEC) thus get the same id and merge.
    """
    if advisory_id.startswith("CVE-"):
        return advisory_id
    cves = sorted(a for a in aliases if a.startswith("CVE-"))
    return cves[0] if cves else min([advisory_id, *aliases])
