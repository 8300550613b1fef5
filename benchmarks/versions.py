#!/usr/bin/env python3
"""Microbenchmark: version comparisons per second, for every scheme of ``shared.vulndb.versions``.

For each scheme it builds a reproducible set of realistic, distinct versions
and measures, best of several rounds:

- ``compare warm``: ``compare(ecosystem, a, b)`` with both keys already cached
  (what a matcher pays when it compares strings it has seen before);
- ``compare cold``: ``compare(ecosystem, a, b)`` on versions never seen, so both
  are parsed (the cache is cleared before each round, every version is new);
- ``key <``: ``ka < kb`` on precomputed keys (what a matcher pays per comparison
  when it keeps ``sort_key`` results, as it should);
- ``parse``: ``sort_key`` on new versions (cache misses).

The matcher's target is 200,000 package instances per second per core with
2-6 comparisons each: up to 1.2 million key comparisons per second on top of
everything else it does. The last column says how much of one core's second
those 1.2 million comparisons would take.

Usage:
    python benchmarks/versions.py            # all schemes
    python benchmarks/versions.py --pairs 2000 --rounds 3 dpkg maven
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.vulndb.versions import clear_caches, compare, sort_key

NEEDED_PER_SECOND = 1_200_000


def _dpkg(r: random.Random) -> str:
    v = f"{r.randint(0, 40)}.{r.randint(0, 40)}.{r.randint(0, 99)}"
    v += r.choice(["", "~rc1", "+dfsg", "+ds1", "~beta2"])
    v += f"-{r.randint(1, 9)}" + r.choice(["", f"+deb12u{r.randint(1, 15)}", f"ubuntu0.{r.randint(1, 9)}", "+b1"])
    return (f"{r.randint(1, 3)}:" if r.random() < 0.1 else "") + v


def _apk(r: random.Random) -> str:
    v = f"{r.randint(0, 40)}.{r.randint(0, 40)}.{r.randint(0, 99)}"
    return v + r.choice(["", "_rc1", "_p2", "_git20240101", "_alpha3"]) + f"-r{r.randint(0, 12)}"


def _rpm(r: random.Random) -> str:
    v = f"{r.randint(0, 40)}.{r.randint(0, 40)}.{r.randint(0, 99)}-{r.randint(1, 300)}.el9_{r.randint(0, 5)}"
    return (f"{r.randint(0, 2)}:" if r.random() < 0.3 else "") + v


def _pypi(r: random.Random) -> str:
    v = f"{r.randint(0, 40)}.{r.randint(0, 40)}.{r.randint(0, 99)}"
    return v + r.choice(["", "", f"rc{r.randint(1, 3)}", f".post{r.randint(1, 3)}", f".dev{r.randint(1, 9)}", "b2"])


def _semver(r: random.Random) -> str:
    v = f"{r.randint(0, 40)}.{r.randint(0, 40)}.{r.randint(0, 99)}"
    return v + r.choice(["", "", f"-rc.{r.randint(1, 5)}", f"-beta.{r.randint(1, 5)}", "-alpha", "+build.5"])


def _go(r: random.Random) -> str:
    if r.random() < 0.2:
        return f"v0.0.0-2023{r.randint(10, 12)}{r.randint(10, 28)}{r.randint(100000, 235959)}-{r.randbytes(6).hex()}"
    return "v" + _semver(r)


def _maven(r: random.Random) -> str:
    v = f"{r.randint(0, 40)}.{r.randint(0, 40)}.{r.randint(0, 99)}"
    return v + r.choice(["", "", "-SNAPSHOT", ".Final", "-M2", "-RC1", ".redhat-00001", "-jre", ".v20230217"])


def _gem(r: random.Random) -> str:
    v = f"{r.randint(0, 40)}.{r.randint(0, 40)}.{r.randint(0, 99)}"
    return v + r.choice(["", "", ".rc1", ".beta2", ".pre"])


def _packagist(r: random.Random) -> str:
    v = f"{r.choice(['', 'v'])}{r.randint(0, 40)}.{r.randint(0, 40)}.{r.randint(0, 99)}"
    return v + r.choice(["", "", "-beta2", "-RC1", "-alpha1", "-p1"])


def _nuget(r: random.Random) -> str:
    v = ".".join(str(r.randint(0, 40)) for _ in range(r.choice([3, 3, 4])))
    return v + r.choice(["", "", "-preview.1.23", "-rc.2", "-beta"])


SCHEMES: dict[str, tuple[str, Callable[[random.Random], str]]] = {
    "dpkg": ("Debian:12", _dpkg),
    "apk": ("Alpine:v3.19", _apk),
    "rpm": ("Red Hat", _rpm),
    "pep440": ("PyPI", _pypi),
    "npm": ("npm", _semver),
    "cargo": ("crates.io", _semver),
    "go": ("Go", _go),
    "maven": ("Maven", _maven),
    "rubygems": ("RubyGems", _gem),
    "packagist": ("Packagist", _packagist),
    "nuget": ("NuGet", _nuget),
}


def _distinct(make: Callable[[random.Random], str], count: int, seed: int) -> list[str]:
    r = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < count:
        seen[make(r)] = None
    return list(seen)


def _best(rounds: int, fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(ecosystem: str, make: Callable[[random.Random], str], pairs: int, rounds: int) -> dict[str, float]:
    versions = _distinct(make, 2 * pairs, seed=7)
    a_side, b_side = versions[:pairs], versions[pairs:]
    couples = list(zip(a_side, b_side, strict=True))

    def compare_all() -> None:
        for a, b in couples:
            compare(ecosystem, a, b)

    def cold() -> None:
        clear_caches()
        compare_all()

    def parse_all() -> None:
        for v in versions:
            sort_key(ecosystem, v)

    cold_time = _best(rounds, cold)
    clear_caches()
    parse_time = _best(1, parse_all)  # first pass: every version is a miss
    compare_all()
    warm_time = _best(rounds, compare_all)
    keys = [(sort_key(ecosystem, a), sort_key(ecosystem, b)) for a, b in couples]

    def key_compare() -> None:
        for ka, kb in keys:
            ka < kb  # noqa: B015 - the comparison is what is measured

    key_time = _best(rounds, key_compare)
    return {
        "warm": pairs / warm_time,
        "cold": pairs / cold_time,
        "key": pairs / key_time,
        "parse": len(versions) / parse_time,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pairs",
        type=int,
        default=5000,
        help="comparisons per round (default 5000: twice as many versions fit the cache)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per measure, best kept (default 5)")
    parser.add_argument("schemes", nargs="*", choices=[*SCHEMES, []], help="schemes to run (default: all)")
    args = parser.parse_args()
    chosen = args.schemes or list(SCHEMES)
    print(f"Python {sys.version.split()[0]}; {args.pairs} pairs of distinct versions, best of {args.rounds} rounds")
    header = f"{'scheme':10} {'compare warm/s':>15} {'compare cold/s':>15} {'key </s':>13} {'parse/s':>11}"
    print(header + f" {'1.2M key cmps':>14}")
    for name in chosen:
        ecosystem, make = SCHEMES[name]
        r = measure(ecosystem, make, args.pairs, args.rounds)
        share = NEEDED_PER_SECOND / r["key"]
        print(
            f"{name:10} {r['warm']:>15,.0f} {r['cold']:>15,.0f} {r['key']:>13,.0f} {r['parse']:>11,.0f} {share:>13.0%}"
        )


if __name__ == "__main__":
    main()
