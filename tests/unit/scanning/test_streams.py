"""Layer streams: reading ahead on a thread, and inflating with a bound on what one step holds."""

from __future__ import annotations

import gzip
import io
import threading
import tracemalloc
import zlib

import pytest

from shared.scanning.errors import ImageError, LimitExceeded
from shared.scanning.streams import (
    MAX_INFLATE,
    ByteBudget,
    ReadAhead,
    decompressed,
    decompressed_ahead,
)

MiB = 1 << 20


def blocks_of(pieces: list[bytes | BaseException]) -> tuple[list[int], object]:
    """A block function giving ``pieces`` in order (raising the exceptions among them), and a count of calls."""
    calls = [0]
    it = iter(pieces)

    def blocks() -> bytes:
        calls[0] += 1
        p = next(it, b"")
        if isinstance(p, BaseException):
            raise p
        return p

    return calls, blocks


def read_all(r: io.RawIOBase, size: int = 7) -> bytes:
    out = bytearray()
    while chunk := r.read(size):
        out += chunk
    return bytes(out)


def test_read_ahead_gives_the_stream_as_it_is() -> None:
    pieces: list[bytes | BaseException] = [bytes([i]) * (i * 100 + 1) for i in range(30)]
    _, blocks = blocks_of(pieces)
    r = ReadAhead(blocks)  # type: ignore[arg-type]
    assert read_all(r) == b"".join(p for p in pieces if isinstance(p, bytes))
    r.close()


def test_an_error_reaches_the_consumer_after_every_byte_before_it() -> None:
    boom = ImageError("img", "layer 0: corrupt gzip data")
    _, blocks = blocks_of([b"abc", b"def", boom, b"never"])
    r = ReadAhead(blocks)  # type: ignore[arg-type]
    assert r.read(3) == b"abc" and r.read(3) == b"def"
    with pytest.raises(ImageError, match="corrupt gzip") as raised:
        r.read(3)
    assert raised.value is boom
    assert r.read(3) == b"", "and nothing after it"
    r.close()


def test_closing_early_stops_the_thread_and_reads_no_further() -> None:
    calls, blocks = blocks_of([b"x" * 10] * 10_000)
    before = {t.ident for t in threading.enumerate()}
    r = ReadAhead(blocks, depth=2)  # type: ignore[arg-type]
    assert r.read(5) == b"xxxxx"
    r.close()
    assert calls[0] < 10, "a few blocks ahead at most, not the whole stream"
    assert {t.ident for t in threading.enumerate()} == before, "the reader thread is gone"
    n = calls[0]
    assert r.closed and calls[0] == n


def test_the_read_ahead_stream_is_the_in_line_one() -> None:
    payload = b"".join(i.to_bytes(4, "big") for i in range(2_000_000))  # 8 MB, several inflate steps
    blob = gzip.compress(payload, 1) + gzip.compress(b"second member", 1)
    inline = decompressed(io.BytesIO(blob), "layer 0", "img").read()
    ahead = decompressed_ahead(io.BytesIO(blob), "layer 0", "img")
    try:
        assert read_all(ahead, MiB) == inline == payload + b"second member"
    finally:
        ahead.close()


@pytest.mark.parametrize("ahead", [False, True])
def test_a_truncated_gzip_layer_says_so_either_way(ahead: bool) -> None:
    blob = gzip.compress(bytes(range(256)) * 4000)[:-100]
    with pytest.raises(ImageError, match="layer 0: gzip stream is truncated"):
        if ahead:
            r = decompressed_ahead(io.BytesIO(blob), "layer 0", "img")
            try:
                read_all(r, MiB)
            finally:
                r.close()
        else:
            decompressed(io.BytesIO(blob), "layer 0", "img").read()


def _zeros_bomb(inflated: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block = bytes(MiB)
    return b"".join([*(c.compress(block) for _ in range(inflated // MiB)), c.flush()])


def test_a_gzip_bomb_is_stopped_by_the_budget_without_being_held() -> None:
    bomb = _zeros_bomb(512 * MiB)
    assert len(bomb) < MiB, "one read of the input: inflated in one call it would be 512 MiB at once"
    tracemalloc.start()
    try:
        stream = decompressed(io.BytesIO(bomb), "layer 0", "img", ByteBudget(64 * MiB, "img"))
        with pytest.raises(LimitExceeded, match="decompression bomb"):
            while stream.read(MiB):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_INFLATE, f"peak {peak / MiB:.0f} MiB: output is inflated a bounded step at a time"
