"""dpkg's status database: ``var/lib/dpkg/status`` and distroless ``status.d/*`` files."""

from __future__ import annotations

import re

from shared.domain.models import Package
from shared.scanning.parsers.deb822 import deb822_stanzas

# Status states whose files are on disk. config-files and not-installed leave no
# binaries behind, so they carry no vulnerable code.
_ON_DISK = frozenset(
    {"installed", "unpacked", "half-installed", "half-configured", "triggers-awaited", "triggers-pending"}
)
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?$")


def _epoch(version: str) -> int | None:
    head, sep, _ = version.partition(":")
    if sep and head.isdigit():
        return int(head)
    return None


def parse_status(data: bytes, path: str, *, require_status: bool = True) -> list[Package]:
    """Installed packages of a dpkg status file.

    Distroless images write one stanza file per package under ``status.d``;
    some of those carry no ``Status`` field, so ``require_status`` is off there.
    """
    out: list[Package] = []
    for st in deb822_stanzas(data.decode("utf-8", "replace")):
        name, version = st.get("Package"), st.get("Version")
        if not name or not version:
            continue
        status = st.get("Status")
        if status is not None:
            words = status.split()
            if len(words) != 3 or words[2] not in _ON_DISK:
                continue
        elif require_status:
            continue
        src_name, src_version = name, version
        src = st.get("Source")
        if src:
            m = _SOURCE.match(src.strip())
            if m:
                src_name = m.group("name")
                src_version = m.group("version") or version
        out.append(
            Package(
                type="dpkg",
                name=name,
                version=version,
                epoch=_epoch(version),
                arch=st.get("Architecture") or None,
                source_name=src_name,
                source_version=src_version,
                purl="",
                found_in=path,
            )
        )
    return out
