"""PHP packages: Composer's ``vendor/composer/installed.json`` and ``composer.lock``.

Every parser takes bytes and returns ``(packages, problems)``, like the other
language parsers. Nothing raises on bad input and nothing does I/O.

Versions are kept exactly as Composer recorded them, leading ``v`` included
(``v6.4.3`` for most Symfony packages). That is the spelling Packagist itself
publishes in each release's ``version`` field, which is what the OSV
Packagist ecosystem enumerates into its ``affected[].versions`` lists; OSV's
Packagist version ordering drops a leading ``v`` before comparing, so range
matching is unaffected either way, while stripping it would miss the exact
version lists. Branch versions (``dev-main``) are kept too: they are what is
installed, even if no advisory names them.
"""

from __future__ import annotations

import json
from typing import Any

from shared.domain.models import Package

Parsed = tuple[list[Package], list[str]]

COMPOSER = "composer"


def _licenses(value: object) -> list[str]:
    """``license`` is a string or a list of strings in Composer's schema."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def _json(content: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(content.decode("utf-8-sig")), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc}"


def _entries(items: object, path: str, dev: set[str] | bool) -> tuple[list[Package], int]:
    """Packages of a list of Composer package objects, and how many entries were unusable.

    ``dev`` is True when every entry is development-only, or the set of names that are.
    """
    out: list[Package] = []
    skipped = 0
    if not isinstance(items, list):
        return out, skipped
    for item in items:
        if not isinstance(item, dict):
            skipped += 1
            continue
        name, version = item.get("name"), item.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            skipped += 1
            continue
        out.append(
            Package(
                type=COMPOSER,
                name=name,
                version=version,
                licenses=_licenses(item.get("license")),
                purl="",
                found_in=path,
                dev=dev if isinstance(dev, bool) else name in dev,
            )
        )
    return out, skipped


def _problems(skipped: int) -> list[str]:
    return [f"{skipped} package entries without a name or version were skipped"] if skipped else []


def parse_installed_json(content: bytes, path: str) -> Parsed:
    """Packages Composer installed into a vendor directory.

    Composer 1 wrote a JSON array of packages. Composer 2 writes an object
    with ``packages`` and ``dev-package-names`` (the packages installed only
    because of ``require-dev``), which marks them development-only.
    """
    doc, error = _json(content)
    if error is not None:
        return [], [error]
    if isinstance(doc, list):
        packages, skipped = _entries(doc, path, False)
        return packages, _problems(skipped)
    if isinstance(doc, dict) and isinstance(doc.get("packages"), list):
        dev_names = doc.get("dev-package-names")
        names = {n for n in dev_names if isinstance(n, str)} if isinstance(dev_names, list) else set()
        packages, skipped = _entries(doc["packages"], path, names)
        return packages, _problems(skipped)
    return [], ["not a Composer installed.json: neither a list of packages nor an object with 'packages'"]


def parse_composer_lock(content: bytes, path: str) -> Parsed:
    """Packages of a ``composer.lock``: ``packages`` are runtime, ``packages-dev`` development-only."""
    doc, error = _json(content)
    if error is not None:
        return [], [error]
    if not isinstance(doc, dict):
        return [], ["not a composer.lock: the top level is not an object"]
    runtime, skipped_runtime = _entries(doc.get("packages"), path, False)
    dev, skipped_dev = _entries(doc.get("packages-dev"), path, True)
    return runtime + dev, _problems(skipped_runtime + skipped_dev)
