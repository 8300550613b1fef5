#!/usr/bin/env python3
"""Benchmark: the vulnerability database, from import to findings.

What it measures, in one run:

1. Import of the real PyPA advisory corpus (``../shared/corpora/osv-pypa/vulns``,
   one YAML file per advisory) into a fresh database: records/s, median of
   ``--reps`` imports, and the database's size on disk. Each import is
   alternated with one parsed in the importing process (``jobs=1``), reported
   beside it: the importer uses worker processes for a directory this size
   only when a core is idle, so the two are what idle and busy machines get.
2. Import of a synthetic corpus shaped like the full OSV export (default
   500,000 records) into a fresh database: records/s and size on disk. The
   corpus is generated once (seeded) as one ``all.zip`` of JSON records per
   ecosystem, like OSV publishes them, under ``benchmarks/.work/`` (git-ignored)
   and reused. EPSS scores for its CVEs and the real CISA KEV catalogue are
   then imported on top (timed apart, for context), as ``db update`` does.
3. Open to first findings: a fresh process opens the large database
   (``db.open_readonly`` + ``Matcher``) and matches one image's inventory: this
   machine's dpkg status (parsed with the scanner's own parser, Debian 12
   source packages) plus PyPI and npm packages named in the corpus. Timed from
   before ``open_readonly`` to the findings in hand; imports and building the
   ``Package`` objects are done before the clock starts. Median of
   ``--first-runs`` processes, page cache warm (the file was just written or
   read); the same again with the file evicted from the page cache first
   (``posix_fadvise DONTNEED``) for context.
4. Warm matching: a 10,000-package inventory over every ecosystem (names drawn
   so that about 15% have advisories), split by distribution as four images
   (Debian 12, Ubuntu 22.04, Alpine 3.19, RHEL 9) and matched again and again
   with one ``Matcher`` after one warm-up pass: package instances per second on
   one core, median of ``--match-reps`` passes. A matcher remembers what each
   package version it evaluated came to, so these passes measure versions it
   has seen (as in rescans of images sharing base layers); the same passes are
   then timed after ``Matcher.forget_versions()`` (versions it has not seen,
   the database's rows still loaded and compiled) and reported beside them.

Targets: import >= 5,000 records/s (both corpora); first findings within
200 ms of opening; warm matching >= 200,000 package instances/s per core.

Usage:
    python benchmarks/vulndb.py                    # everything, default sizes
    python benchmarks/vulndb.py --write-results    # also update benchmarks/RESULTS.md
    python benchmarks/vulndb.py --records 50000    # a smaller synthetic corpus
    python benchmarks/vulndb.py --reuse-db         # skip the large import if its database exists
    python benchmarks/vulndb.py --only matching    # first findings and warm matching only (database exists)

Generating the 500,000-record corpus takes a few minutes the first time (two
processes); importing it takes minutes too, so it is imported ``--large-reps``
times (default 1).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Bump when the corpus generator changes, so cached corpora are rebuilt.
GEN_VERSION = 3
DEFAULT_RECORDS = 500_000
DEFAULT_WORKDIR = REPO / "benchmarks" / ".work"
RESULTS = REPO / "benchmarks" / "RESULTS.md"

from benchmarks._report import code_version, command_line, write_section  # noqa: E402
from benchmarks._report import machine as _machine  # noqa: E402


def machine() -> str:
    return _machine(memory=False, sqlite=True)


PYPA = REPO.parent / "shared" / "corpora" / "osv-pypa" / "vulns"
KEV = REPO.parent / "shared" / "corpora" / "cisa-kev" / "known_exploited_vulnerabilities.json"
HOST_STATUS = Path("/var/lib/dpkg/status")

IMPORT_TARGET = 5_000.0  # records/s
FIRST_TARGET_MS = 200.0
MATCH_TARGET = 200_000.0  # package instances/s per core
INVENTORY_SIZE = 10_000
VULNERABLE_SHARE = 0.15

# ---------------------------------------------------------------------------
# the synthetic corpus: what each ecosystem's all.zip holds

#: (zip folder as OSV names it, share of all records). Shares follow the real
#: export: most npm records are malicious-package reports (MAL-...), and the
#: distributions publish one record per CVE and source package.
ECOSYSTEM_SHARES: tuple[tuple[str, float], ...] = (
    ("npm", 0.36),
    ("PyPI", 0.05),
    ("Go", 0.01),
    ("Maven", 0.02),
    ("crates.io", 0.01),
    ("RubyGems", 0.005),
    ("NuGet", 0.005),
    ("Packagist", 0.01),
    ("Debian", 0.17),
    ("Ubuntu", 0.17),
    ("Alpine", 0.10),
    ("Red Hat", 0.09),
)

#: Distinct package names with advisories (excluding malicious-package reports).
NAME_POOL = {
    "npm": 6000,
    "PyPI": 3000,
    "Go": 1500,
    "Maven": 3000,
    "crates.io": 800,
    "RubyGems": 600,
    "NuGet": 500,
    "Packagist": 1000,
    "Debian": 4000,
    "Ubuntu": 4000,
    "Alpine": 2000,
    "Red Hat": 2500,
}

CVE_POOL = 240_000  # distinct CVE ids the records alias (and the EPSS file scores)
GHSA_CHARS = "23456789cfghjmpqrvwx"
SYLLABLES = (
    "ba", "co", "de", "fi", "gu", "ha", "ji", "ko", "lu", "ma", "ne", "po", "qu", "ri", "sa", "ti", "vo", "xe",
    "zo", "an", "el", "is", "or", "um",
)  # fmt: skip
NPM_REAL = (
    "lodash", "express", "axios", "minimist", "moment", "request", "node-fetch", "jsonwebtoken", "ws", "tar",
    "semver", "qs", "marked", "handlebars", "underscore", "jquery", "debug", "yargs-parser", "glob-parent",
    "follow-redirects", "shell-quote", "path-parse", "ansi-regex", "json5", "loader-utils", "undici", "xml2js",
    "tough-cookie", "word-wrap", "postcss", "webpack", "next", "vm2", "sanitize-html", "dompurify", "ejs",
    "passport", "mongoose", "sequelize", "socket.io-parser", "engine.io", "body-parser", "send", "serve-static",
    "path-to-regexp", "cookie", "braces", "micromatch", "cross-spawn", "nanoid",
)  # fmt: skip
CVSS3_METRICS = (
    ("AV", "NALP"), ("AC", "LH"), ("PR", "NLH"), ("UI", "NR"), ("S", "UC"), ("C", "HLN"), ("I", "HLN"), ("A", "HLN"),
)  # fmt: skip
REF_TYPES = ("ADVISORY", "WEB", "REPORT", "FIX", "PACKAGE", "ARTICLE")
WORDS = (
    "a", "vulnerability", "was", "found", "in", "the", "when", "an", "attacker", "can", "remote", "crafted",
    "request", "may", "allow", "to", "cause", "denial", "of", "service", "via", "buffer", "overflow",
    "out-of-bounds", "read", "write", "use-after-free", "in", "function", "parser", "handling", "of", "input",
    "leading", "to", "arbitrary", "code", "execution", "memory", "corruption", "information", "disclosure",
    "through", "improper", "validation", "this", "issue", "affects", "versions", "before", "and", "prior", "fixed",
    "in", "upstream", "release", "users", "are", "advised", "upgrade", "the", "library", "header", "certificate",
    "length", "integer", "signed", "unsigned", "null", "pointer", "dereference", "heap", "stack", "cross-site",
    "scripting", "injection", "path", "traversal", "regular", "expression", "prototype", "pollution",
    "authentication", "bypass",
)  # fmt: skip


def _ts(rng: random.Random, start_year: int = 2015) -> str:
    base = datetime(start_year, 1, 1, tzinfo=UTC)
    span = (datetime(2025, 6, 1, tzinfo=UTC) - base).total_seconds()
    return (base + timedelta(seconds=rng.random() * span)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choices(WORDS, k=n_words))


def _ghsa(rng: random.Random) -> str:
    return "GHSA-" + "-".join("".join(rng.choices(GHSA_CHARS, k=4)) for _ in range(3))


def _cve(rng: random.Random) -> str:
    n = rng.randrange(CVE_POOL)
    return f"CVE-{2015 + n % 10}-{10000 + n // 10}"


def _cvss3(rng: random.Random) -> str:
    return "CVSS:3.1/" + "/".join(f"{m}:{rng.choice(vals)}" for m, vals in CVSS3_METRICS)


def _syll_name(rng: random.Random, lo: int = 2, hi: int = 4) -> str:
    return "".join(rng.choices(SYLLABLES, k=rng.randint(lo, hi)))


def _zipf_weights(n: int, s: float, offset: int) -> list[float]:
    """Cumulative Zipf-Mandelbrot weights: rank i gets 1 / (i + 1 + offset) ** s (a flatter head for larger offsets)."""
    return list(itertools.accumulate(1.0 / (i + 1 + offset) ** s for i in range(n)))


# Versions: a (major, minor, patch) triple formatted the way each scheme writes it.

Triple = tuple[int, int, int]


def _triple(rng: random.Random) -> Triple:
    return (rng.choice((0, 1, 1, 2, 2, 3, 4, 5, 6, 8, 10, 12)), rng.randint(0, 20), rng.randint(0, 30))


def _above(rng: random.Random, t: Triple) -> Triple:
    a, b, c = t
    r = rng.random()
    if r < 0.6:
        return (a, b, c + rng.randint(1, 5))
    if r < 0.9:
        return (a, b + rng.randint(1, 3), rng.randint(0, 5))
    return (a + 1, rng.randint(0, 3), 0)


def fmt_version(scheme: str, t: Triple, rng: random.Random) -> str:
    a, b, c = t
    if scheme == "pep440":
        return f"{a}.{b}.{c}" + rng.choice(("", "", "", "", "", "rc1", ".post1"))
    if scheme in ("npm", "cargo", "go"):
        return f"{a}.{b}.{c}" + rng.choice(("", "", "", "", "", "", "-beta.1"))
    if scheme == "maven":
        return f"{a}.{b}.{c}" + rng.choice(("", "", "", "", ".Final", "-M1"))
    if scheme == "rubygems":
        return f"{a}.{b}.{c}" + rng.choice(("", "", "", ".1", ".rc1"))
    if scheme in ("nuget", "packagist"):
        return f"{a}.{b}.{c}"
    if scheme == "debian":
        epoch = f"{rng.randint(1, 2)}:" if rng.random() < 0.1 else ""
        return f"{epoch}{a}.{b}.{c}-{rng.randint(1, 9)}" + rng.choice(("", "", "+deb11u1", "+deb12u2", "+b1"))
    if scheme == "ubuntu":
        return f"{a}.{b}.{c}-{rng.randint(0, 4)}ubuntu{rng.randint(0, 4)}.{rng.randint(1, 12)}"
    if scheme == "apk":
        return f"{a}.{b}.{c}-r{rng.randint(0, 9)}"
    if scheme == "rpm":
        epoch = f"{rng.randint(1, 2)}:" if rng.random() < 0.2 else ""
        return f"{epoch}{a}.{b}.{c}-{rng.randint(1, 60)}.el9_{rng.randint(0, 5)}"
    raise ValueError(scheme)


@dataclass(frozen=True)
class EcoSpec:
    folder: str
    ecosystems: tuple[str, ...]  # the OSV ecosystem strings records of this folder use
    scheme: str  # fmt_version scheme
    range_type: str  # ECOSYSTEM or SEMVER
    purl_type: str


SPECS = {
    "npm": EcoSpec("npm", ("npm",), "npm", "SEMVER", "npm"),
    "PyPI": EcoSpec("PyPI", ("PyPI",), "pep440", "ECOSYSTEM", "pypi"),
    "Go": EcoSpec("Go", ("Go",), "go", "SEMVER", "golang"),
    "Maven": EcoSpec("Maven", ("Maven",), "maven", "ECOSYSTEM", "maven"),
    "crates.io": EcoSpec("crates.io", ("crates.io",), "cargo", "SEMVER", "cargo"),
    "RubyGems": EcoSpec("RubyGems", ("RubyGems",), "rubygems", "ECOSYSTEM", "gem"),
    "NuGet": EcoSpec("NuGet", ("NuGet",), "nuget", "ECOSYSTEM", "nuget"),
    "Packagist": EcoSpec("Packagist", ("Packagist",), "packagist", "ECOSYSTEM", "composer"),
    "Debian": EcoSpec("Debian", ("Debian:11", "Debian:12", "Debian:13"), "debian", "ECOSYSTEM", "deb"),
    "Ubuntu": EcoSpec(
        "Ubuntu", ("Ubuntu:20.04:LTS", "Ubuntu:22.04:LTS", "Ubuntu:24.04:LTS"), "ubuntu", "ECOSYSTEM", "deb"
    ),
    "Alpine": EcoSpec("Alpine", ("Alpine:v3.18", "Alpine:v3.19", "Alpine:v3.20"), "apk", "ECOSYSTEM", "apk"),
    "Red Hat": EcoSpec(
        "Red Hat",
        (
            "Red Hat:enterprise_linux:9::appstream",
            "Red Hat:enterprise_linux:9::baseos",
            "Red Hat:enterprise_linux:8::appstream",
        ),
        "rpm",
        "ECOSYSTEM",
        "rpm",
    ),
}  # fmt: skip


def package_names(folder: str, seed: int, host_sources: Sequence[str]) -> list[str]:
    """The names a folder's advisories are about, most-advised first (drawn with Zipf weights).

    Debian's pool holds this machine's source packages (at ranks past the first
    few, which stand for the kernel and browsers: thousands of records each and
    never in a container); the PyPI pool starts with the PyPA corpus's package
    names, npm's with some well-known ones.
    """
    rng = random.Random(f"names-{folder}-{seed}")
    n = NAME_POOL[folder]
    real: list[str] = []
    if folder == "Debian":
        real = list(host_sources)
    elif folder == "PyPI" and PYPA.is_dir():
        real = sorted(p.name for p in PYPA.iterdir() if p.is_dir())
    elif folder == "npm":
        real = list(NPM_REAL)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) + len(real) < n:
        if folder == "Go":
            name = f"github.com/{_syll_name(rng)}/{_syll_name(rng)}" + rng.choice(("", "", "/v2", "/pkg/util"))
        elif folder == "Maven":
            name = (
                f"org.{_syll_name(rng, 1, 2)}.{_syll_name(rng)}:{_syll_name(rng)}-{rng.choice(('core', 'api', 'web'))}"
            )
        elif folder == "npm" and rng.random() < 0.3:
            name = f"@{_syll_name(rng, 1, 2)}/{_syll_name(rng)}"
        elif folder in ("Debian", "Ubuntu", "Red Hat", "Alpine"):
            name = _syll_name(rng) + rng.choice(("", "", "", "2", "-utils", "lib", "3"))
        else:
            name = _syll_name(rng) + rng.choice(("", "", "-" + _syll_name(rng, 1, 2), "_x", "js", "2"))
        if name not in seen and name not in real:
            seen.add(name)
            out.append(name)
    head, tail = out[:5], out[5:]
    tail += real
    rng.shuffle(tail)
    return head + tail


@dataclass
class GenContext:
    seed: int
    host: dict[str, str]  # Debian source package -> installed source version (this machine)


def _references(rng: random.Random, rid: str, cves: list[str]) -> list[dict[str, str]]:
    refs = [{"type": "ADVISORY", "url": f"https://nvd.nist.gov/vuln/detail/{c}"} for c in cves[:1]]
    for _ in range(rng.randint(1, 8)):
        refs.append(
            {
                "type": rng.choice(REF_TYPES),
                "url": f"https://{_syll_name(rng, 1, 2)}.example.org/{_syll_name(rng)}/{rng.randrange(10**6)}",
            }
        )
    refs.append({"type": "WEB", "url": f"https://osv.dev/vulnerability/{rid}"})
    return refs


def _range(rng: random.Random, spec: EcoSpec, ranges: int = 1) -> tuple[list[dict[str, Any]], list[Triple]]:
    """ECOSYSTEM/SEMVER ranges: introduced/fixed pairs (some open, some last_affected); their versions."""
    events: list[dict[str, str]] = []
    bounds: list[Triple] = []
    lo = _triple(rng)
    for i in range(ranges):
        intro = "0" if i == 0 and rng.random() < 0.4 else fmt_version(spec.scheme, lo, rng)
        hi = _above(rng, lo)
        events.append({"introduced": intro})
        r = rng.random()
        if r < 0.85:
            events.append({"fixed": fmt_version(spec.scheme, hi, rng)})
        elif r < 0.93:
            events.append({"last_affected": fmt_version(spec.scheme, hi, rng)})
        bounds += [lo, hi]
        lo = _above(rng, hi)
    return [{"type": spec.range_type, "events": events}], bounds


def _versions_list(rng: random.Random, spec: EcoSpec, bounds: list[Triple]) -> list[str]:
    a, b, c = bounds[0]
    out = []
    for _ in range(rng.randint(5, 50)):
        c += 1
        if rng.random() < 0.2:
            b, c = b + 1, 0
        out.append(fmt_version(spec.scheme, (a, b, c), rng))
    return out


def _language_record(rng: random.Random, spec: EcoSpec, i: int, names: list[str], cum: list[float]) -> dict[str, Any]:
    eco = spec.ecosystems[0]
    malicious = (eco == "npm" and rng.random() < 0.78) or (eco == "PyPI" and rng.random() < 0.5)
    published = _ts(rng)
    if malicious:
        rid = f"MAL-{2022 + i % 4}-{i + 1}"
        name = f"{_syll_name(rng, 2, 5)}-{rng.randrange(10**5)}"
        versions = [f"{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}" for _ in range(rng.randint(1, 6))]
        return {
            "modified": published,
            "published": published,
            "schema_version": "1.5.0",
            "id": rid,
            "summary": f"Malicious code in {name} ({eco})",
            "details": "\n---\n_-= Per source details. Do not edit below this line.=-_\n\n## Source: ghsa-malware\n"
            + _text(rng, rng.randint(20, 60)),
            "affected": [
                {
                    "package": {"ecosystem": eco, "name": name},
                    "ranges": [{"type": spec.range_type, "events": [{"introduced": "0"}]}],
                    "versions": versions,
                    "database_specific": {"source": f"https://github.com/ossf/malicious-packages/{rid}.json"},
                }
            ],
            "references": [{"type": "WEB", "url": f"https://socket.dev/{eco}/package/{name}"}],
            "database_specific": {"malicious-packages-origins": [{"source": "ghsa-malware", "id": _ghsa(rng)}]},
        }
    prefix = {"PyPI": "PYSEC", "Go": "GO", "crates.io": "RUSTSEC"}.get(eco)
    rid = f"{prefix}-{2017 + i % 8}-{i + 1}" if prefix and rng.random() < 0.6 else _ghsa(rng)
    cves = [_cve(rng)] if rng.random() < 0.85 else []
    aliases = cves + ([_ghsa(rng)] if not rid.startswith("GHSA") and rng.random() < 0.7 else [])
    affected = []
    for _ in range(rng.choices((1, 2, 3), weights=(80, 15, 5))[0]):
        name = rng.choices(names, cum_weights=cum)[0]
        ranges, bounds = _range(rng, spec, rng.choices((1, 2), weights=(85, 15))[0])
        aff: dict[str, Any] = {
            "package": {"ecosystem": eco, "name": name, "purl": f"pkg:{spec.purl_type}/{name}"},
            "ranges": ranges,
            "database_specific": {"source": f"https://github.com/github/advisory-database/{rid}.json"},
        }
        if rng.random() < 0.3:
            aff["versions"] = _versions_list(rng, spec, bounds)
        affected.append(aff)
    rec: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": rid,
        "modified": max(published, _ts(rng, 2023)),
        "published": published,
        "aliases": aliases,
        "summary": _text(rng, rng.randint(5, 14)).capitalize(),
        "details": _text(rng, rng.randint(30, 400)),
        "severity": [{"type": "CVSS_V3", "score": _cvss3(rng)}] if rng.random() < 0.8 else [],
        "affected": affected,
        "references": _references(rng, rid, cves),
        "database_specific": {
            "cwe_ids": [f"CWE-{rng.randint(20, 1000)}"],
            "github_reviewed": True,
            "severity": rng.choice(("LOW", "MODERATE", "HIGH", "CRITICAL")),
            "nvd_published_at": published,
        },
    }
    return rec


def _os_fixed(rng: random.Random, spec: EcoSpec, eco: str, name: str, host: dict[str, str]) -> dict[str, Any]:
    """One distribution affected entry: introduced 0, fixed (or not yet), sometimes an explicit versions list."""
    host_version = host.get(name) if eco == "Debian:12" else None
    if host_version is not None:
        # this machine's packages: mostly fixed at or below what is installed, some fixed later, some unfixed
        r = rng.random()
        fixed: str | None = host_version + "~pre1" if r < 0.93 else host_version + "+deb12u9" if r < 0.95 else None
        bounds = [(1, 0, 0)]
    else:
        lo = _triple(rng)
        hi = _above(rng, lo)
        fixed = fmt_version(spec.scheme, hi, rng) if rng.random() < 0.82 else None
        bounds = [lo]
    events: list[dict[str, str]] = [{"introduced": "0"}] + ([{"fixed": fixed}] if fixed else [])
    aff: dict[str, Any] = {
        "package": {
            "ecosystem": eco,
            "name": name,
            "purl": f"pkg:{spec.purl_type}/{spec.folder.lower().replace(' ', '')}/{name}",
        },
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
    }
    if rng.random() < 0.25:
        aff["versions"] = _versions_list(rng, spec, bounds)
    if spec.folder == "Ubuntu":
        version = fixed or fmt_version("ubuntu", bounds[0], rng)
        bins = {name: version} | {f"lib{name}{k}": version for k in range(rng.randint(0, 6))}
        aff["ecosystem_specific"] = {
            "binaries": [bins],
            "availability": "No subscription required",
            "ubuntu_priority": rng.choice(("low", "medium", "high", "negligible")),
        }
    elif spec.folder == "Debian":
        aff["ecosystem_specific"] = {"urgency": rng.choice(("not yet assigned", "low", "medium", "unimportant"))}
    return aff


def _os_record(
    rng: random.Random, spec: EcoSpec, i: int, names: list[str], cum: list[float], host: dict[str, str]
) -> dict[str, Any]:
    cve = _cve(rng)
    folder = spec.folder
    rid = {
        "Debian": f"DEBIAN-{cve}" if rng.random() < 0.85 else f"DSA-{1000 + i}-1",
        "Ubuntu": f"UBUNTU-{cve}",
        "Alpine": f"ALPINE-{cve}",
        "Red Hat": f"RHSA-{2019 + i % 6}:{i + 1}",
    }[folder]
    name = rng.choices(names, cum_weights=cum)[0]
    n_aff = rng.choices((1, 2, 3), weights=(35, 45, 20))[0]
    ecos = rng.sample(spec.ecosystems, n_aff)
    if folder == "Debian" and "Debian:12" not in ecos and rng.random() < 0.6:
        ecos[0] = "Debian:12"
    if folder == "Red Hat":
        # an RHSA fixes several binary packages of one source
        affected = [_os_fixed(rng, spec, ecos[0], n, host) for n in (name, f"{name}-libs", f"{name}-devel")]
    else:
        affected = [_os_fixed(rng, spec, e, name, host) for e in ecos]
    published = _ts(rng)
    rec: dict[str, Any] = {
        "schema_version": "1.6.3",
        "id": rid,
        "modified": max(published, _ts(rng, 2023)),
        "published": published,
        "upstream": [cve] if folder in ("Debian", "Ubuntu") else [],
        "aliases": [cve] if folder in ("Alpine", "Red Hat") else [],
        "related": [cve] if folder == "Debian" and rid.startswith("DSA") else [],
        "summary": f"{name} - security update" if folder in ("Debian", "Red Hat") else "",
        "details": _text(rng, rng.randint(20, 160)),
        "affected": affected,
        "references": _references(rng, rid, [cve]),
    }
    if folder == "Ubuntu":
        rec["severity"] = [{"type": "Ubuntu", "score": rng.choice(("low", "medium", "high", "negligible"))}]
        if rng.random() < 0.7:
            rec["severity"].append({"type": "CVSS_V3", "score": _cvss3(rng)})
    elif folder == "Red Hat":
        rec["severity"] = [{"type": "CVSS_V3", "score": _cvss3(rng)}]
        rec["database_specific"] = {"severity": rng.choice(("Low", "Moderate", "Important", "Critical"))}
    return rec


def host_sources(workdir: Path) -> dict[str, str]:
    """This machine's Debian source packages and installed source versions, as first snapshotted."""
    snap = workdir / "host-snapshot" / "status"
    if not snap.is_file():
        if not HOST_STATUS.is_file():
            return {}
        snap.parent.mkdir(parents=True, exist_ok=True)
        snap.write_bytes(HOST_STATUS.read_bytes())
    return {p.source_name or p.name: p.source_version or p.version for p in host_packages(workdir)}


