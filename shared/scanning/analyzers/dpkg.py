"""Debian and Ubuntu packages from dpkg's status database (and distroless status.d)."""

from __future__ import annotations

from typing import ClassVar

from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.dpkg import parse_status

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"


@register
class DpkgAnalyzer(Analyzer):
    name = "dpkg"
    version = 1
    paths: ClassVar[frozenset[str]] = frozenset({STATUS})
    prefixes: ClassVar[tuple[str, ...]] = (STATUS_D,)
    max_file_size = 64 * 1024 * 1024

    def required(self, path: str) -> bool:
        # distroless keeps <pkg> stanza files beside <pkg>.md5sums lists
        rest = path[len(STATUS_D) :]
        return "/" not in rest and not rest.endswith(".md5sums")

    def analyze(self, file: FileInput) -> AnalysisResult:
        pkgs = parse_status(file.content, file.path, require_status=file.path == STATUS)
        return AnalysisResult(packages=pkgs)
