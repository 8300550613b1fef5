"""``--format sarif``: SARIF 2.1.0 that GitHub code scanning accepts.

One rule per vulnerability id (with ``security-severity`` so GitHub ranks it),
one result per finding, located at the package database file inside the image;
suppressed findings carry a SARIF suppression with their reason.
"""

from __future__ import annotations

import json
from typing import Any

from shared import __version__
from shared.domain.findings import Finding
from shared.domain.models import ScanResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note", "UNKNOWN": "note"}
# GitHub maps security-severity to its own levels: >= 9.0 critical, >= 7.0 high, >= 4.0 medium, else low.
_DEFAULT_SCORE = {"CRITICAL": 9.5, "HIGH": 8.0, "MEDIUM": 5.5, "LOW": 2.0, "UNKNOWN": 0.0}


def _score(f: Finding) -> float:
    if f.cvss:
        return max(c.base_score for c in f.cvss)
    return _DEFAULT_SCORE.get(f.severity, 0.0)


def _rule(f: Finding) -> dict[str, Any]:
    help_uri = next((r for r in f.references if "nvd.nist.gov" in r or "osv.dev" in r), None) or (
        f.references[0] if f.references else f"https://osv.dev/vulnerability/{f.id}"
    )
    text = f.summary or f.id
    return {
        "id": f.id,
        "name": f.id.replace("-", ""),
        "shortDescription": {"text": f"{f.id}: {text}"[:1000]},
        "fullDescription": {"text": text},
        "helpUri": help_uri,
        "help": {
            "text": f"{f.id} ({', '.join(f.aliases) or 'no aliases'}). Severity {f.severity}.",
            "markdown": f"**{f.id}** {text}\n\nAliases: {', '.join(f.aliases) or 'none'}",
        },
        "properties": {
            "security-severity": f"{_score(f):.1f}",
            "precision": "very-high",
            "tags": ["security", "vulnerability", f.severity],
        },
    }


def build(results: list[ScanResult]) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    sarif_results = []
    for r in results:
        image = r.image.reference
        for f in r.findings or []:
            if f.id not in rules:
                rules[f.id] = _rule(f)
            fixed = ", ".join(f.fixed_versions) if f.fixed_versions else "no fix yet"
            res: dict[str, Any] = {
                "ruleId": f.id,
                "ruleIndex": list(rules).index(f.id),
                "level": _LEVEL.get(f.severity, "note"),
                "message": {
                    "text": f"{f.package_name} {f.installed_version} in {image} ({f.found_in}) is affected by "
                    f"{f.id} [{f.severity}]; fixed in: {fixed}"
                },
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": f.found_in or image},
                            "region": {"startLine": 1},
                        },
                        "message": {"text": f"{image}: {f.package_purl}"},
                    }
                ],
                "partialFingerprints": {"hullwatch/v1": f"{image}|{f.package_purl}|{f.id}"},
                "properties": {
                    "image": image,
                    "purl": f.package_purl,
                    "installedVersion": f.installed_version,
                    "fixedVersions": list(f.fixed_versions),  # a JSON array in the document's own types
                    "priority": f.priority,
                    "kev": f.kev is not None,
                },
            }
            if f.suppressed is not None:
                res["suppressions"] = [
                    {
                        "kind": "external",
                        "status": "accepted",
                        "justification": f"{f.suppressed.kind}: {f.suppressed.reason} ({f.suppressed.source})",
                    }
                ]
            sarif_results.append(res)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "hullwatch",
                        "informationUri": "https://github.com/hullwatch/hullwatch",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": list(rules.values()),
                    }
                },
                "results": sarif_results,
            }
        ],
    }


def render(results: list[ScanResult]) -> str:
    return json.dumps(build(results), indent=2) + "\n"
