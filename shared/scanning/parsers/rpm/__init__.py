"""Installed rpm packages from the three rpmdb formats: SQLite, Berkeley DB hash and ndb.

Why a parser of our own: the PyPI option, ``pyrpmdb``, wraps a Go shared
library (through ``pygorpmrustinfo``) that opens the database by *file path*.
Layers are never extracted here, so each database would first have to be
written to disk, and every Azure Functions and Lambda package would carry a
Go runtime. These formats are small and documented; reading them from bytes
in pure Python, with every offset checked, costs a few hundred lines.

Each reader turns the file's bytes into header blobs; :func:`parse_header`
turns a blob into an :class:`RpmHeader`. Anything malformed raises
:class:`RpmdbError` (a :class:`~shared.scanning.parsers.ParseError`).
"""

from __future__ import annotations

from collections.abc import Callable

from shared.scanning.parsers.rpm.bdb import read_bdb
from shared.scanning.parsers.rpm.errors import RpmdbError
from shared.scanning.parsers.rpm.header import RpmHeader, parse_header
from shared.scanning.parsers.rpm.ndb import read_ndb
from shared.scanning.parsers.rpm.sqlite import read_sqlite

__all__ = ["KINDS", "RpmHeader", "RpmdbError", "kind_of", "parse_header", "read_blobs", "read_rpmdb"]

_READERS: dict[str, Callable[[bytes], list[tuple[int, bytes]]]] = {
    "sqlite": read_sqlite,
    "bdb": read_bdb,
    "ndb": read_ndb,
}
KINDS = tuple(_READERS)

#: rpmdb file names (the last path segment) and the format each holds.
_FILE_KINDS = {"rpmdb.sqlite": "sqlite", "Packages": "bdb", "Packages.db": "ndb"}


def kind_of(path: str) -> str | None:
    """The database format a file named like ``path`` holds, or None."""
    return _FILE_KINDS.get(path.rsplit("/", 1)[-1])


def read_blobs(kind: str, data: bytes) -> list[tuple[int, bytes]]:
    """(record number, header blob) pairs of a database, in record order."""
    reader = _READERS.get(kind)
    if reader is None:
        raise ValueError(f"unknown rpmdb kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not data:
        return []  # an empty file is an empty database
    return reader(data)


def read_rpmdb(kind: str, data: bytes) -> list[RpmHeader]:
    """Every package header of an rpm database, in record order.

    ``kind`` is ``"sqlite"``, ``"bdb"`` or ``"ndb"`` (see :func:`kind_of`).
    """
    out: list[RpmHeader] = []
    for record, blob in read_blobs(kind, data):
        try:
            out.append(parse_header(blob))
        except RpmdbError as exc:
            raise RpmdbError(f"package record {record}: {exc}") from None
    return out