def host_packages(workdir: Path) -> list[Any]:
    from shared.scanning.parsers.dpkg import parse_status

    snap = workdir / "host-snapshot" / "status"
    return parse_status(snap.read_bytes(), "var/lib/dpkg/status") if snap.is_file() else []


def folder_counts(total: int) -> dict[str, int]:
    counts = {f: int(total * s) for f, s in ECOSYSTEM_SHARES}
    counts["npm"] += total - sum(counts.values())
    return counts


def generate_folder(folder: str, count: int, seed: int, host: dict[str, str], out: Path) -> tuple[str, int, int]:
    """Write ``out`` (an all.zip of ``count`` JSON records); (folder, records, uncompressed bytes)."""
    spec = SPECS[folder]
    rng = random.Random(f"corpus-{folder}-{seed}")
    names = package_names(folder, seed, sorted(host))
    # Distributions: a steep head (the kernel, browsers: thousands of CVEs each); language registries: the most
    # advised packages have a few hundred advisories, not thousands.
    os_like = folder in ("Debian", "Ubuntu", "Alpine", "Red Hat")
    cum = _zipf_weights(len(names), 0.9 if os_like else 1.0, 1 if os_like else 30)
    tmp = out.with_suffix(".tmp")
    raw = 0
    ids: set[str] = set()
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for i in range(count):
            if spec.folder in ("Debian", "Ubuntu", "Alpine", "Red Hat"):
                rec = _os_record(rng, spec, i, names, cum, host)
            else:
                rec = _language_record(rng, spec, i, names, cum)
            if rec["id"] in ids:  # a CVE drawn twice for one distribution: one record per CVE
                rec["id"] = f"{rec['id']}-{i}"
            ids.add(rec["id"])
            data = json.dumps(rec).encode()  # C encoder; OSV indents, which only adds whitespace
            raw += len(data)
            zf.writestr(f"{rec['id'].replace(':', '-')}.json", data)
    tmp.replace(out)
    return folder, count, raw


