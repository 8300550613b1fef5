"""Node.js parsers and analyzers on hand-written inputs: every format's edge cases, one at a time.

The hand-written lock files follow the formats as npm, Yarn and pnpm document
them (and as the real lock files under tests/data/npm/locks show them); whole
scans over those real files are in tests/functional/test_lang_npm.py.
"""

from __future__ import annotations

import json

import pytest

from shared.domain.models import Package
from shared.scanning.analyzers.base import FileInput
from shared.scanning.analyzers.npm import (
    NpmInstalledAnalyzer,
    NpmLockAnalyzer,
    PnpmLockAnalyzer,
    YarnLockAnalyzer,
    is_package_root_manifest,
)
from shared.scanning.parsers.npm import (
    development_only,
    licenses_of,
    parse_manifest,
    parse_package_json,
    parse_package_lock,
)
from shared.scanning.parsers.pnpm import parse_pnpm_lock
from shared.scanning.parsers.yarn import mark_development, parse_yarn_lock


def rows(packages: list[Package]) -> list[tuple[str, str, bool]]:
    return sorted((p.name, p.version, p.dev) for p in packages)


def js(doc: object) -> bytes:
    return json.dumps(doc).encode()


# -- which package.json files are packages --------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "node_modules/ms/package.json",
        "app/node_modules/ms/package.json",
        "app/node_modules/@types/node/package.json",
        "app/node_modules/debug/node_modules/ms/package.json",
        "app/node_modules/@a/b/node_modules/@c/d/package.json",
        "usr/local/lib/node_modules/npm/package.json",
        "usr/lib/node_modules/npm/node_modules/@npmcli/arborist/package.json",
        "app/node_modules/.pnpm/debug@4.3.7/node_modules/debug/package.json",
    ],
)
def test_package_root_manifests_are_wanted(path: str) -> None:
    assert is_package_root_manifest(path)
    assert NpmInstalledAnalyzer().required(path)


@pytest.mark.parametrize(
    "path",
    [
        "app/package.json",  # the project, not an installed package
        "node_modules/package.json",
        "app/node_modules/@types/package.json",  # a scope folder
        "app/node_modules/glob/dist/esm/package.json",
        "app/node_modules/foo/lib/package.json",
        "app/node_modules/@s/foo/lib/package.json",
        "app/node_modules/@/foo/package.json",
        "app/my_node_modules/foo/package.json",
        "app/node_modules/.cache/x/package.json",
    ],
)
def test_other_package_json_files_are_not(path: str) -> None:
    assert not is_package_root_manifest(path)


def test_analyzer_declarations() -> None:
    assert NpmInstalledAnalyzer.suffixes == ("/package.json",)
    assert NpmInstalledAnalyzer.scopes == frozenset({"image", "dir"})
    for cls in (NpmLockAnalyzer, YarnLockAnalyzer, PnpmLockAnalyzer):
        assert cls.scopes == frozenset({"dir"})
    lock = NpmLockAnalyzer()
    assert lock.required("app/package-lock.json")
    assert not lock.required("app/node_modules/foo/npm-shrinkwrap.json")
    assert not lock.required("node_modules/.package-lock.json")
    yarn = YarnLockAnalyzer()
    assert yarn.required("app/package.json") and yarn.required("app/yarn.lock")
    assert not yarn.required("app/node_modules/foo/package.json")
    assert not PnpmLockAnalyzer().required("app/node_modules/foo/pnpm-lock.yaml")


# -- package.json --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"license": "MIT"}, ["MIT"]),
        ({"license": "(MIT OR Apache-2.0)"}, ["(MIT OR Apache-2.0)"]),
        ({"license": {"type": "BSD-3-Clause", "url": "https://example.org"}}, ["BSD-3-Clause"]),
        ({"licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}, ["MIT", "Apache-2.0"]),
        ({"licenses": ["ISC"]}, ["ISC"]),
        ({"licenses": {"type": "GPL-2.0"}}, ["GPL-2.0"]),
        ({"license": "MIT", "licenses": [{"type": "MIT"}]}, ["MIT"]),
        ({"license": " "}, []),
        ({"license": 3}, []),
        ({}, []),
    ],
)
def test_licence_forms(doc: dict[str, object], expected: list[str]) -> None:
    assert licenses_of(doc) == expected


