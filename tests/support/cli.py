"""Run the real ``hullwatch`` CLI in a subprocess and record every filesystem write it makes.

The child installs a :func:`sys.addaudithook` hook before importing hullwatch;
every ``open`` for writing, ``mkdir``, ``rename``, ``remove`` and the like is
logged, so a test can assert that a failed scan wrote nothing outside its
temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent

_CHILD = r"""
import os, sys
_log = open(os.environ["HW_AUDIT_LOG"], "a", buffering=1)
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.truncate",
           "shutil.copyfile", "shutil.move", "os.chmod", "os.utime"}
def _hook(event, args):
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        by_flags = isinstance(flags, int) and flags & _WRITE
        writes = by_flags or (isinstance(mode, str) and any(c in mode for c in "wax+"))
        if writes and isinstance(path, (str, bytes, os.PathLike)):
            _log.write("open\t" + os.path.abspath(os.fsdecode(path)) + "\n")
    elif event in _EVENTS:
        for a in args[:2]:
            if isinstance(a, (str, bytes, os.PathLike)):
                _log.write(event + "\t" + os.path.abspath(os.fsdecode(a)) + "\n")
sys.addaudithook(_hook)
sys.argv = ["hullwatch"] + sys.argv[1:]
from shared.cli import main
main()
"""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    writes: list[str]

    def writes_outside(self, root: Path) -> list[str]:
        base = str(root.resolve())
        return [w for w in self.writes if not w.split("\t", 1)[1].startswith(base) and "/dev/" not in w]


def run_cli(args: list[str], sandbox: Path, env: dict[str, str] | None = None, stdin: str | None = None) -> Run:
    """Run ``hullwatch ARGS`` with HOME, TMPDIR and the working directory inside ``sandbox``."""
    sandbox.mkdir(parents=True, exist_ok=True)
    (sandbox / "home").mkdir(exist_ok=True)
    (sandbox / "tmp").mkdir(exist_ok=True)
    log = sandbox.parent / (sandbox.name + ".audit")
    log.write_text("")
    child_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(sandbox / "home"),
        "TMPDIR": str(sandbox / "tmp"),
        "XDG_CACHE_HOME": str(sandbox / "home" / ".cache"),
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HW_AUDIT_LOG": str(log),
        "COLUMNS": "200",
        "LANG": "C.UTF-8",
    }
    child_env.update(env or {})
    p = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        cwd=sandbox,
        env=child_env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
    )
    return Run(p.returncode, p.stdout, p.stderr, [line for line in log.read_text().splitlines() if line])
