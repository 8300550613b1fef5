"""Exemptions (a YAML policy file) and OpenVEX statements that suppress findings.

Policy file::

    exemptions:
      - id: CVE-2024-3651            # a vulnerability id or any alias of it
        package: "pkg:pypi/idna@*"   # purl glob (fnmatch), matched without qualifiers
        image: "registry.example/team/*"   # repository glob, or a manifest digest sha256:...
        severity: [LOW, MEDIUM]      # one or several
        fix_status: unfixed          # fixed | unfixed
        reason: "not reachable: we never parse untrusted hostnames"   # mandatory
        expires: 2027-01-31          # optional; from that day on it no longer applies, and says so

Every selector given must match; at least one selector is required. Suppressed
findings stay in every report, marked with why; nothing is dropped silently.
VEX (OpenVEX): ``not_affected`` and ``fixed`` statements suppress the
vulnerability for the products they name (an image as ``pkg:oci/...`` or a
package purl), with their justification or impact statement as the reason.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from packageurl import PackageURL

from shared.domain.findings import ExpiredExemption, Finding, Severity, Suppression
from shared.errors import InputError

_SELECTORS = ("id", "package", "image", "severity", "fix_status")


@dataclass(frozen=True)
class Exemption:
    source: str
    id: str | None
    package: str | None
    image: str | None
    severities: frozenset[str] | None
    fix_status: str | None
    reason: str
    expires: date | None


@dataclass(frozen=True)
class ImageIdentity:
    """What an exemption's ``image`` selector and a VEX product are compared with."""

    repository: str | None  # "registry/repo" (or the reference for local sources)
    digest: str | None


def _purl_base(purl: str) -> str:
    """A purl without qualifiers and subpath: exemptions and VEX products name packages, not their build."""
    try:
        p = PackageURL.from_string(purl)
    except ValueError:
        return purl
    return PackageURL(type=p.type, namespace=p.namespace, name=p.name, version=p.version).to_string()


