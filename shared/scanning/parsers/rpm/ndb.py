"""rpm's ndb backend: ``Packages.db`` (SUSE since 15.x / Tumbleweed).

Layout, after rpm's lib/backend/ndb/rpmpkg.c (all integers little-endian)::

    header, 32 bytes     magic "RpmP", version (0), generation,
                         slot page count, next package index
    slot pages           4096-byte pages starting at offset 0; the first two
                         16-byte slots of page 0 are the header. Each slot:
                         magic "Slot", package index, block offset, block
                         count; block offset 0 marks a free slot
    blobs                at block offset * 16, block count * 16 bytes long:
                         head  magic "BlbS", package index, timestamp, length
                         the header blob, zero padding
                         tail  adler32 of everything before it, length, "BlbE"
"""

from __future__ import annotations

import struct
import zlib

from shared.scanning.parsers.rpm.errors import RpmdbError

_LE4 = struct.Struct("<I")
_HEADER = struct.Struct("<4sIIII")
_SLOT = struct.Struct("<4sIII")
_BLOB_HEAD = struct.Struct("<4sIII")
_BLOB_TAIL = struct.Struct("<III")

DB_MAGIC = b"RpmP"
SLOT_MAGIC = b"Slot"
BLOB_HEAD_MAGIC = b"BlbS"
BLOB_TAIL_MAGIC = b"BlbE"
_TAIL_MAGIC_INT = _LE4.unpack(BLOB_TAIL_MAGIC)[0]
DB_VERSION = 0
HEADER_SIZE = 32
PAGE_SIZE = 4096
SLOT_SIZE = 16
BLK_SIZE = 16


def _blob(data: bytes, pkgidx: int, blkoff: int, blkcnt: int) -> bytes:
    start = blkoff * BLK_SIZE
    end = start + blkcnt * BLK_SIZE
    if blkcnt * BLK_SIZE < _BLOB_HEAD.size + _BLOB_TAIL.size:
        raise RpmdbError(f"ndb package {pkgidx}: {blkcnt} blocks cannot hold a blob")
    magic, idx, _stamp, length = _BLOB_HEAD.unpack_from(data, start)
    if magic != BLOB_HEAD_MAGIC:
        raise RpmdbError(f"ndb package {pkgidx}: no blob at offset {start} (bad magic {magic!r})")
    if idx != pkgidx:
        raise RpmdbError(f"ndb package {pkgidx}: blob at offset {start} belongs to package {idx}")
    need = (_BLOB_HEAD.size + length + _BLOB_TAIL.size + BLK_SIZE - 1) // BLK_SIZE
    if need != blkcnt:
        raise RpmdbError(f"ndb package {pkgidx}: a {length}-byte blob needs {need} blocks, slot says {blkcnt}")
    adler, tail_length, tail_magic = _BLOB_TAIL.unpack_from(data, end - _BLOB_TAIL.size)
    if tail_magic != _TAIL_MAGIC_INT or tail_length != length:
        raise RpmdbError(f"ndb package {pkgidx}: blob at offset {start} has a bad tail")
    if zlib.adler32(data[start : end - _BLOB_TAIL.size]) != adler:
        raise RpmdbError(f"ndb package {pkgidx}: blob at offset {start} fails its checksum")
    body = start + _BLOB_HEAD.size
    return data[body : body + length]


def read_ndb(data: bytes) -> list[tuple[int, bytes]]:
    """(package index, header blob) of every package, in package index order."""
    if len(data) < HEADER_SIZE:
        raise RpmdbError(f"ndb file is {len(data)} bytes, shorter than its 32-byte header")
    magic, version, _generation, slot_pages, _next = _HEADER.unpack_from(data, 0)
    if magic != DB_MAGIC:
        raise RpmdbError(f"not an rpm ndb database (bad magic {magic!r})")
    if version != DB_VERSION:
        raise RpmdbError(f"ndb version {version} is not supported (only {DB_VERSION})")
    if slot_pages == 0 or slot_pages > len(data) // PAGE_SIZE:
        raise RpmdbError(
            f"ndb header claims {slot_pages} slot pages but the file holds {len(data) // PAGE_SIZE} (truncated?)"
        )
    file_blocks = len(data) // BLK_SIZE
    first_blob_block = slot_pages * (PAGE_SIZE // BLK_SIZE)

    slots: list[tuple[int, int, int]] = []  # (blkoff, blkcnt, pkgidx)
    seen: set[int] = set()
    for at in range(HEADER_SIZE, slot_pages * PAGE_SIZE, SLOT_SIZE):
        smagic, pkgidx, blkoff, blkcnt = _SLOT.unpack_from(data, at)
        if smagic != SLOT_MAGIC:
            raise RpmdbError(f"ndb slot at offset {at} has bad magic {smagic!r}")
        if blkoff == 0:
            continue  # free slot
        if pkgidx == 0 or blkcnt == 0 or blkoff < first_blob_block:
            raise RpmdbError(f"ndb slot at offset {at} is invalid (package {pkgidx}, blocks {blkoff}+{blkcnt})")
        if blkoff + blkcnt > file_blocks:
            raise RpmdbError(
                f"ndb slot at offset {at}: package {pkgidx} at blocks {blkoff}+{blkcnt} "
                f"runs past the end of the file ({file_blocks} blocks; truncated?)"
            )
        if pkgidx in seen:
            raise RpmdbError(f"ndb package {pkgidx} has two slots")
        seen.add(pkgidx)
        slots.append((blkoff, blkcnt, pkgidx))

    # Blobs never overlap; refusing overlaps also bounds the work to the file's size.
    slots.sort()
    end = first_blob_block
    for blkoff, blkcnt, pkgidx in slots:
        if blkoff < end:
            raise RpmdbError(f"ndb package {pkgidx}: blob at block {blkoff} overlaps the one before it")
        end = blkoff + blkcnt

    out = [(pkgidx, _blob(data, pkgidx, blkoff, blkcnt)) for blkoff, blkcnt, pkgidx in slots]
    out.sort(key=lambda kv: kv[0])
    return out
