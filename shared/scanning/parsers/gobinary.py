"""Modules compiled into a Go binary, from the build information the Go linker embeds.

Where it is found, in the order tried:

1. The build-info header: 16-byte aligned, starting with the 14-byte magic
   ``\\xff Go buildinf:``, then one byte of pointer size and one of flags, 32
   bytes in all. In the ELF section ``.go.buildinfo`` when there is one, else
   anywhere in the file (some toolchains and post-processors move it).

   * Go 1.18 and later set flag bit 2: the toolchain version and the module
     information follow the header inline, each prefixed by its length as an
     unsigned varint.
   * Older binaries store two pointers after the flags (bit 1 of the flags
     says big-endian); each points to a Go string header (data pointer,
     length), resolved through the ELF program or section headers.

2. When no header can be read (it was stripped or is not where it should be,
   as in binaries post-processed after linking), the module information is
   found by the 16-byte sentinels Go wraps it in (the copy the runtime keeps
   for ``runtime/debug.ReadBuildInfo``), and the toolchain version by the
   NUL-delimited ``go1.`` string the runtime keeps for ``runtime.Version()``.

The module information is the text ``go version -m`` prints: ``path``,
``mod`` (the main module), ``dep`` lines, ``=>`` lines (a replacement of the
module on the line above) and ``build`` settings.

What is reported (see :func:`packages_of`):

* every ``dep``; a dependency replaced by another module is reported as the
  replacement (its path and version: that is the code in the binary); a
  dependency replaced by a local directory (``=> ../dep``) is reported under
  its original module path with an empty version, since its code came from a
  directory, not from any published version (the same for a workspace module,
  whose version reads ``(devel)``);
* the main module, when it has a real version: the one in the ``mod`` line,
  or, when that is ``(devel)``, a semantic version set with
  ``-ldflags=-X main.version=...`` (Go records ``-ldflags`` only for builds
  without ``-trimpath``);
* the toolchain as the package ``stdlib``, versioned the way the Go
  vulnerability database writes it in OSV: unprefixed semantic versions,
  ``go1.21.5`` -> ``1.21.5``, ``go1.20`` -> ``1.20.0``, ``go1.22rc1`` ->
  ``1.22.0-rc.1``; a development toolchain (``devel ...``) gives no ``stdlib``.

Module versions keep Go's own spelling (``v1.2.3``), as ``go.mod`` and the
module proxy write them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from shared.domain.models import Package
from shared.scanning.parsers.elf import Elf, ElfError, is_elf, parse_elf

BUILDINFO_MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
FLAG_BIG_ENDIAN = 0x1
FLAG_INLINE = 0x2
# Sentinels around the module information (cmd/go writes them, runtime/debug strips them).
MODINFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
MODINFO_END = bytes.fromhex("f932433186182072008242104116d8f2")

# Bounds against hostile input: module information of real binaries is tens of KiB.
MAX_STRING = 4 * 1024 * 1024
MAX_CANDIDATES = 32
MAX_VERSION_PROBES = 10_000

STDLIB = "stdlib"
DEVEL = "(devel)"

_GO_VERSION = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?(?:(beta|rc)(\d+))?")
_SEMVER = re.compile(r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")


@dataclass(slots=True)
class GoModule:
    path: str
    version: str = ""
    sum: str = ""
    replace: GoModule | None = None


@dataclass(slots=True)
class GoBuildInfo:
    """What a Go binary says about its build. ``found_by`` is "header" or "sentinels"."""

    go_version: str = ""
    path: str = ""
    main: GoModule | None = None
    deps: list[GoModule] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)
    found_by: str = "header"
    problems: list[str] = field(default_factory=list)


# -- locating the build information ---------------------------------------------


def read_build_info(data: bytes) -> GoBuildInfo | None:
    """The build information of a Go binary; None when the data shows no sign of Go.

    A result may carry ``problems``: the file claimed to be Go (a header or the
    module sentinels were there) but part of it could not be read.
    """
    elf: Elf | None = None
    if is_elf(data):
        try:
            elf = parse_elf(data)
        except ElfError:
            elf = None

    header_errors: list[str] = []
    tried: set[int] = set()
    if elf is not None:
        sec = elf.section(".go.buildinfo")
        if sec is not None and 0 <= sec.offset < len(data) and data.startswith(BUILDINFO_MAGIC, sec.offset):
            tried.add(sec.offset)
            got = _read_header(data, sec.offset, elf)
            if isinstance(got, GoBuildInfo):
                return got
            header_errors.append(got)
    pos = data.find(BUILDINFO_MAGIC)
    count = 0
    while pos >= 0 and count < MAX_CANDIDATES:
        count += 1
        if pos not in tried:
            got = _read_header(data, pos, elf)
            if isinstance(got, GoBuildInfo):
                return got
            header_errors.append(got)
        pos = data.find(BUILDINFO_MAGIC, pos + 1)

    fallback = _from_sentinels(data)
    if fallback is not None:
        return fallback
    if header_errors:
        # Only the first problem is telling; the others are usually the same one.
        return GoBuildInfo(problems=[f"Go build-info header unreadable: {header_errors[0]}"])
    return None


def _read_header(data: bytes, pos: int, elf: Elf | None) -> GoBuildInfo | str:
    """Decode the header at ``pos``; a string says why it could not be."""
    hdr = data[pos : pos + HEADER_SIZE]
    if len(hdr) < HEADER_SIZE:
        return "header truncated"
    ptr_size, flags = hdr[14], hdr[15]
    if ptr_size not in (4, 8):
        return f"pointer size {ptr_size}"
    if flags & ~(FLAG_BIG_ENDIAN | FLAG_INLINE):
        return f"unknown flags {flags:#x}"
    if flags & FLAG_INLINE:
        got = _varint_string(data, pos + HEADER_SIZE)
        if isinstance(got, str):
            return f"toolchain version: {got}"
        vers_b, nxt = got
        got = _varint_string(data, nxt)
        if isinstance(got, str):
            return f"module information: {got}"
        mod_b = got[0]
    else:
        if elf is None:
            return "pointer-format header in a file whose ELF headers cannot be read"
        big = bool(flags & FLAG_BIG_ENDIAN)
        order: Literal["big", "little"] = "big" if big else "little"
        vptr = int.from_bytes(hdr[16 : 16 + ptr_size], order)
        mptr = int.from_bytes(hdr[16 + ptr_size : 16 + 2 * ptr_size], order)
        vers_p = _go_string(elf, vptr, ptr_size, big)
        if vers_p is None:
            return f"version pointer {vptr:#x} does not resolve inside the file"
        mod_p = _go_string(elf, mptr, ptr_size, big)
        if mod_p is None:
            return f"module-information pointer {mptr:#x} does not resolve inside the file"
        vers_b, mod_b = vers_p, mod_p
    version = vers_b.decode("utf-8", "replace")
    if not (version.startswith("go") or version.startswith("devel")) or not version.isprintable():
        return f"no toolchain version ({version[:40]!r})"
    mod = _strip_sentinels(mod_b)
    info = parse_modinfo(mod.decode("utf-8", "replace")) if mod else GoBuildInfo()
    info.go_version = version
    info.found_by = "header"
    return info


def _varint(data: bytes, pos: int) -> tuple[int, int] | str:
    """An unsigned varint as Go's encoding/binary writes it: (value, next position), or a problem."""
    value = 0
    shift = 0
    for i in range(10):
        if pos + i >= len(data):
            return "length varint truncated"
        b = data[pos + i]
        if i == 9 and b > 1:
            return "length varint overflows 64 bits"
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos + i + 1
        shift += 7
    return "length varint overflows 64 bits"


