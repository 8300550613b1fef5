""".NET manifests: deps.json, packages.lock.json and packages.config, on hand-written fixtures and broken input."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.domain.models import Package
from shared.scanning.analyzers.base import FileInput
from shared.scanning.analyzers.dotnet import DotnetDepsAnalyzer, NugetConfigAnalyzer, NugetLockAnalyzer
from shared.scanning.parsers import ParseError
from shared.scanning.parsers.dotnet import parse_deps_json, parse_packages_config, parse_packages_lock

DATA = Path(__file__).resolve().parent.parent.parent / "data" / "dotnet"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<packages><package id="&lol9;" version="1.0.0" /></packages>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE packages [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<packages><package id="&secret;" version="1.0.0" /></packages>
"""


def rows(pkgs: list[Package]) -> list[tuple[str, str, bool]]:
    return sorted((p.name, p.version, p.dev) for p in pkgs)


def test_deps_json_runtime_packages() -> None:
    parsed = parse_deps_json((DATA / "Shop.Api.deps.json").read_bytes(), "app/Shop.Api.deps.json")
    assert rows(parsed.packages) == [
        ("Humanizer.Core.fr", "2.14.1", False),  # resources only: satellite assemblies are loaded
        ("Microsoft.Data.SqlClient", "5.1.2", False),
        ("Microsoft.Data.SqlClient.SNI.runtime", "5.1.1", False),  # native assets under runtimeTargets
        ("Newtonsoft.Json", "13.0.3", False),
        ("Polly", "7.2.4", False),  # not in the runtime target: kept
        ("Serilog", "3.1.1", False),
    ]
    assert {(p.type, p.found_in, p.purl) for p in parsed.packages} == {("nuget", "app/Shop.Api.deps.json", "")}
    assert parsed.notes == []


def test_deps_json_self_contained_runtime_pack() -> None:
    parsed = parse_deps_json((DATA / "Worker.deps.json").read_bytes(), "Worker.deps.json")
    assert rows(parsed.packages) == [
        ("Dapper", "2.1.24", False),
        ("Microsoft.NETCore.App.Runtime.linux-x64", "8.0.1", False),
    ]


def test_deps_json_without_a_usable_target_keeps_every_package() -> None:
    doc = b"""{"runtimeTarget": {"name": "missing"}, "targets": {"other": {"A/1.0.0": {}}},
              "libraries": {"A/1.0.0": {"type": "package"}, "B/2.0.0": {"type": "Package"},
                            "App/1.0.0": {"type": "project"}, "Ref/1.0.0": {"type": "reference"},
                            "bad-key": {"type": "package"}, "C/3.0.0": "not an object"}}"""
    parsed = parse_deps_json(doc, "x.deps.json")
    assert rows(parsed.packages) == [("A", "1.0.0", False), ("B", "2.0.0", False)]
    assert parsed.notes == [
        "library 'bad-key' is not '<id>/<version>'; skipped",
        "library 'C/3.0.0' is not an object; skipped",
    ]


@pytest.mark.parametrize(
    "doc",
    [b"{", b"[1, 2]", b'{"libraries": []}', b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000],
    ids=["truncated", "array", "libraries-array", "not-utf8", "deep"],
)
def test_deps_json_malformed(doc: bytes) -> None:
    with pytest.raises(ParseError):
        parse_deps_json(doc, "x.deps.json")


def test_packages_lock() -> None:
    parsed = parse_packages_lock((DATA / "packages.lock.json").read_bytes(), "src/Shop/packages.lock.json")
    assert rows(parsed.packages) == [
        ("Newtonsoft.Json", "13.0.3", False),
        ("Serilog", "3.1.1", False),
        ("Serilog.Sinks.Console", "5.0.1", False),
        ("System.Text.Json", "8.0.4", False),
        ("runtime.linux-x64.Microsoft.DotNet.ILCompiler", "8.0.4", False),
    ]
    assert parsed.notes == []


def test_packages_lock_odd_entries() -> None:
    doc = b"""\xef\xbb\xbf{"version": 1, "dependencies": {"net6.0": {
        "A": {"type": "Direct", "resolved": "1.0.0"},
        "B": {"type": "Transitive"},
        "C": 7}, "net7.0": []}}"""
    parsed = parse_packages_lock(doc, "packages.lock.json")
    assert rows(parsed.packages) == [("A", "1.0.0", False)]
    assert parsed.notes == [
        "net6.0: 'B' has no resolved version; skipped",
        "net6.0: 'C' is not an object; skipped",
        "dependencies of 'net7.0' are not an object; skipped",
    ]


def test_packages_config() -> None:
    parsed = parse_packages_config((DATA / "packages.config").read_bytes(), "web/packages.config")
    assert rows(parsed.packages) == [
        ("Microsoft.Net.Compilers", "4.2.0", True),
        ("NUnit", "3.14.0", True),
        ("Newtonsoft.Json", "12.0.3", False),
        ("jQuery", "3.7.1", False),
    ]
    assert parsed.notes == []


def test_packages_config_missing_attributes() -> None:
    doc = b'<packages><package id="A" version="1.0"/><package id="B"/><other/></packages>'
    parsed = parse_packages_config(doc, "packages.config")
    assert rows(parsed.packages) == [("A", "1.0", False)]
    assert parsed.notes == ["a <package> lacks an id or version (B); skipped"]


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        (BILLION_LAUGHS, "DTDs and entities are not allowed"),
        (EXTERNAL_ENTITY, "DTDs and entities are not allowed"),
        (b"<packages><package id='A' version='1'></packages>", "not well-formed XML"),
        (b"<project/>", "not <packages>"),
    ],
    ids=["billion-laughs", "external-entity", "unclosed", "wrong-root"],
)
def test_packages_config_refused(doc: bytes, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_packages_config(doc, "packages.config")


def test_analyzers_match_their_files_and_scopes() -> None:
    deps, lock, config = DotnetDepsAnalyzer(), NugetLockAnalyzer(), NugetConfigAnalyzer()
    assert deps.scopes == frozenset({"image", "dir"})
    assert lock.scopes == config.scopes == frozenset({"dir"})
    assert lock.required("packages.lock.json") and lock.required("src/App/packages.lock.json")
    assert not lock.required("src/App/my-packages.lock.json")
    assert config.required("packages.config") and not config.required("src/nuget-packages.config")


def test_analyzers_turn_errors_into_warnings() -> None:
    r = NugetConfigAnalyzer().analyze(FileInput(path="web/packages.config", content=BILLION_LAUGHS))
    assert r.packages == []
    assert [(w.code, w.path) for w in r.warnings] == [("parse-error", "web/packages.config")]
    assert r.warnings[0].message.startswith("web/packages.config: refused: DTDForbidden")
    r = DotnetDepsAnalyzer().analyze(FileInput(path="app/x.deps.json", content=b"{"))
    assert [(w.code, w.path) for w in r.warnings] == [("parse-error", "app/x.deps.json")]
    assert r.warnings[0].message.startswith("app/x.deps.json: not valid JSON")
    r = NugetLockAnalyzer().analyze(
        FileInput(path="packages.lock.json", content=b'{"dependencies": {"net8.0": {"B": {"type": "Direct"}}}}')
    )
    assert r.packages == [] and [w.message for w in r.warnings] == [
        "packages.lock.json: net8.0: 'B' has no resolved version; skipped"
    ]