def epss_csv(path: Path, seed: int) -> int:
    rng = random.Random(f"epss-{seed}")
    buf = io.StringIO()
    buf.write("#model_version:v2025.03.14,score_date:2025-06-01T00:00:00+0000\ncve,epss,percentile\n")
    n = 0
    for k in range(CVE_POOL):
        cve = f"CVE-{2015 + k % 10}-{10000 + k // 10}"
        score = min(1.0, rng.expovariate(40))
        buf.write(f"{cve},{score:.5f},{min(1.0, score * 8):.5f}\n")
        n += 1
    path.write_bytes(gzip.compress(buf.getvalue().encode(), 6))
    return n


@dataclass
class Corpus:
    root: Path
    zips: list[Path]
    epss: Path
    records: int
    raw_bytes: int
    zip_bytes: int
    seconds: float  # generation time when it was built


def ensure_corpus(workdir: Path, total: int, seed: int, jobs: int, rebuild: bool) -> Corpus:
    host = host_sources(workdir)
    host_key = hashlib.sha256(json.dumps(sorted(host.items())).encode()).hexdigest()[:12]
    root = workdir / f"osv-synthetic-{total}-seed{seed}-v{GEN_VERSION}"
    meta_path = root / "meta.json"
    if meta_path.is_file() and not rebuild:
        meta = json.loads(meta_path.read_text())
        if meta["host"] == host_key:
            return Corpus(root, [root / z for z in meta["zips"]], root / "epss.csv.gz", **meta["stats"])
        print("the dpkg status snapshot changed; regenerating the corpus", flush=True)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    counts = folder_counts(total)
    print(f"generating {total:,} synthetic OSV records in {root.relative_to(REPO)} ...", flush=True)
    t0 = time.perf_counter()
    zips: dict[str, Path] = {}
    raw = 0
    # biggest first so the two processes finish together
    order = sorted(counts, key=lambda f: -counts[f])
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        futs = []
        for folder in order:
            (root / folder).mkdir()
            zips[folder] = root / folder / "all.zip"
            futs.append(ex.submit(generate_folder, folder, counts[folder], seed, host, zips[folder]))
        for fut in futs:
            folder, n, nbytes = fut.result()
            raw += nbytes
            print(f"  {folder}: {n:,} records, {nbytes / 1e6:.0f} MB of JSON", flush=True)
    epss_csv(root / "epss.csv.gz", seed)
    ordered = [zips[f] for f, _ in ECOSYSTEM_SHARES]
    stats: dict[str, Any] = {
        "records": total,
        "raw_bytes": raw,
        "zip_bytes": sum(z.stat().st_size for z in ordered),
        "seconds": time.perf_counter() - t0,
    }
    meta_path.write_text(
        json.dumps({"host": host_key, "zips": [str(z.relative_to(root)) for z in ordered], "stats": stats}, indent=1)
    )
    print(f"  done in {stats['seconds']:.0f} s", flush=True)
    return Corpus(root, ordered, root / "epss.csv.gz", **stats)


