"""``hullwatch serve`` and ``hullwatch rescan`` as a user starts them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from shared.vulndb.importer import import_paths

DATA = Path(__file__).resolve().parent.parent / "data"
REPO = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_the_event_grid_validation_handshake(tmp_path: Path) -> None:
    dbp = tmp_path / "v.sqlite"
    import_paths(dbp, [DATA / "osv"])
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "serve",
            "--port",
            str(port),
            "--registry",
            "127.0.0.1:5000",
            "--data-dir",
            str(tmp_path / "data"),
            "--db",
            str(dbp),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = json.dumps(
            [
                {
                    "id": "1",
                    "topic": "t",
                    "subject": "",
                    "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                    "eventTime": "2024-01-01T00:00:00Z",
                    "dataVersion": "1",
                    "data": {"validationCode": "abc-123"},
                }
            ]
        ).encode()
        deadline = time.monotonic() + 30
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/eventgrid",
                    data=body,
                    headers={"aeg-event-type": "SubscriptionValidation", "Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=5) as resp:
                    answer = json.loads(resp.read())
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert answer == {"validationResponse": "abc-123"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_rescan_on_an_empty_store(tmp_path: Path) -> None:
    dbp = tmp_path / "v.sqlite"
    import_paths(dbp, [DATA / "osv"])
    (tmp_path / "data").mkdir()

    def rescan(data: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shared.cli", "rescan", "--data-dir", str(data), "--db", str(dbp)],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            capture_output=True,
            text=True,
            timeout=120,
        )

    p = rescan(tmp_path / "data")
    assert p.returncode == 0, p.stderr
    assert "0 images re-matched" in p.stdout
    # a data directory that does not exist (a typo) is refused in one line, and not created
    missing = tmp_path / "dta"
    p = rescan(missing)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert f"{missing}: no such directory" in p.stderr and "Traceback" not in p.stderr
    assert not missing.exists()
