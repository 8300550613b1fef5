"""Parsing OCI / Docker manifests, indexes and image configs (pure functions, no I/O)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from shared.scanning import mediatypes as mt
from shared.scanning.errors import DigestMismatch, ImageError, LimitExceeded
from shared.scanning.streams import parse_digest


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ImageError("--platform", f"expected os/arch[/variant], got {text!r}")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


DEFAULT_PLATFORM = Platform("linux", "amd64")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageConfig:
    os: str | None
    architecture: str | None
    variant: str | None
    diff_ids: tuple[str, ...]
    #: created_by of the history entries that made a layer (empty_layer ones skipped)
    layer_history: tuple[str | None, ...]


def verify_bytes(data: bytes, digest: str, subject: str) -> None:
    algo, hexpart = parse_digest(digest, subject)
    got = hashlib.new(algo, data).hexdigest()
    if got != hexpart:
        raise DigestMismatch(subject, f"digest mismatch: expected {digest}, got {algo}:{got}")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _load_json(data: bytes, what: str, subject: str, limit: int) -> dict[str, Any]:
    if len(data) > limit:
        raise LimitExceeded(subject, f"{what} is {len(data)} bytes, over the {limit}-byte limit")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError(subject, f"{what} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ImageError(subject, f"{what} is not a JSON object")
    return doc


def _descriptor(d: Any, subject: str, what: str) -> Descriptor:
    if not isinstance(d, dict):
        raise ImageError(subject, f"{what}: descriptor is not an object")
    media_type, digest, size = d.get("mediaType"), d.get("digest"), d.get("size")
    if not isinstance(digest, str) or not isinstance(size, int) or size < 0:
        raise ImageError(subject, f"{what}: descriptor lacks a valid digest or size")
    parse_digest(digest, subject)
    plat = None
    p = d.get("platform")
    if isinstance(p, dict) and isinstance(p.get("os"), str) and isinstance(p.get("architecture"), str):
        v = p.get("variant")
        plat = Platform(p["os"], p["architecture"], v if isinstance(v, str) and v else None)
    urls = d.get("urls") or ()
    ann = d.get("annotations") or {}
    return Descriptor(
        media_type=media_type if isinstance(media_type, str) else "",
        digest=digest,
        size=size,
        urls=tuple(u for u in urls if isinstance(u, str)),
        platform=plat,
        annotations={k: v for k, v in ann.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(ann, dict)
        else {},
    )


def parse_manifest(data: bytes, media_type: str | None, subject: str) -> ImageManifest | Index:
    """Parse a manifest or an index. ``media_type`` is the Content-Type or descriptor's, if any."""
    doc = _load_json(data, "manifest", subject, mt.MAX_MANIFEST_BYTES)
    declared = doc.get("mediaType")
    kind = declared if isinstance(declared, str) and declared else (media_type or "")
    if not kind:
        # OCI manifests may omit mediaType: tell them apart by shape.
        kind = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if kind in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED) or doc.get("schemaVersion") == 1:
        raise ImageError(subject, "Docker schema 1 manifests are deprecated and not supported")
    if kind in mt.INDEXES:
        ms = doc.get("manifests")
        if not isinstance(ms, list):
            raise ImageError(subject, "index has no manifests list")
        return Index(kind, tuple(_descriptor(m, subject, "index entry") for m in ms))
    if kind in mt.IMAGE_MANIFESTS:
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ImageError(subject, "manifest has no layers list")
        config = _descriptor(doc.get("config"), subject, "config")
        descs = tuple(_descriptor(layer, subject, f"layer {i}") for i, layer in enumerate(layers))
        for i, d in enumerate(descs):
            if d.media_type not in mt.LAYERS:
                raise ImageError(subject, f"layer {i} ({d.digest}) has an unknown media type {d.media_type!r}")
        return ImageManifest(kind, config, descs)
    raise ImageError(subject, f"unknown manifest media type {kind!r}")


def parse_config(data: bytes, subject: str) -> ImageConfig:
    doc = _load_json(data, "image config", subject, mt.MAX_CONFIG_BYTES)
    rootfs = doc.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(x, str) for x in diff_ids):
        raise ImageError(subject, "image config has no rootfs.diff_ids list")
    history = doc.get("history")
    created: list[str | None] = []
    if isinstance(history, list):
        for h in history:
            if isinstance(h, dict) and not h.get("empty_layer"):
                cb = h.get("created_by")
                created.append(cb if isinstance(cb, str) else None)
    if len(created) != len(diff_ids):
        created = [None] * len(diff_ids)

    def s(key: str) -> str | None:
        v = doc.get(key)
        return v if isinstance(v, str) and v else None

    return ImageConfig(s("os"), s("architecture"), s("variant"), tuple(diff_ids), tuple(created))


def select_platform(index: Index, want: Platform | None, subject: str) -> Descriptor:
    """Pick the manifest for a platform: the one asked for, else linux/amd64, else the only one."""
    images = [d for d in index.manifests if d.media_type in mt.IMAGE_MANIFESTS or not d.media_type]
    # Attestation manifests (buildkit) carry platform unknown/unknown: never an image to scan.
    images = [d for d in images if not (d.platform and d.platform.os == "unknown")]
    target = want or DEFAULT_PLATFORM
    for d in images:
        p = d.platform
        if p and p.os == target.os and p.architecture == target.architecture:
            if target.variant is None or p.variant == target.variant:
                return d
    if want is None and len(images) == 1:
        return images[0]
    available = ", ".join(str(d.platform) for d in images if d.platform) or "none"
    raise ImageError(subject, f"no manifest for platform {target} in the index (available: {available})")


def image_platforms(index: Index) -> list[Descriptor]:
    return [
        d
        for d in index.manifests
        if (d.media_type in mt.IMAGE_MANIFESTS or not d.media_type) and not (d.platform and d.platform.os == "unknown")
    ]