def test_package_json_fields() -> None:
    pkgs, problems = parse_package_json(
        js({"name": "@s/x", "version": "1.2.3", "licenses": [{"type": "MIT"}]}), "n/@s/x/package.json"
    )
    assert problems == []
    assert [(p.type, p.name, p.version, p.licenses, p.found_in, p.dev, p.purl) for p in pkgs] == [
        ("npm", "@s/x", "1.2.3", ["MIT"], "n/@s/x/package.json", False, "")
    ]


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "module"},
        {"name": "x"},
        {"version": "1.0.0"},
        {"name": "", "version": "1"},
        {"name": 1, "version": "1"},
    ],
)
def test_package_json_without_name_or_version_is_silently_not_a_package(doc: dict[str, object]) -> None:
    assert parse_package_json(js(doc), "p") == ([], [])


def test_package_json_with_byte_order_mark() -> None:
    pkgs, problems = parse_package_json(b"\xef\xbb\xbf" + js({"name": "a", "version": "1.0.0"}), "p")
    assert (rows(pkgs), problems) == ([("a", "1.0.0", False)], [])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"name": "a", "version": ', "not valid JSON"),
        (b"\xff\xfe\x00garbage\x80", "not valid"),
        (b"[1, 2]", "not a JSON object but list"),
        (b"", "not valid JSON"),
    ],
)
def test_package_json_malformed(data: bytes, problem: str) -> None:
    pkgs, problems = parse_package_json(data, "p")
    assert pkgs == []
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_installed_analyzer_warning_names_the_file() -> None:
    r = NpmInstalledAnalyzer().analyze(FileInput("app/node_modules/bad/package.json", b"{oops"))
    assert r.packages == []
    assert [(w.code, w.path) for w in r.warnings] == [("parse-error", "app/node_modules/bad/package.json")]
    assert r.warnings[0].message.startswith("app/node_modules/bad/package.json: not valid JSON")


# -- package-lock.json v1 ----------------------------------------------------------------


def test_package_lock_v1_tree_aliases_and_local_packages() -> None:
    lock = {
        "lockfileVersion": 1,
        "requires": True,
        "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0", "dev": True}}},
            "b": {"version": "1.0.0", "dev": True, "optional": True},
            "alias": {"version": "npm:@s/real@3.1.0"},
            "local": {"version": "file:packages/local", "requires": {"a": "1.0.0"}},
            "linked": {"version": "link:../linked"},
            "@s/c": {"version": "4.0.0", "bundled": True},
            "shared": {
                "version": "5.0.0",
                "dev": True,
                "dependencies": {"x": {"version": "1.0.0", "dependencies": {"shared": {"version": "5.0.0"}}}},
            },
            "broken": "1.0.0",
        },
    }
    pkgs, problems = parse_package_lock(js(lock), "package-lock.json")
    assert rows(pkgs) == [
        ("@s/c", "4.0.0", False),
        ("@s/real", "3.1.0", False),
        ("a", "1.0.0", False),
        ("b", "1.0.0", True),
        ("b", "2.0.0", True),
        ("shared", "5.0.0", False),  # also installed for production, nested under x
        ("x", "1.0.0", False),
    ]
    assert problems == ["dependency 'broken' is not an object"]
    assert {p.found_in for p in pkgs} == {"package-lock.json"}


def nested_v1(depth: int) -> bytes:
    head = "".join(f'{{"p{i}": {{"version": "1.0.0", "dependencies": ' for i in range(depth))
    return ('{"lockfileVersion": 1, "dependencies": ' + head + "{}" + "}}" * depth + "}").encode()


def test_package_lock_v1_deep_nesting() -> None:
    pkgs, problems = parse_package_lock(nested_v1(400), "l")
    assert problems == [] and len(pkgs) == 400
    # deeper than the JSON decoder goes: a warning, not a crash
    pkgs, problems = parse_package_lock(nested_v1(100_000), "l")
    assert pkgs == [] and problems == ["not valid JSON (nested too deeply)"]


# -- package-lock.json v2 / v3 -----------------------------------------------------------


