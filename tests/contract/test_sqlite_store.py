"""The store contract on the SQLite adapter, plus what only a file-backed store has to get right."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.stores.sqlite import SQLiteStore, StoreFileError
from tests.contract.store_contract import StoreContract, alert, digest, finding, image


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        s = SQLiteStore(tmp_path / "store.sqlite")
        try:
            yield s
        finally:
            s.close()


def test_wal_mode_and_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with SQLiteStore(path) as s:
        s.put_image(image(1))
        s.put_findings(digest(1), [finding(1, "CVE-2026-0001")])
        s.create_alert(alert(1))
        s.index_packages(digest(1), [("npm", "lodash")])
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with SQLiteStore(path) as s:
        assert s.get_image(digest(1)) is not None
        assert len(s.findings_for_image(digest(1))) == 1
        assert len(s.unpublished_alerts()) == 1
        assert s.images_with_packages([("npm", "lodash")]) == {digest(1)}


def test_exact_request_counts(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as s:
        start = s.request_count
        s.get_image(digest(1))
        s.put_image(image(1))
        s.put_findings(digest(1), [finding(1, f"CVE-2026-{i:04d}") for i in range(30)])
        s.findings_for_image(digest(1))
        assert s.request_count - start == 4
        before = s.request_count
        list(s.images_seen_since(image(1).pushed_at))  # type: ignore[arg-type]
        assert s.request_count - before == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a database at all, just text padded out" * 100, "corrupt or not SQLite"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "corrupt or not SQLite"),
    ],
)
def test_corrupt_file_is_refused_naming_it(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.sqlite"
    path.write_bytes(content)
    with pytest.raises(StoreFileError) as ei:
        SQLiteStore(path)
    assert str(path) in str(ei.value) and message in str(ei.value)
    assert path.read_bytes() == content, "the file is left as it was"


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE advisories (id TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreFileError, match="not a hullwatch store") as ei:
        SQLiteStore(path)
    assert str(path) in str(ei.value)


def test_two_handles_on_one_file_and_threads(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    a, b = SQLiteStore(path), SQLiteStore(path)
    try:
        created: list[bool] = []

        def worker() -> None:
            created.append(a.create_alert(alert(7)))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        created.append(b.create_alert(alert(7)))
        assert created.count(True) == 1, "create-if-absent holds across threads and connections"
        written = a.put_image(image(1))
        assert b.get_image(digest(1)) is not None
        assert written.etag == b.get_image(digest(1)).etag  # type: ignore[union-attr]
    finally:
        a.close()
        b.close()
