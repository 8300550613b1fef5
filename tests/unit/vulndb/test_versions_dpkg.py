"""dpkg version ordering (Debian, Ubuntu), against published examples and dpkg itself."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from shared.vulndb.versions import InvalidVersion, compare, parse_ok
from tests.conftest import require_tool

ECOSYSTEMS = ["Debian", "Debian:12", "Ubuntu", "Ubuntu:22.04:LTS", "Ubuntu:Pro:18.04:LTS"]

# (a, b, expected compare(a, b)).
ORDERED = [
    # Debian Policy 5.6.12 (Version): "~~, ~~a, ~, the empty part, a" are in
    # sorted order, and the tilde sorts before the end of a part.
    ("1.0~~", "1.0~~a", -1),
    ("1.0~~a", "1.0~", -1),
    ("1.0~", "1.0", -1),
    ("1.0", "1.0a", -1),
    # Debian Policy 5.6.12: the epoch wins over everything else; letters sort
    # before non-letters; digit runs compare numerically.
    ("1:0.9", "2.0", 1),
    ("0:1.0", "1.0", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0a", "1.0+", -1),
    ("1.2", "1.10", -1),
    ("1.002", "1.2", 0),
    # Binary NMUs and stable updates, as Debian's release team and security
    # team number them (Debian Developer's Reference 5.10.2.1, 5.8.5).
    ("1.0-1", "1.0-1+b1", -1),
    ("1.0-1+b1", "1.0-2", -1),
    ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
    ("2.36-9+deb12u10", "2.37-1", -1),
    ("1.2.3-1~bpo12+1", "1.2.3-1", -1),
    ("1.2.3-1ubuntu0.1", "1.2.3-1ubuntu0.2", -1),
    ("1.2.3-1", "1.2.3-1ubuntu0.1", -1),
    # dpkg lib/dpkg/t/t-version.c: epoch, upstream and revision differences
    # (upstream made to start with a digit, which dpkg's syntax check wants);
    # an absent revision is the empty string, i.e. equal to "0".
    ("0:0-0", "1:0-0", -1),
    ("0:0a-0", "0:0b-0", -1),
    ("0:0-a", "0:0-b", -1),
    ("1.0", "1.0-0", 0),
    ("1.0-1", "1.0", 1),
    # The last hyphen starts the revision; colons may follow an epoch.
    ("1:2.0-rc-1", "1:2.0-rc-2", -1),
    ("1:1.2:3-1", "1:1.2:4-1", -1),
]

INVALID = [
    "",
    " ",
    "1.0 1",
    "a1.0",
    ":1.0",
    "a:1.0",
    "-1:1.0",
    "1:",
    "1.0-",
    "-1",
    "1.0_1",
    "1.0-1_2",
    "99999999999:1.0",
    "1.0:1",
]


@pytest.mark.parametrize(("a", "b", "expected"), ORDERED)
def test_published_examples(a: str, b: str, expected: int) -> None:
    for ecosystem in ECOSYSTEMS:
        assert compare(ecosystem, a, b) == expected, (ecosystem, a, b)
        assert compare(ecosystem, b, a) == -expected, (ecosystem, b, a)


@pytest.mark.parametrize("version", INVALID)
def test_bad_syntax_is_refused(version: str) -> None:
    assert not parse_ok("Debian", version)
    with pytest.raises(InvalidVersion) as err:
        compare("Debian:12", version, "1.0")
    assert "Debian:12" in str(err.value)
    assert repr(version) in str(err.value)


def test_surrounding_blanks_are_ignored_as_dpkg_does() -> None:
    assert compare("Debian", " 1.0-1\t", "1.0-1") == 0


def _generated(rng: random.Random, count: int) -> list[str]:
    pieces = ["", ".", "+", "~", "a", "b", "~rc", "+dfsg", ".0", "~~", "+really", "z", "Z"]
    out = []
    for _ in range(count):
        v = f"{rng.randint(0, 3)}:" if rng.random() < 0.2 else ""
        v += str(rng.randint(0, 12))
        for _ in range(rng.randint(0, 4)):
            v += rng.choice(pieces) + rng.choice(["", str(rng.randint(0, 20)), "0", "00"])
        if rng.random() < 0.6:
            v += "-" + rng.choice(["1", "0", "1+b1", "2~bpo12+1", "1ubuntu0.1", "9+deb12u4", "9+deb12u10", "1~", "a"])
        out.append(v)
    return [v for v in out if parse_ok("Debian", v)]


def test_agrees_with_dpkg_compare_versions() -> None:
    """Random pairs of this system's installed versions (and generated tricky ones) against dpkg itself."""
    require_tool("dpkg", "Debian's dpkg")
    status = Path("/var/lib/dpkg/status")
    installed = sorted(
        {line.split(":", 1)[1].strip() for line in status.read_text().splitlines() if line.startswith("Version:")}
    )
    rng = random.Random(20240601)
    pool = installed + _generated(rng, 200)
    pairs = [(rng.choice(pool), rng.choice(pool)) for _ in range(400)]
    # One shell runs dpkg for every pair: far cheaper than one Python subprocess each.
    script = (
        'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; '
        'elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done'
    )
    done = subprocess.run(
        ["sh", "-c", script],
        input="".join(f"{a} {b}\n" for a, b in pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    expected = [int(x) for x in done.stdout.split()]
    assert len(expected) == len(pairs)
    mismatches = [(a, b, want) for (a, b), want in zip(pairs, expected, strict=True) if compare("Debian", a, b) != want]
    assert mismatches == []