def _varint_string(data: bytes, pos: int) -> tuple[bytes, int] | str:
    got = _varint(data, pos)
    if isinstance(got, str):
        return got
    n, start = got
    if n > MAX_STRING:
        return f"length {n} is over the {MAX_STRING}-byte limit"
    if start + n > len(data):
        return f"length {n} runs past the end of the file"
    return data[start : start + n], start + n


def _go_string(elf: Elf, ptr: int, ptr_size: int, big: bool) -> bytes | None:
    """Bytes of the Go string whose header (data pointer, length) is at virtual address ``ptr``."""
    hdr = elf.read_at(ptr, 2 * ptr_size)
    if hdr is None:
        return None
    order: Literal["big", "little"] = "big" if big else "little"
    addr = int.from_bytes(hdr[:ptr_size], order)
    n = int.from_bytes(hdr[ptr_size:], order)
    if n == 0:
        return b""
    if n > MAX_STRING:
        return None
    return elf.read_at(addr, n)


def _strip_sentinels(mod: bytes) -> bytes:
    # The sentinels stay in the linked string; a well-formed block ends with a newline before the end one.
    if len(mod) >= 33 and mod[-17] == 0x0A:
        return mod[16:-16]
    return b""


def _from_sentinels(data: bytes) -> GoBuildInfo | None:
    """Module information by its sentinels, with the toolchain version searched separately."""
    pos = data.find(MODINFO_START)
    count = 0
    while pos >= 0 and count < MAX_CANDIDATES:
        count += 1
        start = pos + len(MODINFO_START)
        end = data.find(MODINFO_END, start, start + MAX_STRING + len(MODINFO_END))
        if end >= 0:
            text = data[start:end]
            if text.endswith(b"\n") and text.startswith((b"path\t", b"mod\t", b"go\t")):
                info = parse_modinfo(text.decode("utf-8", "replace"))
                if not info.go_version:
                    info.go_version = _find_runtime_version(data)
                info.found_by = "sentinels"
                return info
        pos = data.find(MODINFO_START, pos + 1)
    return None


