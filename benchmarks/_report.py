"""What every benchmark script writes around its numbers: the machine, the code, the command, the section.

Each script owns one or more sections of ``benchmarks/RESULTS.md``, delimited by
HTML comments; a run with ``--write-results`` replaces its section in place and
leaves the others alone.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS.md"


def machine(*, memory: bool = True, sqlite: bool = False) -> str:
    """CPUs available to this process, the CPU model, RAM, and the Python (and SQLite) measured."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    if memory:
        try:
            kb = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
            mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
        except (OSError, ValueError, IndexError):
            pass
    text = (
        f"nproc {len(os.sched_getaffinity(0))}{', ' + cpu if cpu else ''}{mem}; "
        f"Python {platform.python_version()} ({platform.system()} {platform.machine()})"
    )
    if sqlite:
        import sqlite3

        text += f"; SQLite {sqlite3.sqlite_version}"
    return text


def code_version() -> str:
    """The commit measured, and whether the code under shared/ had uncommitted changes."""

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--", "shared")
    return f"commit {head}" + (" with uncommitted changes under shared/" if dirty else "")


def command_line() -> str:
    """This run's command, with paths inside the repository made relative to it."""
    script = Path(sys.argv[0]).resolve()
    name = str(script.relative_to(REPO)) if script.is_relative_to(REPO) else script.name
    args = []
    for a in sys.argv[1:]:
        p = Path(a)
        if p.is_absolute() and p.resolve().is_relative_to(REPO):
            a = str(p.resolve().relative_to(REPO))
        args.append(a)
    return shlex.join(["python", name, *args])


def write_section(begin: str, end: str, body: str, head: str = "# Benchmark results\n") -> None:
    """Replace the text from ``begin`` to ``end`` in RESULTS.md with ``body`` (which carries both), or append it."""
    text = RESULTS.read_text() if RESULTS.exists() else head
    if begin in text and end in text:
        a = text.index(begin)
        b = text.index(end) + len(end)
        text = text[:a] + body + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    RESULTS.write_text(text if text.endswith("\n") else text + "\n")
    print(f"updated {RESULTS.relative_to(REPO)}")
