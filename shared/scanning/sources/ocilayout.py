"""``oci:PATH[:TAG]``: an OCI image layout directory (index.json + blobs/)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shared.domain.models import ImageInfo
from shared.scanning import mediatypes as mt
from shared.scanning.errors import ImageError
from shared.scanning.layers import Entry
from shared.scanning.manifest import (
    Descriptor,
    ImageManifest,
    Index,
    image_platforms,
    parse_config,
    parse_manifest,
    select_platform,
    verify_bytes,
)
from shared.scanning.reference import LocalRef
from shared.scanning.sources.base import ImageHandle, ImageSource, LayerRef, ScanOptions, blob_entries
from shared.scanning.streams import ByteBudget, parse_digest

REF_NAME = "org.opencontainers.image.ref.name"


class BlobStore:
    """Reads blobs by digest from ``blobs/<algorithm>/<hex>`` below a root, never outside it."""

    def __init__(self, root: Path, subject: str) -> None:
        self.root = root
        self.subject = subject

    def path(self, digest: str) -> Path:
        algo, hexpart = parse_digest(digest, self.subject)  # hex only: cannot climb out of root
        return self.root / "blobs" / algo / hexpart

    def read_small(self, desc: Descriptor, limit: int, what: str) -> bytes:
        p = self.path(desc.digest)
        try:
            size = p.stat().st_size
            if size > limit:
                raise ImageError(self.subject, f"{what} {desc.digest} is {size} bytes, over the {limit}-byte limit")
            data = p.read_bytes()
        except FileNotFoundError:
            raise ImageError(self.subject, f"{what} {desc.digest} is missing from the layout") from None
        except OSError as exc:
            raise ImageError(self.subject, f"cannot read {what} {desc.digest}: {exc.strerror}") from None
        verify_bytes(data, desc.digest, f"{self.subject}: {what}")
        return data

    def open(self, digest: str) -> BinaryIO:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError:
            raise ImageError(self.subject, f"blob {digest} is missing from the layout") from None
        except OSError as exc:
            raise ImageError(self.subject, f"cannot read blob {digest}: {exc.strerror}") from None


@dataclass
class BlobImageHandle(ImageHandle):
    store: BlobStore | None = None

    def layer_entries(self, layer: LayerRef, budget: ByteBudget) -> Iterator[Entry]:
        assert self.store is not None and layer.digest is not None
        with self.store.open(layer.digest) as f:
            yield from blob_entries(f, layer, self.info.reference, budget)


def layer_refs(manifest: ImageManifest, config_bytes: bytes, subject: str) -> list[LayerRef]:
    cfg = parse_config(config_bytes, subject)
    if len(cfg.diff_ids) != len(manifest.layers):
        raise ImageError(
            subject,
            f"manifest lists {len(manifest.layers)} layers but the config has {len(cfg.diff_ids)} diff_ids",
        )
    return [
        LayerRef(
            index=i,
            digest=d.digest,
            diff_id=cfg.diff_ids[i],
            media_type=d.media_type,
            size=d.size,
            urls=d.urls,
            created_by=cfg.layer_history[i],
        )
        for i, d in enumerate(manifest.layers)
    ]


def handles_from_store(
    store: BlobStore,
    top: Descriptor,
    options: ScanOptions,
    base_info: ImageInfo,
) -> list[ImageHandle]:
    """Resolve a top descriptor (manifest or index) in a blob store into image handles."""
    subject = base_info.reference
    data = store.read_small(top, mt.MAX_MANIFEST_BYTES, "manifest")
    doc = parse_manifest(data, top.media_type or None, subject)
    picks: list[tuple[Descriptor, str | None]]
    if isinstance(doc, Index):
        chosen = image_platforms(doc) if options.all_platforms else [select_platform(doc, options.platform, subject)]
        if not chosen:
            raise ImageError(subject, "the index lists no image manifests")
        picks = [(d, top.digest) for d in chosen]
    else:
        picks = [(top, None)]
    out: list[ImageHandle] = []
    for desc, index_digest in picks:
        if index_digest is None:
            manifest: ImageManifest | Index = doc
        else:
            manifest = parse_manifest(
                store.read_small(desc, mt.MAX_MANIFEST_BYTES, "manifest"), desc.media_type, subject
            )
        if not isinstance(manifest, ImageManifest):
            raise ImageError(subject, f"{desc.digest} is a nested index; expected an image manifest")
        config = store.read_small(manifest.config, mt.MAX_CONFIG_BYTES, "config")
        cfg = parse_config(config, subject)
        platform = "/".join(x for x in (cfg.os, cfg.architecture, cfg.variant) if x) or None
        info = base_info.model_copy(
            update={
                "digest": desc.digest,
                "index_digest": index_digest,
                "manifest_media_type": manifest.media_type,
                "config_digest": manifest.config.digest,
                "platform": platform,
            }
        )
        out.append(BlobImageHandle(info=info, layers=layer_refs(manifest, config, subject), store=store))
    return out


class OCILayoutSource(ImageSource):
    def __init__(self, ref: LocalRef) -> None:
        self.ref = ref

    def resolve(self, options: ScanOptions) -> list[ImageHandle]:
        subject = self.ref.original
        root = Path(self.ref.path)
        if not root.is_dir():
            raise ImageError(subject, f"{root} is not a directory")
        if not (root / "oci-layout").is_file() or not (root / "index.json").is_file():
            raise ImageError(subject, f"{root} is not an OCI image layout (no oci-layout or index.json)")
        try:
            raw = (root / "index.json").read_bytes()
        except OSError as exc:
            raise ImageError(subject, f"cannot read index.json: {exc.strerror}") from None
        index = parse_manifest(raw, mt.OCI_INDEX, f"{subject}: index.json")
        if not isinstance(index, Index) or not index.manifests:
            raise ImageError(subject, "index.json lists no manifests")
        if self.ref.tag:
            matches = [d for d in index.manifests if d.annotations.get(REF_NAME) == self.ref.tag]
            if not matches:
                tags = sorted({d.annotations.get(REF_NAME, "") for d in index.manifests} - {""})
                raise ImageError(subject, f"tag {self.ref.tag!r} not found (tags: {', '.join(tags) or 'none'})")
            top = matches[0]
        elif len(index.manifests) == 1:
            top = index.manifests[0]
        else:
            tags = sorted({d.annotations.get(REF_NAME, "") for d in index.manifests} - {""})
            raise ImageError(
                subject,
                f"the layout holds {len(index.manifests)} images; name one with :TAG ({', '.join(tags) or 'no tags'})",
            )
        store = BlobStore(root, subject)
        base = ImageInfo(reference=subject, source="oci", tag=self.ref.tag or top.annotations.get(REF_NAME))
        return handles_from_store(store, top, options, base)
