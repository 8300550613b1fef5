"""Generate the JSON Schema of ``hullwatch scan --format json`` from the pydantic models.

``python -m shared.domain.schema`` rewrites ``shared/schemas/scan-report.schema.json``;
``--check`` exits 1 when the committed file differs (a test runs that check).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shared.domain.models import SCHEMA_VERSION, ScanReport

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "scan-report.schema.json"


def render() -> str:
    schema = ScanReport.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://hullwatch.dev/schemas/scan-report/v{SCHEMA_VERSION}.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH.name} is out of date: run python -m shared.domain.schema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
