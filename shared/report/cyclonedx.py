"""``--format cyclonedx``: a CycloneDX 1.6 JSON SBOM per scan, built with cyclonedx-python-lib."""

from __future__ import annotations

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
    return bom


def render(results: list[ScanResult]) -> str:
    """One BOM per image; several platforms give a JSON array of BOMs."""
    docs = [JsonV1Dot6(build_bom(r)).output_as_string(indent=2) for r in results]
    if len(docs) == 1:
        return docs[0] + "\n"
    return "[\n" + ",\n".join(docs) + "\n]\n"
