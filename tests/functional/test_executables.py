"""The executable inventory against find(1): every file with an execute bit, plus ELF files, with hashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.scanning.scanner import ScanRequest, scan
from tests.conftest import require_tool
from tests.support import images as I
from tests.support.cli import run_cli

# Real files from this machine: programs, shared libraries (ELF, often 0644), scripts and data.
HOST_FILES = [
    "/usr/bin/env",
    "/usr/bin/ls",
    "/usr/bin/sha256sum",
    "/usr/bin/ldd",  # a shell script with an execute bit
    "/etc/os-release",
    "/etc/hostname",
]


def _host_libs() -> list[str]:
    out = []
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/x86_64-linux-gnu"):
        if os.path.isdir(d):
            out += sorted(str(p) for p in Path(d).glob("libz.so*") if p.is_file() and not p.is_symlink())[:1]
            out += sorted(str(p) for p in Path(d).glob("libacl.so*") if p.is_file() and not p.is_symlink())[:1]
            break
    return out


def build_rootfs(root: Path) -> None:
    for src in HOST_FILES + _host_libs():
        if not os.path.isfile(src):
            continue
        dst = root / src.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    # an ELF without execute bits, and an executable text file, and a symlink to a program
    lib = root / "opt/lib/plugin.so"
    lib.parent.mkdir(parents=True)
    shutil.copyfile("/usr/bin/env", lib)
    lib.chmod(0o644)
    script = root / "opt/bin/run"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\nexec /usr/bin/env\n")
    script.chmod(0o750)
    (root / "opt/bin/env-link").symlink_to("../../usr/bin/env")


def expected(root: Path) -> list[tuple[str, int, str]]:
    require_tool("find", "findutils")
    out = subprocess.run(
        ["find", str(root), "-type", "f", "-perm", "/111"], capture_output=True, text=True, check=True
    ).stdout.split()
    files = set(out)
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF":
            files.add(str(p))
    return sorted(
        (str(Path(f).relative_to(root)), Path(f).stat().st_size, hashlib.sha256(Path(f).read_bytes()).hexdigest())
        for f in files
    )


def test_executables_match_find_and_elf_files(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    build_rootfs(root)
    want = expected(root)
    assert any(p == "opt/lib/plugin.so" for p, _, _ in want) and any(p == "opt/bin/run" for p, _, _ in want)

    from_dir = scan(ScanRequest(f"dir:{root}"))[0].executables or []
    assert [(e.path, e.size, e.sha256) for e in from_dir] == want

    files = []
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            files.append(I.F(rel, kind="symlink", link=os.readlink(p)))
        elif p.is_file():
            files.append(I.F(rel, p.read_bytes(), mode=p.stat().st_mode & 0o7777))
    img = I.image([I.layer(files)])
    result = scan(ScanRequest(f"oci:{I.write_oci_layout(tmp_path / 'img', img)}"))[0]
    execs = result.executables or []
    assert [(e.path, e.size, e.sha256) for e in execs] == want
    by_path = {e.path: e for e in execs}
    assert by_path["opt/lib/plugin.so"].elf and by_path["opt/lib/plugin.so"].mode == 0o644
    assert not by_path["opt/bin/run"].elf and by_path["opt/bin/run"].mode == 0o750
    assert {e.layer_index for e in execs} == {0}


def test_layers_whiteouts_and_mode_changes_update_the_inventory(tmp_path: Path) -> None:
    elf = Path("/usr/bin/env").read_bytes()
    img = I.image(
        [
            I.layer(
                [
                    I.file("bin/a", elf, 0o755),
                    I.file("bin/b", b"#!/bin/sh\n", 0o755),
                    I.file("bin/c", b"x", 0o755),
                    I.file("opt/tool/t", b"#!/bin/sh\n", 0o755),
                ]
            ),
            I.layer(
                [
                    I.file("bin/.wh.a", ""),
                    I.file("bin/b", b"not executable any more", 0o644),
                    I.file("opt/tool/.wh..wh..opq", ""),
                    I.file("bin/d", elf, 0o700),
                ]
            ),
        ]
    )
    r = scan(ScanRequest(f"oci:{I.write_oci_layout(tmp_path / 'img', img)}"))[0]
    assert [(e.path, e.layer_index) for e in r.executables or []] == [("bin/c", 0), ("bin/d", 1)]


def test_json_carries_executables_only_behind_the_flag(tmp_path: Path) -> None:
    img = I.image([I.layer([I.file("bin/tool", b"#!/bin/sh\n", 0o755)])])
    layout = I.write_oci_layout(tmp_path / "img", img)
    plain = run_cli(["scan", f"oci:{layout}", "-f", "json"], tmp_path / "s1")
    assert json.loads(plain.stdout)["results"][0]["executables"] is None
    flagged = run_cli(["scan", f"oci:{layout}", "-f", "json", "--executables"], tmp_path / "s2")
    (e,) = json.loads(flagged.stdout)["results"][0]["executables"]
    assert (e["path"], e["mode"], e["sha256"]) == ("bin/tool", 0o755, hashlib.sha256(b"#!/bin/sh\n").hexdigest())


@pytest.mark.parametrize("size", [0, 3])
def test_tiny_files(tmp_path: Path, size: int) -> None:
    img = I.image([I.layer([I.file("bin/x", b"\x7fE"[:size], 0o755)])])
    r = scan(ScanRequest(f"oci:{I.write_oci_layout(tmp_path / 'img', img)}"))[0]
    assert [(e.path, e.size, e.elf) for e in r.executables or []] == [("bin/x", min(size, 2), False)]
