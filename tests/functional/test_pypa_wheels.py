"""Acceptance: old real wheels against the real PyPA advisory corpus.

``hullwatch db import`` of pypa/advisory-database (CC-BY-4.0, from the shared
corpora) then ``hullwatch scan`` of an image holding real wheels of old
releases, installed by pip, must report every advisory the PyPA data says
affects them and none it does not. The oracle below evaluates the same YAML
files independently, with ``packaging`` and the OSV rules written out plainly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.version import InvalidVersion, Version

from tests.conftest import UNDER_CI
from tests.support import images as I
from tests.support.cli import run_cli

PYPA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "osv-pypa" / "vulns"
OLD = {
    "urllib3": "1.24.1",
    "requests": "2.19.1",
    "Jinja2": "2.10",
    "Django": "2.2",
    "Flask": "0.12.2",
    "Werkzeug": "0.14.1",
    "idna": "2.7",
    "setuptools": "40.0.0",
}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def oracle(name: str, version: str) -> set[str]:
    """Advisory ids in the corpus affecting (name, version), by the OSV rules."""
    v = Version(version)
    hits = set()
    folder = PYPA / _norm(name)
    for f in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        rec = yaml.safe_load(f.read_text())
        if rec.get("withdrawn"):
            continue
        for aff in rec.get("affected", []):
            if _norm(aff["package"]["name"]) != _norm(name):
                continue
            if version in [str(x) for x in aff.get("versions", [])]:
                hits.add(rec["id"])
                continue
            for r in aff.get("ranges", []):
                if r["type"] != "ECOSYSTEM":
                    continue
                state = False
                events = []
                for e in r["events"]:
                    ((kind, ver),) = e.items()
                    events.append((kind, str(ver)))
                for kind, ver in sorted(events, key=lambda e: Version("0") if e[1] == "0" else _v(e[1])):
                    if kind == "introduced" and (ver == "0" or v >= _v(ver)):
                        state = True
                    elif (kind == "fixed" and v >= _v(ver)) or (kind == "last_affected" and v > _v(ver)):
                        state = False
                if state:
                    hits.add(rec["id"])
    return hits


def _v(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")  # legacy versions sort first in OSV's PyPI ordering


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not PYPA.is_dir():
        pytest.fail(f"the shared corpora are missing: {PYPA}")
    where = tmp_path_factory.mktemp("wheels")
    pins = [f"{n}=={v}" for n, v in OLD.items()]
    dl = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(where),
            *pins,
        ],
        capture_output=True,
        text=True,
    )
    if dl.returncode != 0:
        message = f"pip could not download the old wheels: {dl.stderr.strip()[-400:]}"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)
    target = tmp_path_factory.mktemp("site") / "usr/local/lib/python3.11/site-packages"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--target",
            str(target),
            *map(str, sorted(where.glob("*.whl"))),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_every_pypa_advisory_and_none_other(site: Path, tmp_path: Path) -> None:
    dbp = tmp_path / "vulndb.sqlite"
    r = run_cli(["db", "import", str(PYPA), "--db", str(dbp)], tmp_path / "s0")
    assert r.code == 0, r.stderr
    root = site.parents[4]
    files = [
        I.F(str(p.relative_to(root)), p.read_bytes(), mode=0o644)
        for p in sorted(site.rglob("*"))
        if p.is_file() and ".dist-info/" in str(p)
    ]
    img = I.image([I.layer([I.file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'), *files])])
    layout = I.write_oci_layout(tmp_path / "img", img)
    out = run_cli(["scan", f"oci:{layout}", "--db", str(dbp), "-f", "json"], tmp_path / "s1")
    assert out.code == 0, out.stderr
    result = json.loads(out.stdout)["results"][0]
    found = {(p["name"], p["version"]) for p in result["packages"] if p["type"] == "python"}
    assert found == set(OLD.items())
    got: dict[str, set[str]] = {}
    for f in result["findings"]:
        got.setdefault(f["package_name"], set()).update(f["advisories"])
    expected = {n: oracle(n, v) for n, v in OLD.items()}
    assert sum(len(x) for x in expected.values()) > 40, "old releases carry many advisories"
    for name in OLD:
        assert got.get(name, set()) == expected[name], name
