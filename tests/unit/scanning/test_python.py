"""Python parsers and analyzer path matching, on hand-written inputs and this machine's installed metadata.

Lock-file fixtures are in tests/data/python (hand-written, see the README there).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from shared.ecosystems import pep503
from shared.scanning.analyzers.base import FileInput
from shared.scanning.analyzers.python import (
    PipfileLockAnalyzer,
    PipRequirementsAnalyzer,
    PoetryLockAnalyzer,
    PythonDistAnalyzer,
    UvLockAnalyzer,
)
from shared.scanning.parsers.python import (
    parse_metadata,
    parse_pipfile_lock,
    parse_poetry_lock,
    parse_requirements,
    parse_uv_lock,
)
from tests.conftest import UNDER_CI

DATA = Path(__file__).resolve().parent.parent.parent / "data" / "python"
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


def rows(parsed: tuple[list, list[str]]) -> list[tuple[str, str, bool]]:
    return [(p.name, p.version, p.dev) for p in parsed[0]]


# -- installed metadata -------------------------------------------------------------------


def test_metadata_fields_and_licence_precedence() -> None:
    meta = b"""Metadata-Version: 2.4
Name: zope.interface
Version: 6.1
License-Expression: ZPL-2.1
License: Zope Public License
Classifier: License :: OSI Approved :: Zope Public License

