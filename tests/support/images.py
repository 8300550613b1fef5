"""Build test images from real files, in memory, with nothing but tar, gzip/zstd and JSON.

Used by tests, benchmarks and the README's quickstart. An :class:`Image` is the
set of blobs plus the manifest; it can be written as an OCI image layout, as a
``docker save`` archive, or pushed to a registry over the distribution API.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

LAYER_TYPES = {
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", "none"): "application/vnd.docker.image.rootfs.diff.tar",
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class F:
    """One tar entry: a file (data), a dir, a symlink or hardlink (link), with a mode."""

    path: str
    data: bytes = b""
    kind: str = "file"  # file | dir | symlink | hardlink
    link: str = ""
    mode: int = 0o644


def file(path: str, data: bytes | str, mode: int = 0o644) -> F:
    return F(path, data.encode() if isinstance(data, str) else data, mode=mode)


def from_host(host_path: str, image_path: str | None = None) -> F:
    """A file copied from this machine (e.g. its real /var/lib/dpkg/status)."""
    p = Path(host_path)
    return F(image_path or host_path.lstrip("/"), p.read_bytes(), mode=p.stat().st_mode & 0o7777)


def tar_bytes(entries: Iterable[F]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.path)
            ti.mode = e.mode
            ti.mtime = 1700000000
            if e.kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e.mode if e.mode != 0o644 else 0o755
                tf.addfile(ti)
            elif e.kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e.link
                tf.addfile(ti)
            elif e.kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e.link
                tf.addfile(ti)
            else:
                ti.size = len(e.data)
                tf.addfile(ti, io.BytesIO(e.data))
    return buf.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


@dataclass
class Layer:
    blob: bytes
    diff_id: str
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.blob)


def layer(entries: Iterable[F], compression: str = "gzip", flavour: str = "oci") -> Layer:
    raw = tar_bytes(entries)
    return Layer(compress(raw, compression), sha256(raw), LAYER_TYPES[(flavour, compression)])


@dataclass
class Image:
    manifest: bytes
    manifest_media_type: str
    config: bytes
    layers: list[Layer]
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def image(
    layers: list[Layer],
    *,
    os: str = "linux",
    arch: str = "amd64",
    variant: str | None = None,
    flavour: str = "oci",
    history: list[str] | None = None,
) -> Image:
    config_doc: dict[str, object] = {
        "architecture": arch,
        "os": os,
        "rootfs": {"type": "layers", "diff_ids": [lay.diff_id for lay in layers]},
        "config": {},
        "history": [{"created_by": h} for h in (history or [f"layer {i}" for i in range(len(layers))])],
    }
    if variant:
        config_doc["variant"] = variant
    config = json.dumps(config_doc, sort_keys=True).encode()
    mtype = OCI_MANIFEST if flavour == "oci" else DOCKER_MANIFEST
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": mtype,
        "config": {
            "mediaType": OCI_CONFIG if flavour == "oci" else DOCKER_CONFIG,
            "digest": sha256(config),
            "size": len(config),
        },
        "layers": [{"mediaType": lay.media_type, "digest": lay.digest, "size": len(lay.blob)} for lay in layers],
    }
    manifest = json.dumps(manifest_doc, indent=2).encode()
    blobs = {sha256(config): config}
    for lay in layers:
        blobs[lay.digest] = lay.blob
    return Image(manifest, mtype, config, layers, blobs)


@dataclass
class IndexImage:
    manifest: bytes
    manifest_media_type: str
    images: list[tuple[Image, str]]  # (image, "os/arch[/variant]")

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for img, _ in self.images:
            out.update(img.blobs)
            out[img.digest] = img.manifest
        return out


def index(images: list[tuple[Image, str]], flavour: str = "oci") -> IndexImage:
    entries = []
    for img, plat in images:
        parts = plat.split("/")
        p: dict[str, str] = {"os": parts[0], "architecture": parts[1]}
        if len(parts) > 2:
            p["variant"] = parts[2]
        entries.append(
            {
                "mediaType": img.manifest_media_type,
                "digest": img.digest,
                "size": len(img.manifest),
                "platform": p,
            }
        )
    mtype = OCI_INDEX if flavour == "oci" else DOCKER_LIST
    doc = {"schemaVersion": 2, "mediaType": mtype, "manifests": entries}
    return IndexImage(json.dumps(doc, indent=2).encode(), mtype, images)


def write_oci_layout(root: Path, img: Image | IndexImage, tag: str | None = "latest") -> Path:
    """Write an OCI image layout (oci-layout, index.json, blobs/sha256/...)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    blobs = dict(img.blobs)
    blobs[img.digest] = img.manifest
    for digest, data in blobs.items():
        p = root / "blobs" / "sha256" / digest.split(":", 1)[1]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    desc: dict[str, object] = {
        "mediaType": img.manifest_media_type,
        "digest": img.digest,
        "size": len(img.manifest),
    }
    if tag:
        desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (root / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]}, indent=2)
    )
    return root


def write_docker_archive(path: Path, img: Image, repo_tag: str = "sample:latest", oci_style: bool = False) -> Path:
    """Write ``docker save`` output: legacy (<id>/layer.tar) or Docker 25+'s OCI-style (blobs/sha256/...)."""
    config_digest = sha256(img.config)
    files: list[F] = []
    layer_paths = []
    if oci_style:
        for lay in img.layers:
            files.append(F("blobs/sha256/" + lay.digest.split(":", 1)[1], lay.blob))
            layer_paths.append("blobs/sha256/" + lay.digest.split(":", 1)[1])
        config_name = "blobs/sha256/" + config_digest.split(":", 1)[1]
        files.append(F(config_name, img.config))
        files.append(F("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()))
        files.append(F("blobs/sha256/" + img.digest.split(":", 1)[1], img.manifest))
        files.append(
            F(
                "index.json",
                json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_INDEX,
                        "manifests": [
                            {
                                "mediaType": img.manifest_media_type,
                                "digest": img.digest,
                                "size": len(img.manifest),
                            }
                        ],
                    }
                ).encode(),
            )
        )
    else:
        for i, lay in enumerate(img.layers):
            # legacy archives hold uncompressed layer tars named by a layer id
            raw = _decompress(lay.blob)
            name = f"{hashlib.sha256(f'{i}{lay.diff_id}'.encode()).hexdigest()}/layer.tar"
            files.append(F(name, raw))
            layer_paths.append(name)
        config_name = config_digest.split(":", 1)[1] + ".json"
        files.append(F(config_name, img.config))
    manifest = [{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_paths}]
    files.append(F("manifest.json", json.dumps(manifest).encode()))
    path.write_bytes(tar_bytes(files))
    return path


def _decompress(blob: bytes) -> bytes:
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    return blob


def counting_handle(tmp: Path, name: str, layers: list[Layer], read: list[str]) -> Any:
    """An ImageHandle of an OCI layout of ``layers`` (written under ``tmp/name``) that appends the diff id of
    every layer it reads to ``read``: what a test of layer caching counts."""
    from shared.scanning.scanner import ScanRequest, open_source
    from shared.scanning.sources.base import ScanOptions

    layout = write_oci_layout(tmp / name, image(layers))
    (h,) = open_source(ScanRequest(f"oci:{layout}")).resolve(ScanOptions())
    original = h.layer_entries

    def counting(layer: Any, budget: Any) -> Any:
        read.append(layer.diff_id or "")
        return original(layer, budget)

    h.layer_entries = counting
    return h
