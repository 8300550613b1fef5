"""Go build information and go.mod, on binaries built here with Go, real programs, and hostile inputs."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.scanning.analyzers.base import FileInput
from shared.scanning.analyzers.golang import GoBinaryAnalyzer, GoModAnalyzer
from shared.scanning.parsers.elf import ElfError, parse_elf
from shared.scanning.parsers.gobinary import (
    BUILDINFO_MAGIC,
    MODINFO_END,
    MODINFO_START,
    GoBuildInfo,
    is_local_path,
    ldflags_version,
    packages_of,
    parse_go_binary,
    parse_modinfo,
    read_build_info,
    stdlib_version,
)
from shared.scanning.parsers.gomod import parse_go_mod
from tests.conftest import REPO, UNDER_CI, require_tool

DATA = Path(__file__).resolve().parent.parent.parent / "data" / "golang"
ESBUILD = REPO / "node_modules" / "@esbuild" / "linux-x64" / "bin" / "esbuild"
ESBUILD_PACKAGE = ESBUILD.parent.parent / "package.json"
# The module information of @esbuild/linux-x64 0.28.2 (read from the binary's own
# sentinel-wrapped text; Go 1.19's `go version -m` cannot read it: no header).
ESBUILD_SYS = ("golang.org/x/sys", "v0.0.0-20220715151400-c0bba94af5f8")


# -- building Go programs here -----------------------------------------------------


def _zip_module(dst: Path, path: str, version: str, files: dict[str, str]) -> None:
    with zipfile.ZipFile(dst, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{path}@{version}/{name}", text)


def _proxy_module(proxy: Path, path: str, version: str, module_line: str, pkg: str, body: str) -> None:
    """One module version in a file-system module proxy (the GOPROXY=file:// layout)."""
    d = proxy / path / "@v"
    d.mkdir(parents=True, exist_ok=True)
    gomod = f"module {module_line}\n\ngo 1.19\n"
    (d / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2024-01-02T03:04:05Z"}))
    (d / f"{version}.mod").write_text(gomod)
    _zip_module(d / f"{version}.zip", path, version, {"go.mod": gomod, f"{pkg}.go": f"package {pkg}\n\n{body}\n"})
    listing = d / "list"
    versions = listing.read_text().split() if listing.exists() else []
    listing.write_text("\n".join(sorted({*versions, version})) + "\n")


@dataclass
class GoWorld:
    """A Go toolchain set up to build offline: its environment and a file-system module proxy."""

    root: Path
    env: dict[str, str]
    goversion: str
    built: dict[tuple[str, ...], Path] = field(default_factory=dict)

    def build(self, name: str, lib_version: str, *flags: str) -> Path:
        """Build the test program against example.com/lib at ``lib_version``; return the binary.

        The same name with the same inputs is built once.
        """
        key = (name, lib_version, *flags)
        if key in self.built:
            return self.built[key]
        src = self.root / f"src-{name}"
        (src / "app").mkdir(parents=True)
        (src / "dep").mkdir()
        (src / "dep" / "go.mod").write_text("module example.com/dep\n\ngo 1.19\n")
        (src / "dep" / "dep.go").write_text('package dep\n\nfunc Name() string { return "dep" }\n')
        (src / "app" / "go.mod").write_text(
            "module example.com/app\n\ngo 1.19\n\n"
            "require (\n"
            f"\texample.com/lib {lib_version}\n"
            "\texample.com/dep v1.2.3\n"
            "\texample.com/old v1.0.0\n"
            ")\n\n"
            "replace example.com/dep => ../dep\n\n"
            "replace example.com/old => example.com/fork v1.5.0\n"
        )
        (src / "app" / "main.go").write_text(
            "package main\n\n"
            'import (\n\t"fmt"\n\n\t"example.com/dep"\n\t"example.com/lib"\n\t"example.com/old"\n)\n\n'
            'var version = "dev"\n\n'
            "func main() { fmt.Println(dep.Name(), lib.Name(), old.Name(), version) }\n"
        )
        out = self.root / "bin" / name
        out.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["go", "build", *flags, "-o", str(out), "."],
            cwd=src / "app",
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.built[key] = out
        return out


def run_temp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test run's temporary root, shared by its worker processes (pytest-xdist) if any."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if base.name.startswith("popen-gw") else base


def make_go_world(root: Path, cache: Path) -> GoWorld:
    """A world in ``root``; ``cache`` is a GOCACHE the run's processes share (Go locks it itself)."""
    require_tool("go", "Debian's golang-go")
    root.mkdir(parents=True, exist_ok=True)
    proxy = root / "proxy"
    for v in ("v0.3.0", "v0.4.0"):
        _proxy_module(proxy, "example.com/lib", v, "example.com/lib", "lib", f'func Name() string {{ return "{v}" }}')
    # A fork published under another path, replacing example.com/old (so it declares the old path).
    _proxy_module(proxy, "example.com/fork", "v1.5.0", "example.com/old", "old", 'func Name() string { return "f" }')
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "home"),
        "GOPATH": str(root / "gopath"),
        "GOCACHE": str(cache),
        "GOPROXY": f"file://{proxy}",
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "GO111MODULE": "on",
        "CGO_ENABLED": "0",
    }
    goversion = subprocess.run(
        ["go", "env", "GOVERSION"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    return GoWorld(root, env, goversion)


@dataclass
class GoBinaries:
    world: GoWorld
    exe: Path  # -trimpath, lib v0.3.0
    exe_v4: Path  # the same with lib v0.4.0
    pie: Path
    stripped: Path
    ldflags: Path  # no -trimpath, so -ldflags is recorded; -X main.version=1.4.0


@pytest.fixture(scope="module")
def go_binaries(tmp_path_factory: pytest.TempPathFactory) -> GoBinaries:
    world = make_go_world(tmp_path_factory.mktemp("go") / "world", run_temp_root(tmp_path_factory) / "go-build-cache")
    return GoBinaries(
        world=world,
        exe=world.build("app", "v0.3.0", "-trimpath", "-ldflags=-buildid="),
        exe_v4=world.build("app-v4", "v0.4.0", "-trimpath", "-ldflags=-buildid="),
        pie=world.build("app-pie", "v0.3.0", "-trimpath", "-buildmode=pie", "-ldflags=-buildid="),
        stripped=world.build("app-stripped", "v0.3.0", "-trimpath", "-ldflags=-s -w -buildid="),
        ldflags=world.build("app-ldflags", "v0.3.0", "-ldflags=-buildid= -X main.version=1.4.0"),
    )


def go_version_m(binary: Path, env: dict[str, str]) -> tuple[str, list[tuple[str, ...]]]:
    """(toolchain version, module lines) as Go's own `go version -m` prints them."""
    out = subprocess.run(
        ["go", "version", "-m", str(binary)], env=env, check=True, capture_output=True, text=True
    ).stdout
    head, *lines = out.splitlines()
    rows = [tuple(line.strip("\n").split("\t")[1:]) for line in lines if line.startswith("\t")]
    return head.split(": ", 1)[1], [r for r in rows if r and r[0] in ("path", "mod", "dep", "=>")]


def as_rows(info: GoBuildInfo) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("path", info.path)]
    mods = ([("mod", info.main)] if info.main else []) + [("dep", d) for d in info.deps]
    for key, m in mods:
        rows.append((key, m.path, m.version, m.sum) if m.sum or key == "mod" else (key, m.path, m.version))
        if m.replace is not None:
            r = m.replace
            rows.append(("=>", r.path, r.version, r.sum))
    return rows


def packages(data: bytes) -> list[tuple[str, str]]:
    pkgs, problems = parse_go_binary(data, "bin/x")
    assert problems == []
    return sorted((p.name, p.version) for p in pkgs)


def osv_stdlib(goversion: str) -> str:
    """A release toolchain's version as the Go vulnerability database writes stdlib's: 'go1.19.8' -> '1.19.8'."""
    assert re.fullmatch(r"go1\.\d+(\.\d+)?", goversion), goversion
    v = goversion.removeprefix("go")
    return v if v.count(".") == 2 else v + ".0"


def expected_app(goversion: str, lib: str = "v0.3.0") -> list[tuple[str, str]]:
    return sorted(
        [
            ("example.com/lib", lib),
            ("example.com/dep", ""),  # replaced by ../dep: no published version
            ("example.com/fork", "v1.5.0"),  # example.com/old replaced by the fork
            ("stdlib", osv_stdlib(goversion)),
        ]
    )


# -- real binaries built here --------------------------------------------------------


def test_built_binary_matches_go_version_m(go_binaries: GoBinaries) -> None:
    world = go_binaries.world
    for binary in (go_binaries.exe, go_binaries.pie, go_binaries.stripped, go_binaries.ldflags):
        data = binary.read_bytes()
        info = read_build_info(data)
        assert info is not None and info.found_by == "header" and info.problems == []
        go_version, rows = go_version_m(binary, world.env)
        assert info.go_version == go_version == world.goversion
        assert as_rows(info) == rows, binary.name
        assert info.path == "example.com/app"
        assert info.main is not None and (info.main.path, info.main.version) == ("example.com/app", "(devel)")


def test_built_binary_packages(go_binaries: GoBinaries) -> None:
    goversion = go_binaries.world.goversion
    assert re.fullmatch(r"go1\.\d+(\.\d+)?", goversion)
    want = expected_app(goversion)
    # The main module is (devel) and -trimpath leaves -ldflags out: it is not reported.
    for binary in (go_binaries.exe, go_binaries.pie, go_binaries.stripped):
        assert packages(binary.read_bytes()) == want, binary.name
    assert packages(go_binaries.exe_v4.read_bytes()) == expected_app(goversion, "v0.4.0")
    # Without -trimpath Go records -ldflags, whose -X main.version gives the main module its version.
    assert packages(go_binaries.ldflags.read_bytes()) == sorted([*want, ("example.com/app", "v1.4.0")])


def test_sums_and_replacements_are_read_from_the_binary(go_binaries: GoBinaries) -> None:
    info = read_build_info(go_binaries.exe.read_bytes())
    assert info is not None
    deps = {d.path: d for d in info.deps}
    assert deps["example.com/lib"].sum.startswith("h1:") and deps["example.com/lib"].replace is None
    assert deps["example.com/dep"].replace is not None and deps["example.com/dep"].replace.path == "../dep"
    old = deps["example.com/old"]
    assert old.replace is not None and (old.replace.path, old.replace.version) == ("example.com/fork", "v1.5.0")
    assert old.replace.sum.startswith("h1:")


def _destroy_header(data: bytes) -> bytes:
    assert data.count(BUILDINFO_MAGIC) == 1
    out = data.replace(BUILDINFO_MAGIC, b"\x00" * len(BUILDINFO_MAGIC))
    assert BUILDINFO_MAGIC not in out
    return out


def test_sentinel_fallback_when_the_header_is_destroyed(go_binaries: GoBinaries) -> None:
    goversion = go_binaries.world.goversion
    for binary in (go_binaries.exe, go_binaries.stripped, go_binaries.pie):
        data = _destroy_header(binary.read_bytes())
        info = read_build_info(data)
        assert info is not None and info.found_by == "sentinels"
        assert info.go_version == goversion
        assert packages(data) == expected_app(goversion)


def test_truncated_go_binary_keeps_what_it_has(go_binaries: GoBinaries) -> None:
    data = go_binaries.exe.read_bytes()
    # Cut after the header (in the data segment) but before the section table at the end.
    magic_at = data.index(BUILDINFO_MAGIC)
    cut = data[: magic_at + 4096]
    assert packages(cut) == expected_app(go_binaries.world.goversion)
    # Cut inside the header's inline strings: the runtime's copy of the module
    # information and version string (in .rodata, before the header) still serve.
    assert data.index(MODINFO_START) < magic_at
    cut = data[: magic_at + 40]
    info = read_build_info(cut)
    assert info is not None and info.found_by == "sentinels"
    assert packages(cut) == expected_app(go_binaries.world.goversion)


def test_analyzer_on_a_built_binary(go_binaries: GoBinaries) -> None:
    res = GoBinaryAnalyzer().analyze(FileInput("usr/local/bin/app", go_binaries.exe.read_bytes()))
    assert res.warnings == []
    assert sorted((p.type, p.name, p.version, p.found_in, p.purl) for p in res.packages) == sorted(
        ("golang", n, v, "usr/local/bin/app", "") for n, v in expected_app(go_binaries.world.goversion)
    )


# -- programs from elsewhere -----------------------------------------------------------


def esbuild_bytes() -> bytes:
    if not ESBUILD.is_file():
        message = "esbuild's Linux binary is not installed (run `npm ci --ignore-scripts` at the repository root)"
        if UNDER_CI:
            pytest.fail(message + " - required under CI", pytrace=False)
        pytest.skip(message)
    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]["esbuild"]
    assert json.loads(ESBUILD_PACKAGE.read_text())["version"] == pinned
    return ESBUILD.read_bytes()


