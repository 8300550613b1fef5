"""Whole scans with Go: binaries in image layers (attribution, purls), go.mod in source trees only."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from shared.domain.models import Package
from shared.scanning.analyzers import all as all_analyzers
from shared.scanning.analyzers import golang as golang_analyzers
from shared.scanning.analyzers.golang import GoBinaryAnalyzer, GoModAnalyzer
from shared.scanning.scanner import ScanRequest, scan
from tests.conftest import require_tool
from tests.support import images as I
from tests.unit.scanning.test_golang import (
    ESBUILD_SYS,
    GoWorld,
    esbuild_bytes,
    make_go_world,
    osv_stdlib,
    run_temp_root,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "golang"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> GoWorld:
    return make_go_world(tmp_path_factory.mktemp("go") / "world", run_temp_root(tmp_path_factory) / "go-build-cache")


@pytest.fixture
def golang_enabled() -> None:
    """The default analyzer lists include this module's analyzers."""
    assert golang_analyzers.__name__ in all_analyzers._ENABLED_MODULES


def rows(packages: list[Package]) -> list[tuple[str, str, str, str, int | None, str | None]]:
    return sorted((p.found_in, p.name, p.version, p.purl, p.layer_index, p.ecosystem) for p in packages)


def test_go_binaries_in_two_layers(world: GoWorld, tmp_path: Path) -> None:
    registry = Path(require_tool("docker-registry", "Debian's docker-registry"))
    esbuild = esbuild_bytes()
    flags = ("-trimpath", "-ldflags=-buildid=")
    app_v3 = world.build("app", "v0.3.0", *flags).read_bytes()
    app_v4 = world.build("app-v4", "v0.4.0", *flags).read_bytes()
    std = osv_stdlib(world.goversion)
    img = I.image(
        [
            I.layer(
                [
                    I.file("usr/local/bin/app", app_v3, 0o755),
                    I.file("usr/bin/registry", registry.read_bytes(), 0o755),
                    I.file("usr/bin/env", Path("/usr/bin/env").read_bytes(), 0o755),
                ]
            ),
            I.layer(
                [
                    # The program rebuilt against a newer example.com/lib; the rest unchanged.
                    I.file("usr/local/bin/app", app_v4, 0o755),
                    I.file("opt/esbuild/bin/esbuild", esbuild, 0o644),
                ]
            ),
        ]
    )
    layout = I.write_oci_layout(tmp_path / "img", img)
    r = scan(ScanRequest(f"oci:{layout}"), analyzers=[GoBinaryAnalyzer()])[0]
    assert r.warnings == []
    # esbuild's toolchain, as its runtime keeps it: a NUL-delimited 'go1.26.N'.
    found = re.search(rb"\x00go(1\.26\.\d+)\x00", esbuild)
    assert found is not None
    esb_go = found.group(1).decode()
    app = "usr/local/bin/app"
    esb = "opt/esbuild/bin/esbuild"
    assert rows(r.packages) == sorted(
        [
            (app, "example.com/dep", "", "pkg:golang/example.com/dep", 0, "Go"),
            (app, "example.com/fork", "v1.5.0", "pkg:golang/example.com/fork@v1.5.0", 0, "Go"),
            (app, "example.com/lib", "v0.4.0", "pkg:golang/example.com/lib@v0.4.0", 1, "Go"),
            (app, "stdlib", std, f"pkg:golang/stdlib@{std}", 0, "Go"),
            ("usr/bin/registry", "stdlib", std, f"pkg:golang/stdlib@{std}", 0, "Go"),
            (esb, ESBUILD_SYS[0], ESBUILD_SYS[1], f"pkg:golang/{ESBUILD_SYS[0]}@{ESBUILD_SYS[1]}", 1, "Go"),
            (esb, "stdlib", esb_go, f"pkg:golang/stdlib@{esb_go}", 1, "Go"),
        ]
    )
    assert all(p.type == "golang" and not p.dev for p in r.packages)


def _tree(root: Path, binary: bytes) -> None:
    (root / "cli").mkdir(parents=True)
    shutil.copyfile(DATA / "go.mod", root / "cli" / "go.mod")
    (root / "cli" / "main.go").write_text("package main\n\nfunc main() {}\n")
    (root / "bin").mkdir()
    (root / "bin" / "app").write_bytes(binary)
    (root / "bin" / "app").chmod(0o755)


GO_MOD_ROWS = [
    ("github.com/inconshreveable/mousetrap", "v1.1.0", "pkg:golang/github.com/inconshreveable/mousetrap@v1.1.0"),
    ("github.com/my/fork-of-x", "v0.3.1", "pkg:golang/github.com/my/fork-of-x@v0.3.1"),
    ("github.com/spf13/cobra", "v1.8.0", "pkg:golang/github.com/spf13/cobra@v1.8.0"),
    ("github.com/spf13/pflag", "v1.0.5", "pkg:golang/github.com/spf13/pflag@v1.0.5"),
    ("golang.org/x/net", "v0.19.0", "pkg:golang/golang.org/x/net@v0.19.0"),
    ("golang.org/x/sys", "v0.15.0", "pkg:golang/golang.org/x/sys@v0.15.0"),
    ("gopkg.in/yaml.v3", "v3.0.1", "pkg:golang/gopkg.in/yaml.v3@v3.0.1"),
    ("example.com/internal/shared", "", "pkg:golang/example.com/internal/shared"),
]


def test_go_mod_is_read_in_source_trees_only(world: GoWorld, tmp_path: Path, golang_enabled: None) -> None:
    binary = world.build("app", "v0.3.0", "-trimpath", "-ldflags=-buildid=").read_bytes()
    tree = tmp_path / "tree"
    _tree(tree, binary)
    std = osv_stdlib(world.goversion)

    # dir: every analyzer enabled for source trees (the default list), go.mod included.
    r = scan(ScanRequest(f"dir:{tree}"))[0]
    assert "gomod" in r.analyzers and "golang-binary" in r.analyzers
    golang = [p for p in r.packages if p.type == "golang"]
    assert sorted((p.name, p.version, p.purl) for p in golang if p.found_in == "cli/go.mod") == sorted(GO_MOD_ROWS)
    assert sorted((p.name, p.version) for p in golang if p.found_in == "bin/app") == sorted(
        [("example.com/dep", ""), ("example.com/fork", "v1.5.0"), ("example.com/lib", "v0.3.0"), ("stdlib", std)]
    )
    assert {p.found_in for p in golang} == {"cli/go.mod", "bin/app"}
    assert all(p.ecosystem == "Go" and p.layer_index == 0 for p in golang)

    # The same files as an image: the lock-file analyzer does not run, the binary is still read.
    files = [I.file("cli/go.mod", (tree / "cli/go.mod").read_bytes()), I.file("bin/app", binary, 0o755)]
    layout = I.write_oci_layout(tmp_path / "img", I.image([I.layer(files)]))
    ri = scan(ScanRequest(f"oci:{layout}"))[0]
    assert "gomod" not in ri.analyzers and "golang-binary" in ri.analyzers
    assert not any(p.found_in == "cli/go.mod" for p in ri.packages)
    assert sorted((p.name, p.version) for p in ri.packages if p.type == "golang") == sorted(
        (p.name, p.version) for p in golang if p.found_in == "bin/app"
    )


def test_go_mod_analyzer_declares_dir_scope_only() -> None:
    assert GoModAnalyzer.scopes == frozenset({"dir"})
    assert GoBinaryAnalyzer.scopes == frozenset({"image", "dir"})
    assert GoBinaryAnalyzer.executables and GoBinaryAnalyzer.max_file_size == 128 * 1024 * 1024