def test_package_lock_v3_locations_flags_workspaces_and_links() -> None:
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "root", "version": "1.0.0", "workspaces": ["packages/*"]},
            "node_modules/a": {"version": "1.0.0", "license": "MIT"},
            "node_modules/a/node_modules/@s/b": {"version": "2.0.0", "dev": True, "license": {"type": "ISC"}},
            "node_modules/c": {"version": "3.0.0", "devOptional": True},
            "node_modules/d": {"version": "4.0.0", "optional": True},
            "node_modules/e": {"version": "5.0.0", "peer": True},
            "node_modules/f": {"version": "6.0.0", "dev": True, "optional": True},
            "node_modules/alias": {"name": "real", "version": "7.0.0"},
            "node_modules/ws-named": {"resolved": "packages/named", "link": True},
            "node_modules/ws-unnamed": {"resolved": "packages/unnamed", "link": True},
            "node_modules/ws-private": {"resolved": "packages/private", "link": True},
            "packages/named": {"name": "ws-named", "version": "0.1.0", "license": "MIT"},
            "packages/unnamed": {"version": "0.2.0"},
            "packages/private": {"name": "ws-private"},
            "packages/named/node_modules/a": {"version": "1.1.0", "dev": True},
            "node_modules/no-version": {"resolved": "https://example.org/x.tgz"},
            "node_modules/g": {"version": "1.0.0", "dev": True},
            "node_modules/x/node_modules/g": {"version": "1.0.0"},
            "node_modules/bad": [],
        },
        # v2 keeps a v1 copy, which must not be read as well
        "dependencies": {"a": {"version": "1.0.0"}, "zzz": {"version": "9.9.9"}},
    }
    pkgs, problems = parse_package_lock(js(lock), "package-lock.json")
    assert rows(pkgs) == [
        ("@s/b", "2.0.0", True),
        ("a", "1.0.0", False),
        ("a", "1.1.0", True),
        ("c", "3.0.0", False),
        ("d", "4.0.0", False),
        ("e", "5.0.0", False),
        ("f", "6.0.0", True),
        ("g", "1.0.0", False),
        ("real", "7.0.0", False),
        ("ws-named", "0.1.0", False),
        ("ws-unnamed", "0.2.0", False),
    ]
    assert problems == ["package entry 'node_modules/bad' is not an object"]
    lic = {(p.name, p.version): p.licenses for p in pkgs}
    assert lic[("a", "1.0.0")] == ["MIT"] and lic[("@s/b", "2.0.0")] == ["ISC"] and lic[("c", "3.0.0")] == []


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"lockfileVersion": 3, "packages": []}, "'packages' is not an object"),
        ({"lockfileVersion": 1, "dependencies": "x"}, "'dependencies' is not an object"),
    ],
)
def test_package_lock_wrong_shapes(doc: dict[str, object], problem: str) -> None:
    assert parse_package_lock(js(doc), "l") == ([], [problem])


def test_package_lock_with_only_the_project() -> None:
    assert parse_package_lock(js({"lockfileVersion": 3, "packages": {"": {"name": "p"}}}), "l") == ([], [])
    assert parse_package_lock(js({"name": "p"}), "l") == ([], [])


# -- yarn.lock v1 ---------------------------------------------------------------------------

YARN_V1 = b"""# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@babel/core@^7.0.0", "@babel/core@^7.1.0":
  version "7.2.0"
  resolved "https://registry.yarnpkg.com/@babel/core/-/core-7.2.0.tgz#abc"
  integrity sha512-xyz
  dependencies:
    "@babel/types" "^7.2.0"
    debug "^4.1.0"
  optionalDependencies:
    fsevents "~2.3.2"

"@babel/types@^7.2.0":
  version "7.2.2"

debug@^4.1.0:
  version "4.3.4"
  dependencies:
    ms "2.1.2"

fsevents@~2.3.2:
  version "2.3.3"

ms@2.1.2:
  version "2.1.2"

"string-width-cjs@npm:string-width@^4.2.0", string-width@^4.1.0:
  version "4.2.3"

"left-pad@npm:^1.3.0":
  version "1.3.0"

local@file:./local:
  version "0.0.1"

linked@link:../linked:
  version "0.0.0"

"forked@https://github.com/someone/forked.git#abc123":
  version "2.0.0-fork"
  resolved "https://github.com/someone/forked.git#abc123"

dev-tool@^1.0.0:
  version "1.0.0"
  dependencies:
    ms "2.1.2"
    helper "^1.0.0"

helper@^1.0.0:
  version 1.1.0
"""


