"""``hullwatch scan`` against the real local registries, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import images as I
from tests.support.cli import run_cli
from tests.support.registries import Registry, push

pytestmark = pytest.mark.integration

REPO = "team/cli"


def image() -> I.Image:
    return I.image(
        [
            I.layer([I.from_host("/etc/os-release", "etc/os-release"), I.from_host("/var/lib/dpkg/status")]),
            I.layer([I.file("app/run.sh", "#!/bin/sh\necho hi\n", mode=0o755)]),
        ]
    )


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_wrong_credentials_exit_2_with_one_line(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    reg: Registry = request.getfixturevalue(which)
    push(reg.url, REPO, "v1", image(), auth=reg.auth)
    ref = reg.ref(REPO, "v1")
    sandbox = tmp_path / "sandbox"
    r = run_cli(
        ["scan", ref, "--insecure-registry"],
        sandbox,
        env={"HULLWATCH_REGISTRY_USERNAME": "user", "HULLWATCH_REGISTRY_PASSWORD": "not-the-password"},
    )
    assert r.code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"hullwatch: error: {ref}: authentication failed for {reg.host}")
    assert r.writes_outside(sandbox) == []


def test_three_registries_same_json_inventory(
    anon_registry: Registry, basic_registry: Registry, token_registry: Registry, tmp_path: Path
) -> None:
    img = image()
    inventories = []
    for i, reg in enumerate((anon_registry, basic_registry, token_registry)):
        push(reg.url, REPO, "same", img, auth=reg.auth)
        args = ["scan", reg.ref(REPO, "same"), "--insecure-registry", "--format", "json"]
        stdin = None
        if reg.auth:
            args += ["--username", reg.auth[0], "--password-stdin"]
            stdin = reg.auth[1] + "\n"
        r = run_cli(args, tmp_path / f"sandbox{i}", stdin=stdin)
        assert r.code == 0, r.stderr
        (result,) = json.loads(r.stdout)["results"]
        assert result["image"]["digest"] == img.digest
        inventories.append(result["packages"])
    assert len(inventories[0]) > 50
    assert inventories[0] == inventories[1] == inventories[2]
