"""Packagist version ordering: Composer's normalisation, then PHP's version_compare."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.vulndb.versions import InvalidVersion, compare, parse_ok
from shared.vulndb.versions.packagist import normalize
from tests.conftest import unavailable

# composer/semver tests/VersionParserTest.php, successfulNormalizedVersions:
# input, then Composer's normalised form.
NORMALIZED = """
1.0.0	1.0.0.0
1.2.3.4	1.2.3.4
1.0.0RC1dev	1.0.0.0-RC1-dev
1.0.0-rC15-dev	1.0.0.0-RC15-dev
1.0.0.RC.15-dev	1.0.0.0-RC15-dev
1.0.0-rc1	1.0.0.0-RC1
1.0.0.pl3-dev	1.0.0.0-patch3-dev
1.0-dev	1.0.0.0-dev
0	0.0.0.0
10.4.13-beta	10.4.13.0-beta
10.4.13beta2	10.4.13.0-beta2
10.4.13beta.2	10.4.13.0-beta2
10.4.13-beta-2	10.4.13.0-beta2
10.4.13-b	10.4.13.0-beta
10.4.13-b5	10.4.13.0-beta5
v1.0.0	1.0.0.0
v2010.01	2010.01.0.0
v2010.01.02	2010.01.02.0
2010.1.555	2010.1.555.0
2010.10.200	2010.10.200.0
v20100102	20100102
2010-01-02	2010.01.02
2010-01-02.5	2010.01.02.5
20100102-203040	20100102.203040
20100102203040-10	20100102203040.10
20100102-203040-p1	20100102.203040-patch1
201903.0	201903.0
201903.0-p2	201903.0-patch2
dev-master	dev-master
master	dev-master
dev-trunk	dev-trunk
1.x-dev	1.9999999.9999999.9999999-dev
dev-feature-foo	dev-feature-foo
DEV-FOOBAR	dev-FOOBAR
dev-feature/foo	dev-feature/foo
dev-feature+issue-1	dev-feature+issue-1
1.0.0+foo	1.0.0.0
1.0.0-rc.1+foo	1.0.0.0-RC1
1.0.0-beta.5+foo	1.0.0.0-beta5
1.0.0+foo-bar	1.0.0.0
1.0.0-stable	1.0.0.0
1.0.0-a	1.0.0.0-alpha
"""

# PHP's version_compare documentation: "any string not found in this list <
# dev < alpha = a < beta = b < RC = rc < # < pl = p", applied to Composer's
# normalised forms; ascending.
ORDERED = [
    "1.0.0-dev",
    "1.0.0-alpha1",
    "1.0.0-alpha2",
    "1.0.0-beta",
    "1.0.0-beta1",
    "1.0.0-beta2",
    "1.0.0-RC1",
    "1.0.0-rc2",
    "1.0.0",
    "1.0.0-p1",
    "1.0.0-patch2",
    "1.0.1",
    "1.1",
    "v2.0.0",
    "2010.01.02",
    "20100102",
]
EQUAL = [
    ("1.0", "1.0.0.0"),
    ("v1.0.0", "1.0.0"),
    ("1.0.0-beta.2", "1.0.0-beta2"),
    ("1.0.0-b2", "1.0.0-beta2"),
    ("1.0.0-pl1", "1.0.0-patch1"),
    ("1.0.0+build.5", "1.0.0"),
    ("1.0.0-stable", "1.0.0"),
    ("1.0.0RC1", "1.0.0-rc1"),
]

INVALID = ["", "dev-main", "dev-feature/foo", "feature", "1.0.0-foo", "1.0.0-x", "a.b.c", "1.0.0.0.0", "1.0 beta"]


def _normalized() -> list[tuple[str, str]]:
    return [(a, b) for a, b in (line.split("\t") for line in NORMALIZED.strip().splitlines())]


@pytest.mark.parametrize(("version", "expected"), _normalized())
def test_composer_normalization(version: str, expected: str) -> None:
    assert normalize(version) == expected


def test_version_compare_order() -> None:
    for i, j in itertools.combinations(range(len(ORDERED)), 2):
        assert compare("Packagist", ORDERED[i], ORDERED[j]) == -1, (ORDERED[i], ORDERED[j])
        assert compare("Packagist", ORDERED[j], ORDERED[i]) == 1, (ORDERED[j], ORDERED[i])


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_spellings_of_one_version_are_equal(a: str, b: str) -> None:
    assert compare("Packagist", a, b) == 0


def test_default_branches_sort_after_every_release_as_composer_sorts_them() -> None:
    # composer/semver Semver::sort maps dev-master/-trunk/-default to 9999999-dev.
    for branch in ["dev-master", "master", "dev-trunk", "trunk", "default"]:
        assert compare("Packagist", branch, "99999.0.0") == 1
        assert compare("Packagist", branch, "9999999-dev") == 0
    # Numbered dev branches are versions: 1.x-dev is 1.9999999.9999999.9999999-dev.
    assert compare("Packagist", "1.x-dev", "1.99.0") == 1
    assert compare("Packagist", "1.x-dev", "2.0.0") == -1


@pytest.mark.parametrize("version", INVALID)
def test_branches_and_unnormalisable_versions_are_refused(version: str) -> None:
    assert not parse_ok("Packagist", version)
    with pytest.raises(InvalidVersion, match="Packagist"):
        compare("Packagist", version, "1.0.0")


COMPOSER_AUTOLOAD = Path("/usr/share/php/Composer/Semver/autoload.php")

HARNESS = """<?php
require $argv[1];
$parser = new Composer\\Semver\\VersionParser();
while (($line = fgets(STDIN)) !== false) {
    $p = explode("\\t", rtrim($line, "\\n"));
    if ($p[0] === 'n') {
        try { $n = $parser->normalize($p[1]); echo "ok\\t", $n, "\\n"; } catch (Exception $e) { echo "error\\t\\n"; }
    } else {
        $a = $parser->normalizeDefaultBranch($parser->normalize($p[1]));
        $b = $parser->normalizeDefaultBranch($parser->normalize($p[2]));
        echo version_compare($a, $b), "\\n";
    }
}
"""


def test_agrees_with_composer(tmp_path: Path) -> None:
    """Generated versions against composer/semver's VersionParser and PHP's version_compare."""
    php = shutil.which("php")
    if php is None or not COMPOSER_AUTOLOAD.is_file():
        unavailable("php and composer/semver (Debian's composer package) are the reference and are not installed")
    rng = random.Random(8)
    suffixes = [
        "",
        "-beta",
        "-b2",
        "beta.2",
        "-RC1",
        "rc",
        "-alpha1",
        "a3",
        "-p1",
        "pl2",
        "-patch3",
        "-dev",
        "-beta2-dev",
    ]
    suffixes += ["-stable", "RC1dev", "+build.5", "-beta.5+foo", "-x", ".RC.15-dev", "-rC15-dev", "-beta-2-3"]

    def version() -> str:
        numbers = ".".join(str(rng.choice([0, 1, 2, 10, "01", 123])) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.15:
            numbers = rng.choice(["20100102", "2010-01-02", "20100102-203040", "2010.01", "201903.0"])
        return rng.choice(["", "", "v"]) + numbers + rng.choice(suffixes)

    candidates = sorted({version() for _ in range(500)} | {"master", "dev-master", "dev-main", "1.x-dev", "2.1.x-dev"})
    pool = [v for v in candidates if parse_ok("Packagist", v)]
    pairs = [(rng.choice(pool), rng.choice(pool)) for _ in range(1500)]
    harness = tmp_path / "compare.php"
    harness.write_text(HARNESS)
    stdin = "".join(f"n\t{v}\n" for v in candidates) + "".join(f"c\t{a}\t{b}\n" for a, b in pairs)
    done = subprocess.run(
        [php, str(harness), str(COMPOSER_AUTOLOAD)],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = done.stdout.split("\n")
    mismatches: list[object] = []
    for v, line in zip(candidates, lines, strict=False):
        status, _, theirs = line.partition("\t")
        try:
            mine: str | None = normalize(v)
        except InvalidVersion:
            mine = None
        if mine != (theirs if status == "ok" else None):
            mismatches.append(("normalize", v, theirs, mine))
    for (a, b), line in zip(pairs, lines[len(candidates) :], strict=False):
        if compare("Packagist", a, b) != int(line):
            mismatches.append(("compare", a, b, line))
    assert len(lines) >= len(candidates) + len(pairs)
    assert mismatches == []
