"""Synthetic inventories and OSV records for the scan service's tests: no image is pulled.

``inventory(n, ...)`` is image ``n`` (digest ``sha256:<n as 64 hex digits>``,
pushed as ``registry.example/team/app<n>:1``) with a few Alpine packages;
``advisory(...)`` an OSV record for one Alpine package, for the real importer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.domain.models import ImageInfo, OSInfo, Package, ScanResult, ToolInfo
from shared.stores.models import AlertRecord

REGISTRY = "registry.example"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def advisory(aid: str, name: str, fixed: str, modified: str, score: str | None = CRITICAL) -> dict[str, object]:
    rec: dict[str, object] = {
        "id": aid,
        "modified": modified,
        "summary": f"{name}: test advisory",
        "details": "Synthetic record for the service tests (no such vulnerability exists).",
        "affected": [
            {
                "package": {"ecosystem": "Alpine:v3.19", "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }
    if score:
        rec["severity"] = [{"type": "CVSS_V3", "score": score}]
    return rec


def apk(name: str, version: str) -> Package:
    return Package(
        type="apk",
        name=name,
        version=version,
        source_name=name,
        ecosystem="Alpine:v3.19",
        purl=f"pkg:apk/alpine/{name}@{version}?distro=alpine-3.19.1",
        found_in="lib/apk/db/installed",
    )


def npm(name: str, version: str) -> Package:
    return Package(
        type="npm",
        name=name,
        version=version,
        ecosystem="npm",
        purl=f"pkg:npm/{name}@{version}",
        found_in="app/package-lock.json",
    )


def inventory(n: int, with_libfoo: bool, scanned_at: datetime = NOW, decoys: bool = False) -> ScanResult:
    """Image ``n``: musl, busybox and one of 20 app packages; libfoo if asked; decoys only look like libfoo."""
    digest = f"sha256:{n:064x}"
    pkgs = [apk("musl", "1.2.4-r2"), apk("busybox", "1.36.1-r15"), apk(f"app{n % 20}", "1.0-r0")]
    if with_libfoo:
        pkgs.append(apk("libfoo", "2.0-r0"))
    if decoys:  # the same name in another ecosystem, and a longer name in this one
        pkgs += [npm("libfoo", "2.0.0"), apk("libfoo-extra", "2.0-r0")]
    return ScanResult(
        tool=ToolInfo(version="0.1.0"),
        scanned_at=scanned_at,
        image=ImageInfo(
            reference=f"{REGISTRY}/team/app{n}:1",
            source="registry",
            registry=REGISTRY,
            repository=f"team/app{n}",
            tag="1",
            digest=digest,
        ),
        os=OSInfo(family="alpine", version_id="3.19.1"),
        packages=pkgs,
    )


class Recorder:
    """An alert publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.alerts: list[AlertRecord] = []

    def publish(self, alert: AlertRecord) -> None:
        self.alerts.append(alert)


class NoRegistry:
    """Credentials for no registry: a test that must not contact one fails if asked."""

    def credentials(self, registry: str, repository: str) -> None:
        raise AssertionError("this test must not ask for registry credentials")


#: Package type of each ecosystem the matcher tests use (others are taken for Debian's).
_TYPES = {"PyPI": "python", "npm": "npm", "Go": "golang"}


def package(name: str, version: str, ecosystem: str, **extra: Any) -> Package:
    """A package of ``ecosystem`` as an inventory holds it, found in "manifest" unless ``found_in`` says where."""
    ptype = _TYPES.get(ecosystem, "dpkg")
    return Package(
        type=ptype,
        name=name,
        version=version,
        ecosystem=ecosystem,
        purl=f"pkg:{ptype}/{name}@{version}",
        found_in=extra.pop("found_in", "manifest"),
        **extra,
    )


def osv_database(folder: Path, records: list[dict[str, Any]]) -> Path:
    """A vulnerability database under ``folder`` made by the real importer from these OSV records."""
    from shared.vulndb.importer import import_paths

    f = folder / "recs.json"
    f.write_text(json.dumps(records))
    p = folder / "v.sqlite"
    import_paths(p, [f])
    return p
