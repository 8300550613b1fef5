"""rpm 4.16+ ``rpmdb.sqlite``: the table ``Packages(hnum INTEGER PRIMARY KEY, blob BLOB)``.

The file's bytes are loaded into an in-memory database with
``Connection.deserialize``, so nothing is written to disk. The connection is
set to query-only, distrusts the schema, and is cut off after a fixed amount
of work, so a hostile file cannot make a query run away.
"""

from __future__ import annotations

import sqlite3

from shared.scanning.parsers.rpm.errors import RpmdbError

_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
# Offsets 18 and 19 of the database header: file format write and read versions.
# 2 means WAL mode, which rpm uses and the in-memory VFS cannot open.
_WRITE_VERSION, _READ_VERSION = 18, 19
_WAL, _LEGACY = 2, 1
# The progress handler runs every _STEP virtual-machine instructions; stop after
# _MAX_STEPS of them. Reading tens of thousands of packages takes a few hundred.
_STEP = 10_000
_MAX_STEPS = 50_000


def read_sqlite(data: bytes) -> list[tuple[int, bytes]]:
    """(hnum, header blob) of every row of ``Packages``, in hnum order."""
    if len(data) < _HEADER_SIZE or not data.startswith(_MAGIC):
        raise RpmdbError("not an SQLite database (bad magic or shorter than the 100-byte header)")
    image = bytearray(data)
    for at in (_WRITE_VERSION, _READ_VERSION):
        if image[at] == _WAL:
            image[at] = _LEGACY

    steps = 0

    def progress() -> int:
        nonlocal steps
        steps += 1
        return 1 if steps > _MAX_STEPS else 0

    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(image)
        del image
        conn.set_progress_handler(progress, _STEP)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA cell_size_check = ON")
        row = conn.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
        if row is None:
            raise RpmdbError("SQLite database has no Packages table")
        if row[0] != "table":
            raise RpmdbError(f"Packages is a {row[0]}, not a table")
        out: list[tuple[int, bytes]] = []
        for hnum, blob in conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum"):
            if not isinstance(hnum, int) or not isinstance(blob, bytes):
                raise RpmdbError(
                    f"Packages row has a {type(hnum).__name__} key and a {type(blob).__name__} blob, "
                    "not an integer and bytes"
                )
            out.append((hnum, blob))
        return out
    except (sqlite3.Error, OverflowError) as exc:
        if steps > _MAX_STEPS:
            raise RpmdbError("SQLite database took too long to read; giving up") from None
        raise RpmdbError(f"corrupt SQLite database ({exc})") from None
    finally:
        conn.close()
