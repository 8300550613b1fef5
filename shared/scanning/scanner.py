"""The scan service: image reference -> source -> layers -> analyzers -> ScanResult."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared import __version__
from shared.domain.models import LayerInfo, Package, ScanResult, ScanWarning, ToolInfo
from shared.ecosystems import LANGUAGES, OS_PACKAGE_PURL_TYPES, language_purl, os_purl, osv_ecosystem
from shared.scanning import reference
from shared.scanning.analyzers.all import enabled_analyzers
from shared.scanning.analyzers.base import Analyzer
from shared.scanning.layers import LayerEngine
from shared.scanning.sources.base import ImageHandle, ImageSource, LayerRef, ScanOptions
from shared.scanning.streams import ByteBudget


@dataclass(frozen=True)
class RegistryCredentials:
    """Credentials the user gave explicitly (flags or environment)."""

    username: str | None = None
    password: str | None = None


@dataclass
class ScanRequest:
    image: str
    options: ScanOptions = field(default_factory=ScanOptions)
    credentials: RegistryCredentials = field(default_factory=RegistryCredentials)
    insecure_registry: bool = False
    docker_config: str | None = None  # path to a docker config.json; default ~/.docker/config.json


#: Called with (handle, layer) after each layer is read; the CLI draws a progress bar with it.
Progress = Callable[[ImageHandle, LayerRef], None]


def open_source(req: ScanRequest) -> ImageSource:
    ref = reference.parse(req.image)
    if isinstance(ref, reference.LocalRef):
        if ref.transport == "oci":
            from shared.scanning.sources.ocilayout import OCILayoutSource

            return OCILayoutSource(ref)
        if ref.transport == "docker-archive":
            from shared.scanning.sources.dockerarchive import DockerArchiveSource

            return DockerArchiveSource(ref)
        from shared.scanning.sources.directory import DirectorySource

        return DirectorySource(ref)
    from shared.scanning.sources.registry import RegistrySource

    return RegistrySource(
        ref,
        username=req.credentials.username,
        password=req.credentials.password,
        insecure=req.insecure_registry,
        docker_config=req.docker_config,
    )


def scan(
    req: ScanRequest,
    now: Callable[[], datetime] | None = None,
    progress: Progress | None = None,
    on_resolved: Callable[[list[ImageHandle]], None] | None = None,
    analyzers: Sequence[Analyzer] | None = None,
) -> list[ScanResult]:
    """Scan every image the request resolves to (one, or one per platform)."""
    source = open_source(req)
    handles = source.resolve(req.options)
    if on_resolved is not None:
        on_resolved(handles)
    results = []
    try:
        for h in handles:
            results.append(scan_handle(h, req.options, now=now, progress=progress, analyzers=analyzers))
    finally:
        for h in handles:
            h.close()
    return results


def scan_handle(
    handle: ImageHandle,
    options: ScanOptions,
    now: Callable[[], datetime] | None = None,
    progress: Progress | None = None,
    analyzers: Sequence[Analyzer] | None = None,
) -> ScanResult:
    """Scan one resolved image. ``analyzers`` defaults to every enabled one."""
    warnings: list[ScanWarning] = list(handle.warnings)
    scope = "dir" if handle.info.source == "dir" else "image"
    if analyzers is None:
        analyzers = enabled_analyzers(scope)
    else:  # an explicit list still honours scopes: lock files are never read in images
        analyzers = [a for a in analyzers if scope in a.scopes]
    engine = LayerEngine(analyzers, warnings.append)
    budget = ByteBudget(options.max_image_bytes, handle.info.reference)
    for lay in handle.layers:
        engine.add_layer(lay.index, lay.diff_id, handle.layer_entries(lay, budget), lay.label)
        if progress is not None:
            progress(handle, lay)
    out = engine.finish()
    # Sources may add warnings while their layers are read (a dir: file that
    # cannot be opened, a foreign layer that vanished): keep those too.
    warnings.extend(w for w in handle.warnings if w not in warnings)
    os_info = out.os
    from_status_d = any(p.found_in.startswith("var/lib/dpkg/status.d/") for p in out.packages)
    from_status = any(p.found_in == "var/lib/dpkg/status" for p in out.packages)
    if os_info is not None and from_status_d and not from_status and not os_info.distroless:
        os_info = os_info.model_copy(update={"distroless": True})
    packages = sorted(
        (_name_package(p, os_info) for p in out.packages),
        key=lambda p: (p.type, p.name, p.version, p.arch or "", p.found_in),
    )
    info = handle.info.model_copy(
        update={
            "layers": [
                LayerInfo(
                    index=lay.index,
                    digest=lay.digest,
                    diff_id=lay.diff_id,
                    media_type=lay.media_type,
                    size=lay.size,
                    created_by=lay.created_by,
                )
                for lay in handle.layers
            ]
        }
    )
    return ScanResult(
        tool=ToolInfo(version=__version__),
        scanned_at=(now or (lambda: datetime.now(UTC)))(),
        image=info,
        os=os_info,
        packages=packages,
        analyzers={a.name: a.version for a in analyzers},
        executables=out.executables,
        warnings=warnings,
    )


def _name_package(p: Package, os_info: object) -> Package:
    """Fill in the OSV ecosystem and purl from the one table in shared.ecosystems."""
    from shared.domain.models import OSInfo

    osi = os_info if isinstance(os_info, OSInfo) else None
    if p.type in OS_PACKAGE_PURL_TYPES:
        version = p.version
        if p.epoch and version.startswith(f"{p.epoch}:"):
            version = version[len(f"{p.epoch}:") :]
        quals: dict[str, str] = {}
        if (p.type == "dpkg" and p.source_name and p.source_name != p.name) or (
            p.type == "apk" and p.source_name and p.source_name != p.name
        ):
            quals["upstream"] = p.source_name
        elif p.type == "rpm" and p.source_rpm:
            quals["upstream"] = p.source_rpm
        purl = os_purl(p.type, osi, p.name, version, p.arch, epoch=p.epoch, extra_qualifiers=quals)
        return p.model_copy(update={"purl": purl, "ecosystem": osv_ecosystem(p.type, osi)})
    if p.type in LANGUAGES:
        return p.model_copy(
            update={
                "purl": p.purl or language_purl(p.type, p.name, p.version),
                "ecosystem": p.ecosystem or osv_ecosystem(p.type, osi),
            }
        )
    return p
