"""RubyGems version ordering, against RubyGems' own tests and Gem::Version itself."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from shared.vulndb.versions import InvalidVersion, compare, parse_ok
from tests.conftest import unavailable

# RubyGems test/rubygems/test_gem_version.rb, test_spaceship and friends:
# (a, b, expected a <=> b).
SPACESHIP = [
    ("1.0", "1.0.0", 0),
    ("1.0", "1.0.a", 1),
    ("1.8.2", "0.0.0", 1),
    ("1.8.2", "1.8.2.a", 1),
    ("1.8.2.b", "1.8.2.a", 1),
    ("1.8.2.a", "1.8.2", -1),
    ("1.8.2.a10", "1.8.2.a9", 1),
    ("0.beta.1", "0.0.beta.1", 0),
    ("0.0.beta", "0.0.beta.1", -1),
    ("0.0.beta", "0.beta.1", -1),
    ("5.a", "5.0.0.rc2", -1),
    ("5.x", "5.0.0.rc2", 1),
    # test_semver / test_prerelease: "-" means ".pre.".
    ("1.0.0-rc1", "1.0.0.pre.rc1", 0),
    ("1.0.0-rc1", "1.0.0", -1),
    ("1.0.0.rc1", "1.0.0-rc1", 1),
    # Trailing zeros are dropped from the numeric head and the pre-release part.
    ("1.0.0.a.0", "1.a", 0),
    ("1.0.a.1", "1.a.1.0", 0),
]

# Gem::Version.correct? is false for these (ANCHORED_VERSION_PATTERN), but for
# the empty ones: Gem::Version reads an empty version as "0", and since no gem
# and no OSV record has one, it is refused here instead.
INVALID = ["junk", "1.0\n2.0", "1..2", "1.2\\ 3.4", "1.", ".1", "1.0-", "1.0+b", "1_0", "-1", "", "   "]


@pytest.mark.parametrize(("a", "b", "expected"), SPACESHIP)
def test_gem_version_spaceship(a: str, b: str, expected: int) -> None:
    assert compare("RubyGems", a, b) == expected
    assert compare("RubyGems", b, a) == -expected


def test_strings_sort_below_every_number_and_case_sensitively() -> None:
    assert compare("RubyGems", "1.a", "1.0") == -1
    assert compare("RubyGems", "1.b", "1.0.1") == -1
    assert compare("RubyGems", "1.B", "1.a") == -1


def test_surrounding_spaces_are_ignored() -> None:
    assert compare("RubyGems", " 1.0 ", "1.0") == 0


@pytest.mark.parametrize("version", INVALID)
def test_incorrect_versions_are_refused(version: str) -> None:
    assert not parse_ok("RubyGems", version)
    with pytest.raises(InvalidVersion, match="RubyGems"):
        compare("RubyGems", version, "1.0")


def test_agrees_with_gem_version() -> None:
    """Generated versions and pairs against Ruby's own Gem::Version."""
    ruby = shutil.which("ruby")
    if ruby is None:
        unavailable("ruby is not installed (Gem::Version is the reference)")
    rng = random.Random(33)
    atoms = ["0", "1", "2", "10", "00", "a", "b", "pre", "rc", "A", "Z", "beta", "alpha1", "1a", "x"]

    def version() -> str:
        v = str(rng.randint(0, 3))
        for _ in range(rng.randint(0, 5)):
            v += rng.choice([".", ".", "-", ""]) + rng.choice(atoms)
        return v

    candidates = sorted({version() for _ in range(400)})
    pool = [v for v in candidates if parse_ok("RubyGems", v)]
    pairs = [(rng.choice(pool), rng.choice(pool)) for _ in range(1500)]
    script = (
        'STDIN.each_line { |l| k, a, b = l.chomp.split("\\t", -1); '
        "puts(k == 'v' ? (Gem::Version.correct?(a) ? 1 : 0) : (Gem::Version.new(a) <=> Gem::Version.new(b))) }"
    )
    stdin = "".join(f"v\t{v}\t\n" for v in candidates) + "".join(f"c\t{a}\t{b}\n" for a, b in pairs)
    done = subprocess.run([ruby, "-e", script], input=stdin, capture_output=True, text=True, check=True, timeout=120)
    results = [int(x) for x in done.stdout.split()]
    assert len(results) == len(candidates) + len(pairs)
    validity = [(v, r) for v, r in zip(candidates, results, strict=False) if bool(r) != parse_ok("RubyGems", v)]
    assert validity == []
    order = [
        (a, b, r) for (a, b), r in zip(pairs, results[len(candidates) :], strict=True) if compare("RubyGems", a, b) != r
    ]
    assert order == []
