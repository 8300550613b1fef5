"""Rust: cargo-auditable audit data in binaries built here, Cargo.lock files from cargo, hostile inputs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.scanning.analyzers.base import FileInput
from shared.scanning.analyzers.rust import CargoLockAnalyzer, RustBinaryAnalyzer
from shared.scanning.parsers.cargo import parse_cargo_lock
from shared.scanning.parsers.elf import parse_elf
from shared.scanning.parsers.rustbinary import MAX_INFLATED, inflate, parse_audit_data, parse_rust_binary
from tests.conftest import require_tool

DATA = Path(__file__).resolve().parent.parent.parent / "data" / "rust"
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"

# Crates of a local directory source standing in for crates.io (no network here):
# name, version, [dependencies] lines.
VENDORED = [
    ("hw-fixture-beta", "0.4.0", ""),
    ("hw-fixture-alpha", "1.2.3", 'hw-fixture-beta = "0.4"\n'),
    ("hw-fixture-build", "2.0.0", ""),
    ("hw-fixture-dev", "0.9.0", ""),
]
APP_MANIFEST = """[package]
name = "app"
version = "0.3.1"
edition = "2021"

[dependencies]
util = { path = "../util" }
hw-fixture-alpha = "1.2"

[build-dependencies]
hw-fixture-build = "2"

[dev-dependencies]
hw-fixture-dev = "0.9"
"""


def cargo_env(root: Path) -> dict[str, str]:
    """Cargo offline, with its own CARGO_HOME; a rustup-managed toolchain is still found where it lives."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(root)),
        "CARGO_HOME": str(root / "cargo-home"),
        "CARGO_NET_OFFLINE": "true",
        "CARGO_TERM_COLOR": "never",
    }
    rustup_home = os.environ.get("RUSTUP_HOME") or str(Path(env["HOME"]) / ".rustup")
    if Path(rustup_home).is_dir():
        env["RUSTUP_HOME"] = rustup_home
    for name in ("RUSTUP_TOOLCHAIN",):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def make_workspace(root: Path) -> Path:
    """A two-member workspace whose registry dependencies come from a local directory source."""
    vendor = root / "vendor"
    for name, version, deps in VENDORED:
        d = vendor / f"{name}-{version}"
        (d / "src").mkdir(parents=True)
        (d / "Cargo.toml").write_text(
            f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n\n[dependencies]\n{deps}'
        )
        (d / "src" / "lib.rs").write_text("pub fn f() -> u32 { 1 }\n")
        checksum = hashlib.sha256(f"{name}-{version}".encode()).hexdigest()
        (d / ".cargo-checksum.json").write_text(json.dumps({"files": {}, "package": checksum}))
    ws = root / "ws"
    (ws / ".cargo").mkdir(parents=True)
    (ws / ".cargo" / "config.toml").write_text(
        f'[source.crates-io]\nreplace-with = "fixtures"\n\n[source.fixtures]\ndirectory = "{vendor}"\n'
    )
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["app", "util"]\nresolver = "2"\n')
    (ws / "app" / "src").mkdir(parents=True)
    (ws / "app" / "Cargo.toml").write_text(APP_MANIFEST)
    (ws / "app" / "build.rs").write_text("fn main() { let _ = hw_fixture_build::f(); }\n")
    (ws / "app" / "src" / "main.rs").write_text('fn main() { println!("{} {}", util::x(), hw_fixture_alpha::f()); }\n')
    (ws / "util" / "src").mkdir(parents=True)
    (ws / "util" / "Cargo.toml").write_text('[package]\nname = "util"\nversion = "0.1.0"\nedition = "2021"\n')
    (ws / "util" / "src" / "lib.rs").write_text("pub fn x() -> u8 { 1 }\n")
    return ws


