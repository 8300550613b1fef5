"""Berkeley DB hash databases: rpm's ``Packages`` before 4.16 (RHEL/CentOS 5-8, Amazon Linux 2).

Layout, as Berkeley DB writes it (all integers in the byte order of the
machine that created the file, told apart by the metadata page's magic)::

    page 0, hash metadata         offset 12 magic 0x061561, 20 page size,
                                  24 encryption algorithm, 25 page type (8),
                                  26 meta flags (bit 0: page checksums),
                                  32 last page number
    every other page              0 LSN (8), 8 page number, 12 previous page,
                                  16 next page, 20 entries (u16),
                                  22 high free offset / bytes used (u16),
                                  24 level, 25 page type
                                  + 6 bytes when pages carry checksums

Hash pages (type 13, or 2 in old releases) hold ``entries`` 2-byte offsets
right after the page header: alternately a key and its data item. An item
runs from its offset to the previous item's offset (the first to the page's
end); its first byte is its kind: 1 = data inline, 3 = stored off-page in a
chain of overflow pages (type 7), described by 12 bytes (kind, 3 unused, first
page number u32, total length u32). An overflow page holds as many data bytes
as its "bytes used" field says, starting right after the page header.

rpm keys ``Packages`` by the package's instance number (a native 4-byte
integer); key 0 holds a counter, not a header.
"""

from __future__ import annotations

import struct

from shared.scanning.parsers.rpm.errors import RpmdbError

HASH_MAGIC = 0x061561
P_HASH_UNSORTED = 2
P_OVERFLOW = 7
P_HASHMETA = 8
P_HASH = 13
H_KEYDATA = 1
H_DUPLICATE = 2
H_OFFPAGE = 3
H_OFFDUP = 4

_PAGE_HEADER = 26
_CHECKSUM_EXTRA = 6
_META_CHECKSUM = 0x01
_META_SIZE = 72
_VALID_PAGE_SIZES = frozenset(1 << n for n in range(9, 17))  # 512 .. 65536
_OFFPAGE_SIZE = 12


