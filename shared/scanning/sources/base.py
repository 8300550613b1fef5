"""The source contract: an image is a list of layers, each readable once as entries.

A source resolves what the user named into one or more :class:`ImageHandle`
(several with ``--all-platforms``). The scanner asks a handle for each layer's
entries in order; blob-backed sources share :func:`blob_entries`, which checks
the blob's digest as it streams and caps decompressed bytes.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from shared.domain.models import ImageInfo, ScanWarning
from shared.scanning.layers import Entry, iter_tar
from shared.scanning.manifest import Platform
from shared.scanning.streams import CHUNK, ByteBudget, DigestReader, Readable, cores, decompressed, decompressed_ahead


@dataclass(frozen=True)
class LayerRef:
    index: int
    digest: str | None
    diff_id: str | None
    media_type: str | None
    size: int | None
    urls: tuple[str, ...] = ()
    created_by: str | None = None

    @property
    def label(self) -> str:
        ident = self.diff_id or self.digest or "?"
        return f"layer {self.index} ({ident})"


@dataclass(frozen=True)
class ScanOptions:
    platform: Platform | None = None
    all_platforms: bool = False
    max_image_bytes: int = 8 * 1024**3


@dataclass
class ImageHandle(ABC):
    info: ImageInfo
    layers: list[LayerRef]
    warnings: list[ScanWarning] = field(default_factory=list)

    @abstractmethod
    def layer_entries(self, layer: LayerRef, budget: ByteBudget) -> Iterator[Entry]:
        """Entries of one layer, in archive order. Raises ImageError on a bad layer."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or files."""


class ImageSource(ABC):
    @abstractmethod
    def resolve(self, options: ScanOptions) -> list[ImageHandle]:
        """The image(s) to scan. Raises ImageError when nothing can be resolved."""


#: Layer blobs are read ahead on a thread of their own where there is more than one core (see ReadAhead).
READ_AHEAD = True


def blob_entries(
    raw: Readable,
    layer: LayerRef,
    subject: str,
    budget: ByteBudget,
) -> Iterator[Entry]:
    """Entries of a layer blob: digest-checked, decompressed, walked, then drained.

    The digest is checked when the stream ends: entries already yielded came
    from bytes that may later prove wrong, so the scan result must not be used
    when this raises (the scanner turns the error into a failed scan).
    """
    checked = DigestReader(raw, layer.digest, subject=f"{subject}: {layer.label}", size=layer.size)
    ahead = None
    if READ_AHEAD and cores() > 1:
        # reading, hashing and inflating the blob on a second core while this one walks the tar
        ahead = decompressed_ahead(checked, layer.label, subject, budget)
        stream: BinaryIO = io.BufferedReader(ahead, buffer_size=CHUNK)
    else:
        stream = decompressed(checked, layer.label, subject, budget)
    try:
        yield from iter_tar(stream, layer.label, subject)
        # tar's end-of-archive blocks may leave padding unread: drain it so the
        # decompressor and the digest both see every byte.
        while stream.read(1 << 20):
            pass
    finally:
        if ahead is not None:
            ahead.close()
    checked.drain()
