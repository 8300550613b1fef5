""".NET: NuGet packages from ``*.deps.json``, ``packages.lock.json`` and ``packages.config``.

**``<app>.deps.json``** is written by the .NET SDK beside a built or published
application and read by the host when it starts the app; it is what the app
loads. ``libraries`` lists every library as ``"<id>/<version>"`` with a
``type``:

- ``package``: a NuGet package, reported;
- ``runtimepack``: the .NET runtime bundled into a self-contained app,
  reported under its NuGet id (the ``runtimepack.`` prefix dropped, e.g.
  ``Microsoft.NETCore.App.Runtime.linux-x64``), since it is that package;
- ``project`` (the application itself and the projects it references, built
  from source with it) and ``reference`` (plain assembly references): no NuGet
  identity, not reported.

``targets["<runtimeTarget.name>"]`` says which assets each library brings at
run time. A package that is listed there with no ``runtime``, ``native``,
``runtimeTargets`` or ``resources`` assets (a meta-package, or one marked
``compileOnly``) loads no code and is left out; a package missing from that
target, or a file without it, is kept (better one too many than a miss).
``serviceable`` only says whether Microsoft may service the package in place;
it does not change what runs, so it is ignored.

**``packages.lock.json``** (NuGet's lock file, ``RestorePackagesWithLockFile``)
has ``dependencies`` per target framework (and per runtime identifier), each
package with a ``type``: ``Direct``, ``Transitive`` and ``CentralTransitive``
(central package management) are reported with their ``resolved`` version;
``Project`` entries are the solution's own projects. A package appearing under
several frameworks is reported once per version.

**``packages.config``** (the older ``<packages><package id version/>`` list):
every ``package`` element; ``developmentDependency="true"`` marks a
development-only one (``dev``). The XML is parsed with defusedxml, which
refuses DTDs and entity declarations, so an entity-expansion ("billion
laughs") or external-entity payload is an error, not a computation.

Malformed files raise :class:`ParseError`; single entries that cannot be read
are skipped with a note in the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# defusedxml ships no type information; the ignore stays harmless if stubs get installed.
from defusedxml import DefusedXmlException  # type: ignore[import-untyped,unused-ignore]
from defusedxml import ElementTree as SafeET

from shared.domain.models import Package
from shared.scanning.parsers import ParseError

RUNTIME_PACK_PREFIX = "runtimepack."
_RUNTIME_ASSETS = ("runtime", "native", "runtimeTargets", "resources")
_LOCKED_TYPES = frozenset({"direct", "transitive", "centraltransitive"})


@dataclass(slots=True)
class Parsed:
    packages: list[Package] = field(default_factory=list)
    #: Entries that were skipped, each a short sentence.
    notes: list[str] = field(default_factory=list)


def _package(name: str, version: str, path: str, *, dev: bool = False) -> Package:
    return Package(type="nuget", name=name, version=version, purl="", found_in=path, dev=dev)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ParseError(f"not valid JSON ({exc})") from None


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not an object")
    return value


def parse_deps_json(data: bytes, path: str) -> Parsed:
    doc = _object(_json(data), "the document")
    libraries = _object(doc.get("libraries"), "libraries")
    targets = _object(doc.get("targets"), "targets")
    runtime_target = _object(doc.get("runtimeTarget"), "runtimeTarget").get("name")
    target: dict[str, Any] | None = None
    if isinstance(runtime_target, str) and isinstance(targets.get(runtime_target), dict):
        target = targets[runtime_target]
    elif runtime_target is None and len(targets) == 1:
        only = next(iter(targets.values()))
        target = only if isinstance(only, dict) else None

    out = Parsed()
    seen: set[tuple[str, str]] = set()
    for key, lib in libraries.items():
        if not isinstance(lib, dict):
            out.notes.append(f"library {key!r} is not an object; skipped")
            continue
        kind = str(lib.get("type", "")).lower()
        if kind not in ("package", "runtimepack"):
            continue
        name, sep, version = key.partition("/")
        if not sep or not name or not version:
            out.notes.append(f"library {key!r} is not '<id>/<version>'; skipped")
            continue
        if target is not None and not _loads_code(target.get(key)):
            continue
        if kind == "runtimepack":
            name = name.removeprefix(RUNTIME_PACK_PREFIX)
        if (name, version) not in seen:
            seen.add((name, version))
            out.packages.append(_package(name, version, path))
    return out


def _loads_code(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return True  # not in the runtime target: keep it
    if entry.get("compileOnly") is True:
        return False
    return any(entry.get(k) for k in _RUNTIME_ASSETS)


def parse_packages_lock(data: bytes, path: str) -> Parsed:
    doc = _object(_json(data), "the document")
    frameworks = _object(doc.get("dependencies"), "dependencies")
    out = Parsed()
    seen: set[tuple[str, str]] = set()
    for framework, deps in frameworks.items():
        if not isinstance(deps, dict):
            out.notes.append(f"dependencies of {framework!r} are not an object; skipped")
            continue
        for name, dep in deps.items():
            if not isinstance(dep, dict):
                out.notes.append(f"{framework}: {name!r} is not an object; skipped")
                continue
            if str(dep.get("type", "")).lower() not in _LOCKED_TYPES:
                continue
            version = dep.get("resolved")
            if not isinstance(version, str) or not version:
                out.notes.append(f"{framework}: {name!r} has no resolved version; skipped")
                continue
            if (name, version) not in seen:
                seen.add((name, version))
                out.packages.append(_package(name, version, path))
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_packages_config(data: bytes, path: str) -> Parsed:
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ParseError(f"refused: {type(exc).__name__} (DTDs and entities are not allowed)") from None
    except SafeET.ParseError as exc:
        raise ParseError(f"not well-formed XML ({exc})") from None
    if _local(root.tag) != "packages":
        raise ParseError(f"the root element is <{_local(root.tag)}>, not <packages>")
    out = Parsed()
    seen: set[tuple[str, str, bool]] = set()
    for el in root:
        if not isinstance(el.tag, str) or _local(el.tag) != "package":
            continue
        name = (el.get("id") or "").strip()
        version = (el.get("version") or "").strip()
        if not name or not version:
            out.notes.append(f"a <package> lacks an id or version ({name or '?'}); skipped")
            continue
        dev = (el.get("developmentDependency") or "").strip().lower() == "true"
        if (name, version, dev) not in seen:
            seen.add((name, version, dev))
            out.packages.append(_package(name, version, path, dev=dev))
    return out
