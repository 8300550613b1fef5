"""Crates compiled into a Rust binary, from the audit data cargo-auditable embeds.

``cargo auditable build`` adds an ELF section ``.dep-v0`` holding
zlib-compressed JSON::

    {"packages": [{"name": "...", "version": "...", "source": "crates.io",
                   "kind": "build", "dependencies": [1, 2], "root": true}, ...],
     "format": 1}

``source`` is "crates.io", "registry", "git", "local" or another string;
``kind`` is "runtime" (the default, omitted) or "build"; ``root`` marks the
crate the binary was built from.

Reported: every package, the root crate included (an advisory against the
program applies to the binary). A ``kind: "build"`` crate (build scripts,
procedural macros and what only they use) is reported with ``dev=True``: it
ran on the build machine and its code is not in the binary, so matching
leaves it out by default, while the inventory still shows it.

The section is inflated under a cap (:data:`MAX_INFLATED`): a small
compressed section that inflates to more is reported as a problem, not read.
"""

from __future__ import annotations

import json
import zlib

from shared.domain.models import Package
from shared.scanning.parsers.elf import ElfError, is_elf, parse_elf

SECTION = ".dep-v0"
MAX_INFLATED = 8 * 1024 * 1024


def parse_rust_binary(data: bytes, path: str) -> tuple[list[Package], list[str]]:
    """(packages, problems) of one file; both empty when it carries no audit data."""
    if not is_elf(data):
        return [], []
    try:
        elf = parse_elf(data)
    except ElfError:
        return [], []  # a broken ELF says nothing about being Rust
    sec = elf.section(SECTION)
    if sec is None:
        return [], []
    raw = elf.section_data(sec)
    if raw is None:
        return [], [f"{SECTION} section lies past the end of the file"]
    return parse_audit_data(raw, path)


def inflate(raw: bytes, cap: int = MAX_INFLATED) -> tuple[bytes | None, str | None]:
    """(inflated bytes, problem): zlib data inflated to at most ``cap`` bytes."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(raw, cap + 1)
    except zlib.error as exc:
        return None, f"{SECTION} is not zlib data ({exc})"
    if len(out) > cap or d.unconsumed_tail:
        return None, f"{SECTION} inflates to more than {cap} bytes; not read"
    if not d.eof:
        return None, f"{SECTION} zlib stream is truncated"
    return out, None


def parse_audit_data(raw: bytes, path: str) -> tuple[list[Package], list[str]]:
    """(packages, problems) of the compressed content of a ``.dep-v0`` section."""
    text, problem = inflate(raw)
    if text is None:
        return [], [problem or "unreadable"]
    try:
        doc = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [], [f"{SECTION} is not valid JSON ({exc})"]
    except RecursionError:
        return [], [f"{SECTION} JSON is nested too deeply"]
    if not isinstance(doc, dict) or not isinstance(doc.get("packages"), list):
        return [], [f"{SECTION} JSON has no 'packages' array"]
    out: list[Package] = []
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(doc["packages"]):
        if not isinstance(entry, dict):
            problems.append(f"{SECTION} package {i} is not an object")
            continue
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            problems.append(f"{SECTION} package {i} has no name or version")
            continue
        if (name, version) in seen:
            continue
        seen.add((name, version))
        out.append(
            Package(
                type="cargo",
                name=name,
                version=version,
                dev=entry.get("kind") == "build",
                purl="",
                found_in=path,
            )
        )
    return out, problems