def test_yarn_v1_entries() -> None:
    lock = parse_yarn_lock(YARN_V1, "yarn.lock")
    assert not lock.berry and lock.problems == []
    assert rows(lock.listed()) == [
        ("@babel/core", "7.2.0", False),
        ("@babel/types", "7.2.2", False),
        ("debug", "4.3.4", False),
        ("dev-tool", "1.0.0", False),
        ("forked", "2.0.0-fork", False),
        ("fsevents", "2.3.3", False),
        ("helper", "1.1.0", False),
        ("left-pad", "1.3.0", False),
        ("ms", "2.1.2", False),
        ("string-width", "4.2.3", False),
    ]


def test_yarn_v1_development_only_from_the_manifest() -> None:
    lock = parse_yarn_lock(YARN_V1, "yarn.lock")
    manifest = parse_manifest(
        js({"dependencies": {"@babel/core": "^7.1.0"}, "devDependencies": {"dev-tool": "^1.0.0"}})
    )
    assert manifest is not None
    mark_development(lock, manifest)
    dev = sorted(p.name for p in lock.listed() if p.dev)
    # ms is reached from production too (via debug); unreachable entries stay production
    assert dev == ["dev-tool", "helper"]


def test_yarn_v1_crlf_and_byte_order_mark() -> None:
    data = b"\xef\xbb\xbf" + YARN_V1.replace(b"\n", b"\r\n")
    assert rows(parse_yarn_lock(data, "y").listed()) == rows(parse_yarn_lock(YARN_V1, "y").listed())


def test_yarn_v1_malformed_lines_are_reported_and_the_rest_is_read() -> None:
    data = b"""  version "1.0.0"
a@^1.0.0:
  version "1.0.0"
this is not a header
b@^2.0.0:
  dependencies:
    a "^1.0.0"
c@^3.0.0:
      stray "x"
  version "3.0.0"
<<<<<<< HEAD
d@^4.0.0:
  version "4.0.0"
"""
    lock = parse_yarn_lock(data, "yarn.lock")
    assert rows(lock.listed()) == [("a", "1.0.0", False), ("c", "3.0.0", False), ("d", "4.0.0", False)]
    assert lock.problems == [
        "line 1: field outside any entry",
        "line 4: expected an entry header ending in ':'",
        "line 9: unexpected indentation",
        "line 11: unresolved merge conflict marker",
        "entry 'b@^2.0.0' has no version",
    ]


# -- yarn.lock Berry --------------------------------------------------------------------

YARN_BERRY = b"""# This file is generated by running "yarn install" inside your project.
# Manual changes might be lost - proceed with caution!

__metadata:
  version: 8
  cacheKey: 10c0

"app@workspace:.":
  version: 0.0.0-use.local
  resolution: "app@workspace:."
  dependencies:
    lib: "workspace:*"
    debug: "npm:^4.3.4"
    jest: "npm:^29.0.0"
    resolve: "patch:resolve@npm%3A^1.22.1#~builtin<compat/resolve>"
  languageName: unknown
  linkType: soft

"lib@workspace:*, lib@workspace:packages/lib":
  version: 0.0.0-use.local
  resolution: "lib@workspace:packages/lib"
  dependencies:
    ms: "npm:2.1.3"
  languageName: unknown
  linkType: soft

"debug@npm:^4.3.4":
  version: 4.3.4
  resolution: "debug@npm:4.3.4"
  dependencies:
    ms: "npm:2.1.2"
  languageName: node
  linkType: hard

"jest@npm:^29.0.0":
  version: 29.7.0
  resolution: "jest@npm:29.7.0"
  dependencies:
    ms: "npm:2.1.3"
    jest-cli: "npm:29.7.0"
  languageName: node
  linkType: hard

"jest-cli@npm:29.7.0":
  version: 29.7.0
  resolution: "jest-cli@npm:29.7.0::__archiveUrl=https%3A%2F%2Fmirror.example%2Fjest-cli-29.7.0.tgz"
  languageName: node
  linkType: hard

"ms@npm:2.1.2":
  version: 2.1.2
  resolution: "ms@npm:2.1.2"
  languageName: node
  linkType: hard

"ms@npm:2.1.3":
  version: 2.1.3
  resolution: "ms@npm:2.1.3"
  languageName: node
  linkType: hard

"resolve@npm:^1.22.1":
  version: 1.22.8
  resolution: "resolve@npm:1.22.8"
  languageName: node
  linkType: hard

"resolve@patch:resolve@npm%3A^1.22.1#~builtin<compat/resolve>":
  version: 1.22.8
  resolution: "resolve@patch:resolve@npm%3A1.22.8#~builtin<compat/resolve>::version=1.22.8&hash=c3c19d"
  languageName: node
  linkType: hard

"sw-cjs@npm:string-width@^4.2.0":
  version: 4.2.3
  resolution: "string-width@npm:4.2.3"
  languageName: node
  linkType: hard

"forked@https://github.com/someone/forked.git#commit=abc":
  version: 2.0.0-fork
  resolution: "forked@https://github.com/someone/forked.git#commit=abc"
  languageName: node
  linkType: hard

"linked@link:../linked::locator=app%40workspace%3A.":
  version: 0.0.0-use.local
  resolution: "linked@link:../linked::locator=app%40workspace%3A."
  languageName: node
  linkType: soft

"portal@portal:../portal::locator=app%40workspace%3A.":
  version: 0.0.0-use.local
  resolution: "portal@portal:../portal::locator=app%40workspace%3A."
  languageName: node
  linkType: soft
"""


