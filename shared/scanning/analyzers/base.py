"""The analyzer contract and registry.

An analyzer *finds* files (it declares the paths it wants, cheaply matchable
while streaming a layer) and hands their bytes to a pure parser in
``shared/scanning/parsers``. It never touches the vulnerability database.

Each analyzer carries a ``version``; the pair (name, version) goes into layer
cache keys, so bumping it invalidates exactly the cached results it produced.
Register with :func:`register`; the enabled list lives in ``all.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from shared.domain.models import OSInfo, Package, ScanWarning

DEFAULT_MAX_FILE_SIZE = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileInput:
    """One file version handed to an analyzer: its path in the image and its bytes."""

    path: str
    content: bytes
    mode: int = 0o644
    layer_index: int = 0
    layer_diff_id: str | None = None


@dataclass(slots=True)
class AnalysisResult:
    """What one analyzer made of one file version.

    ``os`` carries an identification with a ``priority`` (higher wins when several
    files identify the OS). Packages are returned without ``ecosystem`` and
    ``purl``: those depend on the final OS and are filled in from the one
    table in :mod:`shared.ecosystems` after every layer is read.
    """

    packages: list[Package] = field(default_factory=list)
    os: OSInfo | None = None
    os_priority: int = 0
    warnings: list[ScanWarning] = field(default_factory=list)


class Analyzer:
    """Base class. Subclasses set the class attributes and implement :meth:`analyze`."""

    name: ClassVar[str]
    version: ClassVar[int]
    #: Exact image paths (relative, no leading slash) this analyzer wants.
    paths: ClassVar[frozenset[str]] = frozenset()
    #: Directory prefixes: any file directly or indirectly below them is wanted,
    #: subject to :meth:`required`.
    prefixes: ClassVar[tuple[str, ...]] = ()
    #: File-name suffixes wanted anywhere, subject to :meth:`required`.
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: Files larger than this are not read; a warning says so.
    max_file_size: ClassVar[int] = DEFAULT_MAX_FILE_SIZE
    #: Also hand this analyzer every ELF file, wherever it is (Go, Rust binaries).
    executables: ClassVar[bool] = False
    #: Which scans run it: "image" (registry, oci, docker-archive) and/or "dir".
    #: Lock files describe what a build *would* install, so their analyzers run
    #: on source trees (dir:) only; images are inventoried from what is installed.
    scopes: ClassVar[frozenset[str]] = frozenset({"image", "dir"})

    def required(self, path: str) -> bool:
        """Fine check for prefix and suffix matches (exact paths skip it)."""
        return True

    def analyze(self, file: FileInput) -> AnalysisResult:
        raise NotImplementedError


_REGISTRY: dict[str, type[Analyzer]] = {}


def register(cls: type[Analyzer]) -> type[Analyzer]:
    """Class decorator: make an analyzer known by its name."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"two analyzers are named {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> dict[str, type[Analyzer]]:
    return dict(_REGISTRY)
