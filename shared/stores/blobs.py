"""Blob storage on the local filesystem: the embedded default for inventories and layer results.

Keys are ``/``-separated names (``inventories/sha256/ab12....json``). Each
segment is sanitised before it becomes a path: anything but letters, digits,
``.``, ``_`` and ``-`` is percent-encoded, and the segments ``.`` and ``..``
(and empty ones) are refused, so no key can name a file outside the root
directory, whatever an event or a stored document contains. Writes go to a
temporary file that replaces the target, so a reader never sees half a blob.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from shared.errors import InputError

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_KEY_LENGTH = 1024
#: Bytes per read when a file is copied into or out of the store.
COPY_CHUNK = 1024 * 1024


class BlobKeyError(InputError):
    """A blob key that cannot name a file under the store's root."""


def _segment(seg: str, key: str) -> str:
    if seg in ("", ".", ".."):
        raise BlobKeyError(repr(key), f"not a usable blob key (segment {seg!r})")
    return _SAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), seg)


class LocalBlobStore:
    """Files under ``root``. Counts its reads and writes (tests and benchmarks use them)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.get_count = 0
        self.put_count = 0
        self._lock = threading.Lock()

    def path_for(self, key: str) -> Path:
        """The file a key is stored in; raises BlobKeyError for a key that would leave the root."""
        if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise BlobKeyError(repr(key[:80]), "not a usable blob key (empty, too long or with NUL)")
        if key.startswith("/") or "\\" in key:
            raise BlobKeyError(repr(key), "not a usable blob key (absolute or with a backslash)")
        parts = [_segment(s, key) for s in key.split("/")]
        path = self.root.joinpath(*parts)
        # belt and braces: the sanitised path must still be inside the root
        if not path.resolve().is_relative_to(self.root):
            raise BlobKeyError(repr(key), "not a usable blob key (resolves outside the store)")
        return path

    def put(self, key: str, data: bytes) -> None:
        self._write(key, lambda f: f.write(data))

    def put_file(self, key: str, path: Path) -> None:
        """Store a file's content, copied in chunks (never whole in memory)."""
        with Path(path).open("rb") as src:
            self._write(key, lambda f: shutil.copyfileobj(src, f, COPY_CHUNK))

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".blob-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self.put_count += 1

    def get(self, key: str) -> bytes | None:
        path = self.path_for(key)
        with self._lock:
            self.get_count += 1
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def get_file(self, key: str, path: Path) -> bool:
        """Copy a blob to ``path`` in chunks; False (``path`` untouched) when there is no such blob."""
        source = self.path_for(key)
        with self._lock:
            self.get_count += 1
        try:
            src = source.open("rb")
        except FileNotFoundError:
            return False
        with src, Path(path).open("wb") as out:
            shutil.copyfileobj(src, out, COPY_CHUNK)
        return True