def test_yarn_berry_entries_and_skipped_protocols() -> None:
    lock = parse_yarn_lock(YARN_BERRY, "yarn.lock")
    assert lock.berry and lock.problems == []
    assert rows(lock.listed()) == [
        ("debug", "4.3.4", False),
        ("forked", "2.0.0-fork", False),
        ("jest", "29.7.0", False),
        ("jest-cli", "29.7.0", False),
        ("ms", "2.1.2", False),
        ("ms", "2.1.3", False),
        ("resolve", "1.22.8", False),
        ("string-width", "4.2.3", False),
    ]


def test_yarn_berry_development_only_walks_workspaces() -> None:
    lock = parse_yarn_lock(YARN_BERRY, "yarn.lock")
    manifest = parse_manifest(
        js(
            {
                "dependencies": {"lib": "workspace:*", "debug": "^4.3.4"},  # no protocol: resolved as npm:
                "devDependencies": {"jest": "^29.0.0"},
            }
        )
    )
    assert manifest is not None
    mark_development(lock, manifest)
    # ms 2.1.3 is needed by the workspace lib too; jest-cli only by jest
    assert sorted(p.name for p in lock.listed() if p.dev) == ["jest", "jest-cli"]


def test_yarn_berry_malformed() -> None:
    lock = parse_yarn_lock(b'__metadata:\n  version: 8\n"a@npm:1":\n  - [\n', "yarn.lock")
    assert lock.listed() == []
    assert len(lock.problems) == 1 and lock.problems[0].startswith("not valid YAML (")
    lock = parse_yarn_lock(
        b'__metadata:\n  version: 8\n"a@npm:^1": 3\n"b@npm:^1":\n  version: 1.0.0\n'
        b'"c@npm:^1":\n  version: 1.0.0\n  resolution: "c@npm:1.0.0"\n',
        "yarn.lock",
    )
    assert rows(lock.listed()) == [("c", "1.0.0", False)]
    assert lock.problems == ["entry 'a@npm:^1' is not a mapping", "entry 'b@npm:^1' has no resolution"]


# -- the yarn analyzer pairs a lock with its manifest ---------------------------------


def test_yarn_analyzer_marks_development_in_either_order() -> None:
    manifest = js({"dependencies": {"debug": "^4.3.4"}, "devDependencies": {"jest": "^29.0.0"}})
    expected = [
        ("debug", "4.3.4", False),
        ("forked", "2.0.0-fork", False),
        ("jest", "29.7.0", True),
        ("jest-cli", "29.7.0", True),
        ("ms", "2.1.2", False),
        ("ms", "2.1.3", False),  # the workspace lib needs it, and its manifest is not known: production
        ("resolve", "1.22.8", False),
        ("string-width", "4.2.3", False),
    ]
    a = YarnLockAnalyzer()
    assert a.analyze(FileInput("src/package.json", manifest)).packages == []
    assert rows(a.analyze(FileInput("src/yarn.lock", YARN_BERRY)).packages) == expected

    b = YarnLockAnalyzer()
    late = b.analyze(FileInput("src/yarn.lock", YARN_BERRY))
    assert all(not p.dev for p in late.packages)
    b.analyze(FileInput("other/package.json", manifest))
    assert all(not p.dev for p in late.packages)
    b.analyze(FileInput("src/package.json", manifest))
    assert rows(late.packages) == expected


