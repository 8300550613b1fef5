"""Maven version ordering, against Maven 3.9's ComparableVersionTest and maven-artifact itself."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.vulndb.versions import InvalidVersion, compare, parse_ok
from shared.vulndb.versions.maven import parse_items
from tests.conftest import unavailable

# maven-artifact ComparableVersionTest (Maven 3.9.x): VERSIONS_QUALIFIER and
# VERSIONS_NUMBER, each strictly ascending.
VERSIONS_QUALIFIER = [
    "1-alpha2snapshot",
    "1-alpha2",
    "1-alpha-123",
    "1-beta-2",
    "1-beta123",
    "1-m2",
    "1-m11",
    "1-rc",
    "1-cr2",
    "1-rc123",
    "1-SNAPSHOT",
    "1",
    "1-sp",
    "1-sp2",
    "1-sp123",
    "1-abc",
    "1-def",
    "1-pom-1",
    "1-1-snapshot",
    "1-1",
    "1-2",
    "1-123",
]
VERSIONS_NUMBER = [
    "2.0",
    "2.0.a",
    "2-1",
    "2.0.2",
    "2.0.123",
    "2.1.0",
    "2.1-a",
    "2.1b",
    "2.1-c",
    "2.1-1",
    "2.1.0.1",
    "2.2",
    "2.123",
    "11.a2",
    "11.a11",
    "11.b2",
    "11.b11",
    "11.m2",
    "11.m11",
    "11",
    "11.a",
    "11b",
    "11c",
    "11m",
]

# ComparableVersionTest.testVersionsEqual (3.9.x).
EQUAL = [
    ("1", "1"),
    ("1", "1.0"),
    ("1", "1.0.0"),
    ("1.0", "1.0.0"),
    ("1", "1-0"),
    ("1", "1.0-0"),
    ("1.0", "1.0-0"),
    ("1a", "1-a"),
    ("1a", "1.0-a"),
    ("1a", "1.0.0-a"),
    ("1.0a", "1-a"),
    ("1.0.0a", "1-a"),
    ("1x", "1-x"),
    ("1x", "1.0-x"),
    ("1x", "1.0.0-x"),
    ("1.0x", "1-x"),
    ("1.0.0x", "1-x"),
    ("1ga", "1"),
    ("1release", "1"),
    ("1final", "1"),
    ("1cr", "1rc"),
    ("1a1", "1-alpha-1"),
    ("1b2", "1-beta-2"),
    ("1m3", "1-milestone-3"),
    ("1X", "1x"),
    ("1A", "1a"),
    ("1B", "1b"),
    ("1M", "1m"),
    ("1Ga", "1"),
    ("1GA", "1"),
    ("1RELEASE", "1"),
    ("1RELeaSE", "1"),
    ("1Final", "1"),
    ("1FinaL", "1"),
    ("1FINAL", "1"),
    ("1Cr", "1Rc"),
    ("1cR", "1rC"),
    ("1m3", "1Milestone3"),
    ("1m3", "1MileStone3"),
    ("1m3", "1MILESTONE3"),
    ("1-abcdefghijklmnopqrstuvwxyz", "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
]

# ComparableVersionTest.testVersionComparing, testMng5568, testMng6572,
# testLeadingZeroes and testMng6964: (lower, higher).
ORDERED = [
    ("1", "2"),
    ("1.5", "2"),
    ("1", "2.5"),
    ("1.0", "1.1"),
    ("1.1", "1.2"),
    ("1.0.0", "1.1"),
    ("1.0.1", "1.1"),
    ("1.1", "1.2.0"),
    ("1.0-alpha-1", "1.0"),
    ("1.0-alpha-1", "1.0-alpha-2"),
    ("1.0-alpha-1", "1.0-beta-1"),
    ("1.0-beta-1", "1.0-SNAPSHOT"),
    ("1.0-SNAPSHOT", "1.0"),
    ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
    ("1.0", "1.0-1"),
    ("1.0-1", "1.0-2"),
    ("1.0.0", "1.0-1"),
    ("2.0-1", "2.0.1"),
    ("2.0.1-klm", "2.0.1-lmn"),
    ("2.0.1", "2.0.1-xyz"),
    ("2.0.1", "2.0.1-123"),
    ("2.0.1-xyz", "2.0.1-123"),
    ("6.1.0rc3", "6.1.0"),
    ("6.1.0rc3", "6.1H.5-beta"),
    ("6.1.0", "6.1H.5-beta"),
    ("20190126.230843", "1234567890.12345"),
    ("1234567890.12345", "123456789012345.1H.5-beta"),
    ("123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta"),
    ("0.7", "2"),
    ("0.2", "1.0.7"),
    ("1-0.alpha", "1"),
    ("1-0.beta", "1"),
    ("1-0.alpha", "1-0.beta"),
]

# Realistic versions as Maven Central and OSV's Maven records carry them; every
# pair must agree with maven-artifact itself (test_agrees_with_maven_artifact).
REALISTIC = [
    "1.0",
    "1.0.0",
    "1.0.1",
    "1.0-SNAPSHOT",
    "1.0-alpha-1",
    "1.0-beta-2",
    "1.0-rc1",
    "1.0.0-M1",
    "1.0.0.RC1",
    "1.0.0-RC2",
    "1.0.0.Final",
    "5.4.2.Final",
    "5.4.2.SP1",
    "5.4.2.Final-redhat-00001",
    "2.13.4",
    "2.13.4.1",
    "2.13.4.redhat-00001",
    "2.13.4.2",
    "2.13.4-1",
    "2.0-1",
    "2.0.1",
    "9.4.51.v20230217",
    "9.4.51",
    "4.1.108.Final",
    "4.1.108",
    "1.2.3-20230101.123456-1",
    "3.0.0-beta1",
    "3.0.0",
    "1.1",
    "1.10",
    "2",
    "2.0.0",
    "31.1-jre",
    "31.1-android",
    "32.0.0-jre",
]


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


@pytest.mark.parametrize("table", [VERSIONS_QUALIFIER, VERSIONS_NUMBER], ids=["qualifier", "number"])
def test_comparable_version_test_orders(table: list[str]) -> None:
    for i, j in itertools.combinations(range(len(table)), 2):
        assert compare("Maven", table[i], table[j]) == -1, (table[i], table[j])
        assert compare("Maven", table[j], table[i]) == 1, (table[j], table[i])


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_comparable_version_test_equalities(a: str, b: str) -> None:
    assert compare("Maven", a, b) == 0
    assert compare("Maven", b, a) == 0


@pytest.mark.parametrize(("lower", "higher"), ORDERED)
def test_comparable_version_test_pairs(lower: str, higher: str) -> None:
    assert compare("Maven", lower, higher) == -1
    assert compare("Maven", higher, lower) == 1


@pytest.mark.parametrize("x", ["abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC"])
def test_mng_7644_dot_qualifier_reads_as_dash_qualifier(x: str) -> None:
    # ComparableVersionTest.testMng7644: 1.0.0.X1 < 1.0.0-X2 and 2-X == 2.0.X == 2.0.0.X.
    assert compare("Maven", f"1.0.0.{x}1", f"1.0.0-{x}2") == -1
    assert compare("Maven", f"2-{x}", f"2.0.{x}") == 0
    assert compare("Maven", f"2-{x}", f"2.0.0.{x}") == 0
    assert compare("Maven", f"2.0.{x}", f"2.0.0.{x}") == 0


def test_leading_zeroes_are_ignored() -> None:
    # ComparableVersionTest.testVersionEqualWithLeadingZeroes and ...ZeroEqual...
    for digits in range(1, 20):
        assert compare("Maven", "0" * (digits - 1) + "1", "1") == 0
        assert compare("Maven", "0" * digits, "0") == 0


def test_parse_tree_matches_maven_canonical_form() -> None:
    # What ComparableVersion's main() prints as tokens, for a few versions.
    assert parse_items("1.0alpha1") == [1, ["0", [1]]]
    assert parse_items("1.0.0.RC1") == parse_items("1-rc-1") == [1, ["3", [1]]]
    assert parse_items("2.0.a") == [2, ["7-a"]]
    assert parse_items("1-0.alpha") == [1, [["0"]]]


def test_maven_own_cycles_are_resolved_towards_the_shorter_version() -> None:
    # Maven 3.9 finds 1-alpha < 1 < 1.sp.1 and yet 1.sp.1 < 1-alpha (a list item
    # beats a qualifier wherever they meet). The total order keeps the two
    # comparisons with the shorter version "1".
    assert compare("Maven", "1-alpha", "1") == -1
    assert compare("Maven", "1", "1.sp.1") == -1
    assert compare("Maven", "1-alpha", "1.sp.1") == -1
    # Likewise 2.0.beta.1 < 2 < 2.0-1, though Maven finds 2.0.beta.1 > 2.0-1.
    assert compare("Maven", "2.0.beta.1", "2") == -1
    assert compare("Maven", "2", "2.0-1") == -1
    assert compare("Maven", "2.0.beta.1", "2.0-1") == -1
    # And MNG-6964's 1-0.alpha < 1 < 1-sp, though Maven finds 1-0.alpha > 1-sp.
    assert compare("Maven", "1-0.alpha", "1") == -1
    assert compare("Maven", "1", "1-sp") == -1
    assert compare("Maven", "1-0.alpha", "1-sp") == -1


# Versions Maven orders inconsistently against others of the tables (see
# test_maven_own_cycles_are_resolved_towards_the_shorter_version).
MAVEN_CYCLIC = {"1-0.alpha", "1-0.beta"}


@pytest.mark.parametrize("version", ["", " ", "1.0 beta", "1.0\n"])
def test_empty_or_spaced_versions_are_refused(version: str) -> None:
    assert not parse_ok("Maven", version)
    with pytest.raises(InvalidVersion, match="Maven"):
        compare("Maven", version, "1.0")


def _maven_artifact_jar() -> Path:
    if shutil.which("java") is None:
        unavailable("java is not installed (maven-artifact is the reference)")
    repo = Path.home() / ".m2" / "repository" / "org" / "apache" / "maven" / "maven-artifact"
    jars = sorted(repo.glob("3.9.*/maven-artifact-3.9.*.jar"))
    if not jars:
        unavailable("no maven-artifact 3.9.x jar in the local Maven repository")
    return jars[-1]


HARNESS = """
import java.io.*;
import org.apache.maven.artifact.versioning.ComparableVersion;
public class CompareVersions {
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            String[] p = line.split("\\t", -1);
            int c = new ComparableVersion(p[0]).compareTo(new ComparableVersion(p[1]));
            out.append(Integer.signum(c)).append('\\n');
        }
        System.out.print(out);
    }
}
"""


def test_agrees_with_maven_artifact(tmp_path: Path) -> None:
    """Every pair of the tables above and of REALISTIC, against Maven's own ComparableVersion."""
    jar = _maven_artifact_jar()
    source = tmp_path / "CompareVersions.java"
    source.write_text(HARNESS)
    versions = sorted(
        {*VERSIONS_QUALIFIER, *VERSIONS_NUMBER, *REALISTIC, *(v for pair in EQUAL + ORDERED for v in pair)}
        - MAVEN_CYCLIC
    )
    pairs = list(itertools.product(versions, repeat=2))
    done = subprocess.run(
        ["java", "-cp", str(jar), str(source)],
        input="".join(f"{a}\t{b}\n" for a, b in pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    results = [int(x) for x in done.stdout.split()]
    assert len(results) == len(pairs)
    mismatches = [(a, b, r) for (a, b), r in zip(pairs, results, strict=True) if compare("Maven", a, b) != _sign(r)]
    assert mismatches == []
