"""Build real rpm databases for tests: rpmbuild + rpm for SQLite, bsddb3 for Berkeley DB, by hand for ndb.

The SQLite rpmdb is made by rpm itself (``rpmbuild`` then ``rpm -i --justdb``).
The Berkeley DB and ndb files are filled with the very header blobs rpm wrote
into that SQLite database, so all three must yield the same packages.
"""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# A throwaway public key (ed25519, no secret kept anywhere), imported with
# ``rpm --import`` so the database holds a gpg-pubkey pseudo-package.
TEST_PUBKEY = """\
-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEawLwMxYJKwYBBAHaRw8BAQdAGPvld2wLei1EHU+XwGKVyceC5KKsYXKXfCfP
NDrci1K0Lmh1bGx3YXRjaCB0ZXN0IGtleSA8cnBtLXRlc3RzQGV4YW1wbGUuaW52
YWxpZD6IkAQTFggAOBYhBBuU96ERGUmIIfLzkGuXAcQiQYWOBQJrAvAzAhsDBQsJ
CAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJEGuXAcQiQYWOMUEA/1ZQdW/TV71JvCRu
fyzQy/1UOcZD7/fW705Fv/fLoMsQAQDIXHpYxnCQZnLvoqw8fkg/eDUqUWFmIxTf
Rv4JpS8zDQ==
=wDsF
-----END PGP PUBLIC KEY BLOCK-----
"""

#: The fields compared between rpm's own query and the parsers, in this order.
QUERY_TAGS = ("NAME", "EPOCH", "VERSION", "RELEASE", "ARCH", "SOURCERPM", "VENDOR", "LICENSE", "MODULARITYLABEL")
QUERY_FORMAT = "\\t".join(f"%{{{t}}}" for t in QUERY_TAGS) + "\\n"
NONE = "(none)"  # what rpm prints for a tag the header lacks


@dataclass
class Spec:
    """One source package to build; ``subpackages`` adds ``%package -n NAME`` binaries."""

    name: str
    version: str
    release: str
    license: str
    epoch: int | None = None
    vendor: str | None = None
    noarch: bool = False
    modularity_label: str | None = None
    description: str = "A package built for hullwatch's tests."
    subpackages: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"Name: {self.name}",
            f"Version: {self.version}",
            f"Release: {self.release}",
            f"Summary: test package {self.name}",
            f"License: {self.license}",
        ]
        if self.epoch is not None:
            lines.append(f"Epoch: {self.epoch}")
        if self.vendor:
            lines.append(f"Vendor: {self.vendor}")
        if self.noarch:
            lines.append("BuildArch: noarch")
        if self.modularity_label:
            lines.append(f"ModularityLabel: {self.modularity_label}")
        lines += ["", "%description", self.description, "", "%files", ""]
        for sub in self.subpackages:
            lines += [
                f"%package -n {sub}",
                f"Summary: subpackage {sub}",
                "",
                f"%description -n {sub}",
                f"Subpackage {sub} of {self.name}.",
                "",
                f"%files -n {sub}",
                "",
            ]
        return "\n".join(lines)


#: The packages of the reference database: one with an Epoch, one with Vendor,
#: License and a modularity label, noarch ones, a subpackage whose source rpm
#: has another name, and one whose header is larger than a 4 KiB page.
DEFAULT_SPECS = (
    Spec("hw-alpha", "1.2.3", "4.el9", "MIT", epoch=2, noarch=True),
    Spec(
        "hw-beta",
        "0.9",
        "1",
        "GPL-2.0-or-later AND MIT",
        vendor="Example Corp",
        modularity_label="hwmod:1.0:20230101:abcd1234",
    ),
    Spec("hw-gamma", "5.0~rc1", "0.1.fc40", "Apache-2.0", noarch=True, description="Large header. " * 1500),
    Spec("hw-delta", "3.0", "1", "BSD-3-Clause", vendor="Other Vendor", subpackages=["hw-delta-libs"]),
)