Long description; License: not a header here.
"""
    pkgs, problems = parse_metadata(meta, "p/METADATA")
    assert problems == []
    assert [(p.type, p.name, p.version, p.licenses, p.found_in, p.purl, p.ecosystem) for p in pkgs] == [
        ("python", "zope.interface", "6.1", ["ZPL-2.1"], "p/METADATA", "", None)
    ]
    # no expression: the License field; no usable License: the classifiers (bare "OSI Approved" is no licence)
    pkgs, _ = parse_metadata(b"Name: a\nVersion: 1\nLicense: MIT\nClassifier: License :: OSI Approved :: X\n", "m")
    assert pkgs[0].licenses == ["MIT"]
    pkgs, _ = parse_metadata(
        b"Name: a\nVersion: 1\nLicense: UNKNOWN\nClassifier: License :: OSI Approved\n"
        b"Classifier: License :: OSI Approved :: BSD License\nClassifier: License :: OSI Approved :: MIT License\n",
        "m",
    )
    assert pkgs[0].licenses == ["BSD License", "MIT License"]
    # a full licence text in License (continued header lines) is not a licence name
    pkgs, _ = parse_metadata(b"Name: a\nVersion: 1\nLicense: Copyright (c) me\n        Permission is granted\n", "m")
    assert pkgs[0].licenses == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"Metadata-Version: 2.1\nName: requests\nVer", "requests: no Version field; truncated metadata?"),
        (b"Metadata-Version: 2.1\n", "no Name field; not core metadata or truncated"),
        (b"", "no Name field; not core metadata or truncated"),
        (b"\x00\x01\x02garbage", "no Name field; not core metadata or truncated"),
        (b"Name: bad name!\nVersion: 1\n", "invalid distribution name 'bad name!'"),
    ],
)
def test_malformed_metadata_is_a_problem_not_an_exception(content: bytes, problem: str) -> None:
    assert parse_metadata(content, "x") == ([], [problem])


def test_metadata_utf8_bom_and_non_utf8_bytes() -> None:
    pkgs, _ = parse_metadata(b"\xef\xbb\xbfName: cafe-tools\nVersion: 1.0\nLicense: caf\xc3\xa9 \xe9\n", "m")
    assert [(p.name, p.licenses) for p in pkgs] == [("cafe-tools", ["café \ufffd"])]
    # names are ASCII in every metadata version
    assert parse_metadata("Name: café\nVersion: 1\n".encode(), "m")[1] == ["invalid distribution name 'café'"]


def _machine_metadata_files() -> list[Path]:
    files = sorted(DIST_PACKAGES.glob("*.egg-info/PKG-INFO")) + sorted(DIST_PACKAGES.glob("*.dist-info/METADATA"))
    files += sorted(p for p in DIST_PACKAGES.glob("*.egg-info") if p.is_file())
    if not files:
        message = f"no installed Python metadata in {DIST_PACKAGES} (Debian's python3 packages)"
        if UNDER_CI:
            pytest.fail(message + " - required under CI", pytrace=False)
        pytest.skip(message)
    return files


def test_this_machines_dist_packages_match_importlib_metadata() -> None:
    files = _machine_metadata_files()
    got = set()
    for f in files:
        pkgs, problems = parse_metadata(f.read_bytes(), str(f))
        assert problems == [], f
        got |= {(pep503(p.name), p.version) for p in pkgs}
    expected = {
        (pep503(d.metadata["Name"]), d.version) for d in importlib.metadata.distributions(path=[str(DIST_PACKAGES)])
    }
    assert got == expected
    assert any(f.name == "PKG-INFO" for f in files)  # real egg-info inputs were read


# -- requirements.txt -----------------------------------------------------------------------


def test_requirements_pins_only_with_every_line_form() -> None:
    pkgs, problems = parse_requirements((DATA / "requirements.txt").read_bytes(), "app/requirements.txt")
    assert [(p.name, p.version, p.dev, p.found_in) for p in pkgs] == [
        ("requests", "2.31.0", False, "app/requirements.txt"),
        ("urllib3", "2.0.7", False, "app/requirements.txt"),
        ("Flask", "3.0.0", False, "app/requirements.txt"),
        ("zope.interface", "6.1", False, "app/requirements.txt"),
        ("typing_extensions", "4.8.0", False, "app/requirements.txt"),
        ("certifi", "2023.7.22", False, "app/requirements.txt"),
    ]
    assert problems == ["line 4: includes 'requirements-base.txt', which is not followed"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"pkg==1.0", [("pkg", "1.0")]),
        (b"pkg (==1.0)", [("pkg", "1.0")]),
        (b"pkg>=1.0,==1.2.3", [("pkg", "1.2.3")]),
        (b"pkg[a,b] == 2.0.post1 ; sys_platform == 'linux' --hash=sha256:00", [("pkg", "2.0.post1")]),
        (b"pkg==1.0 # comment", [("pkg", "1.0")]),
        (b"pkg==1.0#not-a-comment", []),
        (b"pkg==1!2.0+local.1", [("pkg", "1!2.0+local.1")]),
        (b"pkg==", []),
        (b"pkg==1.*", []),
        (b"pkg~=1.0", []),
        (b"pkg", []),
        (b"pkg @ file:///tmp/pkg.whl", []),
        (b"https://example.invalid/pkg-1.0.tar.gz", []),
        (b"--index-url https://example.invalid", []),
        (b"-e .", []),
        (b"{{ templated }}==1", []),
        (b"pkg==\\\n    1.0", [("pkg", "1.0")]),
    ],
)
def test_requirement_line_forms(line: bytes, expected: list[tuple[str, str]]) -> None:
    assert [(p.name, p.version) for p in parse_requirements(line, "r")[0]] == expected


def test_requirements_include_forms_and_utf16() -> None:
    text = "-r a.txt\n--requirement=b.txt\n--requirement c.txt\n-rd.txt\nx==1\n"
    pkgs, problems = parse_requirements(text.encode("utf-16"), "r")
    assert [(p.name, p.version) for p in pkgs] == [("x", "1")]
    assert problems == [
        "line 1: includes 'a.txt', which is not followed",
        "line 2: includes 'b.txt', which is not followed",
        "line 3: includes 'c.txt', which is not followed",
        "line 4: includes 'd.txt', which is not followed",
    ]


# -- poetry.lock ---------------------------------------------------------------------------


def test_poetry_1_category_marks_dev() -> None:
    parsed = parse_poetry_lock((DATA / "poetry-v1.lock").read_bytes(), "poetry.lock")
    assert parsed[1] == []
    assert rows(parsed) == [
        ("certifi", "2023.7.22", False),
        ("charset-normalizer", "3.3.0", False),
        ("iniconfig", "2.0.0", True),
        ("pytest", "7.4.2", True),
        ("requests", "2.31.0", False),
    ]


def test_poetry_2_groups_mark_dev() -> None:
    parsed = parse_poetry_lock((DATA / "poetry-v2.lock").read_bytes(), "poetry.lock")
    assert parsed[1] == []
    assert rows(parsed) == [
        ("anyio", "4.8.0", False),
        ("idna", "3.10", False),
        ("mypy-extensions", "1.0.0", True),
        ("Sniffio", "1.3.1", False),
        ("pytest", "8.3.4", True),
    ]


def test_poetry_invalid_toml_and_incomplete_entries() -> None:
    pkgs, problems = parse_poetry_lock(b'[[package]]\nname = "a"\nversion = ', "poetry.lock")
    assert pkgs == [] and len(problems) == 1 and problems[0].startswith("invalid TOML: ")
    pkgs, problems = parse_poetry_lock(
        b'[[package]]\nname = "a"\n\n[[package]]\nname = "b"\nversion = "2"\n', "poetry.lock"
    )
    assert [(p.name, p.version) for p in pkgs] == [("b", "2")]
    assert problems == ["1 [[package]] entries without a name or version were skipped"]
    assert parse_poetry_lock(b"\xff\xfe", "p")[1][0].startswith("not UTF-8 text")


# -- Pipfile.lock ---------------------------------------------------------------------------


def test_pipfile_lock_default_and_develop() -> None:
    parsed = parse_pipfile_lock((DATA / "Pipfile.lock").read_bytes(), "Pipfile.lock")
    assert parsed[1] == []
    assert rows(parsed) == [
        ("django", "4.2.7", False),
        ("asgiref", "3.7.2", False),
        ("sqlparse", "0.4.4", False),  # in both sections: runtime
        ("pytest", "7.4.3", True),
        ("pluggy", "1.3.0", True),
    ]


@pytest.mark.parametrize("content", [b'{"default": {', b"[1, 2]", b"\xff"])
def test_pipfile_lock_malformed(content: bytes) -> None:
    pkgs, problems = parse_pipfile_lock(content, "Pipfile.lock")
    assert pkgs == [] and len(problems) == 1


# -- uv.lock ------------------------------------------------------------------------------------


def test_uv_lock_dev_groups_by_reachability() -> None:
    parsed = parse_uv_lock((DATA / "uv.lock").read_bytes(), "uv.lock")
    assert parsed[1] == []
    assert rows(parsed) == [
        ("certifi", "2024.8.30", False),
        ("colorama", "0.4.6", True),
        ("httpx", "0.27.2", False),
        ("idna", "3.10", False),
        ("iniconfig", "2.0.0", True),
        ("packaging", "24.1", False),  # reached from the project and from pytest: runtime
        ("pluggy", "1.5.0", True),
        ("pytest", "8.3.3", True),
        ("socksio", "1.0.0", False),  # through the httpx[socks] extra
    ]


def test_uv_lock_versioned_dependencies_and_no_project() -> None:
    lock = b"""version = 1
