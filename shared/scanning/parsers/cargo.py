"""Crates of a ``Cargo.lock`` file (lock-file versions 1 to 4).

All versions keep one ``[[package]]`` table per crate with ``name``,
``version`` and, for crates from a registry or git, ``source``; version 1
also kept checksums in a ``[metadata]`` table (ignored here) and the oldest
files a ``[root]`` table for the root crate (read like a package).

Every package is reported, the workspace members and path dependencies (the
ones without ``source``) included: a workspace member at a version *is* that
crate at that version, and an advisory against it applies to the source tree
being scanned. A lock file does not say which crates only serve tests or
builds, so nothing is marked ``dev`` here.
"""

from __future__ import annotations

import tomllib
from typing import Any

from shared.domain.models import Package


def parse_cargo_lock(data: bytes, path: str) -> tuple[list[Package], list[str]]:
    """(packages, problems) of a Cargo.lock file."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return [], ["not UTF-8 text"]
    except tomllib.TOMLDecodeError as exc:
        return [], [f"not valid TOML ({exc})"]
    except RecursionError:
        return [], ["TOML nested too deeply"]
    problems: list[str] = []
    entries: list[Any] = []
    root = doc.get("root")
    if isinstance(root, dict):
        entries.append(root)
    pkgs = doc.get("package", [])
    if isinstance(pkgs, list):
        entries.extend(pkgs)
    else:
        problems.append("'package' is not an array of tables")
    out: list[Package] = []
    seen: set[tuple[str, str, str]] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"package entry {i} is not a table")
            continue
        name, version, source = entry.get("name"), entry.get("version"), entry.get("source", "")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            problems.append(f"package entry {i} has no name or version")
            continue
        key = (name, version, source if isinstance(source, str) else "")
        if key in seen:
            continue
        seen.add(key)
        out.append(Package(type="cargo", name=name, version=version, purl="", found_in=path))
    return out, problems
