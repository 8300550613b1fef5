"""Whole scans with Rust: audited binaries in image layers (attribution, purls), Cargo.lock in source trees only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.domain.models import Package
from shared.scanning.analyzers import all as all_analyzers
from shared.scanning.analyzers import rust as rust_analyzers
from shared.scanning.analyzers.rust import CargoLockAnalyzer, RustBinaryAnalyzer
from shared.scanning.scanner import ScanRequest, scan
from tests.support import images as I
from tests.unit.scanning.test_rust import RustWorld, make_rust_world


@pytest.fixture(scope="module")
def rust(tmp_path_factory: pytest.TempPathFactory) -> RustWorld:
    return make_rust_world(tmp_path_factory.mktemp("rust"))


@pytest.fixture
def rust_enabled() -> None:
    """The default analyzer lists include this module's analyzers."""
    assert rust_analyzers.__name__ in all_analyzers._ENABLED_MODULES


def rows(packages: list[Package]) -> list[tuple[str, str, str, str, bool, int | None, str | None]]:
    return sorted((p.found_in, p.name, p.version, p.purl, p.dev, p.layer_index, p.ecosystem) for p in packages)


def test_audited_binaries_in_two_layers(rust: RustWorld, tmp_path: Path) -> None:
    # The second layer ships the program rebuilt with a newer hw-fixture-beta.
    newer = {
        "packages": [dict(p, version="0.4.1") if p["name"] == "hw-fixture-beta" else p for p in rust.audit["packages"]],
        "format": 1,
    }
    rebuilt = rust.audited_with(newer, "app-rebuilt").read_bytes()
    img = I.image(
        [
            I.layer(
                [
                    I.file("usr/bin/app", rust.audited.read_bytes(), 0o755),
                    I.file("usr/bin/hello", rust.plain.read_bytes(), 0o755),
                    I.file("usr/lib/tool", rust.audited.read_bytes(), 0o644),
                ]
            ),
            I.layer([I.file("usr/bin/app", rebuilt, 0o755)]),
        ]
    )
    layout = I.write_oci_layout(tmp_path / "img", img)
    r = scan(ScanRequest(f"oci:{layout}"), analyzers=[RustBinaryAnalyzer()])[0]
    assert r.warnings == []

    def expect(path: str, beta: str, beta_layer: int) -> list[tuple[str, str, str, str, bool, int | None, str | None]]:
        return [
            (path, "app", "0.3.1", "pkg:cargo/app@0.3.1", False, 0, "crates.io"),
            (path, "hw-fixture-alpha", "1.2.3", "pkg:cargo/hw-fixture-alpha@1.2.3", False, 0, "crates.io"),
            (path, "hw-fixture-beta", beta, f"pkg:cargo/hw-fixture-beta@{beta}", False, beta_layer, "crates.io"),
            (path, "hw-fixture-build", "2.0.0", "pkg:cargo/hw-fixture-build@2.0.0", True, 0, "crates.io"),
            (path, "util", "0.1.0", "pkg:cargo/util@0.1.0", False, 0, "crates.io"),
        ]

    assert rows(r.packages) == sorted(expect("usr/bin/app", "0.4.1", 1) + expect("usr/lib/tool", "0.4.0", 0))
    assert {p.type for p in r.packages} == {"cargo"}


def test_cargo_lock_is_read_in_source_trees_only(rust: RustWorld, tmp_path: Path, rust_enabled: None) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(rust.workspace, tree / "ws", ignore=shutil.ignore_patterns("target", ".cargo"))
    shutil.copyfile(rust.audited, tree / "ws" / "app-bin")
    lock_rows = sorted(
        (p["name"], p["version"], f"pkg:cargo/{p['name']}@{p['version']}") for p in rust.metadata["packages"]
    )

    # dir: every analyzer enabled for source trees (the default list), the lock file included.
    r = scan(ScanRequest(f"dir:{tree}"))[0]
    assert "cargo-lock" in r.analyzers and "rust-binary" in r.analyzers
    cargo = [p for p in r.packages if p.type == "cargo"]
    assert sorted((p.name, p.version, p.purl) for p in cargo if p.found_in == "ws/Cargo.lock") == lock_rows
    assert {p.found_in for p in cargo} == {"ws/Cargo.lock", "ws/app-bin"}
    assert all(p.ecosystem == "crates.io" for p in cargo)

    # The same files as an image: the lock-file analyzer does not run, the binary is still read.
    files = [
        I.file("ws/Cargo.lock", (tree / "ws/Cargo.lock").read_bytes()),
        I.file("ws/app-bin", rust.audited.read_bytes(), 0o755),
    ]
    layout = I.write_oci_layout(tmp_path / "img", I.image([I.layer(files)]))
    ri = scan(ScanRequest(f"oci:{layout}"))[0]
    assert "cargo-lock" not in ri.analyzers and "rust-binary" in ri.analyzers
    assert not any(p.found_in == "ws/Cargo.lock" for p in ri.packages)
    assert sorted((p.name, p.version, p.dev) for p in ri.packages if p.type == "cargo") == sorted(
        (p.name, p.version, p.dev) for p in cargo if p.found_in == "ws/app-bin"
    )


def test_lock_file_analyzer_declares_dir_scope_only() -> None:
    assert CargoLockAnalyzer.scopes == frozenset({"dir"})
    assert RustBinaryAnalyzer.scopes == frozenset({"image", "dir"})
