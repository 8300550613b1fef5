"""Reading chosen members of a zip archive without :mod:`zipfile`'s per-entry objects.

:class:`zipfile.ZipFile` builds a ``ZipInfo`` for every entry of the central
directory before anything can be read: for a Java application's archives (tens
of thousands of ``.class`` entries, of which a scanner wants a handful) that was
most of the time spent outside decompression. Here the central directory is
walked once, every entry counted, and only the entries a caller asks for (by
raw name) are kept; members are then read straight from their local headers.
Only what Java itself reads is read: stored and deflated members, unencrypted.

The checks are zipfile's: the end records and zip64 end records, archives with
data in front of them (a launch script before a Spring Boot jar), the local
header's signature and name against the central directory, the inflated size
and the CRC-32 of a member read whole. Anything malformed raises
:class:`zipfile.BadZipFile` (or :class:`EOFError` for a member cut short), as
zipfile does, so callers handle one family of errors either way.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import NamedTuple

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
#: signature, versions (made by, needed), flags, method, time, date, CRC-32, sizes (compressed, not), lengths of
#: name, extra field and comment, disk, attributes (internal, external), offset of the local header
_CENTRAL_HEADER = struct.Struct("<4s6H3L5H2L")
#: signature, version needed, flags, method, time, date, CRC-32, sizes, lengths of name and extra field
LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_ZIP64_EXTRA = 0x0001
_ENCRYPTED = 0x1
_UTF8_NAME = 0x800


class Entry(NamedTuple):
    """One central-directory entry a caller asked for."""

    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    size: int
    #: where the local header starts in the data (data in front of the archive accounted for)
    offset: int
    raw_name: bytes


def end_of_central_directory(data: bytes) -> tuple[int, int, int]:
    """(start, end, offset shift) of the central directory: where it is, and what to add to the offsets the archive
    states (non-zero when something was prepended to the archive). Raises BadZipFile."""
    pos = data.rfind(_EOCD, max(0, len(data) - 22 - 0xFFFF))
    if pos < 0 or pos + 22 > len(data):
        raise zipfile.BadZipFile("File is not a zip file")
    size, stated = struct.unpack_from("<LL", data, pos + 12)
    end = pos
    if pos >= 20 and data[pos - 20 : pos - 16] == _ZIP64_LOCATOR:
        z = pos - 20 - 56
        if z < 0 or data[z : z + 4] != _ZIP64_EOCD:
            raise zipfile.BadZipFile("Corrupt zip64 end of central directory record")
        size, stated = struct.unpack_from("<QQ", data, z + 40)
        end = z
    start = end - size
    if start < 0:
        raise zipfile.BadZipFile("Bad size for central directory")
    return start, end, start - stated


def entries(data: bytes, wanted: Callable[[bytes], bool], stop_after: int) -> tuple[int, list[Entry]]:
    """(number of entries, the entries whose raw name ``wanted`` accepts), in directory order.

    Counting stops past ``stop_after`` entries (the count is then ``stop_after + 1`` and the list
    incomplete): a directory's declared count is not trusted, the entries are. Raises BadZipFile.
    """
    start, end, shift = end_of_central_directory(data)
    unpack = _CENTRAL_HEADER.unpack_from
    head = _CENTRAL_HEADER.size
    out: list[Entry] = []
    p = start
    n = 0
    while p < end:
        if n > stop_after:
            return n, out
        if p + head > end:
            raise zipfile.BadZipFile("Truncated central directory")
        (sig, _, _, flags, method, _, _, crc, csize, size, nlen, xlen, clen, _, _, _, offset) = unpack(data, p)
        if sig != _CENTRAL:
            raise zipfile.BadZipFile("Bad magic number for central directory")
        name_at = p + head
        p = name_at + nlen + xlen + clen
        if p > end:
            raise zipfile.BadZipFile("Truncated central directory")
        n += 1
        raw = data[name_at : name_at + nlen]
        if not wanted(raw):
            continue
        if 0xFFFFFFFF in (csize, size, offset):
            size, csize, offset = _zip64_values(data[name_at + nlen : name_at + nlen + xlen], size, csize, offset)
        out.append(Entry(_name(raw, flags), method, flags, crc, csize, size, offset + shift, raw))
    return n, out


def _name(raw: bytes, flags: int) -> str:
    """An entry's name: UTF-8 where its flags say so, else code page 437 (which decodes any bytes)."""
    if not flags & _UTF8_NAME:
        return raw.decode("cp437")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise zipfile.BadZipFile(f"Entry name {raw!r} is flagged UTF-8 but is not") from None