# ---------------------------------------------------------------------------
# inventories


def _pkg(ptype: str, name: str, version: str, ecosystem: str, **extra: Any) -> Any:
    from shared.domain.models import Package

    return Package(
        type=ptype,
        name=name,
        version=version,
        ecosystem=ecosystem,
        purl=f"pkg:{ptype}/{name}@{version}",
        found_in=extra.pop("found_in", f"{ptype}-manifest"),
        **extra,
    )


LANG_TYPES = {
    "npm": "npm",
    "PyPI": "python",
    "Go": "golang",
    "Maven": "maven",
    "crates.io": "cargo",
    "RubyGems": "gem",
    "NuGet": "nuget",
    "Packagist": "composer",
}


def _inv_version(rng: random.Random, folder: str) -> str:
    """An installed version: mostly a current release (newer than the advisories' ranges), some older ones."""
    spec = SPECS[folder]
    t = (14, rng.randint(0, 9), rng.randint(0, 9)) if rng.random() < 0.75 else _triple(rng)
    v = fmt_version(spec.scheme, t, rng)
    return "v" + v if folder == "Go" else v


def first_image(workdir: Path, seed: int) -> tuple[list[Any], Any]:
    """This machine's dpkg packages (Debian 12) plus 60 PyPI and 60 npm packages named in the corpus."""
    from shared.domain.models import OSInfo
    from shared.ecosystems import osv_ecosystem

    os_info = OSInfo(family="debian", version_id="12", name="Debian GNU/Linux")
    pkgs = [p.model_copy(update={"ecosystem": osv_ecosystem("dpkg", os_info)}) for p in host_packages(workdir)]
    if not pkgs:  # not a Debian host: 700 synthetic Debian packages
        rng = random.Random(f"first-{seed}")
        names = package_names("Debian", seed, [])
        pkgs = [
            _pkg("dpkg", n, _inv_version(rng, "Debian"), "Debian:12", source_name=n) for n in rng.sample(names[5:], 700)
        ]
    rng = random.Random(f"first-lang-{seed}")
    for folder in ("PyPI", "npm"):
        names = package_names(folder, seed, [])[:400]
        for n in rng.sample(names, 60):
            pkgs.append(_pkg(LANG_TYPES[folder], n, _inv_version(rng, folder), folder, found_in="app/lock"))
    return pkgs, os_info