def test_esbuild_go_126_binary_without_header() -> None:
    data = esbuild_bytes()
    # This build carries no build-info header at all: only the runtime's copy of the
    # module information (between the sentinels) and the runtime version string.
    assert BUILDINFO_MAGIC not in data and MODINFO_START in data and MODINFO_END in data
    info = read_build_info(data)
    assert info is not None and info.found_by == "sentinels" and info.problems == []
    assert info.path == "github.com/evanw/esbuild/cmd/esbuild"
    assert info.main is not None and (info.main.path, info.main.version) == ("github.com/evanw/esbuild", "(devel)")
    assert re.fullmatch(r"go1\.26\.\d+", info.go_version)
    assert dict(info.settings)["-trimpath"] == "true"
    # The main module is (devel) and no -ldflags version is recorded: only the dependency and stdlib.
    assert packages(data) == sorted([ESBUILD_SYS, ("stdlib", info.go_version.removeprefix("go"))])


def test_esbuild_with_an_unreadable_header_falls_back_quietly() -> None:
    data = esbuild_bytes()
    # A header that cannot be read (a bad pointer size) does not hide the module information.
    broken = BUILDINFO_MAGIC + bytes([3, 2]) + bytes(16) + b"\x08go1.26.0"
    at = data.index(b"\x00" * 64, 4096)
    forged = data[:at] + broken + data[at + len(broken) :]
    assert len(forged) == len(data)
    info = read_build_info(forged)
    assert info is not None and info.found_by == "sentinels"
    assert packages(forged) == packages(data)


