"""Identifies the distribution from its release files."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from shared.domain.models import OSInfo
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers import osrelease

# path -> (parser, priority). When several identify the OS, the highest wins:
# os-release is the richest; the release files fill in for images without it.
_FILES: dict[str, tuple[Callable[[bytes, str], OSInfo | None], int]] = {
    "etc/os-release": (osrelease.parse_os_release, 100),
    "usr/lib/os-release": (osrelease.parse_os_release, 90),
    "etc/alpine-release": (osrelease.parse_alpine_release, 50),
    "etc/redhat-release": (osrelease.parse_redhat_release, 45),
    "etc/system-release": (osrelease.parse_redhat_release, 44),
    "etc/debian_version": (osrelease.parse_debian_version, 40),
}


@register
class OSReleaseAnalyzer(Analyzer):
    name = "os-release"
    version = 1
    paths: ClassVar[frozenset[str]] = frozenset(_FILES)
    max_file_size = 64 * 1024

    def analyze(self, file: FileInput) -> AnalysisResult:
        parser, priority = _FILES[file.path]
        return AnalysisResult(os=parser(file.content, file.path), os_priority=priority)
