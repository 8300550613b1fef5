"""Node.js packages: installed ones in any ``node_modules``, and the lock files of source trees.

Installed packages are read from the ``package.json`` at the root of each
package directory, wherever the ``node_modules`` is (an application's
``/app/node_modules``, the global ``/usr/local/lib/node_modules`` and
``/usr/lib/node_modules``, nested ``node_modules/a/node_modules/b``, pnpm's
``node_modules/.pnpm/<id>/node_modules/<name>``): its parent directory is
``node_modules/<name>`` or ``node_modules/@scope/<name>``. Other ``package.json``
files inside a package (``lib/package.json`` holding ``{"type": "module"}``,
test fixtures) are not packages. A ``package.json`` without a name or version
is not a package either and is passed over silently.

Lock files (``package-lock.json``, ``npm-shrinkwrap.json``, ``yarn.lock``,
``pnpm-lock.yaml``) describe what an install would produce, so they are read
on ``dir:`` scans only, and never inside ``node_modules`` (packages ship their
own, which their installer ignores).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import ClassVar

from shared.domain.models import Package, ScanWarning
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.npm import Manifest, Parsed, parse_manifest, parse_package_json, parse_package_lock
from shared.scanning.parsers.pnpm import parse_pnpm_lock
from shared.scanning.parsers.yarn import YarnLock, mark_development, parse_yarn_lock

NODE_MODULES = "node_modules/"
PACKAGE_JSON = "/package.json"
_LOCK_SCOPE = frozenset({"dir"})
_LOCK_MAX = 64 * 1024 * 1024


def _warnings(file: FileInput, problems: list[str]) -> list[ScanWarning]:
    return [
        ScanWarning(code="parse-error", message=f"{file.path}: {p}", path=file.path, layer_diff_id=file.layer_diff_id)
        for p in problems
    ]


def _result(file: FileInput, parsed: Parsed) -> AnalysisResult:
    packages, problems = parsed
    return AnalysisResult(packages=packages, warnings=_warnings(file, problems))


def is_package_root_manifest(path: str) -> bool:
    """Whether ``path`` (ending in ``/package.json``) is directly in ``node_modules/<name>`` or ``@scope/<name>``."""
    end = len(path) - len(PACKAGE_JSON)
    i = path.rfind(NODE_MODULES, 0, end)
    if i < 0 or (i > 0 and path[i - 1] != "/"):
        return False
    start = i + len(NODE_MODULES)
    if start >= end:
        return False
    slash = path.find("/", start, end)
    if slash < 0:
        return path[start] != "@"  # node_modules/<name>; a bare "@scope" folder is not a package
    # node_modules/@scope/<name>: exactly one more segment, after a scope
    return path[start] == "@" and slash > start + 1 and slash + 1 < end and path.find("/", slash + 1, end) < 0


@register
class NpmInstalledAnalyzer(Analyzer):
    """Installed packages, from the ``package.json`` at the root of each ``node_modules`` package."""

    name = "npm-installed"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = (PACKAGE_JSON,)
    max_file_size = 8 * 1024 * 1024

    def required(self, path: str) -> bool:
        return is_package_root_manifest(path)

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _result(file, parse_package_json(file.content, file.path))


class _LockAnalyzer(Analyzer):
    scopes: ClassVar[frozenset[str]] = _LOCK_SCOPE
    max_file_size = _LOCK_MAX

    def required(self, path: str) -> bool:
        return NODE_MODULES not in path


@register
class NpmLockAnalyzer(_LockAnalyzer):
    """``package-lock.json`` and ``npm-shrinkwrap.json`` (lockfile versions 1, 2 and 3)."""

    name = "npm-lock"
    version = 1
    paths: ClassVar[frozenset[str]] = frozenset({"package-lock.json", "npm-shrinkwrap.json"})
    suffixes: ClassVar[tuple[str, ...]] = ("/package-lock.json", "/npm-shrinkwrap.json")

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _result(file, parse_package_lock(file.content, file.path))


@register
class PnpmLockAnalyzer(_LockAnalyzer):
    """``pnpm-lock.yaml`` (lockfile versions 5.x, 6.x and 9.x)."""

    name = "pnpm-lock"
    version = 1
    paths: ClassVar[frozenset[str]] = frozenset({"pnpm-lock.yaml"})
    suffixes: ClassVar[tuple[str, ...]] = ("/pnpm-lock.yaml",)

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _result(file, parse_pnpm_lock(file.content, file.path))


@register
class YarnLockAnalyzer(_LockAnalyzer):
    """``yarn.lock`` (classic v1 and Berry), with development-only packages from the project's manifests.

    A yarn.lock does not say which packages only development needs; the
    ``package.json`` beside it does (``devDependencies`` versus
    ``dependencies``), and so do the manifests of its workspace projects. So this
    analyzer also reads every ``package.json`` outside ``node_modules`` and keeps
    their dependency lists for the scan. A ``dir:`` walk yields a folder's
    ``package.json`` before its ``yarn.lock`` (names in order) and workspace
    folders after both; whenever a manifest arrives that bears on a lock already
    read, that lock's packages (the list handed out for it) are marked again.
    Without a readable manifest beside the lock no package is marked
    development-only. One instance serves one scan.
    """

    name = "yarn-lock"
    version = 1
    paths: ClassVar[frozenset[str]] = frozenset({"yarn.lock", "package.json"})
    suffixes: ClassVar[tuple[str, ...]] = ("/yarn.lock", PACKAGE_JSON)

    def __init__(self) -> None:
        # folder -> its package.json (None: unreadable)
        self._manifests: dict[str, Manifest | None] = {}
        # folder -> a lock read there
        self._locks: dict[str, _TrackedLock] = {}

    def analyze(self, file: FileInput) -> AnalysisResult:
        folder, _, base = file.path.rpartition("/")
        if base == "package.json":
            manifest = parse_manifest(file.content)
            self._manifests[folder] = manifest
            for lock_folder, tracked in self._locks.items():
                if folder == lock_folder:
                    tracked.members = self._members(folder, tracked.lock)
                elif self._is_member(folder, lock_folder, tracked.lock):
                    rel = _relative(folder, lock_folder)
                    if manifest is None:
                        tracked.members.pop(rel, None)
                    else:
                        tracked.members[rel] = manifest
                else:
                    continue
                self._mark(lock_folder, tracked)
            return AnalysisResult()
        lock = parse_yarn_lock(file.content, file.path)
        warnings = _warnings(file, lock.problems)
        if folder in self._manifests and self._manifests[folder] is None:
            where = f"{folder}/package.json" if folder else "package.json"
            warnings += _warnings(file, [f"{where} is unreadable; development-only packages are not marked"])
        tracked = _TrackedLock(lock, [], self._members(folder, lock))
        self._mark(folder, tracked)
        self._locks[folder] = tracked
        return AnalysisResult(packages=tracked.handed_out, warnings=warnings)

    def _mark(self, folder: str, tracked: _TrackedLock) -> None:
        root = self._manifests.get(folder)
        if root is not None:
            mark_development(tracked.lock, root, tracked.members)
        else:
            for p in tracked.lock.packages:
                if p is not None:
                    p.dev = False
        tracked.handed_out[:] = tracked.lock.listed()

    def _members(self, folder: str, lock: YarnLock) -> dict[str, Manifest]:
        """The known manifests of a lock's workspace projects, by folder relative to the lock."""
        return {
            _relative(where, folder): m
            for where, m in self._manifests.items()
            if m is not None and self._is_member(where, folder, lock)
        }

    def _is_member(self, where: str, lock_folder: str, lock: YarnLock) -> bool:
        if where == lock_folder or not _within(where, lock_folder):
            return False
        rel = _relative(where, lock_folder)
        if lock.berry:
            return rel in lock.workspaces  # Berry lists its workspaces by folder
        root = self._manifests.get(lock_folder)
        return root is not None and any(fnmatchcase(rel, w.removeprefix("./").rstrip("/")) for w in root.workspaces)


@dataclass
class _TrackedLock:
    lock: YarnLock
    #: the package list handed to the engine for this lock, re-marked in place
    handed_out: list[Package]
    members: dict[str, Manifest]


def _relative(path: str, folder: str) -> str:
    return path[len(folder) + 1 :] if folder else path


def _within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it ("" is the root)."""
    return not folder or path == folder or path.startswith(folder + "/")
