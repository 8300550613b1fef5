"""The backend's layer-state cache: entries in the store, states in blobs, written off the scanner's thread."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.scanning.scanner import scan_handle
from shared.scanning.sources.base import ScanOptions
from shared.service.scan import BlobLayerStates
from shared.stores.blobs import LocalBlobStore
from shared.stores.sqlite import SQLiteStore
from tests.support import images as I

OS = I.file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n')


def status(*names: str) -> I.F:
    body = "".join(f"Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n" for n in names)
    return I.file("var/lib/dpkg/status", body)


def now() -> datetime:
    return datetime(2026, 3, 1, tzinfo=UTC)


def test_states_written_in_the_background_serve_the_next_image(tmp_path: Path) -> None:
    base = I.layer([OS, status("libc6", "bash")])
    mid = I.layer([status("libc6", "bash", "curl")])
    store = SQLiteStore(tmp_path / "store.db")
    blobs = LocalBlobStore(tmp_path / "blobs")
    try:
        states = BlobLayerStates(store, blobs, now)
        scan_handle(I.counting_handle(tmp_path, "a", [base, mid, I.layer([I.file("a", "a")])], []), ScanOptions(),
                    layer_cache=states)  # fmt: skip
        states.close()
        assert len(list((tmp_path / "blobs" / "layerstates").rglob("*.json.z"))) == 3

        read: list[str] = []
        top = I.layer([status("libc6", "bash", "curl", "git")])
        fresh = BlobLayerStates(store, blobs, now)  # another worker: only the stores are shared
        r = scan_handle(I.counting_handle(tmp_path, "b", [base, mid, top], read), ScanOptions(), layer_cache=fresh)
        fresh.close()
        assert read == [top.diff_id], "the base and middle layers come from the stored state"
        assert [(p.name, p.layer_index) for p in r.packages] == [("bash", 0), ("curl", 1), ("git", 2), ("libc6", 0)]
    finally:
        store.close()


class FailingBlobs(LocalBlobStore):
    def put(self, key: str, data: bytes) -> None:
        raise OSError("disk full")


def test_a_failed_write_is_logged_and_leaves_no_entry(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base = I.layer([OS, status("libc6")])
    store = SQLiteStore(tmp_path / "store.db")
    try:
        states = BlobLayerStates(store, FailingBlobs(tmp_path / "blobs"), now)
        with caplog.at_level(logging.WARNING):
            r = scan_handle(I.counting_handle(tmp_path, "a", [base], []), ScanOptions(), layer_cache=states)
            states.close()  # does not raise: the scan's result stands
        assert [p.name for p in r.packages] == ["libc6"]
        assert "layer state not cached: OSError: disk full" in caplog.text
        assert not list((tmp_path / "blobs").rglob("*.json.z"))
        # no entry without its state: the next scan looks it up and reads the layer again
        read: list[str] = []
        again = BlobLayerStates(store, LocalBlobStore(tmp_path / "blobs"), now)
        scan_handle(I.counting_handle(tmp_path, "b", [base], read), ScanOptions(), layer_cache=again)
        again.close()
        assert read == [base.diff_id]
    finally:
        store.close()
