"""The layer cache: an image sharing lower layers with an earlier one reads only its own layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.scanning.scanner import scan_handle
from shared.scanning.sources.base import ScanOptions
from tests.support import images as I

OS = I.file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n')


def status(*names: str) -> I.F:
    body = "".join(f"Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n" for n in names)
    return I.file("var/lib/dpkg/status", body)


class DictCache:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def put(self, key: str, state: dict[str, Any]) -> None:
        self.data[key] = state


def test_shared_base_layers_are_not_read_again(tmp_path: Path) -> None:
    base = I.layer([OS, status("libc6", "bash"), I.file("usr/bin/tool", b"\x7fELF" + b"\0" * 60, 0o755)])
    mid = I.layer([status("libc6", "bash", "curl"), I.file("etc/.wh.os-release", "")])
    app_a = I.layer([I.file("app/a.sh", "#!/bin/sh\n", 0o755)])
    app_b = I.layer([status("libc6", "bash", "curl", "git"), I.file("../escape", "x")])
    cache = DictCache()

    read_a: list[str] = []
    a = scan_handle(I.counting_handle(tmp_path, "a", [base, mid, app_a], read_a), ScanOptions(), layer_cache=cache)
    assert read_a == [base.diff_id, mid.diff_id, app_a.diff_id]
    assert len(cache.data) == 3

    read_b: list[str] = []
    b = scan_handle(I.counting_handle(tmp_path, "b", [base, mid, app_b], read_b), ScanOptions(), layer_cache=cache)
    assert read_b == [app_b.diff_id], "the shared base and middle layers come from the cache"

    uncached = scan_handle(I.counting_handle(tmp_path, "c", [base, mid, app_b], []), ScanOptions())
    for field in ("os", "packages", "executables", "warnings"):
        assert getattr(b, field) == getattr(uncached, field), field
    assert [(p.name, p.layer_index) for p in b.packages] == [("bash", 0), ("curl", 1), ("git", 2), ("libc6", 0)]
    assert b.os is None, "the whiteout of os-release in the cached middle layer still applies"
    assert [e.path for e in b.executables or []] == ["usr/bin/tool"]
    assert [w.code for w in b.warnings] == ["path-escape"]
    assert a.packages != b.packages


def test_an_unreadable_cache_entry_is_a_miss(tmp_path: Path) -> None:
    base = I.layer([OS, status("libc6")])
    top = I.layer([status("libc6", "zlib1g")])
    cache = DictCache()
    scan_handle(I.counting_handle(tmp_path, "a", [base, top], []), ScanOptions(), layer_cache=cache)
    for key in cache.data:
        cache.data[key] = {"versions": "garbage"}
    read: list[str] = []
    r = scan_handle(I.counting_handle(tmp_path, "b", [base, top], read), ScanOptions(), layer_cache=cache)
    assert read == [base.diff_id, top.diff_id]
    assert [p.name for p in r.packages] == ["libc6", "zlib1g"]


class CountingCache(DictCache):
    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[str] = []

    def get(self, key: str) -> dict[str, Any] | None:
        self.lookups.append(key)
        return super().get(key)


def test_lookups_stay_few_however_many_layers(tmp_path: Path) -> None:
    """Each lookup is a store round trip: a new image must not cost one per layer."""
    layers = [I.layer([OS, status("libc6")])] + [I.layer([I.file(f"opt/l{i}", f"{i}\n")]) for i in range(1, 8)]
    cache = CountingCache()

    scan_handle(I.counting_handle(tmp_path, "cold", layers, []), ScanOptions(), layer_cache=cache)
    assert len(cache.lookups) == 3, "deepest, next-deepest and the base layer miss: a new stack"
    assert len(cache.data) == 8

    cache.lookups.clear()
    read: list[str] = []
    scan_handle(I.counting_handle(tmp_path, "same", layers, read), ScanOptions(), layer_cache=cache)
    assert (len(cache.lookups), read) == (1, []), "the same stack again: one lookup, nothing read"

    cache.lookups.clear()
    read = []
    extra = I.layer([I.file("opt/extra", "x\n")])
    scan_handle(I.counting_handle(tmp_path, "plus-one", [*layers, extra], read), ScanOptions(), layer_cache=cache)
    assert (len(cache.lookups), read) == (2, [extra.diff_id])

    # only the first three chains of a new eight-layer stack are known: found by binary search
    cache.lookups.clear()
    read = []
    other = [*layers[:3]] + [I.layer([I.file(f"srv/o{i}", f"{i}\n")]) for i in range(5)]
    r = scan_handle(I.counting_handle(tmp_path, "partial", other, read), ScanOptions(), layer_cache=cache)
    assert read == [lay.diff_id for lay in other[3:]]
    assert len(cache.lookups) <= 6
    assert [p.name for p in r.packages] == ["libc6"]