@pytest.mark.parametrize(("program", "required"), [("docker-registry", True), ("skopeo", False)])
def test_debian_go_programs_carry_only_stdlib(program: str, required: bool) -> None:
    """Debian builds its Go programs outside module mode: a main package path and a version, no modules."""
    found = shutil.which(program)
    if found is None and not required:
        pytest.skip(f"{program} is not installed (optional: Debian's {program})")
    path = Path(found or require_tool(program, f"Debian's {program}"))
    require_tool("go", "Debian's golang-go")
    data = path.read_bytes()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "GOTOOLCHAIN": "local"}
    go_version, rows = go_version_m(path, env)
    info = read_build_info(data)
    assert info is not None and info.main is None and info.deps == [] and info.path
    assert info.go_version == go_version and as_rows(info) == rows
    assert packages(data) == [("stdlib", osv_stdlib(go_version))]


def test_c_programs_are_not_go() -> None:
    for program in ("/usr/bin/env", "/usr/bin/ls"):
        data = Path(program).read_bytes()
        assert read_build_info(data) is None
        res = GoBinaryAnalyzer().analyze(FileInput(program.lstrip("/"), data))
        assert res.packages == [] and res.warnings == []


# -- a hand-made ELF: pointer-format headers (Go before 1.18), 32-bit, big-endian ---------