def auditable_json(metadata: dict[str, Any], root_name: str) -> dict[str, Any]:
    """The audit data cargo-auditable (format 1) derives from `cargo metadata`, for one binary.

    Written to its published format (the auditable-serde crate's VersionInfo):
    packages reachable from the root through normal dependencies are runtime,
    those reachable only through build dependencies are "build", dev
    dependencies are left out; ``dependencies`` are indices into the array.
    """
    pkgs = {p["id"]: p for p in metadata["packages"]}
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    root = next(i for i, p in pkgs.items() if p["name"] == root_name)

    def edges(node_id: str, kinds: set[str | None]) -> list[str]:
        return [d["pkg"] for d in nodes[node_id]["deps"] if any(k["kind"] in kinds for k in d["dep_kinds"])]

    runtime: set[str] = set()
    todo = [root]
    while todo:
        n = todo.pop()
        if n not in runtime:
            runtime.add(n)
            todo += edges(n, {None})
    build: set[str] = set()
    todo = [d for n in runtime for d in edges(n, {"build"})]
    while todo:
        n = todo.pop()
        if n not in runtime and n not in build:
            build.add(n)
            todo += edges(n, {None, "build"})
    ids = sorted(runtime | build, key=lambda i: (pkgs[i]["name"], pkgs[i]["version"]))
    index = {i: k for k, i in enumerate(ids)}

    def source(src: str | None) -> str:
        if src is None:
            return "local"
        if src == CRATES_IO:
            return "crates.io"
        return "git" if src.startswith("git+") else "registry"

    out = []
    for i in ids:
        entry: dict[str, Any] = {
            "name": pkgs[i]["name"],
            "version": pkgs[i]["version"],
            "source": source(pkgs[i]["source"]),
        }
        if i in build:
            entry["kind"] = "build"
        deps = sorted(index[d] for d in edges(i, {None, "build"}) if d in index)
        if deps:
            entry["dependencies"] = deps
        if i == root:
            entry["root"] = True
        out.append(entry)
    return {"packages": out, "format": 1}


