"""The enabled analyzers: one import line each. Adding a format is one module and one line here."""

from __future__ import annotations

from types import ModuleType

from shared.scanning.analyzers import (
    apk,
    dotnet,
    dpkg,
    java,
    npm,
    os_release,
    php,
    python,
    rpm,
    ruby,
)
from shared.scanning.analyzers.base import Analyzer, registered

ENABLED: tuple[ModuleType, ...] = (apk, dotnet, dpkg, java, npm, os_release, php, python, rpm, ruby)
_ENABLED_MODULES = frozenset(m.__name__ for m in ENABLED)


def enabled_analyzers(scope: str | None = None) -> list[Analyzer]:
    """A fresh instance of every analyzer of the enabled modules, sorted by name (stable cache keys).

    Only modules listed here count, whatever else happens to be imported (a
    test may import an analyzer that is not enabled). ``scope`` ("image" or
    "dir") keeps the analyzers that run on that kind of scan.
    """
    return [
        cls()
        for _, cls in sorted(registered().items())
        if cls.__module__ in _ENABLED_MODULES and (scope is None or scope in cls.scopes)
    ]
