"""The human-readable table (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from shared.domain.models import ScanResult


def print_tables(results: list[ScanResult], console: Console) -> None:
    for r in results:
        img = r.image
        title = img.reference + (f" ({img.platform})" if img.platform else "")
        os_line = "unknown OS"
        if r.os is not None:
            os_line = r.os.pretty_name or f"{r.os.family} {r.os.version_id}".strip()
            if r.os.distroless:
                os_line += " [distroless]"
        console.print(f"[bold]{title}[/bold]")
        details = [os_line]
        if img.digest:
            details.append(img.digest)
        details.append(f"{len(r.packages)} packages, {len(img.layers)} layers")
        console.print(" · ".join(details))
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
        for w in r.warnings:
            console.print(f"[yellow]warning[/yellow] [{w.code}] {w.message}", highlight=False)
