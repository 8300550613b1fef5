"""Rust: crates recorded in binaries by cargo-auditable, and Cargo.lock files (source trees)."""

from __future__ import annotations

from typing import ClassVar

from shared.domain.models import ScanWarning
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.cargo import parse_cargo_lock
from shared.scanning.parsers.rustbinary import parse_rust_binary


def _warnings(path: str, problems: list[str]) -> list[ScanWarning]:
    return [ScanWarning(code="parse-error", message=f"{path}: {p}", path=path) for p in problems]


@register
class RustBinaryAnalyzer(Analyzer):
    """Every ELF file is offered; those without a ``.dep-v0`` section yield nothing, silently."""

    name = "rust-binary"
    version = 1
    executables = True
    # The same cap as Go binaries: large statically linked programs, and the
    # section table (which locates .dep-v0) sits at the end of the file.
    max_file_size = 128 * 1024 * 1024

    def analyze(self, file: FileInput) -> AnalysisResult:
        packages, problems = parse_rust_binary(file.content, file.path)
        return AnalysisResult(packages=packages, warnings=_warnings(file.path, problems))


@register
class CargoLockAnalyzer(Analyzer):
    """``Cargo.lock`` crates; a lock file, so source trees (dir:) only."""

    name = "cargo-lock"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("Cargo.lock",)
    scopes: ClassVar[frozenset[str]] = frozenset({"dir"})
    max_file_size = 16 * 1024 * 1024

    def required(self, path: str) -> bool:
        return path.rsplit("/", 1)[-1] == "Cargo.lock"

    def analyze(self, file: FileInput) -> AnalysisResult:
        packages, problems = parse_cargo_lock(file.content, file.path)
        return AnalysisResult(packages=packages, warnings=_warnings(file.path, problems))
