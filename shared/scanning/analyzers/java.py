"""Java archives anywhere in the image: jar, war, ear (and par, sar, hpi, jpi), nested ones included.

The rules (which metadata names a package, how nesting shows in ``found_in``,
the limits against zip bombs) are in :mod:`shared.scanning.parsers.java`.
"""

from __future__ import annotations

from typing import ClassVar

from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.java import ARCHIVE_SUFFIXES, parse_archive


@register
class JarAnalyzer(Analyzer):
    name = "jar"
    version = 1
    suffixes: ClassVar[tuple[str, ...]] = ARCHIVE_SUFFIXES
    # A zip is read from its end (the central directory), so the engine must
    # hand over the whole archive in memory. 256 MiB holds real application
    # archives (fat Spring Boot jars and application-server ears are tens to a
    # couple of hundred MB) while bounding what one file costs; bigger ones are
    # skipped with a warning. Nested archives get their own caps.
    max_file_size = 256 * 1024 * 1024

    def analyze(self, file: FileInput) -> AnalysisResult:
        inv = parse_archive(file.content, file.path)
        return AnalysisResult(packages=inv.packages, warnings=inv.warnings)