def big_inventory(workdir: Path, seed: int, host: dict[str, str]) -> list[tuple[list[Any], Any]]:
    """10,000 package instances as four images; about VULNERABLE_SHARE of the names have advisories."""
    from shared.domain.models import OSInfo

    rng = random.Random(f"inventory-{seed}")
    images = [
        (OSInfo(family="debian", version_id="12"), "Debian", "dpkg", "Debian:12", 0.40),
        (OSInfo(family="ubuntu", version_id="22.04"), "Ubuntu", "dpkg", "Ubuntu:22.04:LTS", 0.25),
        (OSInfo(family="alpine", version_id="3.19.1"), "Alpine", "apk", "Alpine:v3.19", 0.15),
        (OSInfo(family="rhel", version_id="9.4"), "Red Hat", "rpm", "Red Hat", 0.20),
    ]
    # language packages: share of all instances, by ecosystem
    lang_mix = {"npm": 0.30, "PyPI": 0.12, "Maven": 0.06, "Go": 0.05, "crates.io": 0.02, "RubyGems": 0.02}
    lang_mix |= {"NuGet": 0.02, "Packagist": 0.02}
    os_share = 1.0 - sum(lang_mix.values())
    pools = {f: package_names(f, seed, sorted(host) if f == "Debian" else []) for f in SPECS}
    out: list[tuple[list[Any], Any]] = []
    for os_info, folder, ptype, eco, share in images:
        pkgs = []
        n_os = round(INVENTORY_SIZE * os_share * share)
        for _ in range(n_os):
            vulnerable = rng.random() < VULNERABLE_SHARE
            name = (
                rng.choice(pools[folder][5 : NAME_POOL[folder] // 2])
                if vulnerable
                else f"clean-{_syll_name(rng, 2, 5)}"
            )
            version = _inv_version(rng, folder)
            pkgs.append(_pkg(ptype, name, version, eco, source_name=name, source_version=version))
        for lf, lshare in lang_mix.items():
            for _ in range(round(INVENTORY_SIZE * lshare * share)):
                vulnerable = rng.random() < VULNERABLE_SHARE
                name = rng.choice(pools[lf][: NAME_POOL[lf] // 2]) if vulnerable else f"clean-{_syll_name(rng, 2, 5)}"
                pkgs.append(_pkg(LANG_TYPES[lf], name, _inv_version(rng, lf), lf))
        out.append((pkgs, os_info))
    missing = INVENTORY_SIZE - sum(len(p) for p, _ in out)
    for _ in range(missing):
        out[0][0].append(_pkg("npm", f"clean-{_syll_name(rng, 2, 5)}", _inv_version(rng, "npm"), "npm"))
    while sum(len(p) for p, _ in out) > INVENTORY_SIZE:
        out[0][0].pop()
    return out


# ---------------------------------------------------------------------------
# measurements


def cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (import workers), user + system."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def import_once(
    db_path: Path, inputs: list[Path], fresh: bool = True, jobs: int | None = None
) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, stats) of one ``import_paths``; ``fresh``: into a new database; ``jobs``: as
    ``import_paths`` takes it (None: the importer decides)."""
    from shared.vulndb.importer import import_paths

    if fresh:
        for p in (db_path, db_path.with_name(db_path.name + "-journal")):
            if p.exists():
                p.unlink()
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    stats = import_paths(db_path, inputs, jobs=jobs)
    return time.perf_counter() - t0, cpu_seconds() - c0, stats


@dataclass
class ImportResult:
    label: str
    records: int
    seconds: list[float]
    cpu: list[float]
    size: int
    written: int
    warnings: int
    #: worker processes each import used (0: parsed in the importing process); not known for older results
    workers: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.records / statistics.median(self.seconds)

    @property
    def cpu_rate(self) -> float:
        """Records per CPU-second (all processes): what one idle core would do, parallelism aside."""
        return self.records / statistics.median(self.cpu)


def measure_import(label: str, db_path: Path, inputs: list[Path], reps: int) -> ImportResult:
    return measure_imports([(label, None)], db_path, inputs, reps)[0]


def measure_imports(
    modes: list[tuple[str, int | None]], db_path: Path, inputs: list[Path], reps: int
) -> list[ImportResult]:
    """Import ``inputs`` ``reps`` times in each mode (label, jobs), the modes alternated so that each sees the
    same machine."""
    times: dict[str, list[float]] = {label: [] for label, _ in modes}
    cpus: dict[str, list[float]] = {label: [] for label, _ in modes}
    workers: dict[str, list[int]] = {label: [] for label, _ in modes}
    last: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for i in range(reps):
        for label, jobs in modes:
            dt, cpu, stats = import_once(db_path, inputs, jobs=jobs)
            times[label].append(dt)
            cpus[label].append(cpu)
            workers[label].append(stats.workers)
            last[label] = stats
            sizes[label] = db_path.stat().st_size
            print(
                f"  [{label}] import {i + 1}/{reps}: {stats.records:,} records in {dt:.2f} s "
                f"({stats.records / dt:,.0f}/s; CPU {cpu:.2f} s; "
                + (f"{stats.workers} worker processes" if stats.workers else "parsed in the importing process")
                + ")",
                flush=True,
            )
    return [
        ImportResult(
            label,
            last[label].records,
            times[label],
            cpus[label],
            sizes[label],
            last[label].written,
            len(last[label].warnings),
            workers[label],
        )
        for label, _ in modes
    ]


def evict(path: Path) -> bool:
    """Drop a file's pages from the page cache (what a cold open after a reboot would see)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def read_through(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass


def first_match_child(db_path: str, inventory: str, attribute: bool = False) -> None:
    """Fresh process: time open_readonly + Matcher + match of one image; print JSON.

    ``attribute``: also time the calls into version parsing (the version schemes' key functions, once per
    distinct version) and the cvss library (``CVSS3``/``CVSS4``, once per distinct vector), for the reading
    (wrapping them adds a little time of its own).
    """
    from shared.domain.models import OSInfo, Package
    from shared.vulndb import db, matcher, risk, versions
    from shared.vulndb.matcher import Matcher

    spent = {"versions": 0.0, "cvss": 0.0, "versions_calls": 0, "cvss_calls": 0}
    if attribute:

        def timed(fn: Any, label: str) -> Any:
            def wrapper(*a: Any) -> Any:
                t = time.perf_counter()
                try:
                    return fn(*a)
                finally:
                    spent[label] += time.perf_counter() - t
                    spent[label + "_calls"] += 1

            return wrapper

        def key_function(ecosystem: str, *, cached: bool = True) -> Any:
            return timed(versions.key_function(ecosystem, cached=cached), "versions")

        setattr(matcher, "key_function", key_function)  # noqa: B010
        setattr(risk, "CVSS3", timed(risk.CVSS3, "cvss"))  # noqa: B010
        setattr(risk, "CVSS4", timed(risk.CVSS4, "cvss"))  # noqa: B010
    doc = json.loads(Path(inventory).read_text())
    pkgs = [Package(**p) for p in doc["packages"]]
    os_info = OSInfo(**doc["os"])
    c0 = time.process_time()
    t0 = time.perf_counter()
    conn = db.open_readonly(Path(db_path))
    res = Matcher(conn).match(pkgs, os_info)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    out = {"seconds": dt, "cpu": cpu, "findings": len(res.findings), "warnings": len(res.warnings)}
    print(json.dumps(out | spent))


@dataclass
class FirstResult:
    packages: int
    warm: list[float]
    warm_cpu: list[float]
    evicted: list[float]
    findings: int
    attribution: dict[str, float]

    @property
    def ms(self) -> float:
        return 1000 * statistics.median(self.warm)

    @property
    def cpu_ms(self) -> float:
        return 1000 * statistics.median(self.warm_cpu)


def measure_first(db_path: Path, workdir: Path, seed: int, runs: int) -> FirstResult:
    pkgs, os_info = first_image(workdir, seed)
    inv = workdir / "first-image.json"
    inv.write_text(json.dumps({"packages": [p.model_dump(mode="json") for p in pkgs], "os": os_info.model_dump()}))
    argv = [sys.executable, str(Path(__file__).resolve()), "--first-match-child", str(db_path), str(inv)]
    warm: list[float] = []
    warm_cpu: list[float] = []
    evicted: list[float] = []
    findings = 0
    read_through(db_path)  # the "warm" runs find the file in the page cache
    for i in range(runs):
        for kind in ("warm", "evicted"):
            if kind == "evicted" and not evict(db_path):
                continue
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            doc = json.loads(out.strip().splitlines()[-1])
            if kind == "warm":
                warm.append(doc["seconds"])
                warm_cpu.append(doc["cpu"])
            else:
                evicted.append(doc["seconds"])
                read_through(db_path)  # back in the cache for the next warm run
            findings = doc["findings"]
        print(
            f"  first findings {i + 1}/{runs}: {1000 * warm[-1]:.0f} ms (CPU {1000 * warm_cpu[-1]:.0f} ms)"
            + (f", evicted {1000 * evicted[-1]:.0f} ms" if evicted else "")
            + f" ({len(pkgs)} packages, {findings} findings)",
            flush=True,
        )
    out = subprocess.run([*argv, "attribute"], capture_output=True, text=True, check=True).stdout
    attribution = json.loads(out.strip().splitlines()[-1])
    return FirstResult(len(pkgs), warm, warm_cpu, evicted, findings, attribution)


@dataclass
class MatchThroughput:
    instances: int
    with_advisories: int
    seconds: list[float]
    cpu: list[float]
    first_pass: float
    findings: int
    warnings: int
    clean_rate: float  # best pass over the instances no advisory names
    named_rate: float  # best pass over the others
    fresh_seconds: list[float]  # passes after Matcher.forget_versions(): versions the matcher has not seen
    fresh_cpu: list[float]
    fresh_findings: int

    @property
    def rate(self) -> float:
        return self.instances / statistics.median(self.seconds)

    @property
    def cpu_rate(self) -> float:
        return self.instances / statistics.median(self.cpu)

    @property
    def fresh_rate(self) -> float:
        return self.instances / statistics.median(self.fresh_seconds)

    @property
    def fresh_cpu_rate(self) -> float:
        return self.instances / statistics.median(self.fresh_cpu)


def measure_matching(db_path: Path, workdir: Path, seed: int, reps: int) -> MatchThroughput:
    from shared.vulndb import db
    from shared.vulndb.matcher import Matcher

    host = host_sources(workdir)
    images = big_inventory(workdir, seed, host)
    conn = db.open_readonly(db_path)
    matcher = Matcher(conn)
    n = sum(len(p) for p, _ in images)
    t0 = time.perf_counter()
    results = [matcher.match(p, o) for p, o in images]
    first = time.perf_counter() - t0
    findings = sum(len(r.findings) for r in results)
    warnings = sum(len(r.warnings) for r in results)
    # instances whose (ecosystem, name) some advisory names, counted with the database itself
    keys = {k[:2] for p, o in images for q in p for k in matcher.lookup_keys(q, o)}
    named = set()
    for k in keys:
        if conn.execute("SELECT 1 FROM affected WHERE ecosystem = ? AND name = ? LIMIT 1", k).fetchone():
            named.add(k)
    known = sum(1 for p, o in images for q in p if any(k[:2] in named for k in matcher.lookup_keys(q, o)))
    print(f"  warm-up pass: {n:,} instances in {first:.2f} s, {findings:,} findings, {known:,} with advisories")
    times, cpus = [], []
    for i in range(reps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        for p, o in images:
            matcher.match(p, o)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        print(
            f"  warm pass {i + 1}/{reps}: {times[-1] * 1000:.0f} ms ({n / times[-1]:,.0f} instances/s; "
            f"CPU {cpus[-1] * 1000:.0f} ms)",
            flush=True,
        )
    # the two kinds of package apart: named by no advisory (one lookup each) and named by some
    clean = [([q for q in p if not any(k[:2] in named for k in matcher.lookup_keys(q, o))], o) for p, o in images]
    named_only = [([q for q in p if any(k[:2] in named for k in matcher.lookup_keys(q, o))], o) for p, o in images]
    split = []
    for part in (clean, named_only):
        best = min(_pass_seconds(matcher, part) for _ in range(max(3, reps // 2)))
        split.append(sum(len(p) for p, _ in part) / best)
    # The passes above find every package version in the matcher's memo of outcomes. Versions it has not seen
    # yet (new releases, the first scan of an image) are evaluated against the advisories: the same passes after
    # forget_versions(), which empties the memo and the caches of version keys but keeps what was read from the
    # database (a matcher that has served other images).
    fresh, fresh_cpu = [], []
    fresh_findings = 0
    for i in range(reps):
        matcher.forget_versions()
        c0 = time.process_time()
        t0 = time.perf_counter()
        fresh_findings = sum(len(matcher.match(p, o).findings) for p, o in images)
        fresh.append(time.perf_counter() - t0)
        fresh_cpu.append(time.process_time() - c0)
        print(
            f"  fresh-versions pass {i + 1}/{reps}: {fresh[-1] * 1000:.0f} ms ({n / fresh[-1]:,.0f} instances/s; "
            f"CPU {fresh_cpu[-1] * 1000:.0f} ms)",
            flush=True,
        )
    conn.close()
    return MatchThroughput(
        n, known, times, cpus, first, findings, warnings, split[0], split[1], fresh, fresh_cpu, fresh_findings
    )


def _pass_seconds(matcher: Any, images: list[tuple[list[Any], Any]]) -> float:
    t0 = time.perf_counter()
    for p, o in images:
        matcher.match(p, o)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------
# report


def fmt_mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


@dataclass
class Run:
    pypa: ImportResult
    pypa_one: ImportResult
    large: ImportResult
    large_reused: bool
    enrich_seconds: float
    enrich_size: int
    corpus: Corpus
    first: FirstResult
    match: MatchThroughput
    args: argparse.Namespace
    load_before: float
    load_after: float = 0.0
    before: dict[str, Any] | None = None

    def numbers(self) -> dict[str, Any]:
        """What --save-json keeps (and --before reads back)."""
        return {
            "pypa_rate": self.pypa.rate,
            "pypa_cpu_rate": self.pypa.cpu_rate,
            "pypa_one_process_rate": self.pypa_one.rate,
            "pypa_one_process_cpu_rate": self.pypa_one.cpu_rate,
            "synthetic_rate": self.large.rate,
            "synthetic_cpu_rate": self.large.cpu_rate,
            "pypa_size": self.pypa.size,
            "synthetic_size": self.large.size,
            "first_ms": self.first.ms,
            "first_cpu_ms": self.first.cpu_ms,
            "first_findings": self.first.findings,
            "match_rate": self.match.rate,
            "match_cpu_rate": self.match.cpu_rate,
            "match_fresh_rate": self.match.fresh_rate,
            "match_fresh_cpu_rate": self.match.fresh_cpu_rate,
            "match_findings": self.match.findings,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "records": self.large.records,
            "code": code_version(),
        }


def _workers(r: ImportResult) -> str:
    """How the imports of a result were parsed, e.g. "2 worker processes in 5 of 5"."""
    used = [w for w in r.workers if w]
    if not r.workers:
        return "workers not recorded"
    if not used:
        return "parsed in the importing process"
    counts = sorted(set(used))
    n = " or ".join(str(c) for c in counts)
    return f"{n} worker processes in {len(used)} of {len(r.workers)} imports"


def _ratio(x: float) -> str:
    return f"**{x:.2f}x**"


def table(r: Run) -> str:
    p, lg, f, m = r.pypa, r.large, r.first, r.match
    runs = f"median of {len(lg.seconds)}" if len(lg.seconds) > 1 else "1 run"
    rows = [
        "| measure | result (wall clock) | CPU time | target | result / target (>= 1 meets it) |",
        "|---|---|---|---|---|",
        f"| import, PyPA YAML corpus ({p.records:,} records, median of {len(p.seconds)}; {_workers(p)}) | "
        f"{p.rate:,.0f} records/s ({statistics.median(p.seconds):.2f} s) | "
        f"{statistics.median(p.cpu):.2f} s ({p.cpu_rate:,.0f} records per CPU-s) | "
        f">= {IMPORT_TARGET:,.0f} records/s | {_ratio(p.rate / IMPORT_TARGET)} |",
        f"| import, PyPA YAML corpus parsed in the importing process (jobs=1: what a machine without an idle "
        f"core gets; median of {len(r.pypa_one.seconds)}) | {r.pypa_one.rate:,.0f} records/s "
        f"({statistics.median(r.pypa_one.seconds):.2f} s) | {statistics.median(r.pypa_one.cpu):.2f} s "
        f"({r.pypa_one.cpu_rate:,.0f} records per CPU-s) | - (context) | - |",
        f"| import, synthetic OSV zips ({lg.records:,} records, {runs}) | "
        f"{lg.rate:,.0f} records/s ({statistics.median(lg.seconds):.0f} s) | "
        f"{statistics.median(lg.cpu):.0f} s ({lg.cpu_rate:,.0f} records per CPU-s) | "
        f">= {IMPORT_TARGET:,.0f} records/s | {_ratio(lg.rate / IMPORT_TARGET)} |",
        f"| database size, PyPA | {fmt_mb(p.size)} ({p.size / p.records / 1e3:.1f} KB/record) | - | - | - |",
        f"| database size, synthetic | {fmt_mb(lg.size)} ({lg.size / lg.records / 1e3:.2f} KB/record); "
        f"{fmt_mb(r.enrich_size)} with EPSS + KEV | - | - | - |",
        *matching_rows(f, m),
    ]
    return "\n".join(rows)


def matching_rows(f: FirstResult, m: MatchThroughput) -> list[str]:
    """The table rows of first findings and warm matching."""
    evicted = f"; page cache dropped first: {1000 * statistics.median(f.evicted):.0f} ms" if f.evicted else ""
    return [
        f"| open to first findings ({f.packages} packages, {f.findings:,} findings; fresh process, "
        f"median of {len(f.warm)}) | {f.ms:.0f} ms{evicted} | {f.cpu_ms:.0f} ms | <= {FIRST_TARGET_MS:.0f} ms | "
        f"{_ratio(FIRST_TARGET_MS / f.ms)} |",
        f"| warm matching ({m.instances:,} instances, {m.with_advisories:,} with advisories, "
        f"{m.findings:,} findings per pass; versions matched before, in the matcher's memo; median of "
        f"{len(m.seconds)}) | {m.rate:,.0f} instances/s ({statistics.median(m.seconds) * 1000:.0f} ms) | "
        f"{statistics.median(m.cpu) * 1000:.0f} ms ({m.cpu_rate:,.0f} instances per CPU-s) | "
        f">= {MATCH_TARGET:,.0f} /s per core | {_ratio(m.rate / MATCH_TARGET)} |",
        f"| warm matching, versions not seen before (the same passes with the memo and the version-key caches "
        f"emptied first; {m.fresh_findings:,} findings per pass; median of {len(m.fresh_seconds)}) | "
        f"{m.fresh_rate:,.0f} instances/s ({statistics.median(m.fresh_seconds) * 1000:.0f} ms) | "
        f"{statistics.median(m.fresh_cpu) * 1000:.0f} ms ({m.fresh_cpu_rate:,.0f} instances per CPU-s) | "
        "- (context) | - |",
    ]


def verdicts(r: Run) -> list[tuple[str, bool]]:
    return [
        ("import PyPA", r.pypa.rate >= IMPORT_TARGET),
        ("import synthetic", r.large.rate >= IMPORT_TARGET),
        ("first findings", r.first.ms <= FIRST_TARGET_MS),
        ("warm matching", r.match.rate >= MATCH_TARGET),
    ]


def _x(after: float, before: float) -> str:
    return f"{after / before:.1f}x" if before else "n/a"


def reading(r: Run) -> str:
    """The paragraph under the table, written from this run's numbers."""
    p, lg, f, m = r.pypa, r.large, r.first, r.match
    met = [name for name, ok in verdicts(r) if ok]
    missed = [name for name, ok in verdicts(r) if not ok]
    parts = [
        f"Targets met: {', '.join(met) if met else 'none'}" + (f"; missed: {', '.join(missed)}." if missed else ".")
    ]
    busy = max(r.load_before, r.load_after)
    cores = len(os.sched_getaffinity(0))
    if busy > 0.75 * cores:
        parts.append(
            f"The machine was shared during the run (load average {r.load_before:.1f} before, {r.load_after:.1f} "
            f"after, on {cores} cores), so wall-clock numbers include waiting for a CPU; the CPU-time column is what "
            "the work itself costs."
        )
    one = r.pypa_one
    parts.append(
        f"Imports: {p.rate:,.0f} records/s for the YAML corpus ({p.cpu_rate:,.0f} per CPU-second; {_workers(p)}) "
        f"and {lg.rate:,.0f} records/s for the OSV zips ({lg.cpu_rate:,.0f} per CPU-second). Inputs of 10,000 "
        "files or 2 MiB of zips and more are parsed by one worker process per core (at most 4) while the main "
        "process writes; directories of 1,000 files and more are too when, as the import starts, a core besides "
        "the importer's is idle (the kernel's count of runnable tasks), since with every core busy the workers "
        "cost more than they save. So on an idle machine the wall-clock rate exceeds the per-CPU-second rate. "
        f"Parsed in the importing process, alternated with the imports above, the YAML corpus went in at "
        f"{one.rate:,.0f} records/s ({one.cpu_rate:,.0f} per CPU-second): "
        f"{statistics.median(one.seconds) / statistics.median(p.seconds):.2f}x the time. "
        "YAML parsing (yaml-rs) is most of the PyPA import; for the zips, inflating "
        "and parsing JSON and building rows (workers) and SQLite's inserts and index updates (main process) share "
        f"the time, plus one pass that stores the rows of each package together. The synthetic database takes "
        f"{lg.size / lg.records:,.0f} bytes per record."
    )
    at = f.attribution
    parts.append(
        f"First findings: {f.ms:.0f} ms from opening the {lg.records:,}-record database to {f.findings:,} findings "
        f"for {f.packages} packages ({f.cpu_ms:.0f} ms of CPU)"
        + (
            f"; {1000 * statistics.median(f.evicted):.0f} ms with the file dropped from the page cache"
            if f.evicted
            else ""
        )
        + ". The matcher reads the rows of the image's (ecosystem, name) keys (stored together); a row whose ranges "
        "are one interval carries the sort keys of its bounds, which the importer computed, and each advisory the "
        "base scores of its CVSS vectors, so only the other rows' range events are turned into sort keys (once; "
        "plain versions such as 1.2.3 straight from their text). It then evaluates and builds the findings. In an "
        "instrumented run "
        f"({1000 * at['seconds']:.0f} ms), parsing {at['versions_calls']:,.0f} distinct versions "
        f"(shared.vulndb.versions) took {1000 * at['versions']:.0f} ms and scoring {at['cvss_calls']:,.0f} distinct "
        f"CVSS vectors (the cvss library, cached per vector) {1000 * at['cvss']:.0f} ms; the rest is SQLite reads, "
        "JSON, evaluation and building Finding objects."
    )
    parts.append(
        f"Warm matching: {m.rate:,.0f} package instances/s ({m.cpu_rate:,.0f} per CPU-second) with {m.findings:,} "
        f"findings per {m.instances:,} instances. A matcher remembers what each (ecosystem, package name, version) "
        "it evaluated came to -- the findings less the package's own fields, and the warnings -- for as long as it "
        "serves the same database (bounded like its other caches), so these passes, which match the same "
        "inventory again, evaluate no range: every package version is in that memo, as the versions of images "
        "that share base layers are when they are rescanned. What they cost is building fresh Finding objects "
        "(one per finding, with a field dict of its own and no validation: each field was validated once; the "
        "advisory's tuples and frozen models are shared, which is safe because findings are immutable) and sorting "
        "them. "
        f"Instances no advisory names cost one dictionary lookup: {m.clean_rate:,.0f}/s on their own; the "
        f"{m.with_advisories:,} that advisories name run at {m.named_rate:,.0f}/s and set the overall rate. "
        f"Versions the matcher has not evaluated yet (the same passes with the memo and the version-key caches "
        f"emptied first, the database's rows still compiled): {m.fresh_rate:,.0f} instances/s "
        f"({m.fresh_cpu_rate:,.0f} per CPU-second), {m.fresh_findings:,} findings per pass: each named package is "
        "evaluated against its advisories' ranges (one or two comparisons of precomputed keys for the usual "
        "single-interval range) and its findings are made and remembered."
    )
    b = r.before
    if b:
        load = f", load average {b['load_before']:.1f}" if b.get("load_before") is not None else ""
        code = f"{b['code']}, " if b.get("code") else ""
        parts.append(
            f"Before ({code}same script, corpus, inventories and machine{load}): "
            f"PyPA import {b['pypa_rate']:,.0f} records/s, synthetic import "
            f"{b['synthetic_rate']:,.0f} records/s, first findings {b['first_ms']:,.0f} ms, warm matching "
            f"{b['match_rate']:,.0f} instances/s. Speed-ups: {_x(p.rate, b['pypa_rate'])}, "
            f"{_x(lg.rate, b['synthetic_rate'])}, {_x(b['first_ms'], f.ms)} and {_x(m.rate, b['match_rate'])} "
            "(wall clock; the load differed between the two runs)."
        )
    return " ".join(parts)


def section(r: Run) -> tuple[str, str]:
    key = f"records={r.large.records}"
    c = r.corpus
    body = "\n".join(
        [
            f"<!-- vulndb.py {key} -->",
            f"## Vulnerability database: import and matching ({r.large.records:,}-record synthetic corpus)",
            "",
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- Machine: {machine()}; load average {r.load_before:.1f} before the run, {r.load_after:.1f} after",
            f"- Code: {code_version()}",
            f"- Command: `{command_line()}`",
            f"- Corpora: PyPA advisory database ({r.pypa.records:,} YAML files); synthetic OSV export, seed "
            f"{r.args.seed}, generator v{GEN_VERSION}: {c.records:,} records in {len(c.zips)} all.zip files "
            f"({c.raw_bytes / 1e9:.2f} GB of JSON, {c.zip_bytes / 1e6:.0f} MB zipped): "
            + ", ".join(f"{f} {n:,}" for f, n in folder_counts(c.records).items())
            + f"; then EPSS scores for its {CVE_POOL:,} CVE ids and the real CISA KEV catalogue imported on top "
            f"({r.enrich_seconds:.1f} s)."
            + (" Synthetic import: numbers of the run that built the database (--reuse-db)." if r.large_reused else ""),
            f"- Inventories: first image = this machine's dpkg status as Debian 12 ({r.first.packages - 120} "
            f"packages) + 60 PyPI + 60 npm packages named in the corpus; warm matching = {INVENTORY_SIZE:,} instances "
            "in four images (Debian 12, Ubuntu 22.04, Alpine 3.19, RHEL 9 plus their language packages).",
            "",
            table(r),
            "",
            reading(r),
            f"<!-- /vulndb.py {key} -->",
        ]
    )
    return key, body


def write_results(key: str, body: str) -> None:
    write_section(f"<!-- vulndb.py {key} -->", f"<!-- /vulndb.py {key} -->", body)


# ---------------------------------------------------------------------------


def only_matching(args: argparse.Namespace) -> None:
    """--only matching: first findings and warm matching on the database of an earlier run."""
    large_db = args.workdir / f"synthetic-{args.records}-seed{args.seed}.sqlite"
    if not large_db.is_file():
        sys.exit(f"no synthetic database at {large_db}: run once without --only to build it")
    print("open to first findings", flush=True)
    first = measure_first(large_db, args.workdir, args.seed, args.first_runs)
    print("warm matching", flush=True)
    match = measure_matching(large_db, args.workdir, args.seed, args.match_reps)
    print()
    print("| measure | result (wall clock) | CPU time | target | result / target (>= 1 meets it) |")
    print("|---|---|---|---|---|")
    print("\n".join(matching_rows(first, match)))
    print()
    print(f"first findings: {'PASS' if first.ms <= FIRST_TARGET_MS else 'FAIL'}")
    print(f"warm matching: {'PASS' if match.rate >= MATCH_TARGET else 'FAIL'}")
    at = first.attribution
    print(
        f"attribution ({1000 * at['seconds']:.0f} ms instrumented): {at['versions_calls']:,.0f} versions parsed in "
        f"{1000 * at['versions']:.0f} ms, {at['cvss_calls']:,.0f} CVSS vectors scored in {1000 * at['cvss']:.0f} ms"
    )
    if args.save_json:
        numbers = {
            "first_ms": first.ms,
            "first_cpu_ms": first.cpu_ms,
            "first_findings": first.findings,
            "match_rate": match.rate,
            "match_cpu_rate": match.cpu_rate,
            "match_fresh_rate": match.fresh_rate,
            "match_fresh_cpu_rate": match.fresh_cpu_rate,
            "match_findings": match.findings,
            "code": code_version(),
        }
        args.save_json.write_text(json.dumps(numbers, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="synthetic corpus size (default 500000)")
    ap.add_argument("--reps", type=int, default=5, help="PyPA imports (default 5)")
    ap.add_argument("--large-reps", type=int, default=1, help="imports of the synthetic corpus (default 1)")
    ap.add_argument("--first-runs", type=int, default=7, help="fresh processes timed to first findings (default 7)")
    ap.add_argument("--match-reps", type=int, default=7, help="warm matching passes (default 7)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    ap.add_argument(
        "--jobs", type=int, default=max(1, min(4, len(os.sched_getaffinity(0)))), help="generator processes"
    )
    ap.add_argument("--rebuild", action="store_true", help="regenerate the synthetic corpus")
    ap.add_argument("--reuse-db", action="store_true", help="reuse the synthetic database of an earlier run if present")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--save-json", type=Path, help="also write this run's numbers to a JSON file")
    ap.add_argument("--before", type=Path, help="a --save-json file of an earlier run, quoted in the reading")
    ap.add_argument("--write-results", action="store_true", help="add/replace this run's section in RESULTS.md")
    ap.add_argument(
        "--only",
        choices=["matching"],
        help="matching: measure only first findings and warm matching, on the synthetic database an earlier run "
        "made (no imports; not with --write-results)",
    )
    ap.add_argument("--first-match-child", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.first_match_child:
        db_arg, inv_arg, *mode = args.first_match_child
        first_match_child(db_arg, inv_arg, attribute=mode == ["attribute"])
        return
    if args.only:
        if args.write_results:
            ap.error("--only measures part of the run: it cannot --write-results")
        only_matching(args)
        return
    if not PYPA.is_dir():
        sys.exit(f"the PyPA corpus is missing: {PYPA}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    corpus = ensure_corpus(args.workdir, args.records, args.seed, args.jobs, args.rebuild)
    if args.generate_only:
        return
    load_before = os.getloadavg()[0]

    print("import: PyPA YAML corpus", flush=True)
    # as the importer decides (workers when a core is idle), and parsed in the importing process (what a
    # machine with no idle core gets), alternated
    pypa, pypa_one = measure_imports(
        [("pypa", None), ("pypa, one process", 1)], args.workdir / "pypa.sqlite", [PYPA], args.reps
    )

    large_db = args.workdir / f"synthetic-{args.records}-seed{args.seed}.sqlite"
    base_db = args.workdir / f"synthetic-{args.records}-seed{args.seed}.osv-only.sqlite"
    meta_path = large_db.with_suffix(".json")
    reused = args.reuse_db and large_db.is_file() and meta_path.is_file()
    if reused:
        m = json.loads(meta_path.read_text())
        large = ImportResult(**m["large"])
        enrich_s, enrich_size = m["enrich_seconds"], m["enrich_size"]
        print(f"import: reusing {large_db.name} ({large.rate:,.0f} records/s when it was made)")
    else:
        print(f"import: synthetic corpus ({corpus.records:,} records)", flush=True)
        large = measure_import("synthetic", base_db, corpus.zips, args.large_reps)
        base_db.replace(large_db)
        print("import: EPSS + KEV on top", flush=True)
        enrich_s, _, _ = import_once(large_db, [corpus.epss] + ([KEV] if KEV.is_file() else []), fresh=False)
        enrich_size = large_db.stat().st_size
        meta_path.write_text(
            json.dumps({"large": large.__dict__, "enrich_seconds": enrich_s, "enrich_size": enrich_size}, indent=1)
        )

    print("open to first findings", flush=True)
    first = measure_first(large_db, args.workdir, args.seed, args.first_runs)
    print("warm matching", flush=True)
    match = measure_matching(large_db, args.workdir, args.seed, args.match_reps)

    run = Run(pypa, pypa_one, large, reused, enrich_s, enrich_size, corpus, first, match, args, load_before)
    run.load_after = os.getloadavg()[0]
    if args.before:
        run.before = json.loads(args.before.read_text())
    print()
    print(table(run))
    print()
    for name, ok in verdicts(run):
        print(f"{name}: {'PASS' if ok else 'FAIL'}")
    if args.save_json:
        args.save_json.write_text(json.dumps(run.numbers(), indent=1))
    if args.write_results:
        write_results(*section(run))


if __name__ == "__main__":
    main()
