"""From scan results to findings: match, apply exemptions and VEX, filter for display."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from shared.domain.findings import Finding, Severity
from shared.domain.models import ScanResult, ScanWarning, VulnDBInfo
from shared.findings.exemptions import Exemption, ImageIdentity, VexStatement, apply
from shared.vulndb import db
from shared.vulndb.matcher import Matcher


@dataclass(frozen=True)
class MatchOptions:
    ignore_unfixed: bool = False
    include_dev: bool = False
    severities: frozenset[str] | None = None  # shown severities; None = all
    exemptions: Sequence[Exemption] = field(default_factory=tuple)
    vex: Sequence[VexStatement] = field(default_factory=tuple)
    today: date | None = None


def image_identity(r: ScanResult) -> ImageIdentity:
    img = r.image
    repo = f"{img.registry}/{img.repository}" if img.registry and img.repository else img.reference
    return ImageIdentity(repository=repo, digest=img.digest)


def db_info(conn: object, path: Path) -> VulnDBInfo:
    import sqlite3

    assert isinstance(conn, sqlite3.Connection)
    newest, count = conn.execute("SELECT max(modified), count(*) FROM advisories").fetchone()
    return VulnDBInfo(path=str(path), schema_version=db.schema_version(conn), newest_modified=newest, advisories=count)


def visible(findings: Sequence[Finding], options: MatchOptions) -> list[Finding]:
    out = []
    for f in findings:
        if options.ignore_unfixed and not f.fix_available:
            continue
        if options.severities is not None and f.severity not in options.severities:
            continue
        out.append(f)
    return out


def assess(results: Sequence[ScanResult], db_path: Path, options: MatchOptions) -> list[ScanResult]:
    """Attach findings to each result (opening the database once)."""
    conn = db.open_readonly(db_path)
    try:
        matcher = Matcher(conn)
        info = db_info(conn, db_path)
        out = []
        for r in results:
            m = matcher.match(r.packages, r.os, include_dev=options.include_dev)
            findings = apply(m.findings, image_identity(r), options.exemptions, options.vex, options.today)
            warnings = list(r.warnings) + [ScanWarning(code="match-skipped", message=w) for w in m.warnings]
            for f in findings:
                for ex in f.expired_exemptions:
                    warnings.append(
                        ScanWarning(
                            code="exemption-expired",
                            message=f"{ex.source}: the exemption for {f.id} in {f.package_name} expired on "
                            f"{ex.expired.isoformat()} and no longer applies ({ex.reason})",
                        )
                    )
            out.append(
                r.model_copy(
                    update={"findings": visible(findings, options), "vulnerability_db": info, "warnings": warnings}
                )
            )
        return out
    finally:
        conn.close()


def gate(results: Sequence[ScanResult], fail_on: str | None) -> bool:
    """True when a shown, unsuppressed finding reaches ``fail_on`` (any finding when None)."""
    floor = Severity[fail_on] if fail_on else Severity.UNKNOWN
    for r in results:
        for f in r.findings or []:
            if f.suppressed is None and Severity[f.severity] >= floor:
                return True
    return False
