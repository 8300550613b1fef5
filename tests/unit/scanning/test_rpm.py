"""The rpmdb readers and the rpm analyzer, against databases rpm itself wrote.

rpmbuild and rpm build a SQLite rpmdb; its header blobs are then stored in a
Berkeley DB hash file (libdb through bsddb3) and an ndb file, and every reader
must list exactly what ``rpm -qa`` lists.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.scanning.analyzers.base import AnalysisResult, FileInput
from shared.scanning.analyzers.rpm import RpmAnalyzer, split_srpm
from shared.scanning.parsers import ParseError
from shared.scanning.parsers.rpm import RpmdbError, RpmHeader, kind_of, parse_header, read_blobs, read_rpmdb
from tests.conftest import UNDER_CI, require_tool
from tests.support import rpmdb as fx

HINT = "apt-get install rpm"


def _need_bsddb3() -> None:
    try:
        import bsddb3  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        message = "bsddb3 is not installed (apt-get install libdb5.3-dev; BERKELEYDB_DIR=/usr pip install bsddb3)"
        if UNDER_CI:
            pytest.fail(message + " - required under CI", pytrace=False)
        pytest.skip(message)


@dataclass
class Reference:
    dbdir: Path
    sqlite: bytes
    blobs: list[tuple[int, bytes]]
    expected: list[tuple[str, ...]]  # rpm -qa, sorted


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    require_tool("rpmbuild", HINT)
    require_tool("rpm", HINT)
    work = tmp_path_factory.mktemp("rpm")
    rpms = fx.build_rpms(work)
    db = fx.install_sqlite_rpmdb(work / "db", rpms)
    expected = fx.rpm_query(work / "db")
    assert len(expected) == 6  # five built packages and the gpg-pubkey
    return Reference(work / "db", db.read_bytes(), fx.sqlite_blobs(db), expected)


def as_query(headers: list[RpmHeader]) -> list[tuple[str, ...]]:
    """Parsed headers in the shape of ``rpm -qa --qf`` output (missing tags as "(none)")."""

    def s(v: object) -> str:
        return fx.NONE if v is None else str(v)

    return sorted(
        tuple(
            s(v)
            for v in (
                h.name,
                h.epoch,
                h.version,
                h.release,
                h.arch,
                h.source_rpm,
                h.vendor,
                h.license,
                h.modularity_label,
            )
        )
        for h in headers
    )


# --- the three formats against rpm -qa --------------------------------------


def test_sqlite_matches_rpm(ref: Reference) -> None:
    assert as_query(read_rpmdb("sqlite", ref.sqlite)) == ref.expected
    by_name = {h.name: h for h in read_rpmdb("sqlite", ref.sqlite)}
    assert by_name["hw-alpha"].epoch == 2
    assert by_name["hw-alpha"].arch == "noarch"
    assert by_name["hw-beta"].vendor == "Example Corp"
    assert by_name["hw-beta"].license == "GPL-2.0-or-later AND MIT"
    assert by_name["hw-beta"].modularity_label == "hwmod:1.0:20230101:abcd1234"
    assert by_name["hw-delta-libs"].source_rpm == "hw-delta-3.0-1.src.rpm"


def test_sqlite_records_come_in_hnum_order(ref: Reference) -> None:
    assert [n for n, _ in read_blobs("sqlite", ref.sqlite)] == [n for n, _ in ref.blobs]
    assert [b for _, b in read_blobs("sqlite", ref.sqlite)] == [b for _, b in ref.blobs]


@pytest.mark.parametrize(
    ("page_size", "big_endian", "checksums"),
    [(4096, False, False), (512, False, False), (1024, True, False), (4096, False, True), (8192, True, True)],
)
def test_bdb_matches_rpm(ref: Reference, tmp_path: Path, page_size: int, big_endian: bool, checksums: bool) -> None:
    _need_bsddb3()
    assert max(len(b) for _, b in ref.blobs) > 2 * page_size  # an overflow chain of several pages
    path = fx.write_bdb(
        tmp_path / "Packages", ref.blobs, page_size=page_size, big_endian=big_endian, checksums=checksums
    )
    data = path.read_bytes()
    assert as_query(read_rpmdb("bdb", data)) == ref.expected
    assert read_blobs("bdb", data) == ref.blobs
    if not big_endian and not checksums:
        # rpm's own read-only Berkeley DB backend agrees that the file is an rpmdb.
        assert fx.rpm_query(tmp_path, backend="bdb_ro") == ref.expected


def test_ndb_matches_rpm(ref: Reference) -> None:
    data = fx.write_ndb(ref.blobs)
    assert as_query(read_rpmdb("ndb", data)) == ref.expected
    assert read_blobs("ndb", data) == ref.blobs


def test_ndb_with_gaps_and_several_slot_pages(ref: Reference) -> None:
    data = fx.write_ndb(list(reversed(ref.blobs)), slot_pages=2, gap_blocks=3)
    assert read_blobs("ndb", data) == ref.blobs


def test_empty_file_is_an_empty_database() -> None:
    for kind in ("sqlite", "bdb", "ndb"):
        assert read_rpmdb(kind, b"") == []


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown rpmdb kind"):
        read_rpmdb("xml", b"x")


def test_kind_of() -> None:
    assert kind_of("var/lib/rpm/rpmdb.sqlite") == "sqlite"
    assert kind_of("usr/lib/sysimage/rpm/Packages") == "bdb"
    assert kind_of("var/lib/rpm/Packages.db") == "ndb"
    assert kind_of("var/lib/rpm/Name") is None


# --- the analyzer --------------------------------------------------------------


def _analyze(path: str, data: bytes) -> AnalysisResult:
    return RpmAnalyzer().analyze(FileInput(path=path, content=data, layer_index=1, layer_diff_id="sha256:ab"))


def test_analyzer_packages(ref: Reference) -> None:
    res = _analyze("usr/lib/sysimage/rpm/rpmdb.sqlite", ref.sqlite)
    assert res.warnings == []
    pkgs = {p.name: p for p in res.packages}
    assert sorted(pkgs) == ["hw-alpha", "hw-beta", "hw-delta", "hw-delta-libs", "hw-gamma"]  # no gpg-pubkey
    assert all(p.found_in == "usr/lib/sysimage/rpm/rpmdb.sqlite" for p in res.packages)
    assert all(p.type == "rpm" and p.purl == "" and p.ecosystem is None for p in res.packages)

    alpha = pkgs["hw-alpha"]
    assert (alpha.version, alpha.epoch, alpha.release, alpha.arch) == ("2:1.2.3-4.el9", 2, "4.el9", "noarch")
    assert (alpha.source_name, alpha.source_version) == ("hw-alpha", "1.2.3-4.el9")
    assert alpha.licenses == ["MIT"]
    assert alpha.vendor is None

    beta = pkgs["hw-beta"]
    assert (beta.version, beta.epoch) == ("0.9-1", None)
    assert beta.vendor == "Example Corp"
    assert beta.licenses == ["GPL-2.0-or-later AND MIT"]
    assert beta.modularity_label == "hwmod:1.0:20230101:abcd1234"
    assert beta.source_rpm == "hw-beta-0.9-1.src.rpm"

    libs = pkgs["hw-delta-libs"]
    assert (libs.source_name, libs.source_version, libs.version) == ("hw-delta", "3.0-1", "3.0-1")

    gamma = pkgs["hw-gamma"]
    assert gamma.version == "5.0~rc1-0.1.fc40"
    assert gamma.source_version == "5.0~rc1-0.1.fc40"


def test_analyzer_same_packages_from_every_format(ref: Reference, tmp_path: Path) -> None:
    _need_bsddb3()
    bdb = fx.write_bdb(tmp_path / "Packages", ref.blobs).read_bytes()
    ndb = fx.write_ndb(ref.blobs)

    def summary(path: str, data: bytes) -> list[tuple[str, str, str | None, str]]:
        res = _analyze(path, data)
        assert res.warnings == []
        return sorted((p.name, p.version, p.arch, p.found_in) for p in res.packages)

    sq = summary("var/lib/rpm/rpmdb.sqlite", ref.sqlite)
    bd = summary("var/lib/rpm/Packages", bdb)
    nd = summary("usr/lib/sysimage/rpm/Packages.db", ndb)
    assert [r[:3] for r in sq] == [r[:3] for r in bd] == [r[:3] for r in nd]
    assert {r[3] for r in bd} == {"var/lib/rpm/Packages"}
    assert {r[3] for r in nd} == {"usr/lib/sysimage/rpm/Packages.db"}


def test_analyzer_drops_gpg_pubkey_and_attributes_found_in() -> None:
    blobs = [
        (1, fx.simple_header("gpg-pubkey", "ee638331", "6b02ef9b", sourcerpm="(none)", license="pubkey")),
        (2, fx.simple_header("bash", "5.1.8", "6.el9", epoch=1, arch="x86_64", sourcerpm="bash-5.1.8-6.el9.src.rpm")),
    ]
    res = _analyze("var/lib/rpm/Packages.db", fx.write_ndb(blobs))
    assert [(p.name, p.version, p.found_in) for p in res.packages] == [
        ("bash", "1:5.1.8-6.el9", "var/lib/rpm/Packages.db")
    ]


def test_analyzer_paths() -> None:
    a = RpmAnalyzer()
    assert a.name == "rpm" and a.version == 1
    assert a.max_file_size == 256 * 1024 * 1024
    assert a.paths == {
        "var/lib/rpm/rpmdb.sqlite",
        "usr/lib/sysimage/rpm/rpmdb.sqlite",
        "var/lib/rpm/Packages",
        "usr/lib/sysimage/rpm/Packages",
        "var/lib/rpm/Packages.db",
        "usr/lib/sysimage/rpm/Packages.db",
    }


@pytest.mark.parametrize(
    ("path", "data", "problem"),
    [
        ("var/lib/rpm/rpmdb.sqlite", b"not a database at all" * 10, "not an SQLite database"),
        ("var/lib/rpm/Packages", b"\0" * 4096, "not a Berkeley DB hash database"),
        ("usr/lib/sysimage/rpm/Packages.db", b"RpmX" + b"\0" * 60, "not an rpm ndb database"),
    ],
)
def test_analyzer_turns_corruption_into_a_warning(path: str, data: bytes, problem: str) -> None:
    res = _analyze(path, data)
    assert res.packages == []
    [w] = res.warnings
    assert w.code == "parse-error"
    assert w.path == path
    assert w.layer_diff_id == "sha256:ab"
    assert w.message.startswith(f"{path}: ")
    assert problem in w.message


def test_analyzer_warns_on_a_bad_header_in_a_good_database() -> None:
    blobs = [(1, fx.simple_header("ok")), (7, b"\0\0\0\1\0\0\0\0")]
    res = _analyze("var/lib/rpm/Packages.db", fx.write_ndb(blobs))
    assert res.packages == []
    [w] = res.warnings
    assert "package record 7" in w.message and "but is only 8 bytes long" in w.message


@pytest.mark.parametrize(
    ("srpm", "split"),
    [
        ("bash-5.1.8-6.el9.src.rpm", ("bash", "5.1.8-6.el9")),
        ("python3-pip-wheel-21.2.3-6.el9.src.rpm", ("python3-pip-wheel", "21.2.3-6.el9")),
        ("kernel-5.14.0-1.nosrc.rpm", ("kernel", "5.14.0-1")),
        ("(none)", None),
        ("weird.src.rpm", None),
        ("a--1.src.rpm", None),
    ],
)
def test_split_srpm(srpm: str, split: tuple[str, str] | None) -> None:
    assert split_srpm(srpm) == split


# --- hostile headers ------------------------------------------------------------

GOOD = fx.simple_header("pkg", "1.0", "1", arch="noarch")


def _entry(blob: bytes, i: int, **changes: int) -> bytes:
    """``blob`` with index entry ``i``'s fields replaced."""
    at = 8 + 16 * i
    tag, typ, off, cnt = struct.unpack_from(">IIII", blob, at)
    vals = {"tag": tag, "type": typ, "offset": off, "count": cnt, **changes}
    return blob[:at] + struct.pack(">IIII", vals["tag"], vals["type"], vals["offset"], vals["count"]) + blob[at + 16 :]


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "shorter than its 8-byte preamble"),
        (b"\0\0\0", "shorter than its 8-byte preamble"),
        (struct.pack(">II", 0, 0), "no index entries"),
        (struct.pack(">II", 0x10000, 0), "claims 65536 index entries (limit 65535)"),
        (struct.pack(">II", 1, 0x10000000), "data store (limit"),
        (struct.pack(">II", 2, 10) + b"\0" * 20, "but is only 28 bytes long"),
        (GOOD[:-1], "but is only"),
        (struct.pack(">II", 0xFFFF, 0xFFFFFFF), "268435455 data bytes (269484023 bytes) but is only 8 bytes long"),
        (_entry(GOOD, 0, offset=10_000), "(tag 1000): 1 strings at offset 10000 do not fit"),
        (_entry(GOOD, 1, count=0), "(tag 1001): 0 strings"),
        (_entry(GOOD, 1, count=0xFFFFFFFF), "(tag 1001): 4294967295 strings"),
        (_entry(GOOD, 2, type=4, offset=0xFFFFFFFE), "do not fit the"),
        (_entry(GOOD, 2, type=4, count=0x40000000), "1073741824 items of type 4"),
        (_entry(GOOD, 0, type=12), "index entry 0 (tag 1000) has unknown type 12"),
        (_entry(GOOD, 0, type=4, count=1), "tag NAME has type 4, not a string"),
        (_entry(GOOD, 0, tag=999), "header has no NAME tag"),
        (_entry(GOOD, 2, tag=1), "header has no RELEASE tag"),
        (fx.make_header([(1000, 6, "a"), (1001, 6, "1"), (1002, 6, "1"), (1003, 6, "x")]), "EPOCH has type 6"),
    ],
)
def test_hostile_headers(blob: bytes, message: str) -> None:
    with pytest.raises(RpmdbError) as err:
        parse_header(blob)
    assert message in str(err.value)


