"""Go: modules compiled into Go binaries, and the requirements of go.mod files (source trees)."""

from __future__ import annotations

from typing import ClassVar

from shared.domain.models import ScanWarning
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.gobinary import parse_go_binary
from shared.scanning.parsers.gomod import parse_go_mod


def _warnings(path: str, problems: list[str]) -> list[ScanWarning]:
    return [ScanWarning(code="parse-error", message=f"{path}: {p}", path=path) for p in problems]


@register
class GoBinaryAnalyzer(Analyzer):
    """Every ELF file is offered; those without Go build information yield nothing, silently."""

    name = "golang-binary"
    version = 1
    executables = True
    # Go links statically, so a single program (a Kubernetes component, a
    # cloud CLI) is commonly 50-120 MiB; the build information may sit near
    # the end of the data, so the whole file is needed. Larger files are
    # reported as too large by the engine rather than read in part.
    max_file_size = 128 * 1024 * 1024

    def analyze(self, file: FileInput) -> AnalysisResult:
        packages, problems = parse_go_binary(file.content, file.path)
        return AnalysisResult(packages=packages, warnings=_warnings(file.path, problems))


@register
class GoModAnalyzer(Analyzer):
    """``go.mod`` requirements; a lock-file kind of input, so source trees (dir:) only."""

    name = "gomod"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("go.mod",)
    scopes: ClassVar[frozenset[str]] = frozenset({"dir"})
    max_file_size = 8 * 1024 * 1024

    def required(self, path: str) -> bool:
        return path.rsplit("/", 1)[-1] == "go.mod"

    def analyze(self, file: FileInput) -> AnalysisResult:
        packages, problems = parse_go_mod(file.content, file.path)
        return AnalysisResult(packages=packages, warnings=_warnings(file.path, problems))
