"""Ruby gems: installed gem specifications, and ``Gemfile.lock`` of source trees.

RubyGems keeps one ``<name>-<version>.gemspec`` per installed gem in the
``specifications`` directory of each gem home, wherever that is:
``/usr/lib/ruby/gems/3.1.0`` (and its ``specifications/default`` for the gems
bundled with Ruby), ``/var/lib/gems/*``, ``/usr/local/bundle``, Debian's
``/usr/share/rubygems-integration/all`` and ``/usr/lib/<triplet>/rubygems-integration/*``.
"""

from __future__ import annotations

from typing import ClassVar

from shared.domain.models import ScanWarning
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.ruby import Parsed, parse_gemfile_lock, parse_gemspec


def _result(file: FileInput, parsed: Parsed) -> AnalysisResult:
    packages, problems = parsed
    warnings = [
        ScanWarning(code="parse-error", message=f"{file.path}: {p}", path=file.path, layer_diff_id=file.layer_diff_id)
        for p in problems
    ]
    return AnalysisResult(packages=packages, warnings=warnings)


@register
class GemspecAnalyzer(Analyzer):
    """Installed gems, from ``specifications/*.gemspec`` (and ``specifications/default/*.gemspec``)."""

    name = "gemspec"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = (".gemspec",)

    def required(self, path: str) -> bool:
        head = path.rpartition("/")[0]
        if head.endswith("/default"):
            head = head[: -len("/default")]
        return head == "specifications" or head.endswith("/specifications")

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _result(file, parse_gemspec(file.content, file.path))


@register
class GemfileLockAnalyzer(Analyzer):
    """Bundler's lock file, on source-tree scans only."""

    name = "gemfile-lock"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ("Gemfile.lock", "gems.locked")
    scopes = frozenset({"dir"})

    def required(self, path: str) -> bool:
        base = path.rpartition("/")[2]
        # Gems installed into vendor/bundle carry their own lock files; they are not the project's.
        return base in ("Gemfile.lock", "gems.locked") and "vendor/bundle/" not in path

    def analyze(self, file: FileInput) -> AnalysisResult:
        return _result(file, parse_gemfile_lock(file.content, file.path))