class _Db:
    def __init__(self, data: bytes) -> None:
        if len(data) < _META_SIZE:
            raise RpmdbError(f"Berkeley DB file is {len(data)} bytes, shorter than its metadata page")
        if struct.unpack_from("<I", data, 12)[0] == HASH_MAGIC:
            self.order = "<"
        elif struct.unpack_from(">I", data, 12)[0] == HASH_MAGIC:
            self.order = ">"
        else:
            raise RpmdbError("not a Berkeley DB hash database (bad magic)")
        self.data = data
        self.page_size = self._u32(data, 20)
        if self.page_size not in _VALID_PAGE_SIZES:
            raise RpmdbError(f"Berkeley DB page size {self.page_size} is not a power of two in 512..65536")
        if data[24] != 0:
            raise RpmdbError("Berkeley DB database is encrypted")
        if data[25] != P_HASHMETA:
            raise RpmdbError(f"Berkeley DB metadata page has type {data[25]}, not hash metadata")
        self.overhead = _PAGE_HEADER + (_CHECKSUM_EXTRA if data[26] & _META_CHECKSUM else 0)
        self.last_page = self._u32(data, 32)
        pages = len(data) // self.page_size
        if self.last_page >= pages:
            raise RpmdbError(
                f"Berkeley DB metadata names page {self.last_page} as the last, "
                f"but the file holds only {pages} pages of {self.page_size} bytes (truncated?)"
            )
        # Overflow pages already taken by an item: a page in two chains, or
        # twice in one, is corruption, and refusing it bounds the work.
        self.used_overflow: set[int] = set()

    def _u32(self, buf: bytes, at: int) -> int:
        value: int = struct.unpack_from(self.order + "I", buf, at)[0]
        return value

    def _u16(self, buf: bytes, at: int) -> int:
        value: int = struct.unpack_from(self.order + "H", buf, at)[0]
        return value

    def page(self, pgno: int) -> bytes:
        if pgno == 0 or pgno > self.last_page:
            raise RpmdbError(f"Berkeley DB page number {pgno} is out of range 1..{self.last_page}")
        start = pgno * self.page_size
        return self.data[start : start + self.page_size]

    def items(self, pgno: int, page: bytes) -> list[bytes]:
        """The items of a hash page, in index order."""
        entries = self._u16(page, 20)
        if self.overhead + 2 * entries > self.page_size:
            raise RpmdbError(f"Berkeley DB page {pgno} claims {entries} entries, more than fit a page")
        if entries % 2:
            raise RpmdbError(f"Berkeley DB page {pgno} has an odd number of entries ({entries})")
        floor = self.overhead + 2 * entries
        out: list[bytes] = []
        end = self.page_size
        for i in range(entries):
            start = self._u16(page, self.overhead + 2 * i)
            if start < floor or start >= end:
                raise RpmdbError(f"Berkeley DB page {pgno}: item {i} at offset {start} is outside {floor}..{end - 1}")
            out.append(page[start:end])
            end = start
        return out

    def overflow(self, pgno: int, first: int, length: int) -> bytes:
        """The bytes of an off-page item whose chain starts at page ``first``."""
        if length > len(self.data):
            raise RpmdbError(f"Berkeley DB page {pgno}: off-page item claims {length} bytes, more than the file")
        parts: list[bytes] = []
        got = 0
        cur = first
        while cur != 0:
            if cur in self.used_overflow:
                raise RpmdbError(f"Berkeley DB overflow chain from page {pgno} revisits page {cur} (cycle)")
            self.used_overflow.add(cur)
            page = self.page(cur)
            if page[25] != P_OVERFLOW:
                raise RpmdbError(f"Berkeley DB page {cur} in an overflow chain has type {page[25]}")
            used = self._u16(page, 22)
            if used > self.page_size - self.overhead:
                raise RpmdbError(f"Berkeley DB overflow page {cur} claims {used} bytes, more than fit a page")
            got += used
            if got > length:
                raise RpmdbError(f"Berkeley DB overflow chain from page {pgno} runs past its {length} bytes")
            parts.append(page[self.overhead : self.overhead + used])
            cur = self._u32(page, 16)
        if got != length:
            raise RpmdbError(f"Berkeley DB overflow chain from page {pgno} holds {got} of its {length} bytes")
        return b"".join(parts)

    def item_bytes(self, pgno: int, item: bytes) -> bytes:
        kind = item[0]
        if kind == H_KEYDATA:
            return item[1:]
        if kind == H_OFFPAGE:
            if len(item) < _OFFPAGE_SIZE:
                raise RpmdbError(f"Berkeley DB page {pgno}: off-page item is {len(item)} bytes, not 12")
            return self.overflow(pgno, self._u32(item, 4), self._u32(item, 8))
        if kind in (H_DUPLICATE, H_OFFDUP):
            raise RpmdbError(f"Berkeley DB page {pgno} holds duplicate data, which rpm never writes")
        raise RpmdbError(f"Berkeley DB page {pgno}: unknown item kind {kind}")


def read_bdb(data: bytes) -> list[tuple[int, bytes]]:
    """(instance number, header blob) of every package, in instance order."""
    db = _Db(data)
    out: list[tuple[int, bytes]] = []
    for pgno in range(1, db.last_page + 1):
        page = db.page(pgno)
        if page[25] not in (P_HASH, P_HASH_UNSORTED):
            continue  # overflow pages are read through their chains; others hold no items
        if db._u32(page, 8) != pgno:
            raise RpmdbError(f"Berkeley DB page {pgno} says it is page {db._u32(page, 8)}")
        items = db.items(pgno, page)
        for key_item, value_item in zip(items[::2], items[1::2], strict=True):
            key = db.item_bytes(pgno, key_item)
            if len(key) != 4:
                raise RpmdbError(f"Berkeley DB page {pgno}: key of {len(key)} bytes, not a 4-byte package number")
            instance = db._u32(key, 0)
            value = db.item_bytes(pgno, value_item)
            if instance == 0:
                continue  # rpm's record of the next instance number
            out.append((instance, value))
    out.sort(key=lambda kv: kv[0])
    return out
