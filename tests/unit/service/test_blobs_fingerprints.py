"""Local blob store key sanitising, and the deterministic ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.stores import fingerprints as fp
from shared.stores.blobs import BlobKeyError, LocalBlobStore


def test_round_trip_and_missing(tmp_path: Path) -> None:
    b = LocalBlobStore(tmp_path / "blobs")
    key = fp.inventory_key("sha256:" + "a" * 64)
    assert key == f"inventories/sha256/{'a' * 64}.json"
    assert b.get(key) is None
    b.put(key, b"{}")
    b.put(key, b'{"x":1}')
    assert b.get(key) == b'{"x":1}'
    assert (b.put_count, b.get_count) == (2, 2)
    assert [p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == [f"{'a' * 64}.json"]


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/etc/passwd", "a//b", "a/./b", "", "a\\..\\b", "x\x00y"])
def test_keys_cannot_leave_the_root(tmp_path: Path, key: str) -> None:
    b = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(BlobKeyError):
        b.put(key, b"x")
    assert not (tmp_path / "escape").exists()
    assert list(tmp_path.glob("*")) == [tmp_path / "blobs"]


def test_odd_characters_are_encoded_inside_the_root(tmp_path: Path) -> None:
    b = LocalBlobStore(tmp_path / "blobs")
    b.put("state/a:b c..json", b"1")
    b.put("state/..%2F..%2Fx", b"2")  # percent signs are themselves encoded: no double decoding
    files = sorted(str(p.relative_to(tmp_path / "blobs")) for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    assert files == ["state/..%252F..%252Fx", "state/a%3Ab%20c..json"]
    assert b.get("state/a:b c..json") == b"1"


def test_fingerprints_are_stable_and_distinct() -> None:
    a = fp.finding_id("sha256:1", "pkg:npm/x@1", "package.json", "CVE-1")
    assert a == fp.finding_id("sha256:1", "pkg:npm/x@1", "package.json", "CVE-1")
    assert len(a) == 64
    assert a != fp.finding_id("sha256:2", "pkg:npm/x@1", "package.json", "CVE-1")
    assert a != fp.finding_id("sha256:1", "pkg:npm/x@1", "other/package.json", "CVE-1")
    # the separator keeps field boundaries: ("ab", "c") is not ("a", "bc")
    assert fp.finding_id("a", "b", "c", "d") != fp.finding_id("a", "bc", "", "d")
    assert fp.alert_id("t", "d", "v", "p", "f") != fp.alert_id("u", "d", "v", "p", "f")
    k1 = fp.layer_chain_key(["sha256:l"], {"apk": 1, "dpkg": 2})
    assert k1 == fp.layer_chain_key(["sha256:l"], {"dpkg": 2, "apk": 1})
    assert k1 != fp.layer_chain_key(["sha256:l"], {"apk": 2, "dpkg": 2}), "a new analyzer version is a new key"
    assert fp.layer_chain_key(["a", "b"], {"apk": 1}) != fp.layer_chain_key(["b", "a"], {"apk": 1})