def load_policy(path: Path) -> list[Exemption]:
    where = str(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InputError(where, f"cannot read the policy file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(where, f"not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("exemptions"), list):
        raise InputError(where, "expected a mapping with an 'exemptions' list")
    out = []
    for n, e in enumerate(doc["exemptions"], start=1):
        at = f"{where}: exemption {n}"
        if not isinstance(e, dict):
            raise InputError(at, "is not a mapping")
        unknown = set(e) - {*_SELECTORS, "reason", "expires"}
        if unknown:
            raise InputError(at, f"unknown keys {sorted(unknown)}")
        reason = e.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(at, "has no reason: every exemption must say why")
        if not any(e.get(k) for k in _SELECTORS):
            raise InputError(at, f"selects nothing: give at least one of {', '.join(_SELECTORS)}")
        sev = e.get("severity")
        sevs = None
        if sev is not None:
            items = [sev] if isinstance(sev, str) else sev
            if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
                raise InputError(at, "severity must be a name or a list of names")
            sevs = frozenset(s.upper() for s in items)
            bad = sevs - {s.name for s in Severity}
            if bad:
                raise InputError(at, f"unknown severity {sorted(bad)}")
        fix = e.get("fix_status")
        if fix is not None and fix not in ("fixed", "unfixed"):
            raise InputError(at, "fix_status must be 'fixed' or 'unfixed'")
        expires = e.get("expires")
        if expires is not None and not isinstance(expires, date):
            try:
                expires = date.fromisoformat(str(expires))
            except ValueError:
                raise InputError(at, f"expires {expires!r} is not a date (YYYY-MM-DD)") from None
        for key in ("id", "package", "image"):
            if e.get(key) is not None and not isinstance(e.get(key), str):
                raise InputError(at, f"{key} must be a string")
        out.append(
            Exemption(
                source=f"{where}#{n}",
                id=e.get("id"),
                package=e.get("package"),
                image=e.get("image"),
                severities=sevs,
                fix_status=fix,
                reason=reason.strip(),
                expires=expires,
            )
        )
    return out


def _selects(ex: Exemption, f: Finding, image: ImageIdentity) -> bool:
    if ex.id is not None and ex.id != f.id and ex.id not in f.aliases:
        return False
    if ex.package is not None:
        pattern = ex.package
        if not (
            fnmatch.fnmatchcase(_purl_base(f.package_purl), pattern) or fnmatch.fnmatchcase(f.package_purl, pattern)
        ):
            return False
    if ex.image is not None:
        if ex.image.startswith("sha256:"):
            if image.digest != ex.image:
                return False
        elif image.repository is None or not fnmatch.fnmatchcase(image.repository, ex.image):
            return False
    if ex.severities is not None and f.severity not in ex.severities:
        return False
    if ex.fix_status == "fixed" and not f.fix_available:
        return False
    return not (ex.fix_status == "unfixed" and f.fix_available)


@dataclass(frozen=True)
class VexStatement:
    source: str
    vulnerability: str
    aliases: frozenset[str]
    products: tuple[str, ...]
    subcomponents: tuple[str, ...]
    status: str
    reason: str


def load_vex(path: Path) -> list[VexStatement]:
    where = str(path)
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(where, f"cannot read the VEX document: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError(where, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("statements"), list):
        raise InputError(where, "not an OpenVEX document (no 'statements' list)")
    out = []
    for n, st in enumerate(doc["statements"], start=1):
        at = f"{where}: statement {n}"
        if not isinstance(st, dict):
            raise InputError(at, "is not an object")
        vuln = st.get("vulnerability")
        aliases: set[str] = set()
        if isinstance(vuln, dict):
            name = vuln.get("name") or vuln.get("@id")
            aliases.update(a for a in vuln.get("aliases") or [] if isinstance(a, str))
        else:
            name = vuln
        if not isinstance(name, str) or not name:
            raise InputError(at, "has no vulnerability name")
        status = st.get("status")
        if status not in ("not_affected", "affected", "fixed", "under_investigation"):
            raise InputError(at, f"unknown status {status!r}")
        products: list[str] = []
        subs: list[str] = []
        for prod in st.get("products") or []:
            pid = prod.get("@id") if isinstance(prod, dict) else prod
            if isinstance(pid, str):
                products.append(pid)
            if isinstance(prod, dict):
                for sub in prod.get("subcomponents") or []:
                    sid = sub.get("@id") if isinstance(sub, dict) else sub
                    if isinstance(sid, str):
                        subs.append(sid)
        for sub in st.get("subcomponents") or []:  # OpenVEX v0.0.x put them beside products
            sid = sub.get("@id") if isinstance(sub, dict) else sub
            if isinstance(sid, str):
                subs.append(sid)
        reason = st.get("justification") or st.get("impact_statement") or st.get("status_notes") or status
        if st.get("impact_statement") and st.get("justification"):
            reason = f"{st['justification']}: {st['impact_statement']}"
        out.append(
            VexStatement(f"{where}#{n}", name, frozenset(aliases), tuple(products), tuple(subs), status, str(reason))
        )
    return out


def _oci_matches(product: str, image: ImageIdentity) -> bool:
    try:
        p = PackageURL.from_string(product)
    except ValueError:
        return False
    if p.type != "oci":
        return False
    if p.version and image.digest and p.version == image.digest:
        return True
    if p.version and p.version != image.digest:
        return False
    repo = (p.qualifiers or {}).get("repository_url") if isinstance(p.qualifiers, dict) else None
    if repo and image.repository:
        return repo.rstrip("/") == image.repository or repo.rstrip("/").endswith("/" + image.repository)
    return image.repository is not None and image.repository.rsplit("/", 1)[-1] == p.name


def _package_matches(pattern: str, f: Finding) -> bool:
    base = _purl_base(f.package_purl)
    want = _purl_base(pattern)
    if want == base:
        return True
    try:
        w = PackageURL.from_string(pattern)
        g = PackageURL.from_string(f.package_purl)
    except ValueError:
        return False
    # a product without a version speaks for every version of that package
    return not w.version and (w.type, w.namespace, w.name) == (g.type, g.namespace, g.name)


def _vex_applies(st: VexStatement, f: Finding, image: ImageIdentity) -> bool:
    if st.vulnerability != f.id and st.vulnerability not in f.aliases and f.id not in st.aliases:
        return False
    for prod in st.products:
        if prod.startswith("pkg:oci/") and _oci_matches(prod, image):
            if not st.subcomponents:
                return True
            if any(_package_matches(s, f) for s in st.subcomponents):
                return True
        elif _package_matches(prod, f):
            return True
    return False


def apply(
    findings: Sequence[Finding],
    image: ImageIdentity,
    exemptions: Sequence[Exemption] = (),
    vex: Sequence[VexStatement] = (),
    today: date | None = None,
) -> list[Finding]:
    """Mark suppressed findings (never drop them); note exemptions that matched but expired."""
    today = today or date.today()
    out = []
    for f in findings:
        suppression = None
        expired = []
        for ex in exemptions:
            if not _selects(ex, f, image):
                continue
            if ex.expires is not None and ex.expires <= today:
                expired.append(ExpiredExemption(reason=ex.reason, source=ex.source, expired=ex.expires))
                continue
            if suppression is None:
                suppression = Suppression(kind="exemption", reason=ex.reason, source=ex.source, expires=ex.expires)
        if suppression is None:
            for st in vex:
                if st.status in ("not_affected", "fixed") and _vex_applies(st, f, image):
                    suppression = Suppression(kind="vex", reason=f"{st.status}: {st.reason}", source=st.source)
                    break
        # model_copy does not validate: the update holds what the fields hold (a tuple, not the list built here)
        out.append(f.model_copy(update={"suppressed": suppression, "expired_exemptions": tuple(expired)}))
    return out


def describe(findings: Sequence[Finding]) -> dict[str, Any]:
    """Counts for summaries: suppressed by kind, expired exemptions seen."""
    return {
        "suppressed": sum(1 for f in findings if f.suppressed),
        "expired_exemptions": sum(len(f.expired_exemptions) for f in findings),
    }
