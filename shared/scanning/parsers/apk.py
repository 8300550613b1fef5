"""Alpine's package database ``lib/apk/db/installed`` (one-letter keys, blank-line stanzas)."""

from __future__ import annotations

from shared.domain.models import Package


def parse_installed(data: bytes, path: str) -> list[Package]:
    out: list[Package] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        name, version = fields.get("P"), fields.get("V")
        if name and version:
            lic = fields.get("L", "")
            out.append(
                Package(
                    type="apk",
                    name=name,
                    version=version,
                    arch=fields.get("A") or None,
                    source_name=fields.get("o") or name,
                    source_version=version,
                    licenses=[lic] if lic else [],
                    purl="",
                    found_in=path,
                )
            )

    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if fields:
                flush()
            fields = {}
            continue
        if len(line) >= 2 and line[1] == ":":
            key = line[0]
            # Only the first occurrence of package-level keys counts; file
            # entries (F:, R:, Z: ...) repeat and are not needed here.
            fields.setdefault(key, line[2:])
    if fields:
        flush()
    return out
