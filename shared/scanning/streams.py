"""Streaming readers: digest verification, decompression, byte budgets.

Everything here wraps a binary file-like object and is read once, front to back,
so a layer is never held whole in memory nor written to disk.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from typing import BinaryIO, Protocol

import zstandard

from shared.scanning.errors import DigestMismatch, ImageError, LimitExceeded

CHUNK = 1 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def parse_digest(digest: str, subject: str) -> tuple[str, str]:
    algo, sep, hexpart = digest.partition(":")
    if not sep or algo not in ("sha256", "sha512") or not hexpart:
        raise ImageError(subject, f"unsupported or malformed digest {digest!r}")
    want = 64 if algo == "sha256" else 128
    if len(hexpart) != want or any(c not in "0123456789abcdef" for c in hexpart):
        raise ImageError(subject, f"malformed digest {digest!r}")
    return algo, hexpart


class DigestReader(io.RawIOBase):
    """Hashes what passes through; at end of stream checks digest (and size, if known)."""

    def __init__(self, raw: Readable, digest: str | None, subject: str, size: int | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._subject = subject
        self._size = size
        self._count = 0
        self._expected: str | None = None
        self._h: hashlib._Hash | None = None
        if digest:
            algo, self._expected = parse_digest(digest, subject)
            self._h = hashlib.new(algo)
        self._digest = digest
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(b))
        n = len(data)
        if n == 0:
            self._finish()
            return 0
        b[:n] = data
        self._count += n
        if self._h is not None:
            self._h.update(data)
        if self._size is not None and self._count > self._size:
            raise DigestMismatch(self._subject, f"blob is larger than the {self._size} bytes its descriptor says")
        return n

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._size is not None and self._count != self._size:
            raise DigestMismatch(
                self._subject, f"blob is {self._count} bytes, its descriptor says {self._size} (truncated?)"
            )
        if self._h is not None and self._h.hexdigest() != self._expected:
            raise DigestMismatch(
                self._subject,
                f"digest mismatch: expected {self._digest}, got {self._h.name}:{self._h.hexdigest()}",
            )

    def drain(self) -> None:
        """Read to the end so the digest is checked even if the consumer stopped early."""
        while self.read(CHUNK):
            pass
        self._finish()

    @property
    def bytes_read(self) -> int:
        return self._count


class ByteBudget:
    """A cap on decompressed bytes across a whole image (decompression bombs)."""

    def __init__(self, limit: int, subject: str) -> None:
        self.limit = limit
        self.used = 0
        self.subject = subject

    def spend(self, n: int, where: str) -> None:
        self.used += n
        if self.used > self.limit:
            raise LimitExceeded(
                self.subject,
                f"{where}: more than {self.limit} decompressed bytes in total "
                "(possible decompression bomb; raise --max-image-bytes to allow it)",
            )


class _Decompressor(io.RawIOBase):
    """Decompresses gzip (concatenated members too) or zstd frames, counting output against a budget."""

    def __init__(self, raw: Readable, kind: str, where: str, subject: str, budget: ByteBudget | None) -> None:
        super().__init__()
        self._raw = raw
        self._kind = kind
        self._where = where
        self._subject = subject
        self._budget = budget
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._in_member = False
        self._obj: zlib._Decompress | zstandard.ZstdDecompressionObj = self._new()

    def _new(self) -> zlib._Decompress | zstandard.ZstdDecompressionObj:
        if self._kind == "gzip":
            return zlib.decompressobj(wbits=31)
        return zstandard.ZstdDecompressor().decompressobj()

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._buf and not self._eof:
            chunk = self._raw.read(CHUNK)
            if not chunk:
                self._eof = True
                if self._in_member:
                    raise ImageError(self._subject, f"{self._where}: {self._kind} stream is truncated")
                return
            try:
                self._buf = self._feed(chunk)
            except zlib.error as exc:
                raise ImageError(self._subject, f"{self._where}: corrupt gzip data ({exc})") from None
            except zstandard.ZstdError as exc:
                raise ImageError(self._subject, f"{self._where}: corrupt zstd data ({exc})") from None
            if self._budget is not None and self._buf:
                self._budget.spend(len(self._buf), self._where)

    def _feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self._in_member = True
            out.append(self._obj.decompress(data))
            if self._obj.eof:
                data = self._obj.unused_data
                self._obj = self._new()
                self._in_member = False
            else:
                data = b""
        return b"".join(out)

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._pos >= len(self._buf):
            self._buf, self._pos = b"", 0
            self._fill()
            if not self._buf:
                return 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = memoryview(self._buf)[self._pos : self._pos + n]
        self._pos += n
        return n


class _Counting(io.RawIOBase):
    def __init__(self, raw: Readable, where: str, budget: ByteBudget | None) -> None:
        super().__init__()
        self._raw = raw
        self._where = where
        self._budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(b))
        n = len(data)
        b[:n] = data
        if self._budget is not None and n:
            self._budget.spend(n, self._where)
        return n


def sniff_compression(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class _Peek(io.RawIOBase):
    """Lets us look at the first bytes of a stream without consuming them."""

    def __init__(self, raw: Readable) -> None:
        super().__init__()
        self._raw = raw
        self._head = b""

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            more = self._raw.read(n - len(self._head))
            if not more:
                break
            self._head += more
        return self._head[:n]

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(b))
        b[: len(data)] = data
        return len(data)


def decompressed(raw: Readable, where: str, subject: str, budget: ByteBudget | None = None) -> BinaryIO:
    """A buffered reader over the uncompressed layer tar, whatever its compression.

    Compression is recognised from the data's magic bytes, not the media type: a
    mislabelled layer is still read correctly, and a hostile one cannot choose
    which reader we use.
    """
    peek = _Peek(raw)
    kind = sniff_compression(peek.peek(4))
    inner: io.RawIOBase
    if kind == "none":
        inner = _Counting(peek, where, budget)
    else:
        inner = _Decompressor(peek, kind, where, subject, budget)
    return io.BufferedReader(inner, buffer_size=CHUNK)