def test_yarn_analyzer_without_or_with_a_broken_manifest() -> None:
    a = YarnLockAnalyzer()
    r = a.analyze(FileInput("yarn.lock", YARN_V1))
    assert r.warnings == [] and not any(p.dev for p in r.packages)
    a.analyze(FileInput("x/package.json", b"{not json"))
    r = a.analyze(FileInput("x/yarn.lock", YARN_V1))
    assert not any(p.dev for p in r.packages)
    assert [(w.code, w.path, w.message) for w in r.warnings] == [
        (
            "parse-error",
            "x/yarn.lock",
            "x/yarn.lock: x/package.json is unreadable; development-only packages are not marked",
        )
    ]


def test_manifest_forms() -> None:
    m = parse_manifest(
        js(
            {
                "dependencies": {"a": "^1", "b": 2},
                "optionalDependencies": {"c": "^3"},
                "devDependencies": {"a": "^1", "d": "^4"},
                "workspaces": {"packages": ["packages/*", 5], "nohoist": ["**/x"]},
            }
        )
    )
    assert m is not None
    assert (m.prod, m.dev, m.workspaces) == ({"a": "^1", "c": "^3"}, {"d": "^4"}, ["packages/*"])
    assert parse_manifest(js({"workspaces": ["./apps/*/"]})).workspaces == ["./apps/*/"]  # type: ignore[union-attr]
    assert parse_manifest(b"[]") is None and parse_manifest(b"{") is None


def test_yarn_berry_workspace_manifest_replaces_the_merged_entry() -> None:
    lock = parse_yarn_lock(YARN_BERRY, "yarn.lock")
    assert lock.workspaces == {".": 0, "packages/lib": 1}
    root = parse_manifest(js({"dependencies": {"lib": "workspace:*"}, "devDependencies": {"jest": "^29.0.0"}}))
    lib = parse_manifest(js({"devDependencies": {"ms": "2.1.3"}}))
    assert root is not None and lib is not None
    mark_development(lock, root, {"packages/lib": lib})
    assert sorted((p.name, p.version) for p in lock.listed() if p.dev) == [
        ("jest", "29.7.0"),
        ("jest-cli", "29.7.0"),
        ("ms", "2.1.3"),
    ]


def test_yarn_analyzer_reads_workspace_manifests_arriving_after_the_lock() -> None:
    a = YarnLockAnalyzer()
    a.analyze(
        FileInput(
            "repo/package.json",
            js(
                {
                    "workspaces": ["packages/*"],
                    "dependencies": {"@babel/core": "^7.1.0"},
                    "devDependencies": {"dev-tool": "^1.0.0"},
                }
            ),
        )
    )
    r = a.analyze(FileInput("repo/yarn.lock", YARN_V1))
    assert sorted(p.name for p in r.packages if p.dev) == ["dev-tool", "helper"]
    # not a workspace folder, or not below the lock: no effect
    a.analyze(FileInput("repo/tools/x/package.json", js({"dependencies": {"helper": "^1.0.0"}})))
    a.analyze(FileInput("elsewhere/packages/y/package.json", js({"dependencies": {"helper": "^1.0.0"}})))
    assert sorted(p.name for p in r.packages if p.dev) == ["dev-tool", "helper"]
    # a workspace that needs helper in production
    a.analyze(FileInput("repo/packages/a/package.json", js({"dependencies": {"helper": "^1.0.0"}})))
    assert sorted(p.name for p in r.packages if p.dev) == ["dev-tool"]


# -- pnpm-lock.yaml ---------------------------------------------------------------------------