def _find_runtime_version(data: bytes) -> str:
    """The NUL-delimited ``go1.N[.P]`` string the runtime keeps; "" when there is none."""
    pos = data.find(b"\x00go1.")
    probes = 0
    while pos >= 0 and probes < MAX_VERSION_PROBES:
        probes += 1
        start = pos + 1
        stop = start
        limit = min(len(data), start + 64)
        while stop < limit and 0x20 < data[stop] < 0x7F:
            stop += 1
        # Terminated by NUL padding, or by a space before a " X:experiment" suffix.
        if stop < len(data) and data[stop] in (0x00, 0x20):
            token = data[start:stop].decode("ascii")
            m = _GO_VERSION.fullmatch(token)
            if m:
                return token
        pos = data.find(b"\x00go1.", pos + 1)
    return ""


# -- the module information text -------------------------------------------------


def parse_modinfo(text: str) -> GoBuildInfo:
    """Parse the module-information text (the lines ``go version -m`` prints)."""
    info = GoBuildInfo()
    last: GoModule | None = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        key, _, rest = line.partition("\t")
        if key == "path":
            info.path = rest
        elif key == "go":
            info.go_version = rest
        elif key in ("mod", "dep", "=>"):
            mod = _module(rest)
            if mod is None:
                info.problems.append(f"line {lineno}: {key} line without a module path")
                continue
            if key == "mod":
                info.main = mod
                last = mod
            elif key == "dep":
                info.deps.append(mod)
                last = mod
            elif last is None or last.replace is not None:
                info.problems.append(f"line {lineno}: replacement with no module before it")
            else:
                last.replace = mod
                last = None
        elif key == "build":
            setting = _setting(rest)
            if setting is None:
                info.problems.append(f"line {lineno}: malformed build setting")
            else:
                info.settings.append(setting)
        # Other keys: a later format; ignored.
    return info


def _module(rest: str) -> GoModule | None:
    fields = rest.split("\t")
    if not fields[0]:
        return None
    return GoModule(
        path=fields[0],
        version=fields[1] if len(fields) > 1 else "",
        sum=fields[2] if len(fields) > 2 else "",
    )


def _setting(rest: str) -> tuple[str, str] | None:
    """``key=value`` where either side may be a Go-quoted string."""
    if rest.startswith('"'):
        got = _unquote(rest)
        if got is None:
            return None
        key, tail = got
        if not tail.startswith("="):
            return None
        raw = tail[1:]
    else:
        key, sep, raw = rest.partition("=")
        if not sep:
            return None
    if raw.startswith('"'):
        got = _unquote(raw)
        if got is None:
            return None
        value, tail = got
        if tail:
            return None
    else:
        value = raw
    return key, value


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}


