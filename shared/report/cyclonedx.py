"""``--format cyclonedx``: a CycloneDX 1.6 JSON SBOM per scan, built with cyclonedx-python-lib."""

from __future__ import annotations

from decimal import Decimal

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from shared.domain.models import ScanResult


def build_bom(result: ScanResult) -> Bom:
    img = result.image
    bom = Bom()
    image_component = Component(
        type=ComponentType.CONTAINER,
        name=img.repository or img.reference,
        version=img.digest or img.tag or "",
        bom_ref=f"image:{img.digest or img.reference}",
    )
    if img.digest and img.digest.startswith("sha256:"):
        image_component.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=img.digest.split(":", 1)[1]))
    bom.metadata.component = image_component
    bom.metadata.timestamp = result.scanned_at
    os_ref = None
    if result.os is not None:
        os_component = Component(
            type=ComponentType.OPERATING_SYSTEM,
            name=result.os.family,
            version=result.os.version_id or None,
            bom_ref=f"os:{result.os.family}:{result.os.version_id}",
        )
        bom.components.add(os_component)
        bom.register_dependency(image_component, [os_component])
        os_ref = os_component
    seen: set[str] = set()
    pkg_components = []
    for p in result.packages:
        ref = p.purl if p.purl not in seen else f"{p.purl}#{p.found_in}"
        seen.add(ref)
        props = [
            Property(name="hullwatch:package:type", value=p.type),
            Property(name="hullwatch:package:found_in", value=p.found_in),
        ]
        if p.layer_diff_id:
            props.append(Property(name="hullwatch:layer:diff_id", value=p.layer_diff_id))
        if p.source_name:
            props.append(Property(name="hullwatch:package:source_name", value=p.source_name))
        if p.source_version:
            props.append(Property(name="hullwatch:package:source_version", value=p.source_version))
        if p.ecosystem:
            props.append(Property(name="hullwatch:package:ecosystem", value=p.ecosystem))
        c = Component(
            type=ComponentType.LIBRARY,
            name=p.name,
            version=p.version,
            purl=PackageURL.from_string(p.purl) if p.purl else None,
            bom_ref=ref,
            licenses=[DisjunctiveLicense(name=lic) for lic in p.licenses],
            properties=props,
        )
        bom.components.add(c)
        pkg_components.append(c)
    if os_ref is not None and pkg_components:
        bom.register_dependency(os_ref, pkg_components)
    if result.findings is not None:
        _add_vulnerabilities(bom, result, {p.purl: c for p, c in zip(result.packages, pkg_components, strict=True)})
    return bom


_CDX_SEVERITY = {
    "CRITICAL": "critical",
    "HIGH": "high",
    "MEDIUM": "medium",
    "LOW": "low",
    "UNKNOWN": "unknown",
}


def _add_vulnerabilities(bom: Bom, result: ScanResult, by_purl: dict[str, Component]) -> None:
    from cyclonedx.model import XsUri
    from cyclonedx.model.impact_analysis import ImpactAnalysisJustification, ImpactAnalysisState
    from cyclonedx.model.vulnerability import (
        BomTarget,
        BomTargetVersionRange,
        Vulnerability,
        VulnerabilityAdvisory,
        VulnerabilityAnalysis,
        VulnerabilityRating,
        VulnerabilityReference,
        VulnerabilityScoreSource,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )

    _ = ImpactAnalysisJustification
    for f in result.findings or []:
        comp = by_purl.get(f.package_purl)
        if comp is None:
            continue
        ratings = []
        for c in f.cvss:
            method = (
                VulnerabilityScoreSource.CVSS_V4
                if c.version == "4.0"
                else (VulnerabilityScoreSource.CVSS_V3_1 if c.version == "3.1" else VulnerabilityScoreSource.CVSS_V3)
            )
            ratings.append(
                VulnerabilityRating(
                    score=Decimal(str(c.base_score)),
                    severity=VulnerabilitySeverity(_CDX_SEVERITY[f.severity]),
                    method=method,
                    vector=c.vector,
                )
            )
        if not ratings:
            ratings.append(VulnerabilityRating(severity=VulnerabilitySeverity(_CDX_SEVERITY[f.severity])))
        analysis = None
        if f.suppressed is not None:
            state = ImpactAnalysisState.NOT_AFFECTED if f.suppressed.kind == "vex" else ImpactAnalysisState.EXPLOITABLE
            if f.suppressed.kind == "exemption":
                state = ImpactAnalysisState.IN_TRIAGE
            analysis = VulnerabilityAnalysis(state=state, detail=f"{f.suppressed.reason} ({f.suppressed.source})")
        v = Vulnerability(
            bom_ref=f"vuln:{f.id}:{comp.bom_ref.value}",
            id=f.id,
            source=VulnerabilitySource(name="OSV", url=XsUri(f"https://osv.dev/vulnerability/{f.advisories[0]}")),
            references=[VulnerabilityReference(id=a, source=VulnerabilitySource(name="OSV")) for a in f.aliases],
            ratings=ratings,
            description=f.summary or None,
            recommendation=(
                f"Upgrade {f.package_name} to {', '.join(f.fixed_versions)}" if f.fixed_versions else "No fix yet"
            ),
            advisories=[VulnerabilityAdvisory(url=XsUri(r)) for r in f.references[:20] if r.startswith("http")],
            affects=[
                BomTarget(
                    ref=str(comp.bom_ref.value),
                    versions=[BomTargetVersionRange(version=f.installed_version)],
                )
            ],
            analysis=analysis,
        )
        bom.vulnerabilities.add(v)


def render(results: list[ScanResult]) -> str:
    """One BOM per image; several platforms give a JSON array of BOMs."""
    docs = [JsonV1Dot6(build_bom(r)).output_as_string(indent=2) for r in results]
    if len(docs) == 1:
        return docs[0] + "\n"
    return "[\n" + ",\n".join(docs) + "\n]\n"
