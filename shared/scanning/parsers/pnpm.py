"""pnpm's ``pnpm-lock.yaml``, lockfile versions 5.x, 6.x and 9.x.

The ``packages`` map is keyed by a package path whose spelling changed:

- 5.x (pnpm 5-7): ``/name/1.2.3`` and ``/@scope/name/1.2.3``, peer dependencies
  appended after ``_`` (``/react-dom/17.0.2_react@17.0.2``);
- 6.x (pnpm 8): ``/name@1.2.3``, peers in parentheses
  (``/debug@4.3.4(supports-color@8.1.1)``);
- 9.x (pnpm 9 on): ``name@1.2.3`` without the slash and without peers; the
  peer-specific variants and their dependencies moved to ``snapshots``.

Packages that do not come from a registry (git, tarball URLs) are keyed by
their source and carry ``name`` and ``version`` fields, which win over the key.
Local directories and tarballs (``file:``, ``link:``, a ``directory``
resolution) are the project's own code and are not listed; neither are the
workspace projects listed under ``importers``, whose versions the lock does not
record.

Development-only packages: 5.x and 6.x write ``dev: true`` on them
(``dev: false`` for production-only, no ``dev`` for both). 9.x dropped the
flag; the packages reachable from an importer's ``devDependencies`` but from
no importer's ``dependencies`` or ``optionalDependencies`` are development-only.
"""

from __future__ import annotations

from typing import Any

from shared.domain.models import Package
from shared.scanning.parsers.npm import Parsed, dedupe, development_only, load_yaml, npm_package, split_spec

_LOCAL = ("file:", "link:")
_PROD_FIELDS = ("dependencies", "optionalDependencies")


def parse_pnpm_lock(data: bytes, path: str) -> Parsed:
    docs, problem = load_yaml(data)
    if problem:
        return [], [problem]
    # pnpm 10 may open the file with a separate document for its own config
    # dependencies; the lock proper is the last document
    doc = docs[-1] if docs else None
    if doc is None:
        return [], []
    if not isinstance(doc, dict):
        return [], ["not a YAML mapping"]
    major = _major(doc.get("lockfileVersion"))
    if major is None:
        return [], [f"unknown lockfileVersion {doc.get('lockfileVersion')!r}"]
    packages = doc.get("packages") or {}
    if not isinstance(packages, dict):
        return [], ["'packages' is not a mapping"]
    problems: list[str] = []
    modern = major >= 7 or "snapshots" in doc
    found: dict[str, Package] = {}  # package key (peers stripped) -> package
    for key, entry in packages.items():
        if not isinstance(key, str) or not isinstance(entry, dict):
            problems.append(f"package {key!r} is not a mapping")
            continue
        pkg = _package(key, entry, path, major, modern)
        if pkg is None:
            continue
        if not modern:
            pkg.dev = entry.get("dev") is True
        found[_strip_peers(key) if modern else key] = pkg
    if modern:
        only_dev = _development_only_v9(doc, found)
        for k, p in found.items():
            p.dev = k in only_dev
    return dedupe(found.values()), problems


def _major(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        head = value.strip().split(".", 1)[0]
        return int(head) if head.isdigit() else None
    return None


def _strip_peers(ref: str) -> str:
    """``debug@4.3.4(supports-color@8.1.1)`` -> ``debug@4.3.4``."""
    i = ref.find("(")
    return ref if i < 0 else ref[:i]


def _package(key: str, entry: dict[str, Any], path: str, major: int, modern: bool) -> Package | None:
    resolution = entry.get("resolution")
    if isinstance(resolution, dict) and (
        resolution.get("type") == "directory" or str(resolution.get("tarball", "")).startswith("file:")
    ):
        return None  # a folder or tarball of the project's own tree
    if key.lstrip("/").startswith(_LOCAL):
        return None
    name, version = _from_key(key, major, modern)
    if version.startswith(_LOCAL):
        return None
    if isinstance(entry.get("name"), str) and entry["name"]:
        name = entry["name"]
    v = entry.get("version")
    if isinstance(v, str) and v:
        version = v
    if not name or not version or version.startswith(_LOCAL):
        return None
    return npm_package(name, version, path)


def _from_key(key: str, major: int, modern: bool) -> tuple[str, str]:
    """(name, version) spelled in a ``packages`` key; empty when the key does not spell them."""
    if modern:
        name, version = split_spec(_strip_peers(key))
        return name, version
    if not key.startswith("/"):
        return "", ""  # a git or tarball source: name and version are in the entry
    rest = key[1:]
    if major >= 6:
        name, version = split_spec(_strip_peers(rest))
        return name, version
    parts = rest.split("/", 2) if rest.startswith("@") else rest.split("/", 1)
    if len(parts) < (3 if rest.startswith("@") else 2):
        return "", ""
    version = parts[-1].split("_", 1)[0]
    return "/".join(parts[:-1]), version


def _dep_ref(name: str, value: object) -> str | None:
    """An importer or snapshot dependency -> the snapshot key it points at; None for local links."""
    if not isinstance(value, str) or not value or value.startswith(_LOCAL):
        return None
    if "@" in _strip_peers(value)[1:]:
        return value  # an alias: "real-name@1.2.3"
    return f"{name}@{value}"


def _development_only_v9(doc: dict[str, Any], found: dict[str, Package]) -> set[str]:
    snapshots = doc.get("snapshots") or {}
    if not isinstance(snapshots, dict):
        snapshots = {}
    # nodes: snapshot keys and package keys; a snapshot leads to its package and its dependencies
    edges: dict[str, list[str]] = {k: [] for k in found}
    for key, snap in snapshots.items():
        if not isinstance(key, str):
            continue
        out = [_strip_peers(key)]
        if isinstance(snap, dict):
            for f in _PROD_FIELDS:
                deps = snap.get(f)
                if isinstance(deps, dict):
                    out.extend(r for n, v in deps.items() if (r := _dep_ref(str(n), v)) is not None)
        edges[key] = out
        edges.setdefault(_strip_peers(key), [])
    prod_roots: list[str] = []
    dev_roots: list[str] = []
    importers = doc.get("importers")
    if not isinstance(importers, dict):
        importers = {".": doc}  # a single project keeps its dependencies at the top level
    for imp in importers.values():
        if not isinstance(imp, dict):
            continue
        for f, target in (("dependencies", prod_roots), ("optionalDependencies", prod_roots)):
            target.extend(_importer_refs(imp.get(f)))
        dev_roots.extend(_importer_refs(imp.get("devDependencies")))
    return development_only(found, edges, prod_roots, dev_roots)


def _importer_refs(deps: object) -> list[str]:
    if not isinstance(deps, dict):
        return []
    out = []
    for n, spec in deps.items():
        value = spec.get("version") if isinstance(spec, dict) else spec
        r = _dep_ref(str(n), value)
        if r is not None:
            out.append(r)
    return out
