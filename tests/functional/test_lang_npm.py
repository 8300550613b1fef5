"""Whole scans of Node.js packages: real installs checked against npm itself, real lock files, layers.

Real parts:

- ``tests/data/npm/real-project`` (package.json and the package-lock.json npm
  wrote for it) is installed with ``npm ci`` once per test run, from the
  npm registry; what the scanner finds in that ``node_modules`` (as an image,
  and as a ``dir:`` source tree) must be exactly what ``npm query '*'`` reports.
- The global ``node_modules`` of this machine (npm's own install, with its
  bundled dependencies and their inner ``dist/*/package.json`` files) is
  scanned as an image and checked against ``npm query '*' -g``.
- ``tests/data/npm/locks`` holds lock files written by npm 6, npm 11, Yarn
  1.22, Yarn 4, pnpm 7, 8 and 9 for one small project (see the README there).

Under CI a missing or failing npm fails these tests; elsewhere they skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.domain.models import Package, ScanResult
from shared.scanning.analyzers.base import Analyzer
from shared.scanning.analyzers.npm import (
    NpmInstalledAnalyzer,
    NpmLockAnalyzer,
    PnpmLockAnalyzer,
    YarnLockAnalyzer,
    is_package_root_manifest,
)
from shared.scanning.scanner import ScanRequest, scan
from tests.conftest import UNDER_CI, require_tool
from tests.support import images as I

DATA = Path(__file__).resolve().parent.parent / "data" / "npm"
NPM_HINT = "Node.js 20 with npm (apt-get install nodejs npm)"


def analyzers(scope: str) -> list[Analyzer]:
    """The Node.js analyzers a scan of this scope runs."""
    every: list[Analyzer] = [NpmInstalledAnalyzer(), NpmLockAnalyzer(), PnpmLockAnalyzer(), YarnLockAnalyzer()]
    return [a for a in every if scope in a.scopes]


def scan_image(tmp: Path, layers: list[I.Layer]) -> ScanResult:
    layout = I.write_oci_layout(tmp / "img", I.image(layers))
    return scan(ScanRequest(f"oci:{layout}"), analyzers=analyzers("image"))[0]


def scan_dir(tree: Path) -> ScanResult:
    return scan(ScanRequest(f"dir:{tree}"), analyzers=analyzers("dir"))[0]


def tree_entries(host_root: Path, image_prefix: str) -> list[I.F]:
    """Files and symlinks below a host folder, as image entries below ``image_prefix``."""
    out: list[I.F] = []
    for dirpath, dirnames, filenames in os.walk(host_root):
        for name in sorted(dirnames + filenames):
            host = Path(dirpath) / name
            rel = f"{image_prefix}/{host.relative_to(host_root).as_posix()}"
            if host.is_symlink():
                out.append(I.F(rel, kind="symlink", link=os.readlink(host)))
            elif host.is_file():
                out.append(I.file(rel, host.read_bytes(), host.stat().st_mode & 0o777))
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    return out


def npm(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false", npm_config_audit="false")
    return subprocess.run(["npm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def npm_or_give_up(args: list[str], cwd: Path) -> str:
    done = npm(args, cwd)
    if done.returncode != 0:
        message = f"npm {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-800:]}"
        if UNDER_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return done.stdout


@pytest.fixture(scope="session")
def real_install(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The real project installed by ``npm ci``, and ``npm query '*'`` over it (once per test run)."""
    require_tool("npm", NPM_HINT)
    root = tmp_path_factory.mktemp("npm-real-project")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(DATA / "real-project" / name, root / name)
    npm_or_give_up(["ci", "--ignore-scripts", "--no-audit", "--no-fund"], root)
    nodes = json.loads(npm_or_give_up(["query", "*"], root))
    installed = [n for n in nodes if n.get("location")]
    assert len(installed) >= 6, installed  # the project's own node is location ""
    return root, installed


def pkg_rows(packages: list[Package]) -> list[tuple[Any, ...]]:
    return sorted((p.found_in, p.name, p.version, p.purl, p.dev, tuple(p.licenses), p.layer_index) for p in packages)


# -- real installs --------------------------------------------------------------------------