def make_elf(blobs: list[tuple[str, int, bytes]], *, bits: int = 64, little: bool = True) -> bytes:
    """An ELF file with each (section name, virtual address, bytes) in its own loadable segment."""
    e = "<" if little else ">"
    ehsize, phentsize, shentsize = (64, 56, 64) if bits == 64 else (52, 32, 40)
    phoff = ehsize
    body_at = phoff + phentsize * len(blobs)
    offsets = []
    body = b""
    for _, _, data in blobs:
        pad = (-(body_at + len(body))) % 16
        body += b"\x00" * pad
        offsets.append(body_at + len(body))
        body += data
    names = b"\x00" + b"".join(n.encode() + b"\x00" for n, _, _ in blobs) + b".shstrtab\x00"
    strtab_at = body_at + len(body)
    shoff = strtab_at + len(names) + (-(strtab_at + len(names)) % 8)
    shnum = len(blobs) + 2
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    hfmt = e + ("HHIQQQIHHHHHH" if bits == 64 else "HHIIIIIHHHHHH")
    header = ident + struct.pack(
        hfmt, 2, 62, 1, 0, phoff, shoff, 0, ehsize, phentsize, len(blobs), shentsize, shnum, shnum - 1
    )
    phdrs = b""
    for (_, vaddr, data), off in zip(blobs, offsets, strict=True):
        if bits == 64:
            phdrs += struct.pack(e + "IIQQQQQQ", 1, 6, off, vaddr, vaddr, len(data), len(data), 16)
        else:
            phdrs += struct.pack(e + "IIIIIIII", 1, off, vaddr, vaddr, len(data), len(data), 6, 16)
    sfmt = e + ("IIQQQQIIQQ" if bits == 64 else "IIIIIIIIII")
    shdrs = struct.pack(sfmt, *([0] * 10))
    name_at = 1
    for (name, vaddr, data), off in zip(blobs, offsets, strict=True):
        shdrs += struct.pack(sfmt, name_at, 1, 3, vaddr, off, len(data), 0, 0, 16, 0)
        name_at += len(name) + 1
    shdrs += struct.pack(sfmt, name_at, 3, 0, 0, strtab_at, len(names), 0, 0, 1, 0)
    out = header + phdrs + body + names
    out += b"\x00" * (shoff - len(out))
    return out + shdrs


