"""Streaming readers: digest verification, decompression, byte budgets.

Everything here wraps a binary file-like object and is read once, front to back,
so a layer is never held whole in memory nor written to disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
import zlib
from collections.abc import Callable
from typing import BinaryIO, Protocol, cast

import zstandard

from shared.scanning.errors import DigestMismatch, ImageError, LimitExceeded

CHUNK = 1 << 20
#: Most bytes one inflate call of a gzip layer makes (see _Decompressor._step).
MAX_INFLATE = 2 * CHUNK

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

    def __init__(
        self, raw: Readable, kind: str, where: str, subject: str, budget: ByteBudget | None, read_size: int = CHUNK
    ) -> None:
        super().__init__()
        self._raw = raw
        self._read_size = read_size
        self._kind = kind
        self._where = where
        self._subject = subject
        self._budget = budget
        self._buf = b""
        self._pos = 0
        self._pending = b""  # input read but not yet inflated
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
            if not self._pending:
                chunk = self._raw.read(self._read_size)
                if not chunk:
                    self._eof = True
                    if self._in_member:
                        raise ImageError(self._subject, f"{self._where}: {self._kind} stream is truncated")
                    return
                self._pending = chunk
            try:
                self._buf = self._step()
            except zlib.error as exc:
                raise ImageError(self._subject, f"{self._where}: corrupt gzip data ({exc})") from None
            except zstandard.ZstdError as exc:
                raise ImageError(self._subject, f"{self._where}: corrupt zstd data ({exc})") from None
            if self._budget is not None and self._buf:
                self._budget.spend(len(self._buf), self._where)

    def _step(self) -> bytes:
        """Inflate some of the pending input: for gzip at most MAX_INFLATE bytes of output, whatever the input
        (a megabyte of deflated zeros is a gigabyte of output: a bomb is stopped by the budget before it is
        held); zstd's binding has no such bound, so its output is what the pending input gives."""
        data = self._pending
        self._in_member = True
        obj = self._obj
        if self._kind == "gzip":
            z = cast("zlib._Decompress", obj)
            out = z.decompress(data, MAX_INFLATE)
            rest = z.unconsumed_tail
        else:
            out = obj.decompress(data)
            rest = b""
        if obj.eof:
            self._pending = obj.unused_data  # the next gzip member or zstd frame, if the stream has one
            self._obj = self._new()
            self._in_member = False
        else:
            self._pending = rest
        return out

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

    def block(self) -> bytes:
        """The next piece of output, as one read of the input inflated to (no copy); b"" at the end."""
        if self._pos >= len(self._buf):
            self._buf = b""
            self._fill()
            out = self._buf
        else:
            out = self._buf[self._pos :]
        self._buf, self._pos = b"", 0
        return out


class _Counting(io.RawIOBase):
    def __init__(self, raw: Readable, where: str, budget: ByteBudget | None, read_size: int = CHUNK) -> None:
        super().__init__()
        self._raw = raw
        self._where = where
        self._budget = budget
        self._read_size = read_size

    def readable(self) -> bool:
        return True

    def block(self) -> bytes:
        """The next piece of the stream; b"" at the end."""
        data = self._raw.read(self._read_size)
        if self._budget is not None and data:
            self._budget.spend(len(data), self._where)
        return data

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
    return io.BufferedReader(_uncompressed(raw, where, subject, budget), buffer_size=CHUNK)


def _uncompressed(
    raw: Readable, where: str, subject: str, budget: ByteBudget | None, read_size: int = CHUNK
) -> _Decompressor | _Counting:
    peek = _Peek(raw)
    kind = sniff_compression(peek.peek(4))
    if kind == "none":
        return _Counting(peek, where, budget, read_size)
    return _Decompressor(peek, kind, where, subject, budget, read_size)


#: Compressed bytes a read-ahead thread reads at a time: one inflate call each, long enough that the time the
#: thread then waits for the GIL (up to the interpreter's switch interval, 5 ms) is small beside it.
#: On the 1G benchmark image, 2 MiB with one piece waiting scanned as fast as 4 MiB with two (10.3 s and 10.5 s,
#: against 12.9 s read in line; medians of 3 alternated) and peaked 14 MB lower (122 MB against 136 MB).
READ_AHEAD_BYTES = 2 * CHUNK


def decompressed_ahead(raw: Readable, where: str, subject: str, budget: ByteBudget | None = None) -> ReadAhead:
    """What ``decompressed`` reads, read and inflated ahead on a thread of its own (see ReadAhead); wrap it in an
    ``io.BufferedReader`` to read it in small pieces, and close it when done."""
    return ReadAhead(_uncompressed(raw, where, subject, budget, READ_AHEAD_BYTES).block)


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ReadAhead(io.RawIOBase):
    """Reads a stream on a thread of its own, a few chunks ahead of the consumer.

    Reading a layer blob, hashing it and inflating it release the GIL (file and socket reads, hashlib on large
    buffers, zlib and zstd); walking the tar and analysing files hold it. With this reader the first kind runs
    on a second core while the consumer does the second, instead of the two taking turns. What the inner stream
    raises (a corrupt stream, a digest mismatch at its end, a byte budget spent) is raised to the consumer at
    the point of the stream where it happened, after every byte before it. ``close`` stops the thread, whether
    or not the stream was read to its end. ``blocks`` gives the stream's successive pieces, b"" at its end.
    Memory: at most ``depth`` pieces waiting, one being read and one being made.
    """

    _EOF = object()

    def __init__(self, blocks: Callable[[], bytes], *, depth: int = 1) -> None:
        super().__init__()
        self._blocks = blocks
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buf = b""
        self._pos = 0
        self._over = False
        self._thread = threading.Thread(target=self._produce, name="hullwatch-layer-read-ahead", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while True:
                data = self._blocks()
                if not self._put(data or self._EOF) or not data:
                    return  # closed by the consumer, or the end of the stream handed over
        except BaseException as exc:  # handed to the consumer, raised where it reads up to here
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._pos >= len(self._buf):
            if self._over:
                return 0
            item = self._queue.get()
            if item is self._EOF:
                self._over = True
                return 0
            if isinstance(item, BaseException):
                self._over = True
                raise item
            assert isinstance(item, bytes)
            self._buf, self._pos = item, 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = memoryview(self._buf)[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self._buf = b""
        super().close()
