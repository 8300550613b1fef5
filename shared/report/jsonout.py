"""``--format json``: the ScanReport model, schema in shared/schemas/scan-report.schema.json."""

from __future__ import annotations

from shared.domain.models import ScanReport, ScanResult


def render(results: list[ScanResult], *, executables: bool = False) -> str:
    """The JSON report; the executable inventory (often thousands of files) only when asked for."""
    if not executables:
        results = [r.model_copy(update={"executables": None}) for r in results]
    return ScanReport(results=results).model_dump_json(indent=2) + "\n"