PNPM_V5 = b"""lockfileVersion: 5.4

specifiers:
  react-dom: ^17.0.2
  '@types/react': ^17.0.0

dependencies:
  react-dom: 17.0.2_react@17.0.2

devDependencies:
  '@types/react': 17.0.50

packages:

  /react-dom/17.0.2_react@17.0.2:
    resolution: {integrity: sha512-x}
    peerDependencies:
      react: 17.0.2
    dependencies:
      react: 17.0.2
    dev: false

  /react/17.0.2:
    resolution: {integrity: sha512-y}
    dev: false

  /@types/react/17.0.50:
    resolution: {integrity: sha512-z}
    dependencies:
      csstype: 3.1.1
    dev: true

  /csstype/3.1.1:
    resolution: {integrity: sha512-w}
    dev: true

  /both/1.0.0:
    resolution: {integrity: sha512-v}

  /@scope/peers/2.0.0_@types+react@17.0.50+react@17.0.2:
    resolution: {integrity: sha512-u}
    dev: false

  github.com/someone/forked/abc123:
    resolution: {tarball: https://codeload.github.com/someone/forked/tar.gz/abc123}
    name: forked
    version: 2.0.0
    dev: false

  file:local:
    resolution: {directory: local, type: directory}
    name: local
    version: 0.0.1
    dev: false

  file:vendor/tarball.tgz:
    resolution: {integrity: sha512-s, tarball: file:vendor/tarball.tgz}
    name: tarball
    version: 0.0.2
    dev: false

  /bad:
    resolution: {integrity: sha512-t}
"""


def test_pnpm_v5() -> None:
    pkgs, problems = parse_pnpm_lock(PNPM_V5, "pnpm-lock.yaml")
    assert problems == []
    assert rows(pkgs) == [
        ("@scope/peers", "2.0.0", False),
        ("@types/react", "17.0.50", True),
        ("both", "1.0.0", False),
        ("csstype", "3.1.1", True),
        ("forked", "2.0.0", False),
        ("react", "17.0.2", False),
        ("react-dom", "17.0.2", False),
    ]


PNPM_V6 = b"""lockfileVersion: '6.0'

importers:
  .:
    dependencies:
      debug:
        specifier: ^4.3.4
        version: 4.3.4(supports-color@8.1.1)
    devDependencies:
      '@scope/tool':
        specifier: ^1.0.0
        version: 1.0.0

packages:

  /debug@4.3.4(supports-color@8.1.1):
    resolution: {integrity: sha512-a}
    dependencies:
      ms: 2.1.2
      supports-color: 8.1.1
    dev: false

  /debug@4.3.4:
    resolution: {integrity: sha512-a}
    dev: true

  /ms@2.1.2:
    resolution: {integrity: sha512-b}
    dev: false

  /supports-color@8.1.1:
    resolution: {integrity: sha512-c}

  /@scope/tool@1.0.0:
    resolution: {integrity: sha512-d}
    dependencies:
      debug: 4.3.4
    dev: true

  registry.example.org/private/1.0.0:
    resolution: {tarball: https://registry.example.org/private/-/private-1.0.0.tgz}
    name: private
    version: 1.0.0
    dev: false
"""


def test_pnpm_v6_peer_variants_are_one_package() -> None:
    pkgs, problems = parse_pnpm_lock(PNPM_V6, "pnpm-lock.yaml")
    assert problems == []
    assert rows(pkgs) == [
        ("@scope/tool", "1.0.0", True),
        ("debug", "4.3.4", False),  # one variant is production
        ("ms", "2.1.2", False),
        ("private", "1.0.0", False),
        ("supports-color", "8.1.1", False),
    ]


