"""shared.zipread against zipfile: the same entries and bytes, and the same refusals of broken archives."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import zipread

_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1, max_size=30
).filter(lambda n: not n.endswith("/"))
_members = st.lists(
    st.tuples(_names, st.binary(max_size=3000), st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])),
    max_size=8,
    unique_by=lambda m: m[0],
)


def build(members: list[tuple[str, bytes, int]], prefix: bytes = b"") -> bytes:
    buf = io.BytesIO()
    buf.write(prefix)
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content, method in members:
            zf.writestr(zipfile.ZipInfo(name), content, compress_type=method)
    return buf.getvalue()


def by_zipfile(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def by_zipread(data: bytes, limit: int = 1 << 20) -> list[tuple[str, bytes]]:
    n, entries = zipread.entries(data, lambda _raw: True, 1000)
    assert n == len(entries)
    return [(e.name, zipread.read(data, e, limit)) for e in entries]


@settings(max_examples=150, deadline=None)
@given(_members, st.sampled_from([b"", b'#!/bin/sh\nexec java -jar "$0" "$@"\n']))
def test_entries_and_contents_are_zipfiles(members: list[tuple[str, bytes, int]], prefix: bytes) -> None:
    data = build(members, prefix)
    assert by_zipread(data) == by_zipfile(data)


@settings(max_examples=50, deadline=None)
@given(_members, st.integers(min_value=0, max_value=4000))
def test_a_prefix_read_is_the_start_of_the_member(members: list[tuple[str, bytes, int]], cap: int) -> None:
    data = build(members)
    _, entries = zipread.entries(data, lambda _raw: True, 1000)
    for e, (_, content, _) in zip(entries, members, strict=True):
        got = zipread.read(data, e, cap, whole=False)
        assert got[:cap] == content[:cap]


def test_only_the_wanted_entries_are_kept_and_all_are_counted() -> None:
    data = build([(f"c/{i}.class", b"x", zipfile.ZIP_DEFLATED) for i in range(50)] + [("lib/a.jar", b"j", 0)])
    n, entries = zipread.entries(data, lambda raw: raw.endswith(b".jar"), 1000)
    assert n == 51 and [e.name for e in entries] == ["lib/a.jar"]
    n, entries = zipread.entries(data, lambda raw: True, 9)
    assert n == 10, "counting stops just past the limit"


def _zip64_central(data: bytes) -> bytes:
    """The archive with every central entry's sizes and offset moved into a zip64 extra field, as an archive
    over 4 GiB has them (the end records stay classic: only the entries' fields are tested here)."""
    start, end, _ = zipread.end_of_central_directory(data)
    out = bytearray()
    p = start
    head = struct.Struct("<4s6H3L5H2L")
    while p < end:
        f = list(head.unpack_from(data, p))
        nlen, xlen, clen = f[10], f[11], f[12]
        name = data[p + 46 : p + 46 + nlen]
        rest = data[p + 46 + nlen : p + 46 + nlen + xlen + clen]
        size, csize, offset = f[9], f[8], f[16]
        extra = struct.pack("<HHQQQ", 1, 24, size, csize, offset)
        f[8] = f[9] = f[16] = 0xFFFFFFFF
        f[11] = xlen + len(extra)
        out += head.pack(*f) + name + extra + rest
        p += 46 + nlen + xlen + clen
    eocd = bytearray(data[end:])
    struct.pack_into("<L", eocd, 12, len(out))
    return data[:start] + bytes(out) + bytes(eocd)


def test_zip64_extra_fields_give_the_sizes_and_offsets() -> None:
    data = _zip64_central(build([("a.txt", b"hello" * 100, 8), ("b/pom.properties", b"version=1\n", 0)]))
    _, entries = zipread.entries(data, lambda _raw: True, 10)
    assert [(e.size, e.compressed_size) for e in entries][1] == (10, 10)
    assert by_zipread(data) == by_zipfile(data) == [("a.txt", b"hello" * 100), ("b/pom.properties", b"version=1\n")]


def test_a_zip64_extra_field_too_short_for_its_values_is_refused() -> None:
    data = bytearray(_zip64_central(build([("a.txt", b"x", 0)])))
    start, _, _ = zipread.end_of_central_directory(bytes(data))
    struct.pack_into("<H", data, start + 46 + 5 + 2, 8)  # the extra field now says it holds one value
    with pytest.raises(zipfile.BadZipFile, match="zip64 extra"):
        zipread.entries(bytes(data), lambda _raw: True, 10)


def test_utf8_and_cp437_names() -> None:
    data = build([("dépôt/ünïcode.jar", b"x", 0)])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("legacy.jar")
        zf.writestr(info, b"y")
    raw = bytearray(buf.getvalue())
    # a cp437 name (no UTF-8 flag) with a byte above 0x7f, in the local and central headers alike
    for at in (30, raw.rfind(b"PK\x01\x02") + 46):
        raw[at] = 0x82  # é in cp437
    assert by_zipread(data) == by_zipfile(data)
    assert by_zipread(bytes(raw)) == by_zipfile(bytes(raw)) == [("\u00e9egacy.jar", b"y")]


@pytest.mark.parametrize(
    "damage",
    ["no end record", "central header", "local name", "local magic", "crc", "truncated member"],
)
def test_broken_archives_are_refused_like_zipfile_refuses_them(damage: str) -> None:
    content = bytes(range(256)) * 40
    data = bytearray(build([("a/pom.properties", content, zipfile.ZIP_DEFLATED)]))
    start, end, _ = zipread.end_of_central_directory(bytes(data))
    if damage == "no end record":
        data = data[: end - 2]
    elif damage == "central header":
        data[start] = ord("X")
    elif damage == "local name":
        data[30] = ord("b")
    elif damage == "local magic":
        data[0] = ord("Q")
    elif damage == "crc":
        struct.pack_into("<L", data, start + 16, zlib.crc32(content) ^ 1)
        struct.pack_into("<L", data, 14, zlib.crc32(content) ^ 1)
    elif damage == "truncated member":
        data = data[:60] + data[start:]  # the member's deflated stream cut short, the directory moved up
        struct.pack_into("<L", data, len(data) - 22 + 16, 60)
    blob = bytes(data)
    with pytest.raises((zipfile.BadZipFile, EOFError, zlib.error)):
        by_zipfile(blob)
    with pytest.raises((zipfile.BadZipFile, EOFError)):  # zlib's errors come as BadZipFile
        by_zipread(blob)


def test_a_name_flagged_utf8_that_is_not_is_refused() -> None:
    data = bytearray(build([("é.txt", b"x", 0)]))  # zipfile flags the non-ASCII name as UTF-8
    start, _, _ = zipread.end_of_central_directory(bytes(data))
    data[start + 46] = 0xFF  # no UTF-8 sequence starts with this byte
    with pytest.raises(zipfile.BadZipFile, match="flagged UTF-8"):
        zipread.entries(bytes(data), lambda _raw: True, 10)


def test_a_directory_entry_running_past_the_directory_is_refused() -> None:
    data = bytearray(build([("a.txt", b"x", 0)]))
    start, _, _ = zipread.end_of_central_directory(bytes(data))
    struct.pack_into("<H", data, start + 28, 1000)  # its name would run into the end record
    with pytest.raises(zipfile.BadZipFile, match="Truncated central directory"):
        zipread.entries(bytes(data), lambda _raw: True, 10)


def test_a_member_shorter_than_stated_is_read_to_the_end_of_its_stream() -> None:
    content = b"hello " * 500
    data = bytearray(build([("a.txt", content, zipfile.ZIP_DEFLATED)]))
    start, _, _ = zipread.end_of_central_directory(bytes(data))
    struct.pack_into("<L", data, start + 20, len(data) * 2)  # the directory overstates its compressed size
    assert by_zipread(bytes(data)) == by_zipfile(bytes(data)) == [("a.txt", content)]


def test_encrypted_and_other_compressions_are_not_read() -> None:
    data = bytearray(build([("a.txt", b"x" * 100, zipfile.ZIP_STORED)]))
    _, (entry,) = zipread.entries(bytes(data), lambda _raw: True, 10)
    with pytest.raises(NotImplementedError, match="encrypted"):
        zipread.read(bytes(data), entry._replace(flags=entry.flags | 1), 1000)
    with pytest.raises(NotImplementedError, match="compression method 12"):
        zipread.read(bytes(data), entry._replace(method=zipfile.ZIP_BZIP2), 1000)


def test_a_member_larger_than_the_limit_comes_back_one_byte_over() -> None:
    data = build([("big.bin", bytes(10_000), zipfile.ZIP_DEFLATED), ("s.bin", bytes(10_000), zipfile.ZIP_STORED)])
    _, entries = zipread.entries(data, lambda _raw: True, 10)
    for e in entries:
        assert len(zipread.read(data, e, 100)) == 101, "more than the limit shows, without inflating it all"