def test_installed_packages_of_a_real_install_match_npm_query(
    real_install: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    root, nodes = real_install
    app = tree_entries(root, "srv/app")
    assert any(e.path == "srv/app/node_modules/.package-lock.json" for e in app)
    r = scan_image(tmp_path, [I.layer(app)])
    # the lock analyzers do not run on images: everything comes from node_modules
    got = sorted((p.found_in, p.name, p.version, tuple(p.licenses)) for p in r.packages)
    expected = sorted(
        (f"srv/app/{n['location']}/package.json", n["name"], n["version"], (n["license"],)) for n in nodes
    )
    assert got == expected
    assert r.warnings == []
    assert all(p.type == "npm" and p.ecosystem == "npm" and not p.dev and p.layer_index == 0 for p in r.packages)
    purls = {p.found_in: p.purl for p in r.packages}
    assert purls["srv/app/node_modules/@sindresorhus/is/package.json"] == "pkg:npm/%40sindresorhus/is@4.6.0"
    assert purls["srv/app/node_modules/debug/node_modules/ms/package.json"] == "pkg:npm/ms@2.1.3"
    assert purls["srv/app/node_modules/ms/package.json"] == "pkg:npm/ms@2.0.0"
    assert set(r.analyzers) == {"npm-installed"}


def test_lock_of_a_real_install_matches_npm_query_with_dev_flags(
    real_install: tuple[Path, list[dict[str, Any]]],
) -> None:
    root, nodes = real_install
    r = scan_dir(root)
    assert r.warnings == []
    by_file: dict[str, list[Package]] = {}
    for p in r.packages:
        by_file.setdefault(p.found_in, []).append(p)
    # the hidden node_modules/.package-lock.json is not read
    assert "package-lock.json" in by_file
    assert not any(f.endswith(".package-lock.json") for f in by_file)
    from_lock = sorted((p.name, p.version, p.dev, tuple(p.licenses)) for p in by_file.pop("package-lock.json"))
    assert from_lock == sorted((n["name"], n["version"], n["dev"], (n["license"],)) for n in nodes)
    assert {p.name for p in r.packages if p.dev and p.found_in == "package-lock.json"} == {
        "@types/node",
        "undici-types",
    }
    # and node_modules is inventoried as well, one package per package.json
    installed = sorted((f, p.name, p.version) for f, ps in by_file.items() for p in ps)
    assert installed == sorted((f"{n['location']}/package.json", n["name"], n["version"]) for n in nodes)


def test_global_node_modules_of_this_machine_match_npm_query(tmp_path: Path) -> None:
    require_tool("npm", NPM_HINT)
    global_root = Path(npm_or_give_up(["root", "-g"], tmp_path).strip())
    if not global_root.is_dir():
        pytest.fail(f"npm root -g names {global_root}, which is not a folder", pytrace=False)
    nodes = json.loads(npm_or_give_up(["query", "*", "-g"], tmp_path))
    prefix = global_root.as_posix().lstrip("/")
    expected = sorted(
        (f"{prefix}/{Path(n['path']).relative_to(global_root).as_posix()}/package.json", n["name"], n["version"])
        for n in nodes
        if n.get("name")
        and n.get("version")
        and not n.get("isLink")
        and n.get("path", "").startswith(f"{global_root}/")
    )
    assert any(name == "npm" for _, name, _ in expected)
    entries = tree_entries(global_root, prefix)
    # npm's bundled packages hold package.json files that are not packages (dist/esm/package.json and the like)
    manifests = {e.path for e in entries if e.kind == "file" and e.path.endswith("/package.json")}
    inner = manifests - {f for f, _, _ in expected}
    assert inner and not any(is_package_root_manifest(f) for f in inner if "/dist/" in f)
    r = scan_image(tmp_path, [I.layer(entries)])
    assert sorted((p.found_in, p.name, p.version) for p in r.packages) == expected
    licences = {(n["name"], n["version"]): n.get("license") for n in nodes if n.get("name")}
    for p in r.packages:
        declared = licences[(p.name, p.version)]
        if isinstance(declared, str):
            assert p.licenses == [declared], p


# -- hand-built images ----------------------------------------------------------------------


def pj(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_scoped_nested_global_and_layer_attribution(tmp_path: Path) -> None:
    a = pj({"name": "a", "version": "1.0.0", "license": "MIT"})
    base = I.layer(
        [
            I.file("app/package.json", pj({"name": "app", "version": "1.0.0", "dependencies": {"a": "1"}})),
            I.file("app/node_modules/a/package.json", a),
            I.file("app/node_modules/a/lib/package.json", pj({"type": "module"})),
            I.file("app/node_modules/a/dist/esm/package.json", pj({"name": "a", "version": "0.0.0-inner"})),
            I.file("app/node_modules/a/node_modules/c/package.json", pj({"name": "c", "version": "2.0.0"})),
            I.file(
                "app/node_modules/@s/b/package.json",
                pj({"name": "@s/b", "version": "1.0.0", "licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}),
            ),
            I.file(
                "app/node_modules/@s/b/node_modules/@t/d/package.json",
                pj({"name": "@t/d", "version": "0.1.0", "license": {"type": "ISC", "url": "https://example.org"}}),
            ),
            I.file("app/node_modules/nover/package.json", pj({"name": "nover"})),
            I.F("app/node_modules/.bin/a", kind="symlink", link="../a/cli.js"),
            I.file(
                "app/package-lock.json", pj({"lockfileVersion": 3, "packages": {"node_modules/z": {"version": "9"}}})
            ),
            I.file("usr/local/lib/node_modules/g/package.json", pj({"name": "g", "version": "3.0.0"})),
            I.file("usr/lib/node_modules/h/package.json", pj({"name": "h", "version": "4.0.0"})),
        ]
    )
    later = I.layer(
        [
            I.file("app/node_modules/a/package.json", a),  # rewritten, unchanged
            I.file("app/node_modules/@s/b/package.json", pj({"name": "@s/b", "version": "1.1.0"})),
            I.file("app/node_modules/e/package.json", pj({"name": "e", "version": "5.0.0"})),
            I.file("usr/local/lib/node_modules/.wh.g", b""),
        ]
    )
    r = scan_image(tmp_path, [base, later])
    assert r.warnings == []
    assert pkg_rows(r.packages) == [
        (
            "app/node_modules/@s/b/node_modules/@t/d/package.json",
            "@t/d",
            "0.1.0",
            "pkg:npm/%40t/d@0.1.0",
            False,
            ("ISC",),
            0,
        ),
        ("app/node_modules/@s/b/package.json", "@s/b", "1.1.0", "pkg:npm/%40s/b@1.1.0", False, (), 1),
        ("app/node_modules/a/node_modules/c/package.json", "c", "2.0.0", "pkg:npm/c@2.0.0", False, (), 0),
        ("app/node_modules/a/package.json", "a", "1.0.0", "pkg:npm/a@1.0.0", False, ("MIT",), 0),
        ("app/node_modules/e/package.json", "e", "5.0.0", "pkg:npm/e@5.0.0", False, (), 1),
        ("usr/lib/node_modules/h/package.json", "h", "4.0.0", "pkg:npm/h@4.0.0", False, (), 0),
    ]
    one = scan_image(tmp_path / "one", [base])
    b = [p for p in one.packages if p.name == "@s/b"]
    assert [(p.version, p.licenses) for p in b] == [("1.0.0", ["MIT", "Apache-2.0"])]
    assert "g" in {p.name for p in one.packages}


def test_malformed_package_json_is_a_warning_and_the_rest_still_scans(tmp_path: Path) -> None:
    r = scan_image(
        tmp_path,
        [
            I.layer(
                [
                    I.file("app/node_modules/ok/package.json", pj({"name": "ok", "version": "1.0.0"})),
                    I.file("app/node_modules/bad/package.json", b'{"name": "bad", "version": '),
                    I.file("app/node_modules/@s/list/package.json", b"[]"),
                ]
            )
        ],
    )
    assert [(p.name, p.version) for p in r.packages] == [("ok", "1.0.0")]
    assert sorted((w.code, w.path, w.message.split(" (")[0]) for w in r.warnings) == [
        (
            "parse-error",
            "app/node_modules/@s/list/package.json",
            "app/node_modules/@s/list/package.json: not a JSON object but list",
        ),
        ("parse-error", "app/node_modules/bad/package.json", "app/node_modules/bad/package.json: not valid JSON"),
    ]


# -- real lock files of every format ----------------------------------------------------------

COMMON = [
    ("@sindresorhus/is", "4.6.0", "pkg:npm/%40sindresorhus/is@4.6.0", False),
    ("@types/node", "20.11.30", "pkg:npm/%40types/node@20.11.30", True),
    ("debug", "4.3.7", "pkg:npm/debug@4.3.7", False),
    ("humanize-ms", "1.2.1", "pkg:npm/humanize-ms@1.2.1", True),
    ("is-number", "6.0.0", "pkg:npm/is-number@6.0.0", False),  # installed under the alias is-num
    ("is-number", "7.0.0", "pkg:npm/is-number@7.0.0", False),  # the workspace's dependency
    ("ms", "2.0.0", "pkg:npm/ms@2.0.0", False),
    ("ms", "2.1.3", "pkg:npm/ms@2.1.3", False),
    ("undici-types", "5.26.5", "pkg:npm/undici-types@5.26.5", True),
]
WORKSPACE = ("@fixture/util", "0.2.0", "pkg:npm/%40fixture/util@0.2.0", False)


@pytest.mark.parametrize(
    ("variant", "lock_file", "with_workspace", "licensed"),
    [
        ("npm-v1", "package-lock.json", False, False),
        ("npm-v2", "package-lock.json", True, True),
        ("npm-v3", "package-lock.json", True, True),
        ("yarn-v1", "yarn.lock", False, False),
        ("yarn-berry", "yarn.lock", False, False),
        ("pnpm-v5", "pnpm-lock.yaml", False, False),
        ("pnpm-v6", "pnpm-lock.yaml", False, False),
        ("pnpm-v9", "pnpm-lock.yaml", False, False),
    ],
)
def test_real_lock_files(variant: str, lock_file: str, with_workspace: bool, licensed: bool) -> None:
    r = scan_dir(DATA / "locks" / variant)
    assert r.warnings == []
    expected = sorted(
        (lock_file, name, version, purl, dev, ("MIT",) if licensed else (), 0)
        for name, version, purl, dev in [*COMMON, *([WORKSPACE] if with_workspace else [])]
    )
    assert pkg_rows(r.packages) == expected
    assert {p.ecosystem for p in r.packages} == {"npm"}


def test_malformed_lock_files_are_warnings_and_the_rest_still_scans(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    shutil.copytree(DATA / "locks" / "yarn-v1", tree / "good")
    (tree / "b").mkdir()
    (tree / "b" / "pnpm-lock.yaml").write_text("lockfileVersion: '9.0'\npackages:\n  a@1.0.0: {\n")
    (tree / "c").mkdir()
    (tree / "c" / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {')
    (tree / "d").mkdir()
    (tree / "d" / "yarn.lock").write_text('__metadata:\n  version: 8\n"x@npm:^1":\n  resolution: [\n')
    # packages ship lock files of their own, which their installer ignores: so does the scanner
    shrink = tree / "good" / "node_modules" / "dep" / "npm-shrinkwrap.json"
    shrink.parent.mkdir(parents=True)
    shrink.write_text(json.dumps({"lockfileVersion": 3, "packages": {"node_modules/hidden": {"version": "1.0.0"}}}))
    (shrink.parent / "package.json").write_text(json.dumps({"name": "dep", "version": "1.0.0"}))
    r = scan_dir(tree)
    assert sorted((w.code, w.path) for w in r.warnings) == [
        ("parse-error", "b/pnpm-lock.yaml"),
        ("parse-error", "c/package-lock.json"),
        ("parse-error", "d/yarn.lock"),
    ]
    messages = sorted(w.message for w in r.warnings)
    assert messages[0].startswith("b/pnpm-lock.yaml: not valid YAML (")
    assert messages[1].startswith("c/package-lock.json: not valid JSON (")
    assert messages[2].startswith("d/yarn.lock: not valid YAML (")
    found = sorted((p.found_in, p.name, p.version, p.dev) for p in r.packages)
    assert found == sorted(
        [("good/yarn.lock", n, v, dev) for n, v, _, dev in COMMON]
        + [("good/node_modules/dep/package.json", "dep", "1.0.0", False)]
    )
