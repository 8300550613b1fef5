"""Whole scans of Python packages: real wheels installed by pip, this machine's Debian packages, and lock files.

The wheels are downloaded from PyPI at test time (pinned versions, cached for
the session) and installed with ``pip install --target``; each project's
licence is in its own wheel. The Debian metadata is read from this machine's
``/usr/lib/python3/dist-packages`` (each package's copyright is in
``/usr/share/doc/<package>/copyright``). Lock files are the hand-written
fixtures in tests/data/python.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.domain.models import Package, ScanResult
from shared.ecosystems import pep503
from shared.scanning.analyzers.all import enabled_analyzers
from shared.scanning.analyzers.base import Analyzer
from shared.scanning.analyzers.python import (
    PipfileLockAnalyzer,
    PipRequirementsAnalyzer,
    PoetryLockAnalyzer,
    PythonDistAnalyzer,
    UvLockAnalyzer,
)
from shared.scanning.scanner import ScanRequest, scan
from tests.conftest import UNDER_CI
from tests.support import images as I

DATA = Path(__file__).resolve().parent.parent / "data" / "python"
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
SITE = "usr/local/lib/python3.11/site-packages"
VENV_SITE = "app/.venv/lib/python3.11/site-packages"
DEBIAN_OS = I.file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n')

#: Small pure-Python wheels; names with dots, underscores and capitals on purpose.
WHEELS = {
    "six": "1.16.0",
    "idna": "3.7",
    "attrs": "25.3.0",
    "typing_extensions": "4.12.2",
    "zope.event": "5.0",
    "Jinja2": "3.1.4",
}


def all_python() -> list[Analyzer]:
    return [
        PythonDistAnalyzer(),
        PipRequirementsAnalyzer(),
        PoetryLockAnalyzer(),
        PipfileLockAnalyzer(),
        UvLockAnalyzer(),
    ]


def image_analyzers() -> list[Analyzer]:
    """These analyzers as the scanner picks them for an image scan (lock-file analyzers left out)."""
    names = {a.name for a in all_python()}
    return [a for a in enabled_analyzers("image") if a.name in names]


def _unavailable(message: str) -> None:
    if UNDER_CI:
        pytest.fail(message + " - required under CI", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Project name -> downloaded wheel file."""
    where = tmp_path_factory.mktemp("wheels")
    specs = [f"{n}=={v}" for n, v in WHEELS.items()]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps", "-d", str(where)]
    proc = subprocess.run([*cmd, *specs], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        _unavailable(f"pip could not download wheels from PyPI: {proc.stderr.strip()[-500:]}")
    out = {}
    for name, version in WHEELS.items():
        found = [w for w in where.glob("*.whl") if _wheel_id(w) == (pep503(name), version)]
        assert len(found) == 1, (name, sorted(p.name for p in where.iterdir()))
        out[name] = found[0]
    return out


def _wheel_id(wheel: Path) -> tuple[str, str]:
    """(normalised project name, version) from a wheel file name (older wheels keep dots in the name)."""
    name, version = wheel.name.split("-")[:2]
    return pep503(name), version


def pip_install(target: Path, wheel_files: list[Path]) -> Path:
    options = ["--quiet", "--no-deps", "--no-index", "--no-compile", "--target", str(target)]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", *options, *map(str, wheel_files)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def tree(root: Path, prefix: str) -> list[I.F]:
    """Every regular file below ``root``, placed under ``prefix`` in the image."""
    return [
        I.file(f"{prefix}/{p.relative_to(root).as_posix()}", p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def importlib_view(*dirs: Path) -> set[tuple[str, str]]:
    return {
        (pep503(d.metadata["Name"]), d.version) for d in importlib.metadata.distributions(path=[str(d) for d in dirs])
    }


def scan_oci(tmp_path: Path, layers: list[I.Layer], analyzers: list[Analyzer] | None = None) -> ScanResult:
    layout = I.write_oci_layout(tmp_path / "img", I.image(layers))
    return scan(ScanRequest(f"oci:{layout}"), analyzers=analyzers if analyzers is not None else image_analyzers())[0]


def summary(p: Package) -> tuple[object, ...]:
    return (p.name, p.version, p.purl, p.ecosystem, p.layer_index, p.dev, p.licenses, p.found_in)


def test_pip_installed_wheels_across_layers(tmp_path: Path, wheels: dict[str, Path]) -> None:
    base = pip_install(tmp_path / "base", [wheels[n] for n in ("six", "idna", "attrs", "typing_extensions")])
    added = pip_install(tmp_path / "added", [wheels["Jinja2"]])
    venv = pip_install(tmp_path / "venv", [wheels["zope.event"]])
    r = scan_oci(
        tmp_path,
        [
            I.layer([DEBIAN_OS, *tree(base, SITE)]),
            I.layer([*tree(added, SITE), *tree(venv, VENV_SITE)]),
        ],
    )
    assert r.warnings == []
    assert [summary(p) for p in r.packages] == [
        (
            "Jinja2",
            "3.1.4",
            "pkg:pypi/jinja2@3.1.4",
            "PyPI",
            1,
            False,
            ["BSD License"],
            f"{SITE}/jinja2-3.1.4.dist-info/METADATA",
        ),
        (
            "attrs",
            "25.3.0",
            "pkg:pypi/attrs@25.3.0",
            "PyPI",
            0,
            False,
            ["MIT"],
            f"{SITE}/attrs-25.3.0.dist-info/METADATA",
        ),
        ("idna", "3.7", "pkg:pypi/idna@3.7", "PyPI", 0, False, ["BSD License"], f"{SITE}/idna-3.7.dist-info/METADATA"),
        ("six", "1.16.0", "pkg:pypi/six@1.16.0", "PyPI", 0, False, ["MIT"], f"{SITE}/six-1.16.0.dist-info/METADATA"),
        (
            "typing_extensions",
            "4.12.2",
            "pkg:pypi/typing-extensions@4.12.2",
            "PyPI",
            0,
            False,
            ["Python Software Foundation License"],
            f"{SITE}/typing_extensions-4.12.2.dist-info/METADATA",
        ),
        (
            "zope.event",
            "5.0",
            "pkg:pypi/zope-event@5.0",
            "PyPI",
            1,
            False,
            ["ZPL-2.1"],
            f"{VENV_SITE}/zope.event-5.0.dist-info/METADATA",
        ),
    ]
    # what Python itself sees in those directories
    assert {(pep503(p.name), p.version) for p in r.packages} == importlib_view(base, added, venv)
    assert {p.layer_diff_id for p in r.packages} == {lay.diff_id for lay in r.image.layers}


def test_uninstalled_in_a_later_layer_is_gone(tmp_path: Path, wheels: dict[str, Path]) -> None:
    base = pip_install(tmp_path / "base", [wheels["six"], wheels["idna"]])
    r = scan_oci(
        tmp_path,
        [
            I.layer(tree(base, SITE)),
            I.layer([I.file(f"{SITE}/.wh.six-1.16.0.dist-info", b""), I.file(f"{SITE}/.wh.six.py", b"")]),
        ],
    )
    assert [(p.name, p.layer_index) for p in r.packages] == [("idna", 0)]


def test_debian_egg_info_and_dist_info_match_importlib(tmp_path: Path) -> None:
    metadata = sorted(DIST_PACKAGES.glob("*.egg-info/PKG-INFO")) + sorted(DIST_PACKAGES.glob("*.dist-info/METADATA"))
    if not any(p.name == "PKG-INFO" for p in metadata):
        _unavailable(f"no egg-info metadata in {DIST_PACKAGES} (Debian's python3 packages)")
    # The single-file form: a distutils-style <name>-<version>.egg-info made from a real PKG-INFO.
    legacy = tmp_path / "legacy-site"
    legacy.mkdir()
    source = metadata[0]
    single = legacy / source.parent.name
    single.write_bytes(source.read_bytes())
    files = [
        I.file("usr/lib/python3/dist-packages/" + p.relative_to(DIST_PACKAGES).as_posix(), p.read_bytes())
        for p in metadata
    ]
    files.append(I.file(f"usr/lib/python2.7/dist-packages/{single.name}", single.read_bytes()))
    r = scan_oci(tmp_path, [I.layer([DEBIAN_OS, *files])])
    assert r.warnings == []
    machine = [p for p in r.packages if p.found_in.startswith("usr/lib/python3/")]
    assert {(pep503(p.name), p.version) for p in machine} == importlib_view(DIST_PACKAGES)
    assert len(machine) == len(metadata)
    singles = [(p.name, p.version, p.found_in) for p in r.packages if p.found_in.startswith("usr/lib/python2.7/")]
    [(name, version)] = importlib_view(legacy)
    assert [(pep503(n), v, f) for n, v, f in singles] == [
        (name, version, f"usr/lib/python2.7/dist-packages/{single.name}")
    ]
    assert all(p.purl == f"pkg:pypi/{pep503(p.name)}@{p.version}" and p.ecosystem == "PyPI" for p in r.packages)


def test_malformed_metadata_warns_and_the_rest_still_scans(tmp_path: Path, wheels: dict[str, Path]) -> None:
    base = pip_install(tmp_path / "base", [wheels["six"], wheels["idna"]])
    truncated = (base / "idna-3.7.dist-info/METADATA").read_bytes()[:40]  # cut inside the Version header
    assert b"Version: 3.7" not in truncated
    r = scan_oci(
        tmp_path,
        [
            I.layer(
                [
                    *tree(base, SITE),
                    I.file(f"{SITE}/idna-3.7.dist-info/METADATA", truncated),
                ]
            )
        ],
    )
    assert [(p.name, p.version) for p in r.packages] == [("six", "1.16.0")]
    assert [(w.code, w.path, w.message) for w in r.warnings] == [
        (
            "parse-error",
            f"{SITE}/idna-3.7.dist-info/METADATA",
            f"{SITE}/idna-3.7.dist-info/METADATA: idna: no Version field; truncated metadata?",
        )
    ]


def _source_tree(root: Path) -> Path:
    (root / "services/api").mkdir(parents=True)
    (root / "services/worker").mkdir(parents=True)
    (root / "tools").mkdir(parents=True)
    shutil.copy(DATA / "requirements.txt", root / "requirements.txt")
    shutil.copy(DATA / "poetry-v2.lock", root / "services/api/poetry.lock")
    shutil.copy(DATA / "Pipfile.lock", root / "services/worker/Pipfile.lock")
    shutil.copy(DATA / "uv.lock", root / "tools/uv.lock")
    (root / "tools/README.txt").write_text("requirements are in uv.lock\n")
    return root


EXPECTED_LOCKED = [
    ("Flask", "3.0.0", "pkg:pypi/flask@3.0.0", False, "requirements.txt"),
    ("Sniffio", "1.3.1", "pkg:pypi/sniffio@1.3.1", False, "services/api/poetry.lock"),
    ("anyio", "4.8.0", "pkg:pypi/anyio@4.8.0", False, "services/api/poetry.lock"),
    ("asgiref", "3.7.2", "pkg:pypi/asgiref@3.7.2", False, "services/worker/Pipfile.lock"),
    ("certifi", "2023.7.22", "pkg:pypi/certifi@2023.7.22", False, "requirements.txt"),
    ("certifi", "2024.8.30", "pkg:pypi/certifi@2024.8.30", False, "tools/uv.lock"),
    ("colorama", "0.4.6", "pkg:pypi/colorama@0.4.6", True, "tools/uv.lock"),
    ("django", "4.2.7", "pkg:pypi/django@4.2.7", False, "services/worker/Pipfile.lock"),
    ("httpx", "0.27.2", "pkg:pypi/httpx@0.27.2", False, "tools/uv.lock"),
    ("idna", "3.10", "pkg:pypi/idna@3.10", False, "services/api/poetry.lock"),
    ("idna", "3.10", "pkg:pypi/idna@3.10", False, "tools/uv.lock"),
    ("iniconfig", "2.0.0", "pkg:pypi/iniconfig@2.0.0", True, "tools/uv.lock"),
    ("mypy-extensions", "1.0.0", "pkg:pypi/mypy-extensions@1.0.0", True, "services/api/poetry.lock"),
    ("packaging", "24.1", "pkg:pypi/packaging@24.1", False, "tools/uv.lock"),
    ("pluggy", "1.3.0", "pkg:pypi/pluggy@1.3.0", True, "services/worker/Pipfile.lock"),
    ("pluggy", "1.5.0", "pkg:pypi/pluggy@1.5.0", True, "tools/uv.lock"),
    ("pytest", "7.4.3", "pkg:pypi/pytest@7.4.3", True, "services/worker/Pipfile.lock"),
    ("pytest", "8.3.3", "pkg:pypi/pytest@8.3.3", True, "tools/uv.lock"),
    ("pytest", "8.3.4", "pkg:pypi/pytest@8.3.4", True, "services/api/poetry.lock"),
    ("requests", "2.31.0", "pkg:pypi/requests@2.31.0", False, "requirements.txt"),
    ("socksio", "1.0.0", "pkg:pypi/socksio@1.0.0", False, "tools/uv.lock"),
    ("sqlparse", "0.4.4", "pkg:pypi/sqlparse@0.4.4", False, "services/worker/Pipfile.lock"),
    ("typing_extensions", "4.8.0", "pkg:pypi/typing-extensions@4.8.0", False, "requirements.txt"),
    ("urllib3", "2.0.7", "pkg:pypi/urllib3@2.0.7", False, "requirements.txt"),
    ("zope.interface", "6.1", "pkg:pypi/zope-interface@6.1", False, "requirements.txt"),
]


def locked(r: ScanResult) -> list[tuple[object, ...]]:
    return [(p.name, p.version, p.purl, p.dev, p.found_in) for p in r.packages if p.type == "python"]


def test_dir_scan_reads_lock_files_and_an_image_scan_does_not(tmp_path: Path) -> None:
    root = _source_tree(tmp_path / "src")
    r = scan(ScanRequest(f"dir:{root}"), analyzers=all_python())[0]
    assert locked(r) == EXPECTED_LOCKED
    assert {p.ecosystem for p in r.packages} == {"PyPI"}
    assert [(w.code, w.path) for w in r.warnings] == [("include-not-followed", "requirements.txt")]

    # The same files in an image: the analyzers chosen for an image scan skip lock files.
    files = [
        I.file(f"app/{p.relative_to(root).as_posix()}", p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()
    ]
    assert [a.name for a in image_analyzers()] == ["python-dist"]
    assert scan_oci(tmp_path, [I.layer(files)]).packages == []
    # and the scanner's own choice (no analyzers given) agrees, for images and for source trees
    layout = I.write_oci_layout(tmp_path / "img2", I.image([I.layer(files)]))
    assert locked(scan(ScanRequest(f"oci:{layout}"))[0]) == []
    assert locked(scan(ScanRequest(f"dir:{root}"))[0]) == EXPECTED_LOCKED


def test_malformed_lock_files_warn_and_others_still_scan(tmp_path: Path) -> None:
    root = _source_tree(tmp_path / "src")
    (root / "services/api/poetry.lock").write_text('[[package]]\nname = "anyio"\nversion = "4.8.0\n')
    (root / "services/worker/Pipfile.lock").write_text('{"default": {"django": {"version": "==4.2.7"}')
    r = scan(ScanRequest(f"dir:{root}"), analyzers=all_python())[0]
    assert {f for *_, f in locked(r)} == {"requirements.txt", "tools/uv.lock"}
    assert len(locked(r)) == 15
    warnings = {w.path: (w.code, w.message) for w in r.warnings}
    assert warnings["services/api/poetry.lock"][0] == "parse-error"
    assert warnings["services/api/poetry.lock"][1].startswith("services/api/poetry.lock: invalid TOML: ")
    assert warnings["services/worker/Pipfile.lock"][0] == "parse-error"
    assert warnings["services/worker/Pipfile.lock"][1].startswith("services/worker/Pipfile.lock: invalid JSON: ")
    assert set(warnings) == {"requirements.txt", "services/api/poetry.lock", "services/worker/Pipfile.lock"}
