"""The README's first command, run as a newcomer would (the second one is what .ci/run runs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, flags=re.S)
    assert blocks[0].strip() == "./scripts/quickstart"
    assert blocks[1].strip() == "./scripts/test"
    assert (REPO / ".ci" / "run").read_text().strip().endswith("exec bash scripts/test")


def test_quickstart_shows_a_scan_table_then_a_stored_finding_and_an_alert() -> None:
    env = dict(os.environ, HULLWATCH_VENV=sys.prefix, COLUMNS="160")
    p = subprocess.run(
        [str(REPO / "scripts" / "quickstart")], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, p.stderr
    assert "sample image from" in p.stderr
    assert "Package" in p.stdout and "Ecosystem" in p.stdout
    assert re.search(r"\d+ packages, 2 layers", p.stdout)
    assert "Traceback" not in p.stderr
    # then the pipeline: the alert printed by the worker, and the findings read back from the store
    assert re.search(r"^ALERT hullwatch\.vulnerability\.\w+ .* in urllib3 1\.24\.1", p.stdout, re.M), p.stdout[-2000:]
    tail = p.stdout.strip().splitlines()
    stored = next(line for line in tail if line.startswith("stored: image sha256:"))
    assert int(stored.split(" with ")[1].split()[0]) > 0
