"""``--format json``: the ScanReport model, schema in shared/schemas/scan-report.schema.json."""

from __future__ import annotations

from shared.domain.models import ScanReport, ScanResult


def render(results: list[ScanResult]) -> str:
    return ScanReport(results=results).model_dump_json(indent=2) + "\n"