PNPM_V9 = b"""lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .:
    dependencies:
      debug:
        specifier: ^4.3.4
        version: 4.3.4(supports-color@8.1.1)
      lib:
        specifier: workspace:*
        version: link:packages/lib
      sw-cjs:
        specifier: npm:string-width@^4.2.0
        version: string-width@4.2.3
      '@scope/aliased':
        specifier: npm:@other/real@^1.0.0
        version: '@other/real@1.0.0'
    optionalDependencies:
      fsevents:
        specifier: ^2.3.0
        version: 2.3.3
    devDependencies:
      '@scope/tool':
        specifier: ^1.0.0
        version: 1.0.0
      local-tool:
        specifier: file:tools/local
        version: file:tools/local

  packages/lib:
    dependencies:
      ms:
        specifier: 2.1.3
        version: 2.1.3

packages:

  '@other/real@1.0.0':
    resolution: {integrity: sha512-a}

  '@scope/tool@1.0.0':
    resolution: {integrity: sha512-b}

  debug@4.3.4:
    resolution: {integrity: sha512-c}
    peerDependencies:
      supports-color: '*'

  forked@https://codeload.github.com/someone/forked/tar.gz/abc:
    resolution: {tarball: https://codeload.github.com/someone/forked/tar.gz/abc}
    version: 2.0.0

  fsevents@2.3.3:
    resolution: {integrity: sha512-d}
    os: [darwin]

  local-tool@file:tools/local:
    resolution: {directory: tools/local, type: directory}

  local-tarball@file:vendor/local-tarball-1.0.0.tgz:
    resolution: {integrity: sha512-j, tarball: file:vendor/local-tarball-1.0.0.tgz}
    version: 1.0.0

  ms@2.1.2:
    resolution: {integrity: sha512-e}

  ms@2.1.3:
    resolution: {integrity: sha512-f}

  string-width@4.2.3:
    resolution: {integrity: sha512-g}

  supports-color@8.1.1:
    resolution: {integrity: sha512-h}

  tool-only@1.0.0:
    resolution: {integrity: sha512-i}

snapshots:

  '@other/real@1.0.0': {}

  '@scope/tool@1.0.0':
    dependencies:
      debug: 4.3.4
      forked: https://codeload.github.com/someone/forked/tar.gz/abc
      ms: 2.1.3
      tool-only: 1.0.0

  debug@4.3.4:
    dependencies:
      ms: 2.1.2

  debug@4.3.4(supports-color@8.1.1):
    dependencies:
      ms: 2.1.2
    optionalDependencies:
      supports-color: 8.1.1

  forked@https://codeload.github.com/someone/forked/tar.gz/abc: {}

  fsevents@2.3.3:
    optional: true

  local-tool@file:tools/local: {}

  ms@2.1.2: {}

  ms@2.1.3: {}

  string-width@4.2.3: {}

  supports-color@8.1.1: {}

  tool-only@1.0.0: {}
"""


def test_pnpm_v9_development_from_importers() -> None:
    pkgs, problems = parse_pnpm_lock(PNPM_V9, "pnpm-lock.yaml")
    assert problems == []
    assert rows(pkgs) == [
        ("@other/real", "1.0.0", False),
        ("@scope/tool", "1.0.0", True),
        ("debug", "4.3.4", False),  # production through its peer variant
        ("forked", "2.0.0", True),
        ("fsevents", "2.3.3", False),
        ("ms", "2.1.2", False),
        ("ms", "2.1.3", False),  # the workspace lib needs it
        ("string-width", "4.2.3", False),
        ("supports-color", "8.1.1", False),
        ("tool-only", "1.0.0", True),
    ]


def test_pnpm_lock_with_a_leading_config_document() -> None:
    env = b"""---
lockfileVersion: '9.0'

importers:
  .:
    configDependencies: {}

packageManagerDependencies:
  pnpm:
    specifier: 10.0.0
    version: 10.0.0

---
"""
    assert rows(parse_pnpm_lock(env + PNPM_V9, "p")[0]) == rows(parse_pnpm_lock(PNPM_V9, "p")[0])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"lockfileVersion: '9.0'\npackages: [\n", "not valid YAML ("),
        (b"- a\n- b\n", "not a YAML mapping"),
        (b"packages: {}\n", "unknown lockfileVersion None"),
        (b"lockfileVersion: 'x'\n", "unknown lockfileVersion 'x'"),
        (b"lockfileVersion: '9.0'\npackages: [a]\n", "'packages' is not a mapping"),
    ],
)
def test_pnpm_malformed(data: bytes, problem: str) -> None:
    pkgs, problems = parse_pnpm_lock(data, "pnpm-lock.yaml")
    assert pkgs == []
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_pnpm_bad_entries_are_reported_and_the_rest_is_read() -> None:
    data = b"lockfileVersion: '9.0'\npackages:\n  a@1.0.0: 3\n  b@2.0.0:\n    resolution: {integrity: x}\n"
    pkgs, problems = parse_pnpm_lock(data, "p")
    assert rows(pkgs) == [("b", "2.0.0", False)]
    assert problems == ["package 'a@1.0.0' is not a mapping"]
    assert parse_pnpm_lock(b"", "p") == ([], [])


# -- the reachability rule ---------------------------------------------------------------------


def test_development_only() -> None:
    edges = {"app": ["a"], "a": ["b"], "b": ["a"], "t": ["b", "c"], "c": [], "orphan": []}
    assert development_only(edges, edges, ["app"], ["t"]) == {"t", "c"}
    assert development_only(edges, edges, [], []) == set()
    assert development_only(["c"], edges, ["missing"], ["t"]) == {"c"}
