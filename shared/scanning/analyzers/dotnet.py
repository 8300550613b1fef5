""".NET: ``*.deps.json`` of built applications (images and source trees), NuGet lock files (source trees).

What each format says and what is taken from it is in
:mod:`shared.scanning.parsers.dotnet`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from shared.domain.models import ScanWarning
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers import ParseError
from shared.scanning.parsers.dotnet import Parsed, parse_deps_json, parse_packages_config, parse_packages_lock

_MAX = 16 * 1024 * 1024


def _run(parse: Callable[[bytes, str], Parsed], file: FileInput) -> AnalysisResult:
    try:
        parsed = parse(file.content, file.path)
    except ParseError as exc:
        return AnalysisResult(warnings=[ScanWarning(code="parse-error", message=f"{file.path}: {exc}", path=file.path)])
    return AnalysisResult(
        packages=parsed.packages,
        warnings=[ScanWarning(code="parse-error", message=f"{file.path}: {n}", path=file.path) for n in parsed.notes],
    )


def _named(path: str, base: str) -> bool:
    return path == base or path.endswith("/" + base)


@register
class DotnetDepsAnalyzer(Analyzer):
    """``<app>.deps.json``: the NuGet packages a built .NET application loads."""

    name = "dotnet-deps"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = (".deps.json",)
    max_file_size = _MAX

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _run(parse_deps_json, file)


@register
class NugetLockAnalyzer(Analyzer):
    """``packages.lock.json``: what a restore would install (source trees only)."""

    name = "nuget-lock"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("packages.lock.json",)
    scopes: ClassVar[frozenset[str]] = frozenset({"dir"})
    max_file_size = _MAX

    def required(self, path: str) -> bool:
        return _named(path, "packages.lock.json")

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _run(parse_packages_lock, file)


@register
class NugetConfigAnalyzer(Analyzer):
    """``packages.config``: the package list of older .NET Framework projects (source trees only)."""

    name = "nuget-config"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("packages.config",)
    scopes: ClassVar[frozenset[str]] = frozenset({"dir"})
    max_file_size = _MAX

    def required(self, path: str) -> bool:
        return _named(path, "packages.config")

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _run(parse_packages_config, file)
