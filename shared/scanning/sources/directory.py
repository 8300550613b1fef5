"""``dir:PATH``: a root filesystem directory or a source tree, read as one layer.

The walk never follows symlinks and stays on the filesystem it starts on (like
``find -xdev``), so ``dir:/`` does not wander into /proc or network mounts.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from shared.domain.models import ImageInfo, ScanWarning
from shared.scanning.errors import ImageError
from shared.scanning.layers import Entry, EntryKind
from shared.scanning.reference import LocalRef
from shared.scanning.sources.base import ImageHandle, ImageSource, LayerRef, ScanOptions
from shared.scanning.streams import ByteBudget, Readable


@dataclass
class DirectoryHandle(ImageHandle):
    root: Path = field(default_factory=Path)

    def _opener(self, path: str, rel: str) -> Callable[[], Readable]:
        return lambda: _LazyFile(path, rel, self)

    def layer_entries(self, layer: LayerRef, budget: ByteBudget) -> Iterator[Entry]:
        root = str(self.root)
        root_dev = os.lstat(root).st_dev
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            abs_dir = os.path.join(root, rel_dir) if rel_dir else root
            try:
                with os.scandir(abs_dir) as it:
                    items = sorted(it, key=lambda d: d.name)
            except OSError as exc:
                self.warnings.append(
                    ScanWarning(
                        code="unreadable",
                        message=f"cannot list {rel_dir or '.'}: {exc.strerror}",
                        path=rel_dir or ".",
                    )
                )
                continue
            for d in items:
                rel = f"{rel_dir}/{d.name}" if rel_dir else d.name
                try:
                    st = d.stat(follow_symlinks=False)
                except OSError:
                    continue
                mode = st.st_mode
                if stat.S_ISDIR(mode):
                    if st.st_dev == root_dev:
                        stack.append(rel)
                    yield Entry(rel, EntryKind.DIR, 0, mode, "", _no_read)
                elif stat.S_ISLNK(mode):
                    try:
                        target = os.readlink(d.path)
                    except OSError:
                        continue
                    yield Entry(rel, EntryKind.SYMLINK, 0, mode, target, _no_read)
                elif stat.S_ISREG(mode):
                    yield Entry(rel, EntryKind.FILE, st.st_size, mode, "", self._opener(d.path, rel))
                else:
                    yield Entry(rel, EntryKind.OTHER, 0, mode, "", _no_read)


def _no_read() -> Readable:
    return io.BytesIO(b"")


class _LazyFile:
    """Opens a file on first read; a file that cannot be read reads as empty, with a warning."""

    def __init__(self, path: str, rel: str, handle: DirectoryHandle) -> None:
        self._path, self._rel, self._handle = path, rel, handle
        self._f: BinaryIO | None = None
        self._failed = False

    def read(self, n: int = -1, /) -> bytes:
        if self._failed:
            return b""
        try:
            if self._f is None:
                self._f = open(self._path, "rb")
            data = self._f.read(n)
        except OSError as exc:
            self._failed = True
            self._handle.warnings.append(
                ScanWarning(code="unreadable", message=f"cannot read {self._rel}: {exc.strerror}", path=self._rel)
            )
            return b""
        if not data:
            self._f.close()
        return data

    def __del__(self) -> None:
        if self._f is not None:
            self._f.close()


class DirectorySource(ImageSource):
    def __init__(self, ref: LocalRef) -> None:
        self.ref = ref

    def resolve(self, options: ScanOptions) -> list[ImageHandle]:
        root = Path(self.ref.path)
        if not root.is_dir():
            raise ImageError(self.ref.original, f"{root} is not a directory")
        info = ImageInfo(reference=self.ref.original, source="dir")
        layer = LayerRef(index=0, digest=None, diff_id=None, media_type=None, size=None)
        return [DirectoryHandle(info=info, layers=[layer], root=root.resolve())]
