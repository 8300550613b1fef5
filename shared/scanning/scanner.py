"""The scan service: image reference -> source -> layers -> analyzers -> ScanResult."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

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


class LayerStateCache(Protocol):
    """Where the engine's state after a layer chain is kept (the backend's layer cache).

    Keys are chain keys (:func:`chain_key`): the same ordered layers analysed by the
    same analyzers give the same state, so an image whose lower layers were read
    before (a shared base image) reads and downloads only its own layers.
    """

    def get(self, key: str) -> dict[str, Any] | None: ...
    def put(self, key: str, state: dict[str, Any]) -> None: ...


def chain_key(diff_ids: Sequence[str], analyzers: Mapping[str, int]) -> str:
    """The cache key of a layer chain (cf. the OCI ChainID) under one analyzer set."""
    h = hashlib.sha256()
    for name, version in sorted(analyzers.items()):
        h.update(f"{name}={version};".encode())
    for d in diff_ids:
        h.update(b"|" + d.encode())
    return "chain:" + h.hexdigest()


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
    layer_cache: LayerStateCache | None = None,
) -> ScanResult:
    """Scan one resolved image. ``analyzers`` defaults to every enabled one.

    With a ``layer_cache``, the deepest chain of lower layers whose state is cached
    is restored instead of read (those layers are not downloaded), and the state
    after every layer read is stored for the next image.
    """
    warnings: list[ScanWarning] = list(handle.warnings)
    scope = "dir" if handle.info.source == "dir" else "image"
    if analyzers is None:
        analyzers = enabled_analyzers(scope)
    else:  # an explicit list still honours scopes: lock files are never read in images
        analyzers = [a for a in analyzers if scope in a.scopes]
    engine = LayerEngine(analyzers, warnings.append)
    budget = ByteBudget(options.max_image_bytes, handle.info.reference)
    versions = {a.name: a.version for a in analyzers}
    keys: list[str] = []
    if layer_cache is not None and all(lay.diff_id for lay in handle.layers):
        ids = [lay.diff_id or "" for lay in handle.layers]
        keys = [chain_key(ids[: i + 1], versions) for i in range(len(ids))]
    start = 0
    if layer_cache is not None and keys:
        hit = _deepest_cached(layer_cache, keys)
        if hit is not None:
            depth, state = hit
            try:
                engine.import_state(state)
                warnings.extend(ScanWarning.model_validate(w) for w in state.get("warnings", []))
                start = depth + 1
            except (ValueError, KeyError, TypeError):  # an unreadable entry is a miss: read every layer
                engine = LayerEngine(analyzers, warnings.append)
                warnings[:] = list(handle.warnings)
    for pos in range(start, len(handle.layers)):
        lay = handle.layers[pos]
        engine.add_layer(lay.index, lay.diff_id, handle.layer_entries(lay, budget), lay.label)
        if layer_cache is not None and keys:
            state = engine.export_state()
            # the engine's warnings so far (the source's own are re-added on every scan)
            state["warnings"] = [w.model_dump(mode="json") for w in warnings if w not in handle.warnings]
            layer_cache.put(keys[pos], state)
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


def _deepest_cached(cache: LayerStateCache, keys: Sequence[str]) -> tuple[int, dict[str, Any]] | None:
    """(index, state) of the deepest chain in ``keys`` whose state the cache holds, or None.

    Every lookup is a store round trip, so the order matters. The scanner stores a
    state after every layer it reads, so the cached chains of a stack are (barring
    eviction) a prefix of it: the deepest and next-deepest are tried first (the same
    image again; an image adding one layer to a known one), then the shallowest (if
    even the base layer is unknown, nothing deeper is: a new image costs three
    lookups, not one per layer), then a binary search in between.
    """
    n = len(keys)
    for i in (n - 1, n - 2):
        if i >= 0:
            state = cache.get(keys[i])
            if state is not None:
                return i, state
    if n <= 2:
        return None
    state = cache.get(keys[0])
    if state is None:
        return None
    best: tuple[int, dict[str, Any]] = (0, state)
    lo, hi = 1, n - 3  # keys[n - 2] and keys[n - 1] missed
    while lo <= hi:
        mid = (lo + hi) // 2
        state = cache.get(keys[mid])
        if state is None:
            hi = mid - 1
        else:
            best, lo = (mid, state), mid + 1
    return best


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
