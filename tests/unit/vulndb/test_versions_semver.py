"""SemVer 2.0.0 ordering (npm, crates.io), against semver.org and npm's own semver package."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.vulndb.versions import InvalidVersion, compare, parse_ok
from tests.conftest import unavailable

# semver.org 2.0.0, section 11: "Example: 1.0.0-alpha < 1.0.0-alpha.1 <
# 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 <
# 1.0.0." and "Example: 1.0.0 < 2.0.0 < 2.1.0 < 2.1.1."
SEMVER_ORG = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
]

# semver.org section 10: build metadata MUST be ignored when determining precedence.
EQUAL = [
    ("1.0.0+20130313144700", "1.0.0"),
    ("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta"),
    ("1.0.0+21AF26D3----117B344092BD", "1.0.0+001"),
]

# Not semver 2.0.0 (semver.org FAQ and the BNF): missing parts, leading zeros,
# empty identifiers, stray characters.
INVALID = [
    "",
    "1",
    "1.2",
    "1.2.3.4",
    "01.2.3",
    "1.02.3",
    "1.2.03",
    "1.2.3-01",
    "1.2.3-",
    "1.2.3+",
    "1.2.3-a..b",
    "1.2.3-é",
]


@pytest.mark.parametrize("ecosystem", ["npm", "crates.io"])
def test_semver_org_precedence(ecosystem: str) -> None:
    for i, j in itertools.combinations(range(len(SEMVER_ORG)), 2):
        assert compare(ecosystem, SEMVER_ORG[i], SEMVER_ORG[j]) == -1, (SEMVER_ORG[i], SEMVER_ORG[j])
        assert compare(ecosystem, SEMVER_ORG[j], SEMVER_ORG[i]) == 1


@pytest.mark.parametrize("ecosystem", ["npm", "crates.io"])
@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_build_metadata_is_ignored(ecosystem: str, a: str, b: str) -> None:
    assert compare(ecosystem, a, b) == 0


@pytest.mark.parametrize("ecosystem", ["npm", "crates.io"])
@pytest.mark.parametrize("version", INVALID)
def test_invalid_semver_is_refused(ecosystem: str, version: str) -> None:
    assert not parse_ok(ecosystem, version)
    with pytest.raises(InvalidVersion, match=ecosystem):
        compare(ecosystem, version, "1.0.0")


def test_npm_accepts_a_leading_v_and_surrounding_spaces_as_npm_semver_does() -> None:
    # npm's semver: `new SemVer(" v1.2.3 ")` trims and accepts one leading 'v'
    # in strict (non-loose) mode; '=' and 'V' need loose mode.
    assert compare("npm", "v1.2.3", "1.2.3") == 0
    assert compare("npm", " 1.2.3 ", "1.2.3") == 0
    for loose_only in ["=1.2.3", "V1.2.3", "vv1.2.3", "v 1.2.3"]:
        assert not parse_ok("npm", loose_only)


def test_npm_numbers_stop_at_the_largest_safe_integer() -> None:
    assert parse_ok("npm", f"{2**53 - 1}.0.0")
    assert not parse_ok("npm", f"{2**53}.0.0")


def test_crates_io_takes_no_prefix_and_64_bit_numbers() -> None:
    # The semver crate (what Cargo uses) parses exactly semver 2.0.0 with u64 parts.
    assert not parse_ok("crates.io", "v1.2.3")
    assert not parse_ok("crates.io", " 1.2.3")
    assert parse_ok("crates.io", f"{2**64 - 1}.0.0")
    assert not parse_ok("crates.io", f"{2**64}.0.0")


def test_numeric_identifiers_sort_numerically_and_below_alphanumerics() -> None:
    assert compare("npm", "1.0.0-2", "1.0.0-10") == -1
    assert compare("npm", "1.0.0-10", "1.0.0-1a") == -1
    assert compare("npm", "1.0.0-Z", "1.0.0-a") == -1  # ASCII order, case-sensitive
    assert compare("crates.io", "1.0.0-alpha", "1.0.0-alpha.0") == -1


def _npm_semver() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are not installed (npm ships the semver package used as the reference)")
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    module = Path(root) / "npm" / "node_modules" / "semver"
    if not module.is_dir():
        unavailable("npm's bundled semver package was not found")
    return module


def test_agrees_with_npm_semver() -> None:
    """Generated versions and pairs against the semver package npm itself uses."""
    module = _npm_semver()
    rng = random.Random(20)
    ids = ["alpha", "beta", "rc", "0", "1", "2", "10", "11", "x-y", "1a", "a1", "-", "A", "Z", "01"]

    def version() -> str:
        v = ("v" if rng.random() < 0.1 else "") + ".".join(str(rng.choice([0, 1, 2, 10, "01"])) for _ in range(3))
        if rng.random() < 0.6:
            v += "-" + ".".join(rng.choice(ids) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.2:
            v += "+" + rng.choice(["build", "1", "01", "x.y"])
        return v

    candidates = sorted({version() for _ in range(400)})
    pool = [v for v in candidates if parse_ok("npm", v)]
    pairs = [(rng.choice(pool), rng.choice(pool)) for _ in range(1000)]
    script = (
        f"const semver = require({str(module)!r});"
        "const lines = require('fs').readFileSync(0, 'utf8').split('\\n').filter(Boolean);"
        "console.log(lines.map((l) => { const [k, a, b] = l.split('\\t');"
        " return k === 'v' ? (semver.valid(a) === null ? 0 : 1) : semver.compare(a, b); }).join('\\n'));"
    )
    stdin = "".join(f"v\t{v}\t\n" for v in candidates) + "".join(f"c\t{a}\t{b}\n" for a, b in pairs)
    done = subprocess.run(["node", "-e", script], input=stdin, capture_output=True, text=True, check=True, timeout=120)
    results = [int(x) for x in done.stdout.split()]
    assert len(results) == len(candidates) + len(pairs)
    validity = [(v, r) for v, r in zip(candidates, results, strict=False) if bool(r) != parse_ok("npm", v)]
    assert validity == []
    order = [
        (a, b, r) for (a, b), r in zip(pairs, results[len(candidates) :], strict=True) if compare("npm", a, b) != r
    ]
    assert order == []
