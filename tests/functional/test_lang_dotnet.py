"""Whole scans of .NET files: deps.json in images and source trees, NuGet lock files in source trees only."""

from __future__ import annotations

import shutil
from pathlib import Path

from shared.domain.models import ScanResult
from shared.scanning.analyzers import dotnet  # noqa: F401 - importing registers the analyzers
from shared.scanning.scanner import ScanRequest, scan
from tests.support import images as I

DATA = Path(__file__).resolve().parent.parent / "data" / "dotnet"

# Where each fixture goes, in the image and in the source tree alike.
PLACES = {
    "app/Shop.Api.deps.json": "Shop.Api.deps.json",
    "src/Shop/packages.lock.json": "packages.lock.json",
    "src/Legacy.Web/packages.config": "packages.config",
}

DEPS_JSON_ROWS = [
    ("Humanizer.Core.fr", "2.14.1", "pkg:nuget/Humanizer.Core.fr@2.14.1", "app/Shop.Api.deps.json", False),
    (
        "Microsoft.Data.SqlClient",
        "5.1.2",
        "pkg:nuget/Microsoft.Data.SqlClient@5.1.2",
        "app/Shop.Api.deps.json",
        False,
    ),
    (
        "Microsoft.Data.SqlClient.SNI.runtime",
        "5.1.1",
        "pkg:nuget/Microsoft.Data.SqlClient.SNI.runtime@5.1.1",
        "app/Shop.Api.deps.json",
        False,
    ),
    ("Newtonsoft.Json", "13.0.3", "pkg:nuget/Newtonsoft.Json@13.0.3", "app/Shop.Api.deps.json", False),
    ("Polly", "7.2.4", "pkg:nuget/Polly@7.2.4", "app/Shop.Api.deps.json", False),
    ("Serilog", "3.1.1", "pkg:nuget/Serilog@3.1.1", "app/Shop.Api.deps.json", False),
]

LOCK_FILE_ROWS = [
    (
        "Microsoft.Net.Compilers",
        "4.2.0",
        "pkg:nuget/Microsoft.Net.Compilers@4.2.0",
        "src/Legacy.Web/packages.config",
        True,
    ),
    ("NUnit", "3.14.0", "pkg:nuget/NUnit@3.14.0", "src/Legacy.Web/packages.config", True),
    ("Newtonsoft.Json", "12.0.3", "pkg:nuget/Newtonsoft.Json@12.0.3", "src/Legacy.Web/packages.config", False),
    ("Newtonsoft.Json", "13.0.3", "pkg:nuget/Newtonsoft.Json@13.0.3", "src/Shop/packages.lock.json", False),
    ("Serilog", "3.1.1", "pkg:nuget/Serilog@3.1.1", "src/Shop/packages.lock.json", False),
    ("Serilog.Sinks.Console", "5.0.1", "pkg:nuget/Serilog.Sinks.Console@5.0.1", "src/Shop/packages.lock.json", False),
    ("System.Text.Json", "8.0.4", "pkg:nuget/System.Text.Json@8.0.4", "src/Shop/packages.lock.json", False),
    ("jQuery", "3.7.1", "pkg:nuget/jQuery@3.7.1", "src/Legacy.Web/packages.config", False),
    (
        "runtime.linux-x64.Microsoft.DotNet.ILCompiler",
        "8.0.4",
        "pkg:nuget/runtime.linux-x64.Microsoft.DotNet.ILCompiler@8.0.4",
        "src/Shop/packages.lock.json",
        False,
    ),
]


def _rows(r: ScanResult) -> list[tuple[str, str, str, str, bool]]:
    assert {(p.type, p.ecosystem, p.layer_index) for p in r.packages} <= {("nuget", "NuGet", 0)}
    return sorted((p.name, p.version, p.purl, p.found_in, p.dev) for p in r.packages)


def _tree(root: Path) -> Path:
    for dest, src in PLACES.items():
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / src, root / dest)
    return root


def test_image_scan_reads_deps_json_but_not_lock_files(tmp_path: Path) -> None:
    files = [I.file(dest, (DATA / src).read_bytes()) for dest, src in PLACES.items()]
    layout = I.write_oci_layout(tmp_path / "img", I.image([I.layer(files)]))
    r = scan(ScanRequest(f"oci:{layout}"))[0]
    assert _rows(r) == DEPS_JSON_ROWS
    assert r.warnings == []
    assert r.analyzers["dotnet-deps"] == 1
    assert "nuget-lock" not in r.analyzers and "nuget-config" not in r.analyzers


def test_dir_scan_reads_deps_json_and_lock_files(tmp_path: Path) -> None:
    root = _tree(tmp_path / "src-tree")
    r = scan(ScanRequest(f"dir:{root}"))[0]
    assert _rows(r) == sorted(DEPS_JSON_ROWS + LOCK_FILE_ROWS)
    assert r.warnings == []
    assert (r.analyzers["dotnet-deps"], r.analyzers["nuget-lock"], r.analyzers["nuget-config"]) == (1, 1, 1)


def test_broken_files_are_warnings_and_the_rest_is_still_read(tmp_path: Path) -> None:
    root = _tree(tmp_path / "src-tree")
    # an entity-expansion payload (small here; the unit tests hold the full-size one)
    (root / "src/Legacy.Web/packages.config").write_bytes(
        b'<?xml version="1.0"?>\n<!DOCTYPE p [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        b'<packages><package id="&b;" version="1"/></packages>\n'
    )
    (root / "app/Broken.deps.json").write_bytes(b'{"libraries": {"A/1.0.0": {"type": "package"}')
    r = scan(ScanRequest(f"dir:{root}"))[0]
    assert _rows(r) == sorted(DEPS_JSON_ROWS + [row for row in LOCK_FILE_ROWS if "packages.config" not in row[3]])
    assert sorted((w.code, w.path) for w in r.warnings) == [
        ("parse-error", "app/Broken.deps.json"),
        ("parse-error", "src/Legacy.Web/packages.config"),
    ]