MODINFO = (
    "path\texample.com/old/cmd/tool\n"
    "mod\texample.com/old\tv2.0.1+incompatible\th1:main=\n"
    "dep\tgithub.com/pkg/errors\tv0.9.1\th1:errs=\n"
    "dep\tgolang.org/x/text\tv0.3.0\n"
    "=>\tgolang.org/x/text\tv0.3.8\th1:text=\n"
)


def pointer_format_binary(*, bits: int, little: bool, version: bytes = b"go1.16.15", mod: str = MODINFO) -> bytes:
    """Go <1.18 layout: the header points at two Go string headers in .data, which point into .rodata."""
    ps = bits // 8
    order = "little" if little else "big"
    rodata_at, data_at = 0x401000, 0x500000
    modinfo = MODINFO_START + mod.encode() + MODINFO_END
    rodata = version + b"\x00" * 7 + modinfo
    ver_addr, mod_addr = rodata_at, rodata_at + len(version) + 7

    def ptr(v: int) -> bytes:
        return v.to_bytes(ps, order)

    strings = ptr(ver_addr) + ptr(len(version)) + ptr(mod_addr) + ptr(len(modinfo))
    flags = 0 if little else 1
    hdr = BUILDINFO_MAGIC + bytes([ps, flags]) + ptr(data_at + 32) + ptr(data_at + 32 + 2 * ps)
    hdr += b"\x00" * (32 - len(hdr))
    return make_elf(
        [(".rodata", rodata_at, rodata), (".go.buildinfo", data_at, hdr + strings)], bits=bits, little=little
    )


