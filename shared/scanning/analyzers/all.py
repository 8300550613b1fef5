"""The enabled analyzers: one import line each. Adding a format is one module and one line here."""

from __future__ import annotations

from shared.scanning.analyzers import (  # noqa: F401 - importing registers them
    apk,
    dotnet,
    dpkg,
    java,
    os_release,
    rpm,
)
from shared.scanning.analyzers.base import Analyzer, registered


def enabled_analyzers(scope: str | None = None) -> list[Analyzer]:
    """A fresh instance of every registered analyzer, sorted by name (stable cache keys).

    ``scope`` ("image" or "dir") keeps only the analyzers that run on that kind of scan.
    """
    return [cls() for _, cls in sorted(registered().items()) if scope is None or scope in cls.scopes]