def test_unterminated_string() -> None:
    blob = fx.make_header([(1000, 6, "name"), (1001, 6, "1"), (1002, 6, "1"), (1022, 6, "arch")])
    with pytest.raises(RpmdbError, match="ARCH: string at offset 9 is not NUL-terminated"):
        parse_header(blob[:4] + struct.pack(">I", len(blob) - 8 - 4 * 16 - 1) + blob[8:-1])


def test_rpmdb_error_is_a_parse_error() -> None:
    assert issubclass(RpmdbError, ParseError)


# --- hostile SQLite ---------------------------------------------------------------


def _sqlite_bytes(tmp_path: Path, *statements: str) -> bytes:
    path = tmp_path / "x.sqlite"
    conn = sqlite3.connect(path)
    for s in statements:
        conn.execute(s)
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_sqlite_truncated(ref: Reference) -> None:
    with pytest.raises(RpmdbError, match=r"corrupt SQLite database \(database disk image is malformed\)"):
        read_blobs("sqlite", ref.sqlite[: len(ref.sqlite) // 2])


def test_sqlite_short_and_garbage() -> None:
    with pytest.raises(RpmdbError, match="not an SQLite database"):
        read_blobs("sqlite", b"SQLite format 3\0")
    with pytest.raises(RpmdbError, match="corrupt SQLite database"):
        read_blobs("sqlite", b"SQLite format 3\0" + b"\xff" * 4000)


def test_sqlite_without_packages(tmp_path: Path) -> None:
    data = _sqlite_bytes(tmp_path, "CREATE TABLE Other (x)")
    with pytest.raises(RpmdbError, match="SQLite database has no Packages table"):
        read_blobs("sqlite", data)


def test_sqlite_packages_is_a_view(tmp_path: Path) -> None:
    data = _sqlite_bytes(tmp_path, "CREATE VIEW Packages AS SELECT 1 AS hnum, x'00' AS blob")
    with pytest.raises(RpmdbError, match="Packages is a view, not a table"):
        read_blobs("sqlite", data)


def test_sqlite_text_blob(tmp_path: Path) -> None:
    data = _sqlite_bytes(
        tmp_path, "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob)", "INSERT INTO Packages VALUES (1, 'x')"
    )
    with pytest.raises(RpmdbError, match="Packages row has a int key and a str blob"):
        read_blobs("sqlite", data)


def test_sqlite_work_budget(ref: Reference, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.scanning.parsers.rpm import sqlite as rpm_sqlite

    monkeypatch.setattr(rpm_sqlite, "_STEP", 1)
    monkeypatch.setattr(rpm_sqlite, "_MAX_STEPS", 5)
    with pytest.raises(RpmdbError, match="SQLite database took too long to read; giving up"):
        read_blobs("sqlite", ref.sqlite)


def test_sqlite_wal_file_is_read_without_touching_disk(ref: Reference) -> None:
    assert ref.sqlite[18:20] == b"\x02\x02"  # rpm keeps its database in WAL mode
    assert len(read_blobs("sqlite", ref.sqlite)) == 6


# --- hostile Berkeley DB ---------------------------------------------------------


@pytest.fixture(scope="module")
def bdb_small(ref: Reference, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    _need_bsddb3()
    path = fx.write_bdb(tmp_path_factory.mktemp("bdb") / "Packages", ref.blobs, page_size=512)
    return path.read_bytes()


def _pages(data: bytes, size: int = 512) -> list[tuple[int, int, int]]:
    """(page number, type, next page) of every page."""
    return [
        (n, data[n * size + 25], struct.unpack_from("<I", data, n * size + 16)[0]) for n in range(len(data) // size)
    ]


def _patch(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def test_bdb_overflow_cycle(bdb_small: bytes) -> None:
    chain = [(n, nxt) for n, typ, nxt in _pages(bdb_small) if typ == 7 and nxt]
    n, _ = chain[0]
    looped = _patch(bdb_small, n * 512 + 16, struct.pack("<I", n))
    with pytest.raises(RpmdbError, match=f"revisits page {n} \\(cycle\\)"):
        read_blobs("bdb", looped)


def test_bdb_overflow_chain_out_of_range(bdb_small: bytes) -> None:
    n, _, _ = next(p for p in _pages(bdb_small) if p[1] == 7 and p[2])
    bad = _patch(bdb_small, n * 512 + 16, struct.pack("<I", 0x7FFFFFFF))
    with pytest.raises(RpmdbError, match="page number 2147483647 is out of range"):
        read_blobs("bdb", bad)


def test_bdb_overflow_chain_to_a_non_overflow_page(bdb_small: bytes) -> None:
    n, _, _ = next(p for p in _pages(bdb_small) if p[1] == 7 and p[2])
    hash_page = next(p[0] for p in _pages(bdb_small) if p[1] == 13)
    bad = _patch(bdb_small, n * 512 + 16, struct.pack("<I", hash_page))
    with pytest.raises(RpmdbError, match=f"page {hash_page} in an overflow chain has type 13"):
        read_blobs("bdb", bad)


def test_bdb_truncated(bdb_small: bytes) -> None:
    with pytest.raises(RpmdbError, match=r"names page .* as the last, but the file holds only .* \(truncated\?\)"):
        read_blobs("bdb", bdb_small[: len(bdb_small) // 2])
    with pytest.raises(RpmdbError, match="shorter than its metadata page"):
        read_blobs("bdb", bdb_small[:40])


def test_bdb_bad_page_size_and_encryption(bdb_small: bytes) -> None:
    with pytest.raises(RpmdbError, match="page size 4097 is not a power of two"):
        read_blobs("bdb", _patch(bdb_small, 20, struct.pack("<I", 4097)))
    with pytest.raises(RpmdbError, match="encrypted"):
        read_blobs("bdb", _patch(bdb_small, 24, b"\1"))
    with pytest.raises(RpmdbError, match="metadata page has type 9"):
        read_blobs("bdb", _patch(bdb_small, 25, b"\x09"))


def test_bdb_item_offset_out_of_range(bdb_small: bytes) -> None:
    n = next(p[0] for p in _pages(bdb_small) if p[1] == 13 and struct.unpack_from("<H", bdb_small, p[0] * 512 + 20)[0])
    bad = _patch(bdb_small, n * 512 + 26, struct.pack("<H", 600))
    with pytest.raises(RpmdbError, match=f"page {n}: item 0 at offset 600 is outside"):
        read_blobs("bdb", bad)
    bad = _patch(bdb_small, n * 512 + 20, struct.pack("<H", 1000))
    with pytest.raises(RpmdbError, match=f"page {n} claims 1000 entries"):
        read_blobs("bdb", bad)


def test_bdb_overflow_length_mismatch(bdb_small: bytes) -> None:
    n, _, _ = next(p for p in _pages(bdb_small) if p[1] == 7 and p[2])
    bad = _patch(bdb_small, n * 512 + 22, struct.pack("<H", 10))
    with pytest.raises(RpmdbError, match=r"holds \d+ of its \d+ bytes"):
        read_blobs("bdb", bad)


def test_bdb_shared_overflow_page(tmp_path: Path) -> None:
    _need_bsddb3()
    big = fx.simple_header("big", "1", "1", license="x" * 2000)
    data = fx.write_bdb(tmp_path / "Packages", [(1, big), (2, big)], page_size=512).read_bytes()
    pages = _pages(data)
    # Point the second off-page item at the first one's chain.
    starts = []
    for n, typ, _ in pages:
        if typ != 13:
            continue
        entries = struct.unpack_from("<H", data, n * 512 + 20)[0]
        for i in range(1, entries, 2):
            off = struct.unpack_from("<H", data, n * 512 + 26 + 2 * i)[0]
            if data[n * 512 + off] == 3:
                starts.append(n * 512 + off + 4)
    assert len(starts) == 2
    bad = _patch(data, starts[1], data[starts[0] : starts[0] + 4])
    with pytest.raises(RpmdbError, match="revisits page"):
        read_blobs("bdb", bad)


# --- hostile ndb -------------------------------------------------------------------

NDB = fx.write_ndb([(1, GOOD), (2, fx.simple_header("other"))])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (NDB[:20], "shorter than its 32-byte header"),
        (b"RpmX" + NDB[4:], "not an rpm ndb database (bad magic b'RpmX')"),
        (_patch(NDB, 4, struct.pack("<I", 1)), "ndb version 1 is not supported"),
        (_patch(NDB, 12, struct.pack("<I", 99)), "claims 99 slot pages but the file holds 1"),
        (_patch(NDB, 12, struct.pack("<I", 0)), "claims 0 slot pages"),
        (NDB[:4096], "runs past the end of the file"),
        (NDB[:-16], "runs past the end of the file"),
        (_patch(NDB, 32, b"Slut"), "slot at offset 32 has bad magic"),
        (_patch(NDB, 40, struct.pack("<I", 3)), "slot at offset 32 is invalid"),
        (_patch(NDB, 40, struct.pack("<I", 0xFFFFFFF0)), "runs past the end of the file"),
        (_patch(NDB, 36, struct.pack("<I", 0)), "slot at offset 32 is invalid"),
        (_patch(NDB, 52, struct.pack("<I", 1)), "package 1 has two slots"),
        (_patch(NDB, 56, NDB[40:44]), "overlaps the one before it"),
        (_patch(NDB, 4096, b"BlbX"), "no blob at offset 4096"),
        (_patch(NDB, 4100, struct.pack("<I", 5)), "belongs to package 5"),
        (_patch(NDB, 4108, struct.pack("<I", 9999)), "a 9999-byte blob needs 627 blocks, slot says 8"),
        (_patch(NDB, 4096 + 20, b"\xff"), "fails its checksum"),
    ],
)
def test_hostile_ndb(data: bytes, message: str) -> None:
    with pytest.raises(RpmdbError) as err:
        read_blobs("ndb", data)
    assert message in str(err.value)


def test_ndb_bad_tail() -> None:
    blkcnt = struct.unpack_from("<I", NDB, 44)[0]
    end = 4096 + blkcnt * 16
    with pytest.raises(RpmdbError, match="has a bad tail"):
        read_blobs("ndb", _patch(NDB, end - 4, b"BlbX"))


# --- fuzzing --------------------------------------------------------------------------

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _only_rpmdb_errors(kind: str | None, data: bytes) -> None:
    try:
        if kind is None:
            parse_header(data)
        else:
            read_rpmdb(kind, data)
    except RpmdbError:
        pass


@_FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    for kind in (None, "sqlite", "bdb", "ndb"):
        _only_rpmdb_errors(kind, data)


@st.composite
def _mutations(draw: st.DrawFn, base: bytes) -> bytes:
    out = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(out) - 1))
        how = draw(st.sampled_from(["byte", "word", "cut"]))
        if how == "byte":
            out[at] = draw(st.integers(0, 255))
        elif how == "word":
            out[at : at + 4] = struct.pack(">I", draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, len(out)])))
        else:
            del out[at:]
            if not out:
                break
    return bytes(out)


REAL_HEADER = fx.make_header(
    [
        (63, fx.RPM_BIN, b"\0" * 16),
        (1000, fx.RPM_STRING, "bash"),
        (1001, fx.RPM_STRING, "5.1.8"),
        (1002, fx.RPM_STRING, "6.el9"),
        (1003, fx.RPM_INT32, 1),
        (1011, fx.RPM_STRING, "Red Hat, Inc."),
        (1014, fx.RPM_STRING, "GPLv3+"),
        (1022, fx.RPM_STRING, "x86_64"),
        (1044, fx.RPM_STRING, "bash-5.1.8-6.el9.src.rpm"),
        (1047, fx.RPM_STRING_ARRAY, ["bash", "/bin/sh"]),
        (5096, fx.RPM_STRING, "bash:1:1:1"),
    ]
)


@_FUZZ
@given(_mutations(REAL_HEADER))
def test_fuzz_header_mutations(data: bytes) -> None:
    _only_rpmdb_errors(None, data)


def test_fuzz_real_header_mutations(ref: Reference) -> None:
    blob = max((b for _, b in ref.blobs), key=len)

    @_FUZZ
    @given(_mutations(blob))
    def run(data: bytes) -> None:
        _only_rpmdb_errors(None, data)

    run()


def test_fuzz_ndb_mutations() -> None:
    @_FUZZ
    @given(_mutations(NDB))
    def run(data: bytes) -> None:
        _only_rpmdb_errors("ndb", data)

    run()


def test_fuzz_bdb_mutations(bdb_small: bytes) -> None:
    @_FUZZ
    @given(_mutations(bdb_small))
    def run(data: bytes) -> None:
        _only_rpmdb_errors("bdb", data)

    run()


def test_fuzz_sqlite_mutations(ref: Reference) -> None:
    @settings(max_examples=60, deadline=None)
    @given(_mutations(ref.sqlite))
    def run(data: bytes) -> None:
        _only_rpmdb_errors("sqlite", data)

    run()
