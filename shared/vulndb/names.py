"""Package-name normalisation per ecosystem, applied the same way to advisories and inventories."""

from __future__ import annotations

from shared.ecosystems import pep503


def ecosystem_base(ecosystem: str) -> str:
    """'Debian:12' -> 'Debian'; 'PyPI' -> 'PyPI'."""
    return ecosystem.split(":", 1)[0]


def normalise(ecosystem: str, name: str) -> str:
    base = ecosystem_base(ecosystem)
    if base == "PyPI":
        return pep503(name)
    if base in ("NuGet", "Packagist", "npm", "crates.io"):
        # case-insensitive registries (crates.io and npm names are lowercase in practice)
        return name.lower()
    if base == "Maven":
        return name.strip().replace("/", ":")
    if base == "Go":
        return name.strip().rstrip("/")
    return name
