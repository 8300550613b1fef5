"""rpm header blobs, in the form every rpmdb backend stores them.

A stored header ("header without lead") is::

    il   uint32 BE   number of index entries
    dl   uint32 BE   length of the data store
    il x { tag uint32, type uint32, offset uint32, count uint32 }   all BE
    dl bytes of data

Every offset and count read from the blob is checked against the data store
before it is used, so a hostile blob raises :class:`RpmdbError` and nothing
else. Only the tags a scanner needs are decoded; the rest are range-checked
and skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from shared.scanning.parsers.rpm.errors import RpmdbError

#: rpm itself refuses headers with more index entries or a larger data store.
MAX_INDEX_ENTRIES = 0xFFFF
MAX_DATA_LENGTH = 0x0FFFFFFF

_PREAMBLE = struct.Struct(">II")
_ENTRY = struct.Struct(">IIII")

# Tag data types (rpmTagType).
_NULL, _CHAR, _INT8, _INT16, _INT32, _INT64, _STRING, _BIN, _STRING_ARRAY, _I18NSTRING = range(10)
_FIXED_SIZE = {_NULL: 0, _CHAR: 1, _INT8: 1, _INT16: 2, _INT32: 4, _INT64: 8, _BIN: 1}
_STRING_TYPES = frozenset({_STRING, _STRING_ARRAY, _I18NSTRING})

# Tags decoded into RpmHeader: tag -> (field, kind).
TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_SUMMARY = 1004
TAG_BUILDTIME = 1006
TAG_INSTALLTIME = 1008
TAG_SIZE = 1009
TAG_VENDOR = 1011
TAG_LICENSE = 1014
TAG_URL = 1020
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
TAG_MODULARITYLABEL = 5096

_STRING_TAGS = {
    TAG_NAME: "NAME",
    TAG_VERSION: "VERSION",
    TAG_RELEASE: "RELEASE",
    TAG_SUMMARY: "SUMMARY",
    TAG_VENDOR: "VENDOR",
    TAG_LICENSE: "LICENSE",
    TAG_URL: "URL",
    TAG_ARCH: "ARCH",
    TAG_SOURCERPM: "SOURCERPM",
    TAG_MODULARITYLABEL: "MODULARITYLABEL",
}
_INT_TAGS = {
    TAG_EPOCH: "EPOCH",
    TAG_BUILDTIME: "BUILDTIME",
    TAG_INSTALLTIME: "INSTALLTIME",
    TAG_SIZE: "SIZE",
}


@dataclass(frozen=True, slots=True)
class RpmHeader:
    """The fields of one installed package's header that a scan uses."""

    name: str
    version: str
    release: str
    epoch: int | None = None
    arch: str | None = None
    source_rpm: str | None = None
    vendor: str | None = None
    license: str | None = None
    modularity_label: str | None = None
    summary: str | None = None
    url: str | None = None
    size: int | None = None
    install_time: int | None = None
    build_time: int | None = None


def parse_header(blob: bytes) -> RpmHeader:
    """Decode one stored header. Raises :class:`RpmdbError` on anything malformed."""
    n = len(blob)
    if n < _PREAMBLE.size:
        raise RpmdbError(f"header is {n} bytes, shorter than its 8-byte preamble")
    il, dl = _PREAMBLE.unpack_from(blob, 0)
    if il == 0:
        raise RpmdbError("header has no index entries")
    if il > MAX_INDEX_ENTRIES:
        raise RpmdbError(f"header claims {il} index entries (limit {MAX_INDEX_ENTRIES})")
    if dl > MAX_DATA_LENGTH:
        raise RpmdbError(f"header claims a {dl}-byte data store (limit {MAX_DATA_LENGTH})")
    store_at = _PREAMBLE.size + il * _ENTRY.size
    if store_at + dl > n:
        raise RpmdbError(
            f"header claims {il} index entries and {dl} data bytes ({store_at + dl} bytes) but is only {n} bytes long"
        )
    store = blob[store_at : store_at + dl]

    strings: dict[int, str] = {}
    ints: dict[int, int] = {}
    for i in range(il):
        tag, typ, off, cnt = _ENTRY.unpack_from(blob, _PREAMBLE.size + i * _ENTRY.size)
        if typ > _I18NSTRING:
            raise RpmdbError(f"index entry {i} (tag {tag}) has unknown type {typ}")
        if typ in _STRING_TYPES:
            # Each string takes at least its NUL byte.
            if cnt == 0 or off >= dl or cnt > dl - off:
                raise RpmdbError(
                    f"index entry {i} (tag {tag}): {cnt} strings at offset {off} do not fit the {dl}-byte data store"
                )
        else:
            size = _FIXED_SIZE[typ] * cnt
            if off > dl or size > dl - off:
                raise RpmdbError(
                    f"index entry {i} (tag {tag}): {cnt} items of type {typ} at offset {off} "
                    f"do not fit the {dl}-byte data store"
                )
        # The first occurrence of a tag wins; later duplicates are not decoded
        # again (which also keeps the work linear in the blob's size).
        if tag in _STRING_TAGS and tag not in strings:
            if typ not in _STRING_TYPES:
                raise RpmdbError(f"tag {_STRING_TAGS[tag]} has type {typ}, not a string")
            end = store.find(b"\0", off)
            if end < 0:
                raise RpmdbError(f"tag {_STRING_TAGS[tag]}: string at offset {off} is not NUL-terminated")
            strings[tag] = store[off:end].decode("utf-8", "replace")
        elif tag in _INT_TAGS and tag not in ints:
            if typ != _INT32 or cnt == 0:
                raise RpmdbError(f"tag {_INT_TAGS[tag]} has type {typ} and count {cnt}, not an INT32")
            (ints[tag],) = struct.unpack_from(">I", store, off)

    for tag in (TAG_NAME, TAG_VERSION, TAG_RELEASE):
        if tag not in strings:
            raise RpmdbError(f"header has no {_STRING_TAGS[tag]} tag")
    return RpmHeader(
        name=strings[TAG_NAME],
        version=strings[TAG_VERSION],
        release=strings[TAG_RELEASE],
        epoch=ints.get(TAG_EPOCH),
        arch=strings.get(TAG_ARCH),
        source_rpm=strings.get(TAG_SOURCERPM),
        vendor=strings.get(TAG_VENDOR),
        license=strings.get(TAG_LICENSE),
        modularity_label=strings.get(TAG_MODULARITYLABEL),
        summary=strings.get(TAG_SUMMARY),
        url=strings.get(TAG_URL),
        size=ints.get(TAG_SIZE),
        install_time=ints.get(TAG_INSTALLTIME),
        build_time=ints.get(TAG_BUILDTIME),
    )