@pytest.mark.parametrize(("bits", "little"), [(64, True), (32, True), (64, False), (32, False)])
def test_pointer_format_header_is_resolved_through_elf_headers(bits: int, little: bool) -> None:
    data = pointer_format_binary(bits=bits, little=little)
    info = read_build_info(data)
    assert info is not None and info.found_by == "header" and info.problems == []
    assert info.go_version == "go1.16.15"
    assert packages(data) == [
        ("example.com/old", "v2.0.1+incompatible"),
        ("github.com/pkg/errors", "v0.9.1"),
        ("golang.org/x/text", "v0.3.8"),
        ("stdlib", "1.16.15"),
    ]


def test_pointer_past_the_end_is_a_warning() -> None:
    data = bytearray(pointer_format_binary(bits=64, little=True))
    at = data.index(BUILDINFO_MAGIC)
    data[at + 16 : at + 24] = (0x7FFF_FFFF_0000).to_bytes(8, "little")  # version pointer into nowhere
    pkgs, problems = parse_go_binary(bytes(data), "bin/old")
    # The runtime's sentinel-wrapped copy is still there, but not its version string.
    assert ("github.com/pkg/errors", "v0.9.1") in [(p.name, p.version) for p in pkgs]
    assert problems == []
    # With the module information gone too, only the broken header is left: a warning.
    data2 = bytes(data).replace(MODINFO_START, b"\x00" * 16)
    pkgs, problems = parse_go_binary(data2, "bin/old")
    assert pkgs == [] and len(problems) == 1 and "does not resolve" in problems[0]
    # A string header with a huge length is refused before anything is read.
    data3 = bytearray(pointer_format_binary(bits=64, little=True)).replace(MODINFO_START, b"\x00" * 16)
    strings_at = data3.index(BUILDINFO_MAGIC) + 32
    data3[strings_at + 8 : strings_at + 16] = (1 << 62).to_bytes(8, "little")
    assert parse_go_binary(bytes(data3), "x")[0] == []
    assert "does not resolve" in parse_go_binary(bytes(data3), "x")[1][0]


def inline_header(version: bytes, mod: bytes, *, ps: int = 8) -> bytes:
    def uvarint(n: int) -> bytes:
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    hdr = BUILDINFO_MAGIC + bytes([ps, 2]) + bytes(16)
    return hdr + uvarint(len(version)) + version + uvarint(len(mod)) + mod


def test_inline_header_outside_any_section_name_and_outside_elf() -> None:
    mod = MODINFO_START + MODINFO.encode() + MODINFO_END
    blob = inline_header(b"go1.22rc1", mod)
    for data in (make_elf([(".data", 0x600000, blob)]), b"\x00" * 100 + blob + b"\x00" * 100):
        assert packages(data) == [
            ("example.com/old", "v2.0.1+incompatible"),
            ("github.com/pkg/errors", "v0.9.1"),
            ("golang.org/x/text", "v0.3.8"),
            ("stdlib", "1.22.0-rc.1"),
        ]


def test_hostile_varints_and_lengths() -> None:
    base = BUILDINFO_MAGIC + bytes([8, 2]) + bytes(16)
    cases = {
        "overflow": base + b"\xff" * 10 + b"\x01",
        "ten-byte overflow": base + b"\x80" * 9 + b"\x02",
        "truncated varint": base + b"\x80\x80",
        "length past end": base + b"\xf0\x01go1.2",
        "huge length": base + b"\xff\xff\xff\xff\x7f",
        "second string past end": base + b"\x08go1.21.3\xff\x01" + b"x" * 5,
    }
    for what, data in cases.items():
        for blob in (data, make_elf([(".go.buildinfo", 0x500000, data)])):
            pkgs, problems = parse_go_binary(blob, "bin/x")
            assert pkgs == [], what
            assert len(problems) == 1 and problems[0].startswith("Go build-info header unreadable"), what
    # Bad pointer size / flags / version: also a claim that cannot be read.
    for bad in (
        BUILDINFO_MAGIC + bytes([3, 2]) + bytes(16),
        BUILDINFO_MAGIC + bytes([8, 0x40]) + bytes(16),
        inline_header(b"\x01\x02binary", b""),
        BUILDINFO_MAGIC + bytes([8, 2]),
    ):
        pkgs, problems = parse_go_binary(bad + bytes(64), "bin/x")
        assert pkgs == [] and len(problems) == 1


