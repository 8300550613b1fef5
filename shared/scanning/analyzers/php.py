"""PHP packages: Composer's installed.json in any vendor directory, and composer.lock of source trees."""

from __future__ import annotations

from typing import ClassVar

from shared.domain.models import ScanWarning
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.php import Parsed, parse_composer_lock, parse_installed_json

INSTALLED_JSON = "vendor/composer/installed.json"


def _result(file: FileInput, parsed: Parsed) -> AnalysisResult:
    packages, problems = parsed
    warnings = [
        ScanWarning(code="parse-error", message=f"{file.path}: {p}", path=file.path, layer_diff_id=file.layer_diff_id)
        for p in problems
    ]
    return AnalysisResult(packages=packages, warnings=warnings)


@register
class ComposerInstalledAnalyzer(Analyzer):
    """What Composer installed: ``vendor/composer/installed.json``, wherever the application lives."""

    name = "composer-installed"
    version = 1
    paths: ClassVar[frozenset[str]] = frozenset({INSTALLED_JSON})
    suffixes: ClassVar[tuple[str, ...]] = ("/" + INSTALLED_JSON,)

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _result(file, parse_installed_json(file.content, file.path))


@register
class ComposerLockAnalyzer(Analyzer):
    """``composer.lock``, on source-tree scans only."""

    name = "composer-lock"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("composer.lock",)
    scopes = frozenset({"dir"})

    def required(self, path: str) -> bool:
        # Libraries under vendor/ ship their own lock files (their development setup); they are not
        # what this project installs, which vendor/composer/installed.json and the root lock file say.
        return (path == "composer.lock" or path.endswith("/composer.lock")) and not (
            path.startswith("vendor/") or "/vendor/" in path
        )

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _result(file, parse_composer_lock(file.content, file.path))
