"""npm: a package's own ``package.json``, and ``package-lock.json`` / ``npm-shrinkwrap.json``.

``package.json`` of an installed package gives its name, version and declared
licence. The licence is written three ways in the wild: ``"license": "MIT"``
(an SPDX expression, the current form), a legacy ``"license": {"type": "MIT"}``
object, or a legacy ``"licenses": [{"type": "MIT"}, ...]`` array.

Lock files come in three versions:

- v1 (npm 5 and 6): a ``dependencies`` tree keyed by package name, nested
  where npm nested ``node_modules``; ``dev: true`` marks development-only
  packages; aliases are written ``"version": "npm:real-name@1.2.3"`` and local
  directories ``"version": "file:../dir"`` (no version of their own: skipped).
- v2 (npm 7 and 8; it carries a v1 ``dependencies`` copy, which is ignored) and
  v3 (npm 9 on): a flat ``packages`` map keyed by install location, e.g.
  ``node_modules/a/node_modules/@s/b``. The package name is what follows the
  last ``node_modules/`` unless the entry has a ``name`` (aliases). ``""`` is
  the project itself (not listed). Keys without ``node_modules/`` are workspace
  packages, listed with their own version; ``link: true`` entries point at them
  and are not counted again. ``dev: true`` means development-only;
  ``devOptional`` (needed by an optional production dependency too),
  ``optional`` and ``peer`` do not.

The same name and version met at several install locations is listed once;
it is development-only if every occurrence is.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from shared.domain.models import Package

# the C loader when PyYAML was built with libyaml (several times faster), else the Python one
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Parsed = tuple[list[Package], list[str]]
N = TypeVar("N", bound=Hashable)

NODE_MODULES = "node_modules/"


def load_json(data: bytes) -> tuple[Any, str | None]:
    """(document, problem). UTF-8 with or without a byte order mark; UTF-16/32 as JSON allows."""
    try:
        return json.loads(data), None
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 ({exc.reason})"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except RecursionError:
        return None, "not valid JSON (nested too deeply)"


def load_yaml(data: bytes) -> tuple[list[Any], str | None]:
    """(documents, problem), with PyYAML's safe loader (the C one when built with libyaml)."""
    try:
        return list(yaml.load_all(data, Loader=_YAML_LOADER)), None  # a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or type(exc).__name__
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        return [], f"not valid YAML ({what}{where})"
    except RecursionError:
        return [], "not valid YAML (nested too deeply)"


def licenses_of(doc: dict[str, Any]) -> list[str]:
    """Declared licences of a package manifest or lock entry, in their written order."""
    out: list[str] = []

    def add(value: object) -> None:
        if isinstance(value, str):
            v = value.strip()
            if v and v not in out:
                out.append(v)
        elif isinstance(value, dict):
            add(value.get("type"))

    lic = doc.get("license")
    add(lic)
    legacy = doc.get("licenses")
    if isinstance(legacy, list):
        for item in legacy:
            add(item)
    else:
        add(legacy)
    return out


def npm_package(name: str, version: str, path: str, *, dev: bool = False, licenses: list[str] | None = None) -> Package:
    return Package(
        type="npm",
        name=name,
        version=version,
        licenses=licenses or [],
        purl="",
        found_in=path,
        dev=dev,
    )


def dedupe(packages: Iterable[Package]) -> list[Package]:
    """One package per (name, version): development-only only if every occurrence is; licences merged."""
    seen: dict[tuple[str, str], Package] = {}
    for p in packages:
        k = (p.name, p.version)
        have = seen.get(k)
        if have is None:
            seen[k] = p
            continue
        if not p.dev:
            have.dev = False
        for lic in p.licenses:
            if lic not in have.licenses:
                have.licenses.append(lic)
    return list(seen.values())


def split_spec(spec: str) -> tuple[str, str]:
    """``name@rest`` -> (name, rest); a scope's leading '@' is part of the name. No '@': (spec, '')."""
    at = spec.find("@", 1)
    if at < 0:
        return spec, ""
    return spec[:at], spec[at + 1 :]


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


# -- package.json of an installed package -------------------------------------


def parse_package_json(data: bytes, path: str) -> Parsed:
    """The package whose root directory holds this ``package.json``; none if it lacks a name or version."""
    doc, problem = load_json(data)
    if problem:
        return [], [problem]
    if not isinstance(doc, dict):
        return [], [f"not a JSON object but {type(doc).__name__}"]
    name, version = _text(doc.get("name")), _text(doc.get("version"))
    if not name or not version:
        return [], []
    return [npm_package(name, version, path, licenses=licenses_of(doc))], []


