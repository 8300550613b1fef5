"""The enabled analyzers: one line each. Adding a format is one module and one line here."""

from __future__ import annotations

import importlib

from shared.scanning.analyzers.base import Analyzer, registered

ENABLED_MODULES: tuple[str, ...] = (
    "apk",
    "dotnet",
    "dpkg",
    "golang",
    "java",
    "npm",
    "os_release",
    "php",
    "python",
    "rpm",
    "ruby",
    "rust",
)
_ENABLED_MODULES = frozenset(f"shared.scanning.analyzers.{m}" for m in ENABLED_MODULES)
for _module in sorted(_ENABLED_MODULES):
    importlib.import_module(_module)  # importing a module registers its analyzers


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