def test_empty_module_information_gives_stdlib_only() -> None:
    # GOPATH-mode binaries (and Go before modules) carry a version and no module information.
    assert packages(inline_header(b"go1.21.5", b"")) == [("stdlib", "1.21.5")]
    # A devel toolchain has no version to match.
    assert packages(inline_header(b"devel go1.23-abcdef Tue Jan 1 2024", b"")) == []


def test_truncated_and_malformed_elf_are_quiet() -> None:
    env = Path("/usr/bin/env").read_bytes()
    for data in (env[:4], env[:20], env[:63], env[:64], env[:5000], b"\x7fELF\x02\x01\x01" + b"\xff" * 57):
        res = GoBinaryAnalyzer().analyze(FileInput("bin/env", data))
        assert res.packages == [] and res.warnings == []
    # A section table claiming 60000 entries past the end: no exception, nothing found.
    hdr = bytearray(env[:64])
    struct.pack_into("<Q", hdr, 40, 10_000_000)  # e_shoff
    struct.pack_into("<HHHH", hdr, 56, 0, 64, 60000, 1)  # e_phnum, e_shentsize, e_shnum, e_shstrndx
    assert read_build_info(bytes(hdr)) is None
    with pytest.raises(ElfError):
        parse_elf(bytes(hdr))


# -- the module-information text and versions ------------------------------------------


@pytest.mark.parametrize(
    ("go", "osv"),
    [
        ("go1.19.8", "1.19.8"),
        ("go1.20", "1.20.0"),
        ("go1.21.0", "1.21.0"),
        ("go1.22rc1", "1.22.0-rc.1"),
        ("go1.18beta2", "1.18.0-beta.2"),
        ("go1.9.2rc2", "1.9.2-rc.2"),
        ("go1.22.1 X:boringcrypto", "1.22.1"),
        ("go1.26.5", "1.26.5"),
        ("devel go1.23-abcdef", None),
        ("", None),
        ("gccgo", None),
    ],
)
def test_stdlib_version(go: str, osv: str | None) -> None:
    assert stdlib_version(go) == osv


def test_modinfo_lines_settings_and_ldflags() -> None:
    text = (
        "path\texample.com/svc/cmd/svc\n"
        "mod\texample.com/svc\t(devel)\t\n"
        "dep\texample.com/a\tv1.0.0\th1:a=\n"
        "=>\t./vendor/a\t(devel)\t\n"
        "dep\texample.com/b\tv0.0.0-20240101000000-abcdefabcdef\th1:b=\n"
        "build\t-compiler=gc\n"
        "build\t-ldflags=\"-s -w -X 'main.Version=v3.2.1' -X example.com/svc/internal/build.Commit=abc\"\n"
        'build\t"weird key"="value with spaces"\n'
        "build\tvcs.modified=true\n"
        "future\tsomething new\n"
    )
    info = parse_modinfo(text)
    assert info.problems == []
    assert (
        dict(info.settings)["-ldflags"] == "-s -w -X 'main.Version=v3.2.1' -X example.com/svc/internal/build.Commit=abc"
    )
    assert dict(info.settings)["weird key"] == "value with spaces"
    assert ldflags_version(info) == "v3.2.1"
    pkgs = [(p.name, p.version) for p in packages_of(info, "x")]
    assert pkgs == [
        ("example.com/svc", "v3.2.1"),
        ("example.com/a", ""),
        ("example.com/b", "v0.0.0-20240101000000-abcdefabcdef"),
    ]