def _unquote(s: str) -> tuple[str, str] | None:
    """A leading double-quoted Go string: (its value, what follows); None if malformed."""
    out: list[str] = []
    i = 1
    while i < len(s):
        c = s[i]
        if c == '"':
            return "".join(out), s[i + 1 :]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(s):
            return None
        e = s[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(e)
        try:
            if width:
                out.append(chr(int(s[i + 2 : i + 2 + width], 16)))
                i += 2 + width
            elif e in "01234567":
                out.append(chr(int(s[i + 1 : i + 4], 8)))
                i += 4
            else:
                return None
        except ValueError:
            return None
    return None


def _split_quoted(s: str) -> list[str]:
    """Split flags the way cmd/go does: on spaces, with '...' or "..." keeping spaces inside."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            break
        if s[i] in "'\"":
            q = s[i]
            j = s.find(q, i + 1)
            if j < 0:
                out.append(s[i + 1 :])
                break
            out.append(s[i + 1 : j])
            i = j + 1
        else:
            j = i
            while j < n and not s[j].isspace():
                j += 1
            out.append(s[i:j])
            i = j
    return out


def ldflags_version(info: GoBuildInfo) -> str | None:
    """A semantic version the build set with ``-X <main package>.version=...``, if any."""
    ldflags = next((v for k, v in info.settings if k == "-ldflags"), None)
    if not ldflags:
        return None
    main_path = info.main.path if info.main else ""
    args = _split_quoted(ldflags)
    pairs: list[str] = []
    for i, a in enumerate(args):
        if a in ("-X", "--X") and i + 1 < len(args):
            pairs.append(args[i + 1])
        elif a.startswith(("-X=", "--X=")):
            pairs.append(a.split("=", 1)[1])
    ranked: list[tuple[int, str]] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            continue
        pkg, _, name = key.rpartition(".")
        lname = name.lower()
        if not (lname in ("version", "ver") or (lname.endswith("version") and lname != "goversion")):
            continue
        if pkg == "main":
            rank = 0
        elif main_path and (pkg == main_path or pkg.startswith(main_path + "/")):
            rank = 1
        else:
            continue
        value = value.strip("'\"")
        if _SEMVER.fullmatch(value):
            ranked.append((rank, value if value.startswith("v") else "v" + value))
    if not ranked:
        return None
    return min(ranked, key=lambda r: r[0])[1]


# -- packages ----------------------------------------------------------------------


def stdlib_version(go_version: str) -> str | None:
    """The toolchain version as the Go vulnerability database writes it in OSV (see the module docstring)."""
    m = _GO_VERSION.match(go_version.strip())
    if m is None:
        return None
    major, minor, patch, pre, pre_n = m.groups()
    out = f"{major}.{minor}.{patch or '0'}"
    if pre:
        out += f"-{pre}.{pre_n}"
    return out


def is_local_path(path: str) -> bool:
    """A replacement that names a directory rather than a module (as cmd/go decides)."""
    p = path.replace("\\", "/")
    return (
        p in (".", "..")
        or p.startswith(("./", "../", "/"))
        or (len(p) >= 3 and p[0].isalpha() and p[1] == ":" and p[2] == "/")
    )


def _effective(mod: GoModule) -> tuple[str, str]:
    if mod.replace is not None:
        if is_local_path(mod.replace.path):
            return mod.path, ""
        version = mod.replace.version
        return mod.replace.path, "" if version == DEVEL else version
    return mod.path, "" if mod.version == DEVEL else mod.version


def packages_of(info: GoBuildInfo, path: str) -> list[Package]:
    out: list[Package] = []
    seen: set[tuple[str, str]] = set()

    def add(name: str, version: str) -> None:
        if (name, version) in seen:
            return
        seen.add((name, version))
        out.append(Package(type="golang", name=name, version=version, purl="", found_in=path))

    if info.main is not None and info.main.path:
        version = info.main.version if info.main.version not in ("", DEVEL) else ldflags_version(info)
        if version:
            add(info.main.path, version)
    for dep in info.deps:
        add(*_effective(dep))
    std = stdlib_version(info.go_version)
    if std:
        add(STDLIB, std)
    return out


def parse_go_binary(data: bytes, path: str) -> tuple[list[Package], list[str]]:
    """(packages, problems) of one file; both empty when it is not a Go binary."""
    info = read_build_info(data)
    if info is None:
        return [], []
    return packages_of(info, path), info.problems
