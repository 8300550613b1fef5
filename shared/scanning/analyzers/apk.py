"""Alpine, Wolfi and Chainguard packages from apk's installed database."""

from __future__ import annotations

from typing import ClassVar

from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.apk import parse_installed


@register
class ApkAnalyzer(Analyzer):
    name = "apk"
    version = 1
    paths: ClassVar[frozenset[str]] = frozenset({"lib/apk/db/installed"})
    max_file_size = 64 * 1024 * 1024

    def analyze(self, file: FileInput) -> AnalysisResult:
        return AnalysisResult(packages=parse_installed(file.content, file.path))
