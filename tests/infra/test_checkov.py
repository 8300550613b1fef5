"""checkov over infra/ (Terraform, Bicep, secrets): no failed check outside the justified skip list.

checkov lives in its own virtualenv (its pins clash with the project's), built
once at ``.venv-checkov/`` in the repository root (or ``$HULLWATCH_CHECKOV_VENV``)
and reused while the pinned version is the same. Building it takes a few minutes
on a cold pip cache. Under CI (``CI=true``) a failure to build it fails the test;
elsewhere the test skips with the reason.

The skip list is ``infra/.checkov.yaml``: one check id per line, each with its
reason after ``#``; checkov applies it by itself when it scans ``infra``
(``checkov -d infra --skip-download --compact``). The test runs it on a copy
*without* the list, so it sees every failure, and asserts that the failures are
exactly covered by the list: a new failure fails the test, and so does a skip
that no longer matches anything.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, UNDER_CI

CHECKOV_VERSION = "3.3.30"
CONFIG = REPO / "infra" / ".checkov.yaml"
VENV = Path(os.environ.get("HULLWATCH_CHECKOV_VENV") or REPO / ".venv-checkov")
INSTALL_TIMEOUT = 900
RUN_TIMEOUT = 300

_SKIP_LINE = re.compile(r"^\s*-\s*(?P<id>CKV2?_[A-Z0-9]+_\d+)\s*(?:#\s*(?P<reason>.*\S))?\s*$")


def _unavailable(message: str) -> None:
    if UNDER_CI:
        pytest.fail(message + " - required under CI", pytrace=False)
    pytest.skip(message)


def _build_venv() -> Path:
    """The checkov executable, building the virtualenv first when it is missing or holds another version."""
    exe = VENV / "bin" / "checkov"
    stamp = VENV / ".hullwatch-checkov"
    VENV.mkdir(parents=True, exist_ok=True)
    with (VENV / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (pytest-xdist workers, parallel runs)
        if exe.exists() and stamp.exists() and stamp.read_text().strip() == CHECKOV_VERSION:
            return exe
        for child in VENV.iterdir():
            if child.name == ".build.lock":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        steps = [
            [sys.executable, "-m", "venv", str(VENV)],
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"checkov=={CHECKOV_VERSION}"],
        ]  # fmt: skip
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
            except subprocess.TimeoutExpired:
                _unavailable(f"building {VENV} timed out after {INSTALL_TIMEOUT}s ({' '.join(step[-2:])})")
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
                _unavailable(f"could not install checkov=={CHECKOV_VERSION} into {VENV}: " + " | ".join(tail))
        if not exe.exists():
            _unavailable(f"checkov=={CHECKOV_VERSION} installed without its executable at {exe}")
        stamp.write_text(CHECKOV_VERSION + "\n")
        return exe


def _skip_list() -> dict[str, str]:
    """check id -> reason, from the config's skip-check lines."""
    skips: dict[str, str] = {}
    in_list = False
    for line in CONFIG.read_text().splitlines():
        if re.match(r"^skip-check:\s*$", line):
            in_list = True
            continue
        if in_list and re.match(r"^\S", line):
            in_list = False
        if not in_list or not line.strip() or line.strip().startswith("#"):
            continue
        m = _SKIP_LINE.match(line)
        assert m, f"unreadable skip-check line in {CONFIG.name}: {line!r}"
        assert m["id"] not in skips, f"{m['id']} is listed twice"
        skips[m["id"]] = m["reason"] or ""
    return skips


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    exe = _build_venv()
    frameworks = yaml.safe_load(CONFIG.read_text())["framework"]
    # checkov reads .checkov.yaml from the scanned directory by itself: scan a
    # copy without it, so that skipped checks show up as failures to compare.
    work = tmp_path_factory.mktemp("checkov")
    shutil.copytree(REPO / "infra", work / "infra", ignore=shutil.ignore_patterns(".checkov.yaml", ".terraform*"))
    cmd = [str(exe), "-d", "infra", "--framework", *frameworks, "--skip-download", "--compact", "-o", "json"]
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    # exit 1 means "some check failed": judged below against the skip list.
    assert done.returncode in (0, 1), f"checkov exited {done.returncode}: {done.stderr[-2000:]}"
    data = json.loads(done.stdout)
    return data if isinstance(data, list) else [data]


def test_skip_list_is_justified() -> None:
    skips = _skip_list()
    assert skips, f"{CONFIG.name} has no skip-check list"
    short = {cid: reason for cid, reason in skips.items() if len(reason) < 40}
    assert not short, f"skips without a real reason (after '#', 40+ characters): {short}"
    listed = yaml.safe_load(CONFIG.read_text())["skip-check"]
    assert sorted(listed) == sorted(skips), "every skip-check entry must be a bare check id with a '#' reason"


def test_both_templates_are_parsed(report: list[dict]) -> None:
    by_type = {r["check_type"]: r for r in report}
    for check_type in ("terraform", "bicep"):
        assert check_type in by_type, f"checkov reported nothing for {check_type}: {sorted(by_type)}"
        summary = by_type[check_type]["summary"]
        assert summary["parsing_errors"] == 0, f"{check_type}: {by_type[check_type]['results'].get('parsing_errors')}"
        assert summary["resource_count"] > 0 and summary["passed"] > 0, f"{check_type}: {summary}"
    files = {p["file_path"] for r in report for p in r["results"]["passed_checks"]}
    assert "/bicep/main.bicep" in files and "/terraform/main.tf" in files, sorted(files)


def test_no_failed_check_outside_the_skip_list(report: list[dict]) -> None:
    skips = _skip_list()
    failed: dict[str, set[str]] = {}
    for r in report:
        for f in r["results"].get("failed_checks", []):
            failed.setdefault(f["check_id"], set()).add(f"{f['file_path']}:{f['resource']} ({f['check_name']})")
    unexpected = {cid: sorted(where) for cid, where in failed.items() if cid not in skips}
    assert not unexpected, "checks failing outside infra/.checkov.yaml:\n" + json.dumps(unexpected, indent=2)
    stale = sorted(set(skips) - set(failed))
    assert not stale, f"skips in infra/.checkov.yaml that no longer match a failure (remove them): {stale}"


def test_no_inline_suppressions() -> None:
    """Every skip is in the one reviewed list, never hidden in a template."""
    hits = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sorted((REPO / "infra").rglob("*"))
        if p.suffix in (".tf", ".bicep")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "checkov:skip" in line
    ]
    assert not hits, hits