def add_section(binary: Path, content: bytes, out: Path, name: str = ".dep-v0") -> Path:
    """Copy ``binary`` to ``out`` with an extra section, the way cargo-auditable's data sits in an ELF."""
    require_tool("objcopy", "GNU binutils")
    blob = out.with_suffix(".section")
    blob.write_bytes(content)
    subprocess.run(
        [
            "objcopy",
            f"--add-section={name}={blob}",
            f"--set-section-flags={name}=noload,readonly",
            str(binary),
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


def compress_json(doc: Any) -> bytes:
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 9)


@dataclass
class RustWorld:
    root: Path
    workspace: Path
    lock: Path  # Cargo.lock written by cargo
    metadata: dict[str, Any]  # cargo metadata of the workspace
    app: Path  # the workspace's binary, as cargo built it (no audit data)
    audit: dict[str, Any]  # audit data for it, from cargo metadata
    audited: Path  # the binary with the .dep-v0 section added
    plain: Path  # a rustc-built program with no dependencies and no audit data

    def audited_with(self, doc: Any, name: str, *, raw: bytes | None = None) -> Path:
        """The workspace binary with other audit data (JSON ``doc``, or ``raw`` section bytes)."""
        return add_section(self.app, raw if raw is not None else compress_json(doc), self.root / name)


def make_rust_world(root: Path) -> RustWorld:
    require_tool("cargo", "the Rust toolchain")
    require_tool("rustc", "the Rust toolchain")
    ws = make_workspace(root)
    env = cargo_env(root)
    subprocess.run(["cargo", "generate-lockfile", "--offline"], cwd=ws, env=env, check=True, capture_output=True)
    subprocess.run(["cargo", "build", "--offline", "--release", "-q"], cwd=ws, env=env, check=True, capture_output=True)
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--offline", "--format-version", "1"],
            cwd=ws,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    app = root / "app"
    shutil.copyfile(ws / "target" / "release" / "app", app)
    audit = auditable_json(meta, "app")
    audited = add_section(app, compress_json(audit), root / "app-audited")
    (root / "hello.rs").write_text('fn main() { println!("hello"); }\n')
    plain = root / "hello"
    subprocess.run(
        ["rustc", "-C", "opt-level=0", "-C", "debuginfo=0", str(root / "hello.rs"), "-o", str(plain)],
        env=env,
        check=True,
        capture_output=True,
    )
    return RustWorld(root, ws, ws / "Cargo.lock", meta, app, audit, audited, plain)


@pytest.fixture(scope="module")
def rust(tmp_path_factory: pytest.TempPathFactory) -> RustWorld:
    return make_rust_world(tmp_path_factory.mktemp("rust"))


def crates(data: bytes) -> list[tuple[str, str, bool]]:
    pkgs, problems = parse_rust_binary(data, "bin/app")
    assert problems == []
    return sorted((p.name, p.version, p.dev) for p in pkgs)


def one_problem(data: bytes) -> str:
    res = RustBinaryAnalyzer().analyze(FileInput("bin/app", data))
    assert res.packages == []
    assert len(res.warnings) == 1 and res.warnings[0].code == "parse-error" and res.warnings[0].path == "bin/app"
    assert res.warnings[0].message.startswith("bin/app: ")
    return res.warnings[0].message


# -- binaries ---------------------------------------------------------------------------


def test_audit_data_of_a_built_binary(rust: RustWorld) -> None:
    names = {p["name"]: p for p in rust.audit["packages"]}
    # What cargo resolved: the dev-dependency is not in the binary, the build-dependency ran at build time.
    assert set(names) == {"app", "util", "hw-fixture-alpha", "hw-fixture-beta", "hw-fixture-build"}
    assert names["hw-fixture-build"]["kind"] == "build" and names["app"]["root"] is True
    assert crates(rust.audited.read_bytes()) == [
        ("app", "0.3.1", False),
        ("hw-fixture-alpha", "1.2.3", False),
        ("hw-fixture-beta", "0.4.0", False),
        ("hw-fixture-build", "2.0.0", True),  # build-time only: dev
        ("util", "0.1.0", False),
    ]
    res = RustBinaryAnalyzer().analyze(FileInput("usr/bin/app", rust.audited.read_bytes()))
    assert res.warnings == []
    assert {(p.type, p.found_in, p.purl, p.ecosystem) for p in res.packages} == {("cargo", "usr/bin/app", "", None)}


def test_binaries_without_audit_data_are_quiet(rust: RustWorld) -> None:
    for path in (rust.app, rust.plain, Path("/usr/bin/env")):
        data = path.read_bytes()
        assert parse_rust_binary(data, "x") == ([], [])
        res = RustBinaryAnalyzer().analyze(FileInput("x", data))
        assert res.packages == [] and res.warnings == []


def test_truncated_elf_is_quiet(rust: RustWorld) -> None:
    data = rust.audited.read_bytes()
    for cut in (4, 16, 63, 64, 1000, len(data) // 2, len(data) - 1):
        res = RustBinaryAnalyzer().analyze(FileInput("bin/app", data[:cut]))
        assert res.packages == [] and res.warnings == [], cut


def test_zlib_bomb_is_refused(rust: RustWorld) -> None:
    bomb = zlib.compress(b'{"packages":[' + b" " * (64 * 1024 * 1024) + b"]}", 9)
    assert len(bomb) < 128 * 1024
    message = one_problem(rust.audited_with(None, "bomb", raw=bomb).read_bytes())
    assert "inflates to more than" in message
    # The cap itself: just under inflates, just over does not.
    assert inflate(zlib.compress(b"x" * MAX_INFLATED))[0] is not None
    assert inflate(zlib.compress(b"x" * (MAX_INFLATED + 1)))[0] is None


def test_hostile_audit_sections(rust: RustWorld) -> None:
    cases: dict[str, tuple[bytes, str]] = {
        "not zlib": (b"plain text, not compressed", "not zlib data"),
        "truncated zlib": (compress_json(rust.audit)[:-10], "truncated"),
        "invalid JSON": (zlib.compress(b'{"packages": [{"name": "a",'), "not valid JSON"),
        "not UTF-8": (zlib.compress(b'{"packages": ["\xff\xfe"]}'), "not valid JSON"),
        "deep nesting": (zlib.compress(b"[" * 200_000 + b"]" * 200_000), "nested too deeply"),
        "no packages": (compress_json({"pkgs": []}), "no 'packages' array"),
        "packages not a list": (compress_json({"packages": {"a": 1}}), "no 'packages' array"),
        "a list": (compress_json([1, 2]), "no 'packages' array"),
    }
    for what, (raw, expect) in cases.items():
        assert parse_audit_data(raw, "x")[0] == [], what
        message = one_problem(rust.audited_with(None, what.replace(" ", "-"), raw=raw).read_bytes())
        assert expect in message, (what, message)


def test_bad_entries_are_skipped_good_ones_kept() -> None:
    doc = {
        "packages": [
            {"name": "good", "version": "1.0.0", "source": "crates.io"},
            {"name": "nover", "source": "crates.io"},
            {"name": 5, "version": "1.0.0"},
            "not an object",
            {"name": "good", "version": "1.0.0", "source": "crates.io"},
            {"name": "tool", "version": "0.1.0", "kind": "build", "source": {"Other": "x"}},
        ]
    }
    pkgs, problems = parse_audit_data(compress_json(doc), "x")
    assert [(p.name, p.version, p.dev) for p in pkgs] == [("good", "1.0.0", False), ("tool", "0.1.0", True)]
    assert len(problems) == 3


def test_section_past_the_end_is_a_warning(rust: RustWorld) -> None:
    data = bytearray(rust.audited.read_bytes())
    elf = parse_elf(bytes(data))
    assert elf.bits == 64 and elf.little_endian
    index = next(i for i, s in enumerate(elf.sections) if s.name == ".dep-v0")
    e_shoff = struct.unpack_from("<Q", data, 40)[0]
    e_shentsize = struct.unpack_from("<H", data, 58)[0]
    struct.pack_into("<Q", data, e_shoff + index * e_shentsize + 24, len(data) + 4096)  # sh_offset
    assert "past the end" in one_problem(bytes(data))


def test_rust_binary_analyzer_declaration() -> None:
    a = RustBinaryAnalyzer()
    assert a.executables and a.max_file_size == 128 * 1024 * 1024
    assert a.scopes == frozenset({"image", "dir"})


# -- Cargo.lock -----------------------------------------------------------------------------


def test_cargo_lock_written_by_cargo_matches_cargo_metadata(rust: RustWorld) -> None:
    data = rust.lock.read_bytes()
    assert data.splitlines()[2] == b"version = 4"
    pkgs, problems = parse_cargo_lock(data, "ws/Cargo.lock")
    assert problems == []
    want = sorted((p["name"], p["version"]) for p in rust.metadata["packages"])
    assert sorted((p.name, p.version) for p in pkgs) == want
    # Workspace members (no source) are included, and the dev-dependency: a lock file does not tell them apart.
    assert ("app", "0.3.1") in want and ("util", "0.1.0") in want and ("hw-fixture-dev", "0.9.0") in want
    assert {(p.type, p.found_in, p.dev) for p in pkgs} == {("cargo", "ws/Cargo.lock", False)}


@pytest.mark.parametrize(
    ("fixture", "want"),
    [
        (
            "Cargo.lock.v1",
            [("aho-corasick", "0.7.18"), ("helpers", "0.1.0"), ("memchr", "2.4.1"), ("mytool", "0.1.0")],
        ),
        (
            "Cargo.lock.v3",
            [
                ("cfg-if", "1.0.0"),
                ("getrandom", "0.2.11"),
                ("libc", "0.2.150"),
                ("proc-macro2", "1.0.70"),
                ("server", "0.2.0"),
                ("syn", "1.0.109"),
                ("syn", "2.0.39"),
            ],
        ),
        ("Cargo.lock.v4", [("bytes", "1.5.0"), ("serde", "1.0.193"), ("tokio", "1.35.0"), ("worker", "3.1.0")]),
    ],
)
def test_cargo_lock_versions(fixture: str, want: list[tuple[str, str]]) -> None:
    pkgs, problems = parse_cargo_lock((DATA / fixture).read_bytes(), "Cargo.lock")
    assert problems == []
    assert sorted((p.name, p.version) for p in pkgs) == want


def test_cargo_lock_hostile_and_malformed() -> None:
    cases = {
        b"[[package]\nname = 1": "not valid TOML",
        b"\xff\xfe\x00\x01": "not UTF-8",
        b"a = " + b"[" * 100_000 + b"]" * 100_000: "nested too deeply",
        b'package = "x"': "not an array of tables",
    }
    for data, expect in cases.items():
        res = CargoLockAnalyzer().analyze(FileInput("src/Cargo.lock", data))
        assert res.packages == []
        assert len(res.warnings) == 1 and expect in res.warnings[0].message, expect
        assert res.warnings[0].message.startswith("src/Cargo.lock: ")
    pkgs, problems = parse_cargo_lock(
        b'version = 3\n[[package]]\nname = "ok"\nversion = "1.0.0"\n[[package]]\nname = "nover"\n'
        b'[[package]]\nname = "ok"\nversion = "1.0.0"\n',
        "Cargo.lock",
    )
    assert [(p.name, p.version) for p in pkgs] == [("ok", "1.0.0")] and len(problems) == 1
    assert parse_cargo_lock(b"", "Cargo.lock") == ([], [])


def test_cargo_lock_analyzer_declaration() -> None:
    a = CargoLockAnalyzer()
    assert a.scopes == frozenset({"dir"})
    assert a.required("Cargo.lock") and a.required("ws/Cargo.lock")
    assert not a.required("ws/OldCargo.lock") and not a.required("ws/Cargo.lock.bak")