@dataclass
class Manifest:
    """What a project's ``package.json`` says about its dependencies.

    ``prod`` is ``dependencies`` plus ``optionalDependencies``, ``dev`` is
    ``devDependencies`` (a name in both counts as production: it is installed
    for production); both map a name to its range. ``workspaces`` are the
    folder patterns of a monorepo's member projects.
    """

    prod: dict[str, str] = field(default_factory=dict)
    dev: dict[str, str] = field(default_factory=dict)
    workspaces: list[str] = field(default_factory=list)


def parse_manifest(data: bytes) -> Manifest | None:
    """A project's ``package.json``; None if it is not a JSON object."""
    doc, problem = load_json(data)
    if problem or not isinstance(doc, dict):
        return None
    m = Manifest()
    for name, target in (("dependencies", m.prod), ("optionalDependencies", m.prod), ("devDependencies", m.dev)):
        deps = doc.get(name)
        if isinstance(deps, dict):
            for k, v in deps.items():
                if isinstance(k, str) and isinstance(v, str):
                    target[k] = v
    for k in m.prod:
        m.dev.pop(k, None)
    ws = doc.get("workspaces")
    if isinstance(ws, dict):  # Yarn's {"packages": [...], "nohoist": [...]}
        ws = ws.get("packages")
    if isinstance(ws, list):
        m.workspaces = [w for w in ws if isinstance(w, str) and w]
    return m


# -- package-lock.json ----------------------------------------------------------


def parse_package_lock(data: bytes, path: str) -> Parsed:
    doc, problem = load_json(data)
    if problem:
        return [], [problem]
    if not isinstance(doc, dict):
        return [], [f"not a JSON object but {type(doc).__name__}"]
    packages = doc.get("packages")
    if isinstance(packages, dict):
        return _lock_packages(packages, path)
    if packages is not None:
        return [], ["'packages' is not an object"]
    deps = doc.get("dependencies")
    if isinstance(deps, dict):
        out: list[Package] = []
        problems: list[str] = []
        _lock_v1(deps, path, out, problems, "")
        return dedupe(out), problems
    if deps is not None:
        return [], ["'dependencies' is not an object"]
    return [], []


def _lock_v1(deps: dict[str, Any], path: str, out: list[Package], problems: list[str], where: str) -> None:
    """v1 ``dependencies``, walked iteratively (nesting follows node_modules, which can be deep)."""
    stack: list[tuple[dict[str, Any], str]] = [(deps, where)]
    while stack:
        level, at = stack.pop()
        for key, entry in level.items():
            if not isinstance(entry, dict):
                problems.append(f"dependency {at}{key!r} is not an object")
                continue
            name, version = key, _text(entry.get("version"))
            if version.startswith("npm:"):
                # an alias: installed under `key`, really `real@version`
                real, rest = split_spec(version[4:])
                if real and rest:
                    name, version = real, rest
            if version and not version.startswith(("file:", "link:")):
                out.append(npm_package(name, version, path, dev=entry.get("dev") is True))
            nested = entry.get("dependencies")
            if isinstance(nested, dict):
                stack.append((nested, f"{at}{key} > "))


def _lock_packages(packages: dict[str, Any], path: str) -> Parsed:
    """v2/v3 ``packages``: install location -> entry."""
    problems: list[str] = []
    # workspace folder -> the name its link entry installs it under
    linked_as: dict[str, str] = {}
    for key, entry in packages.items():
        if isinstance(entry, dict) and entry.get("link") is True:
            target = _text(entry.get("resolved"))
            i = key.rfind(NODE_MODULES)
            if target and i >= 0:
                linked_as.setdefault(target, key[i + len(NODE_MODULES) :])
    out: list[Package] = []
    for key, entry in packages.items():
        if key == "":
            continue  # the project itself
        if not isinstance(entry, dict):
            problems.append(f"package entry {key!r} is not an object")
            continue
        if entry.get("link") is True:
            continue  # counted at the folder it points to
        i = key.rfind(NODE_MODULES)
        if i >= 0:
            folder_name = key[i + len(NODE_MODULES) :]
        else:
            folder_name = linked_as.get(key, "")  # a workspace package
        name = _text(entry.get("name")) or folder_name
        version = _text(entry.get("version"))
        if not name or not version:
            continue
        out.append(npm_package(name, version, path, dev=entry.get("dev") is True, licenses=licenses_of(entry)))
    return dedupe(out), problems


# -- which lock entries only development needs ------------------------------------


def development_only(
    nodes: Iterable[N], edges: Mapping[N, Iterable[N]], prod_roots: Iterable[N], dev_roots: Iterable[N]
) -> set[N]:
    """Those ``nodes`` reachable from a development root but from no production root.

    Nodes reachable from neither stay production: without evidence a package
    is development-only, it is matched like any other.
    """

    def reach(roots: Iterable[N]) -> set[N]:
        seen: set[N] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            stack.extend(m for m in edges.get(n, ()) if m not in seen)
        return seen

    prod = reach(prod_roots)
    return (reach(dev_roots) - prod) & set(nodes)
