"""rpm version ordering (Red Hat family, SUSE, Fedora, Azure Linux, ...), against rpm's tests and rpm itself."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from shared.vulndb.versions import InvalidVersion, compare, parse_ok, scheme_of
from shared.vulndb.versions.rpm import vercmp_items
from tests.conftest import require_tool

ECOSYSTEMS = [
    "Red Hat",
    "Red Hat:enterprise_linux:9::appstream",
    "Rocky Linux",
    "Rocky Linux:9",
    "AlmaLinux",
    "AlmaLinux:8",
    "SUSE",
    "SUSE:Linux Enterprise Server 15 SP5",
    "openSUSE",
    "openSUSE:Leap 15.5",
    "Azure Linux",
    "Azure Linux:3",
    "Amazon Linux:2",
    "Fedora:39",
    "Oracle Linux:9",
    "Mageia",
    "openEuler",
    "Photon OS",
]

# rpm's tests/rpmvercmp.at: RPMVERCMP(a, b, expected), rpmvercmp on plain strings
# (no epoch, no release), including the ~ (pre-release) and ^ (post-release)
# cases rpm 4.15 added.
RPMVERCMP_AT = """
1.0 1.0 0
1.0 2.0 -1
2.0 1.0 1
2.0.1 2.0.1 0
2.0 2.0.1 -1
2.0.1 2.0 1
2.0.1a 2.0.1a 0
2.0.1a 2.0.1 1
2.0.1 2.0.1a -1
5.5p1 5.5p1 0
5.5p1 5.5p2 -1
5.5p2 5.5p1 1
5.5p10 5.5p10 0
5.5p1 5.5p10 -1
5.5p10 5.5p1 1
10xyz 10.1xyz -1
10.1xyz 10xyz 1
xyz10 xyz10 0
xyz10 xyz10.1 -1
xyz10.1 xyz10 1
xyz.4 xyz.4 0
xyz.4 8 -1
8 xyz.4 1
xyz.4 2 -1
2 xyz.4 1
5.5p2 5.6p1 -1
5.6p1 5.5p2 1
5.6p1 6.5p1 -1
6.5p1 5.6p1 1
6.0.rc1 6.0 1
6.0 6.0.rc1 -1
10b2 10a1 1
10a2 10b2 -1
1.0aa 1.0aa 0
1.0a 1.0aa -1
1.0aa 1.0a 1
10.0001 10.0001 0
10.0001 10.1 0
10.1 10.0001 0
10.0001 10.0039 -1
10.0039 10.0001 1
4.999.9 5.0 -1
5.0 4.999.9 1
20101121 20101121 0
20101121 20101122 -1
20101122 20101121 1
2_0 2_0 0
2.0 2_0 0
2_0 2.0 0
a a 0
a+ a+ 0
a+ a_ 0
a_ a+ 0
+a +a 0
+a _a 0
_a +a 0
+_ +_ 0
_+ +_ 0
_+ _ 0
+ _ 0
_ + 0
1.0~rc1 1.0~rc1 0
1.0~rc1 1.0 -1
1.0 1.0~rc1 1
1.0~rc1 1.0~rc2 -1
1.0~rc2 1.0~rc1 1
1.0~rc1~git123 1.0~rc1~git123 0
1.0~rc1~git123 1.0~rc1 -1
1.0~rc1 1.0~rc1~git123 1
1.0^ 1.0^ 0
1.0^ 1.0 1
1.0 1.0^ -1
1.0^git1 1.0^git1 0
1.0^git1 1.0 1
1.0 1.0^git1 -1
1.0^git1 1.0^git2 -1
1.0^git2 1.0^git1 1
1.0^git1 1.01 -1
1.01 1.0^git1 1
1.0^20160101 1.0^20160101 0
1.0^20160101 1.0.1 -1
1.0.1 1.0^20160101 1
1.0^20160101^git1 1.0^20160101^git1 0
1.0^20160102 1.0^20160101^git1 1
1.0^20160101^git1 1.0^20160102 -1
1.0~rc1^git1 1.0~rc1^git1 0
1.0~rc1^git1 1.0~rc1 1
1.0~rc1 1.0~rc1^git1 -1
1.0^git1~pre 1.0^git1~pre 0
1.0^git1 1.0^git1~pre 1
1.0^git1~pre 1.0^git1 -1
1b.fc17 1b.fc17 0
1b.fc17 1.fc17 -1
1.fc17 1b.fc17 1
1g.fc17 1g.fc17 0
1g.fc17 1.fc17 1
1.fc17 1g.fc17 -1
"""

# Whole [epoch:]version-release strings, as OSV's rpm-based records write them.
EVR = [
    ("0:2.4.57-5.el9", "2.4.57-5.el9", 0),
    ("1:1.0-1", "2.0-1", 1),
    ("2.4.57-5.el9", "2.4.57-5.el9_1", -1),
    ("2.4.57-5.el9_1", "2.4.57-5.el9_1.1", -1),
    ("2.4.57-5.el9_2", "2.4.57-5.el9_10", -1),
    ("3.0.7-24.el9", "3.0.7-25.el9", -1),
    ("1.0-1", "1.0.1-0", -1),
    ("1.0", "1.0-1", -1),
    ("1.0", "1.0-~1", -1),
    ("1.2.3-150500.1.1", "1.2.3-150500.3.6.1", -1),
    ("5.14.0-362.8.1.el9_3", "5.14.0-362.13.1.el9_3", -1),
    ("1.0~rc1-1", "1.0-1", -1),
    ("1.0-1.fc39", "1.0^git1-1.fc39", -1),
]

INVALID = ["", " ", "1.0 -1", "1:", ":", "-1", "1.0-", "1:-1"]


def _rows() -> list[tuple[str, str, int]]:
    return [(a, b, int(e)) for a, b, e in (line.split() for line in RPMVERCMP_AT.strip().splitlines())]


@pytest.mark.parametrize(("a", "b", "expected"), _rows())
def test_rpmvercmp_cases(a: str, b: str, expected: int) -> None:
    ka, kb = vercmp_items(a), vercmp_items(b)
    assert (ka > kb) - (ka < kb) == expected
    assert compare("Red Hat", a, b) == expected


@pytest.mark.parametrize(("a", "b", "expected"), EVR)
def test_epoch_version_release(a: str, b: str, expected: int) -> None:
    for ecosystem in ECOSYSTEMS:
        assert compare(ecosystem, a, b) == expected, (ecosystem, a, b)
        assert compare(ecosystem, b, a) == -expected, (ecosystem, b, a)


def test_every_rpm_ecosystem_uses_rpm() -> None:
    assert {scheme_of(e) for e in ECOSYSTEMS} == {"rpm"}


@pytest.mark.parametrize("version", INVALID)
def test_empty_parts_are_refused(version: str) -> None:
    assert not parse_ok("Red Hat", version)
    with pytest.raises(InvalidVersion, match="SUSE"):
        compare("SUSE", "1.0-1", version)


def _lua_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_agrees_with_rpm(tmp_path: Path) -> None:
    """Generated pairs against rpm's own comparisons (rpm.vercmp and rpm.ver in rpm's Lua), in one rpm run."""
    require_tool("rpm", "apt-get install rpm")
    rng = random.Random(4150)
    atoms = [
        "",
        "0",
        "1",
        "2",
        "10",
        "01",
        "a",
        "b",
        "rc",
        "Z",
        "~",
        "^",
        ".",
        "_",
        "+",
        "~rc1",
        "^git",
        "el9",
        "el9_2",
    ]

    def segment() -> str:
        return str(rng.randint(0, 10)) + "".join(rng.choice(atoms) for _ in range(rng.randint(0, 4)))

    def evr() -> str:
        epoch = f"{rng.randint(0, 2)}:" if rng.random() < 0.3 else ""
        release = f"-{segment()}" if rng.random() < 0.8 else ""
        return epoch + segment() + release

    plain = [(segment(), segment()) for _ in range(300)]
    full = [
        (a, b) for a, b in ((evr(), evr()) for _ in range(300)) if parse_ok("Red Hat", a) and parse_ok("Red Hat", b)
    ]
    # rpm's Lua print() appends no newline inside a macro: separate results with commas.
    lines = [f"print(rpm.vercmp({_lua_string(a)}, {_lua_string(b)}) .. ',')" for a, b in plain]
    lines.append(
        "local function cmp(a, b) local x, y = rpm.ver(a), rpm.ver(b) "
        "if x < y then print('-1,') elseif x == y then print('0,') else print('1,') end end"
    )
    lines += [f"cmp({_lua_string(a)}, {_lua_string(b)})" for a, b in full]
    script = tmp_path / "pairs.lua"
    script.write_text("\n".join(lines))
    done = subprocess.run(
        ["rpm", "--eval", f"%{{lua: dofile('{script}')}}"], capture_output=True, text=True, check=True, timeout=120
    )
    results = [int(x) for x in done.stdout.replace("\n", "").split(",") if x.strip()]
    assert len(results) == len(plain) + len(full), done.stderr
    mismatches = []
    for (a, b), want in zip(plain, results[: len(plain)], strict=True):
        ka, kb = vercmp_items(a), vercmp_items(b)
        if (ka > kb) - (ka < kb) != max(-1, min(1, want)):
            mismatches.append(("vercmp", a, b, want))
    for (a, b), want in zip(full, results[len(plain) :], strict=True):
        if compare("Red Hat", a, b) != want:
            mismatches.append(("evr", a, b, want))
    assert mismatches == []