@pytest.mark.parametrize(
    ("ldflags", "want"),
    [
        ("-X main.version=1.4.0", "v1.4.0"),
        ("-X=main.Version=v2.0.0-rc.1", "v2.0.0-rc.1"),
        ("-X example.com/svc/version.Version=0.9.0", "v0.9.0"),
        ("-X example.com/svc.appVersion=1.0.0", "v1.0.0"),
        ("-X main.version=dev", None),  # not a version
        ("-X github.com/other/lib.Version=1.0.0", None),  # another module's variable
        ("-X main.goVersion=1.21.0", None),
        ("-X main.commit=1.2.3", None),
        ("-s -w", None),
        ("-X", None),
    ],
)
def test_ldflags_version(ldflags: str, want: str | None) -> None:
    info = parse_modinfo(
        f"path\texample.com/svc\nmod\texample.com/svc\t(devel)\t\nbuild\t-ldflags={json.dumps(ldflags)}\n"
    )
    assert ldflags_version(info) == want


def test_malformed_modinfo_lines_are_problems() -> None:
    info = parse_modinfo('path\tx\n=>\tx\tv1\ndep\t\tv1\nbuild\tnoequals\nbuild\t"unterminated=1\n')
    assert len(info.problems) == 4 and info.deps == []


def test_is_local_path() -> None:
    for p in ("./a", "../a", "/abs/a", ".", "..", "C:\\src\\a", ".\\a"):
        assert is_local_path(p), p
    for p in ("example.com/a", "a", "golang.org/x/text"):
        assert not is_local_path(p), p


# -- go.mod ---------------------------------------------------------------------------------


def test_go_mod_fixture() -> None:
    data = (DATA / "go.mod").read_bytes()
    pkgs, problems = parse_go_mod(data, "src/go.mod")
    assert problems == []
    assert [(p.name, p.version) for p in pkgs] == [
        ("github.com/spf13/cobra", "v1.8.0"),
        ("golang.org/x/sys", "v0.15.0"),
        ("github.com/inconshreveable/mousetrap", "v1.1.0"),
        ("github.com/spf13/pflag", "v1.0.5"),
        ("gopkg.in/yaml.v3", "v3.0.1"),
        ("example.com/internal/shared", ""),  # replaced by ../shared
        ("github.com/my/fork-of-x", "v0.3.1"),  # golang.org/x/crypto replaced for that version
        ("golang.org/x/net", "v0.19.0"),  # the replacement names another version only
    ]
    assert {p.type for p in pkgs} == {"golang"} and not any(p.dev for p in pkgs)


def test_go_mod_of_the_built_program_matches_the_binary(go_binaries: GoBinaries) -> None:
    """The go.mod a binary was built from lists the same modules the binary does (bar stdlib)."""
    gomod = go_binaries.world.root / "src-app" / "app" / "go.mod"
    pkgs, problems = parse_go_mod(gomod.read_bytes(), "go.mod")
    assert problems == []
    from_binary = [pv for pv in packages(go_binaries.exe.read_bytes()) if pv[0] != "stdlib"]
    assert sorted((p.name, p.version) for p in pkgs) == from_binary


def test_go_mod_hostile_and_malformed() -> None:
    for data in (b"", b"\xff\xfe\x00garbage", b"module x\n", b"\x00" * 1000):
        pkgs, _ = parse_go_mod(data, "go.mod")
        assert pkgs == []
    pkgs, problems = parse_go_mod(b'module x\nrequire (\n\ta v1.0.0\n\tb\n\t"c\n', "go.mod")
    assert [(p.name, p.version) for p in pkgs] == [("a", "v1.0.0")]
    assert len(problems) == 3  # b has no version, "c is unterminated, the block never closes
    res = GoModAnalyzer().analyze(FileInput("src/go.mod", b"require a v1 v2 v3\nreplace x =>\n"))
    assert res.packages == [] and [w.code for w in res.warnings] == ["parse-error", "parse-error"]
    assert res.warnings[0].message.startswith("src/go.mod: line 1")


def test_go_mod_analyzer_matching() -> None:
    a = GoModAnalyzer()
    assert a.scopes == frozenset({"dir"})
    assert a.required("go.mod") and a.required("src/app/go.mod")
    assert not a.required("src/notgo.mod") and not a.required("go.mod.bak")