def _zip64_values(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    """The sizes and offset an entry's zip64 extra field holds in place of the 0xFFFFFFFF it states.

    The field holds, in this order, the size, the compressed size and the offset, each only where the
    central header says 0xFFFFFFFF."""
    i = 0
    while i + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, i)
        if tag == _ZIP64_EXTRA:
            body = extra[i + 4 : i + 4 + length]
            values = [size, csize, offset]
            at = 0
            for k in range(3):
                if values[k] == 0xFFFFFFFF:
                    if at + 8 > len(body):
                        raise zipfile.BadZipFile("Corrupt zip64 extra field")
                    (values[k],) = struct.unpack_from("<Q", body, at)
                    at += 8
            return values[0], values[1], values[2]
        i += 4 + length
    return size, csize, offset


def local_header(header: bytes) -> tuple[int, int, int]:
    """(flags, name length, extra length) of a member's local header, after checking its signature."""
    if len(header) != LOCAL_HEADER.size:
        raise zipfile.BadZipFile("Truncated file header")
    fields = LOCAL_HEADER.unpack(header)
    if fields[0] != _LOCAL:
        raise zipfile.BadZipFile("Bad magic number for file header")
    return fields[2], fields[9], fields[10]


def check_local_name(raw_name: bytes, flags: int, expected: str) -> None:
    """That a local header names the member the central directory does (``flags``: the local header's)."""
    if _name(raw_name, flags) != expected:
        raise zipfile.BadZipFile(f"File name in directory {expected!r} and header {raw_name!r} differ.")


def inflate(raw: bytes, method: int, size: int, crc: int, limit: int, *, whole: bool = True) -> bytes:
    """A member's content from its stored bytes: at most ``limit + 1`` bytes (so that more than ``limit`` shows).

    ``whole``: the caller wants the whole member, whose inflated size and CRC-32 are then checked (when it fits
    the limit); otherwise a prefix is enough and nothing past it is inflated.
    """
    if method == zipfile.ZIP_DEFLATED:
        d = zlib.decompressobj(-15)
        try:
            data = d.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise zipfile.BadZipFile(f"Corrupt deflated data ({exc})") from None
        if whole and len(data) <= limit and not d.eof:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
    elif method == zipfile.ZIP_STORED:
        data = raw[: limit + 1]
    else:
        raise NotImplementedError(f"compression method {method}")
    if whole and len(data) <= limit and (len(data) != size or zlib.crc32(data) != crc):
        raise zipfile.BadZipFile("Bad CRC-32 or size")
    return data


def read(data: bytes, entry: Entry, limit: int, *, whole: bool = True) -> bytes:
    """A member of an archive in memory, as :func:`inflate` gives it. Raises BadZipFile, EOFError,
    NotImplementedError (encrypted, or compressed other than stored or deflated)."""
    if entry.flags & _ENCRYPTED:
        raise NotImplementedError("encrypted")
    at = entry.offset
    if at < 0:
        raise zipfile.BadZipFile("Bad offset for file header")
    flags, nlen, xlen = local_header(data[at : at + LOCAL_HEADER.size])
    name_at = at + LOCAL_HEADER.size
    check_local_name(data[name_at : name_at + nlen], flags, entry.name)
    begin = at + LOCAL_HEADER.size + nlen + xlen
    csize = entry.compressed_size
    if entry.method == zipfile.ZIP_STORED and not whole:
        csize = min(csize, limit + 1)  # a prefix of a stored member: only that much is needed
    # Fewer bytes than the directory states are not refused here: like Java and zipfile, a deflated member is
    # read up to the end of its stream, which inflate checks is there, as the size and CRC-32 of the content.
    raw = data[begin : begin + csize]
    return inflate(raw, entry.method, entry.size, entry.crc, limit, whole=whole)
