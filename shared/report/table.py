"""The human-readable table (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from shared.domain.findings import Finding, Severity
from shared.domain.models import ScanResult

_STYLE = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "cyan", "UNKNOWN": "dim"}


def print_tables(results: list[ScanResult], console: Console) -> None:
    for r in results:
        img = r.image
        title = img.reference + (f" ({img.platform})" if img.platform else "")
        os_line = "unknown OS"
        if r.os is not None:
            os_line = r.os.pretty_name or f"{r.os.family} {r.os.version_id}".strip()
            if r.os.distroless:
                os_line += " [distroless]"
        console.print(f"[bold]{title}[/bold]", highlight=False)
        details = [os_line]
        if img.digest:
            details.append(img.digest)
        details.append(f"{len(r.packages)} packages, {len(img.layers)} layers")
        console.print(" · ".join(details), highlight=False)
        if r.findings is None:
            _packages(r, console)
        else:
            _findings(r.findings, console)
        for w in r.warnings:
            console.print(f"[yellow]warning[/yellow] [{w.code}] {w.message}", highlight=False)


def _packages(r: ScanResult, console: Console) -> None:
    table = Table(show_lines=False, header_style="bold")
    for col in ("Type", "Package", "Version", "Arch", "Source", "Ecosystem", "Layer"):
        table.add_column(col, overflow="fold")
    for p in r.packages:
        src = ""
        if p.source_name and (p.source_name != p.name or p.source_version != p.version):
            src = p.source_name + (f" {p.source_version}" if p.source_version != p.version else "")
        table.add_row(
            p.type,
            p.name,
            p.version,
            p.arch or "",
            src,
            p.ecosystem or "",
            "" if p.layer_index is None else str(p.layer_index),
        )
    console.print(table)


def _findings(findings: list[Finding], console: Console) -> None:
    counts = {s.name: 0 for s in sorted(Severity, reverse=True)}
    for f in findings:
        if f.suppressed is None:
            counts[f.severity] += 1
    suppressed = sum(1 for f in findings if f.suppressed is not None)
    summary = ", ".join(f"{n} {name}" for name, n in counts.items())
    console.print(
        f"Vulnerabilities: {summary}" + (f" ({suppressed} suppressed)" if suppressed else ""), highlight=False
    )
    if not findings:
        return
    table = Table(show_lines=False, header_style="bold")
    for col in ("Severity", "Vulnerability", "Package", "Installed", "Fixed in", "Exploited", "Status"):
        table.add_column(col, overflow="fold")
    ordered = sorted(findings, key=lambda f: (-Severity[f.severity], -f.priority, f.package_name, f.id))
    for f in ordered:
        exploited = []
        if f.kev is not None:
            exploited.append(f"KEV {f.kev.date_added or ''}".strip())
        if f.epss is not None:
            exploited.append(f"EPSS {f.epss.score:.2f}")
        status = "" if f.suppressed is None else f"suppressed ({f.suppressed.kind}): {f.suppressed.reason}"
        table.add_row(
            f"[{_STYLE[f.severity]}]{f.severity}[/]",
            f.id,
            f.package_name,
            f.installed_version,
            ", ".join(f.fixed_versions) or "no fix yet",
            ", ".join(exploited),
            status,
        )
    console.print(table)
