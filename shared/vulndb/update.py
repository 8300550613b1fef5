"""``hullwatch db update``: fetch OSV's per-ecosystem ``all.zip`` files with conditional requests.

The base URL is configurable (``--base-url`` / ``HULLWATCH_OSV_BASE_URL``); the
default is the public OSV bucket. Each zip is fetched with the ETag and
Last-Modified seen last time, so an unchanged ecosystem costs one 304. Every
download lands in a temporary file beside the database and is imported in one
atomic import (:mod:`shared.vulndb.importer`), or not at all.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import requests

from shared.vulndb import db
from shared.vulndb.errors import VulnDBError
from shared.vulndb.importer import ImportStats, import_paths

DEFAULT_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
#: What hullwatch inventories; used when the database holds nothing yet.
DEFAULT_ECOSYSTEMS = (
    "AlmaLinux", "Alpine", "Chainguard", "Debian", "Red Hat", "Rocky Linux", "SUSE", "openSUSE", "Ubuntu", "Wolfi",
    "Azure Linux", "PyPI", "npm", "Go", "Maven", "RubyGems", "Packagist", "crates.io", "NuGet",
)  # fmt: skip
MAX_ZIP_BYTES = 2 * 1024**3


@dataclass
class UpdateResult:
    fetched: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stats: ImportStats | None = None


def ecosystems_in_use(path: Path) -> list[str]:
    if not path.exists():
        return list(DEFAULT_ECOSYSTEMS)
    conn = db.open_readonly(path)
    try:
        rows = conn.execute("SELECT DISTINCT ecosystem FROM affected").fetchall()
    finally:
        conn.close()
    found = sorted({r[0].split(":", 1)[0] for r in rows})
    return found or list(DEFAULT_ECOSYSTEMS)


def _validators(path: Path) -> dict[str, tuple[str | None, str | None]]:
    if not path.exists():
        return {}
    conn = db.open_readonly(path)
    try:
        return {n: (e, lm) for n, e, lm in conn.execute("SELECT name, etag, last_modified FROM sources")}
    finally:
        conn.close()


def update(
    path: Path,
    ecosystems: Sequence[str] | None = None,
    base_url: str | None = None,
    session: requests.Session | None = None,
    timeout: float = 60.0,
) -> UpdateResult:
    base = (base_url or os.environ.get("HULLWATCH_OSV_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    wanted = list(ecosystems) if ecosystems else ecosystems_in_use(path)
    known = _validators(path)
    http = session or requests.Session()
    result = UpdateResult()
    downloads: list[tuple[str, Path, str | None, str | None]] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        for eco in wanted:
            url = f"{base}/{quote(eco)}/all.zip"
            headers = {}
            etag, last_mod = known.get(eco, (None, None))
            if etag:
                headers["If-None-Match"] = etag
            if last_mod:
                headers["If-Modified-Since"] = last_mod
            try:
                resp = http.get(url, headers=headers, stream=True, timeout=timeout)
            except requests.RequestException as exc:
                raise VulnDBError(url, f"cannot download: {type(exc).__name__}") from None
            with resp:
                if resp.status_code == 304:
                    result.unchanged.append(eco)
                    continue
                if resp.status_code != 200:
                    raise VulnDBError(url, f"HTTP {resp.status_code} {resp.reason}")
                fd, name = tempfile.mkstemp(prefix=".osv-", suffix=".zip", dir=path.parent)
                total = 0
                with os.fdopen(fd, "wb") as out:
                    for chunk in resp.iter_content(1 << 20):
                        total += len(chunk)
                        if total > MAX_ZIP_BYTES:
                            raise VulnDBError(url, f"larger than {MAX_ZIP_BYTES} bytes; refused")
                        out.write(chunk)
                downloads.append((eco, Path(name), resp.headers.get("ETag"), resp.headers.get("Last-Modified")))
        if downloads:
            now = datetime.now(UTC).isoformat()
            sources = [(eco, etag, lm, now) for eco, _, etag, lm in downloads]
            result.stats = import_paths(path, [p for _, p, _, _ in downloads], sources=sources)
            result.fetched = [eco for eco, *_ in downloads]
    finally:
        for _, p, _, _ in downloads:
            p.unlink(missing_ok=True)
    return result