def _run(args: Sequence[str | Path], cwd: Path | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build_rpms(workdir: Path, specs: Iterable[Spec] = DEFAULT_SPECS) -> list[Path]:
    """Build every spec with rpmbuild under ``workdir``; the binary .rpm files, sorted."""
    top = workdir / "rpmbuild"
    (top / "SPECS").mkdir(parents=True, exist_ok=True)
    scratch_db = workdir / "build-db"
    scratch_db.mkdir(exist_ok=True)
    for spec in specs:
        path = top / "SPECS" / f"{spec.name}.spec"
        path.write_text(spec.text())
        _run(
            [
                "rpmbuild",
                "-bb",
                "--define",
                f"_topdir {top}",
                "--define",
                "debug_package %{nil}",
                "--define",
                "_build_id_links none",
                "--dbpath",
                scratch_db,
                path,
            ]
        )
    return sorted((top / "RPMS").rglob("*.rpm"))


def install_sqlite_rpmdb(dbdir: Path, rpms: Sequence[Path], *, pubkey: bool = True) -> Path:
    """``rpm --initdb`` then ``rpm -i --justdb`` the packages; the path of ``rpmdb.sqlite``."""
    dbdir.mkdir(parents=True, exist_ok=True)
    _run(["rpm", "--dbpath", dbdir, "--define", "_db_backend sqlite", "--initdb"])
    _run(["rpm", "--dbpath", dbdir, "-i", "--justdb", "--nodeps", "--noscripts", "--ignorearch", *rpms])
    if pubkey:
        key = dbdir.parent / "test-pubkey.asc"
        key.write_text(TEST_PUBKEY)
        _run(["rpm", "--dbpath", dbdir, "--import", key])
    return dbdir / "rpmdb.sqlite"


def rpm_query(dbdir: Path, backend: str = "sqlite") -> list[tuple[str, ...]]:
    """What rpm itself lists: one tuple of :data:`QUERY_TAGS` values per package, sorted."""
    out = _run(["rpm", "--dbpath", dbdir, "--define", f"_db_backend {backend}", "-qa", "--qf", QUERY_FORMAT])
    return sorted(tuple(line.split("\t")) for line in out.splitlines() if line)


def sqlite_blobs(db: Path) -> list[tuple[int, bytes]]:
    """(hnum, blob) rows of an rpmdb.sqlite, read with the sqlite3 library from the file."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(int(h), bytes(b)) for h, b in conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum")]
    finally:
        conn.close()


def write_bdb(
    path: Path,
    blobs: Sequence[tuple[int, bytes]],
    *,
    page_size: int = 4096,
    big_endian: bool = False,
    checksums: bool = False,
) -> Path:
    """A Berkeley DB hash ``Packages`` as rpm's bdb backend keeps it, written by libdb through bsddb3.

    Keys are the package numbers as 4-byte integers in the database's byte
    order (rpm writes native integers on the machine that owns the file), plus
    rpm's key 0 record holding the next free number.
    """
    from bsddb3 import db  # type: ignore[import-untyped]  # only the Berkeley DB tests need it

    order = ">" if big_endian else "<"
    d = db.DB()
    d.set_pagesize(page_size)
    d.set_lorder(4321 if big_endian else 1234)
    if checksums:
        d.set_flags(db.DB_CHKSUM)
    d.open(str(path), None, db.DB_HASH, db.DB_CREATE)
    try:
        d.put(struct.pack(order + "I", 0), struct.pack(order + "I", max((n for n, _ in blobs), default=0) + 1))
        for number, blob in blobs:
            d.put(struct.pack(order + "I", number), blob)
    finally:
        d.close()
    return path


# --- ndb -------------------------------------------------------------------
# No ndb writer is available here (Debian's rpm is built without the ndb
# backend), so this is a small one, written from the layout described in rpm's
# lib/backend/ndb/rpmpkg.c: a 32-byte header ("RpmP", version 0, generation,
# slot page count, next package index), 4096-byte slot pages of 16-byte slots
# ("Slot", package index, block offset, block count) and blobs in 16-byte
# blocks ("BlbS", package index, timestamp, length, data, zero padding, then
# adler32, length, "BlbE").
NDB_PAGE = 4096
NDB_BLOCK = 16


def ndb_blob(pkgidx: int, blob: bytes, timestamp: int = 1_700_000_000) -> bytes:
    head = b"BlbS" + struct.pack("<III", pkgidx, timestamp, len(blob))
    body = head + blob
    total = -(-(len(body) + 12) // NDB_BLOCK) * NDB_BLOCK
    body += b"\0" * (total - 12 - len(body))
    return body + struct.pack("<II", zlib.adler32(body), len(blob)) + b"BlbE"


def write_ndb(blobs: Sequence[tuple[int, bytes]], *, slot_pages: int = 1, gap_blocks: int = 0) -> bytes:
    """The bytes of a ``Packages.db`` holding ``blobs`` (``gap_blocks`` of zeros before each blob)."""
    slots_per_page = NDB_PAGE // 16
    if len(blobs) > slot_pages * slots_per_page - 2:
        raise ValueError("not enough slot pages")
    next_idx = max((n for n, _ in blobs), default=0) + 1
    out = bytearray(b"RpmP" + struct.pack("<IIII", 0, 1, slot_pages, next_idx) + b"\0" * 12)
    data = bytearray()
    blkoff = slot_pages * NDB_PAGE // NDB_BLOCK
    slots = []
    for pkgidx, blob in blobs:
        data += b"\0" * (gap_blocks * NDB_BLOCK)
        blkoff += gap_blocks
        raw = ndb_blob(pkgidx, blob)
        slots.append(b"Slot" + struct.pack("<III", pkgidx, blkoff, len(raw) // NDB_BLOCK))
        data += raw
        blkoff += len(raw) // NDB_BLOCK
    free = slot_pages * slots_per_page - 2 - len(slots)
    out += b"".join(slots) + (b"Slot" + b"\0" * 12) * free
    assert len(out) == slot_pages * NDB_PAGE
    return bytes(out + data)


# --- headers by hand --------------------------------------------------------
RPM_INT32 = 4
RPM_STRING = 6
RPM_BIN = 7
RPM_STRING_ARRAY = 8


def make_header(entries: Sequence[tuple[int, int, object]]) -> bytes:
    """A stored header from (tag, type, value) entries: str for strings, int for INT32, bytes for BIN."""
    index = bytearray()
    store = bytearray()
    for tag, typ, value in entries:
        if typ == RPM_INT32:
            assert isinstance(value, int)
            while len(store) % 4:
                store.append(0)
            off, count = len(store), 1
            store += struct.pack(">I", value)
        elif typ in (RPM_STRING, RPM_STRING_ARRAY):
            assert isinstance(value, str | list)
            values = [value] if isinstance(value, str) else value
            off, count = len(store), len(values)
            for v in values:
                store += v.encode() + b"\0"
        elif typ == RPM_BIN:
            assert isinstance(value, bytes)
            off, count = len(store), len(value)
            store += value
        else:
            raise ValueError(f"type {typ} not supported here")
        index += struct.pack(">IIII", tag, typ, off, count)
    return struct.pack(">II", len(entries), len(store)) + bytes(index) + bytes(store)


def simple_header(name: str, version: str = "1.0", release: str = "1", **extra: object) -> bytes:
    """A minimal header: NAME, VERSION, RELEASE and optional ARCH/EPOCH/SOURCERPM/LICENSE/VENDOR."""
    entries: list[tuple[int, int, object]] = [
        (1000, RPM_STRING, name),
        (1001, RPM_STRING, version),
        (1002, RPM_STRING, release),
    ]
    tags = {
        "epoch": (1003, RPM_INT32),
        "vendor": (1011, RPM_STRING),
        "license": (1014, RPM_STRING),
        "arch": (1022, RPM_STRING),
        "sourcerpm": (1044, RPM_STRING),
    }
    for key, value in extra.items():
        tag, typ = tags[key]
        entries.append((tag, typ, value))
    return make_header(entries)
