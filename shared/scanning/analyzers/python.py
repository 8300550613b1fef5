"""Python packages: installed distributions in any site-packages, and lock files of source trees.

Installed distributions are found by their core metadata, which sits in a
directory (or file) directly inside a ``site-packages`` or ``dist-packages``
directory, wherever that is (the system Python, ``/usr/local``, a virtualenv
under ``/app/.venv``, conda):

- ``<name>-<version>.dist-info/METADATA`` (wheels, modern pip);
- ``<name>.egg-info/PKG-INFO`` (setuptools installs, most Debian packages);
- ``<name>.egg-info`` as a single file (distutils installs);
- ``<name>.egg/EGG-INFO/PKG-INFO`` (easy_install eggs).

Metadata of packages vendored inside another package (deeper than the
site directory) is not read: Python does not import them as distributions.
Lock files (requirements*.txt, poetry.lock, Pipfile.lock, uv.lock) run on
``dir:`` scans only.
"""

from __future__ import annotations

from typing import ClassVar

from shared.domain.models import ScanWarning
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.python import (
    Parsed,
    parse_metadata,
    parse_pipfile_lock,
    parse_poetry_lock,
    parse_requirements,
    parse_uv_lock,
)

_SITE_DIRS = ("site-packages", "dist-packages")
_LOCK_SCOPE = frozenset({"dir"})


def _in_site_dir(directory: str) -> bool:
    return directory.rpartition("/")[2] in _SITE_DIRS


def _result(file: FileInput, parsed: Parsed, code: str = "parse-error") -> AnalysisResult:
    packages, problems = parsed
    warnings = [
        ScanWarning(code=code, message=f"{file.path}: {p}", path=file.path, layer_diff_id=file.layer_diff_id)
        for p in problems
    ]
    return AnalysisResult(packages=packages, warnings=warnings)


def _basename(path: str) -> str:
    return path.rpartition("/")[2]


@register
class PythonDistAnalyzer(Analyzer):
    """Installed distributions, from their core metadata."""

    name = "python-dist"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("/METADATA", "/PKG-INFO", ".egg-info")

    def required(self, path: str) -> bool:
        head, _, base = path.rpartition("/")
        if base == "METADATA" or base == "PKG-INFO":
            parent, _, meta_dir = head.rpartition("/")
            if meta_dir.endswith(".dist-info" if base == "METADATA" else ".egg-info"):
                return _in_site_dir(parent)
            if base == "PKG-INFO" and meta_dir == "EGG-INFO":
                grandparent, _, egg = parent.rpartition("/")
                return egg.endswith(".egg") and _in_site_dir(grandparent)
            return False
        return base.endswith(".egg-info") and _in_site_dir(head)

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _result(file, parse_metadata(file.content, file.path))


class _LockAnalyzer(Analyzer):
    """A lock file known by its exact file name, read on source-tree scans only."""

    scopes = _LOCK_SCOPE
    file_name: ClassVar[str]

    def required(self, path: str) -> bool:
        return _basename(path) == self.file_name

    def parse(self, content: bytes, path: str) -> Parsed:
        raise NotImplementedError

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _result(file, self.parse(file.content, file.path))


@register
class PipRequirementsAnalyzer(Analyzer):
    """``requirements*.txt``: the exactly pinned lines (``name==version``)."""

    name = "pip-requirements"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = (".txt",)
    scopes = _LOCK_SCOPE

    def required(self, path: str) -> bool:
        # Installed packages sometimes ship their own requirements files; those are not the project's.
        return _basename(path).startswith("requirements") and "-packages/" not in path

    def analyze(self, file: FileInput) -> AnalysisResult:
        # A nested -r file is the only thing reported here, and it is not a parse error.
        return _result(file, parse_requirements(file.content, file.path), code="include-not-followed")


@register
class PoetryLockAnalyzer(_LockAnalyzer):
    name = "poetry-lock"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("poetry.lock",)
    file_name = "poetry.lock"

    def parse(self, content: bytes, path: str) -> Parsed:
        return parse_poetry_lock(content, path)


@register
class PipfileLockAnalyzer(_LockAnalyzer):
    name = "pipfile-lock"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("Pipfile.lock",)
    file_name = "Pipfile.lock"

    def parse(self, content: bytes, path: str) -> Parsed:
        return parse_pipfile_lock(content, path)


@register
class UvLockAnalyzer(_LockAnalyzer):
    name = "uv-lock"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("uv.lock",)
    file_name = "uv.lock"

    def parse(self, content: bytes, path: str) -> Parsed:
        return parse_uv_lock(content, path)