[[package]]
name = "app"
source = { virtual = "." }
dependencies = [{ name = "numpy", version = "2.1.0", source = { registry = "x" } }]
[package.dev-dependencies]
dev = [{ name = "numpy", version = "1.26.4", source = { registry = "x" } }]

[[package]]
name = "numpy"
version = "1.26.4"
source = { registry = "x" }

[[package]]
name = "numpy"
version = "2.1.0"
source = { registry = "x" }
"""
    assert rows(parse_uv_lock(lock, "uv.lock")) == [("numpy", "1.26.4", True), ("numpy", "2.1.0", False)]
    # without a project nothing can be told apart: all runtime
    no_root = b'version = 1\n[[package]]\nname = "a"\nversion = "1"\nsource = { registry = "x" }\n'
    assert rows(parse_uv_lock(no_root, "uv.lock")) == [("a", "1", False)]
    assert parse_uv_lock(b"version = = 1", "uv.lock")[1][0].startswith("invalid TOML")


# -- analyzers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", True),
        ("usr/lib/python3/dist-packages/cryptography.egg-info/PKG-INFO", True),
        ("usr/local/lib/python3.11/site-packages/attrs-25.3.0.dist-info/METADATA", True),
        ("app/.venv/lib/python3.12/site-packages/Jinja2-3.1.4.dist-info/METADATA", True),
        ("usr/lib/python3/dist-packages/python_apt-2.6.0.egg-info", True),
        ("opt/py/lib/python3.11/site-packages/foo-1.0-py3.11.egg/EGG-INFO/PKG-INFO", True),
        ("usr/lib/python3/dist-packages/foo-1.0.egg-info/PKG-INFO/x", False),
        ("usr/lib/python3/dist-packages/setuptools/_vendor/packaging-24.0.dist-info/METADATA", False),
        ("usr/lib/python3/dist-packages/foo.dist-info/PKG-INFO", False),
        ("usr/lib/python3/dist-packages/foo.egg-info/METADATA", False),
        ("src/foo.egg-info/PKG-INFO", False),
        ("src/foo-1.0.dist-info/METADATA", False),
        ("usr/lib/python3/dist-packages/EGG-INFO/PKG-INFO", False),
    ],
)
def test_dist_analyzer_paths(path: str, wanted: bool) -> None:
    a = PythonDistAnalyzer()
    assert (path.endswith(a.suffixes) and a.required(path)) is wanted


@pytest.mark.parametrize(
    ("analyzer", "path", "wanted"),
    [
        (PipRequirementsAnalyzer(), "requirements.txt", True),
        (PipRequirementsAnalyzer(), "svc/requirements-dev.txt", True),
        (PipRequirementsAnalyzer(), "svc/dev-requirements.txt", False),
        (PipRequirementsAnalyzer(), "notes.txt", False),
        (PipRequirementsAnalyzer(), ".venv/lib/python3.11/site-packages/x/requirements.txt", False),
        (PoetryLockAnalyzer(), "poetry.lock", True),
        (PoetryLockAnalyzer(), "a/poetry.lock", True),
        (PoetryLockAnalyzer(), "a/mypoetry.lock", False),
        (PipfileLockAnalyzer(), "a/Pipfile.lock", True),
        (UvLockAnalyzer(), "uv.lock", True),
        (UvLockAnalyzer(), "a/xuv.lock", False),
    ],
)
def test_lock_analyzer_paths_and_scope(analyzer: object, path: str, wanted: bool) -> None:
    from shared.scanning.analyzers.base import Analyzer

    assert isinstance(analyzer, Analyzer)
    assert analyzer.scopes == frozenset({"dir"})
    assert (path.endswith(analyzer.suffixes) and analyzer.required(path)) is wanted


def test_analyzers_turn_problems_into_warnings_naming_the_file() -> None:
    r = PythonDistAnalyzer().analyze(
        FileInput(path="s/site-packages/a-1.dist-info/METADATA", content=b"Name: a\n", layer_diff_id="sha256:1")
    )
    assert r.packages == []
    assert [(w.code, w.message, w.path, w.layer_diff_id) for w in r.warnings] == [
        (
            "parse-error",
            "s/site-packages/a-1.dist-info/METADATA: a: no Version field; truncated metadata?",
            "s/site-packages/a-1.dist-info/METADATA",
            "sha256:1",
        )
    ]
    r = PipRequirementsAnalyzer().analyze(FileInput(path="requirements.txt", content=b"-r base.txt\na==1\n"))
    assert [p.name for p in r.packages] == ["a"]
    assert [(w.code, w.message) for w in r.warnings] == [
        ("include-not-followed", "requirements.txt: line 1: includes 'base.txt', which is not followed")
    ]
    r = PoetryLockAnalyzer().analyze(FileInput(path="poetry.lock", content=b"[[package]"))
    assert r.packages == [] and [w.code for w in r.warnings] == ["parse-error"]
    assert r.warnings[0].message.startswith("poetry.lock: invalid TOML")
