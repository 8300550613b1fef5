"""Yarn's ``yarn.lock``: the classic v1 format and Berry's (Yarn 2 and later).

Classic (v1) is Yarn's own indented format, not YAML::

    "@babel/core@^7.0.0", "@babel/core@^7.1.0":
      version "7.2.0"
      dependencies:
        "@babel/types" "^7.2.0"

Each block lists the descriptors (``name@range``) it satisfies; an alias
``alias@npm:real@range`` installs ``real``.

Berry writes YAML with a ``__metadata`` block; each entry has a
``resolution`` such as ``"name@npm:1.2.3"``, which names the package and
version actually installed (so aliases resolve to the real package).

What is listed, in both: packages resolved from a registry (``npm:``, or a
plain range in v1) and from git or tarball URLs (with the version the lock
records). Packages of the project's own tree are not: ``workspace:`` (Berry
lists workspaces with the placeholder version ``0.0.0-use.local``),
``link:``, ``portal:``, ``file:`` and ``exec:``. Berry's ``patch:`` entries
are the same package as the ``npm:`` entry they patch, which is listed
already.

Neither format says which packages only development needs; that comes from
the project's ``package.json`` (:func:`mark_development`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.domain.models import Package
from shared.scanning.parsers.npm import Manifest, dedupe, development_only, load_yaml, npm_package, split_spec

LOCAL_PROTOCOLS = ("workspace:", "link:", "portal:", "file:", "exec:", "patch:")
_DEP_FIELDS = ("dependencies", "optionalDependencies")


@dataclass
class YarnLock:
    """A parsed lock: entries, and the descriptors that lead to each (for the dependency walk)."""

    #: one per lock entry; None where the entry is not listed (workspace, link, ...)
    packages: list[Package | None] = field(default_factory=list)
    #: descriptor ("name@range") -> entry index
    index: dict[str, int] = field(default_factory=dict)
    #: entry index -> descriptors of its dependencies
    deps: list[list[str]] = field(default_factory=list)
    berry: bool = False
    #: Berry: workspace folder (relative to the lock) -> its entry; the root workspace is "."
    workspaces: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def listed(self) -> list[Package]:
        return dedupe(p for p in self.packages if p is not None)

    def resolve(self, descriptor: str) -> int | None:
        """The entry a descriptor resolves to, if the lock has it."""
        i = self.index.get(descriptor)
        if i is None and self.berry:
            # Berry writes registry ranges as "npm:^1.2.0"; manifests and older Berry locks omit the protocol
            name, rng = split_spec(descriptor)
            if rng and ":" not in rng:
                i = self.index.get(f"{name}@npm:{rng}")
        return i


def parse_yarn_lock(data: bytes, path: str) -> YarnLock:
    if b"__metadata:" in data:
        return _berry(data, path)
    return _classic(data, path)


def mark_development(lock: YarnLock, root: Manifest, members: dict[str, Manifest] | None = None) -> None:
    """Mark the packages only development needs: reachable from ``devDependencies`` alone.

    ``root`` is the ``package.json`` beside the lock; ``members`` the workspace
    projects' manifests that are known, by folder relative to the lock. Berry
    lists each workspace with its dependencies and development dependencies
    merged; where a workspace's own manifest is not known, all of them count as
    production (an unknown is never taken to be development-only).
    """
    members = members or {}

    def refs(deps: dict[str, str]) -> list[int]:
        return [j for j in (lock.resolve(f"{n}@{r}") for n, r in deps.items()) if j is not None]

    edges = {i: [j for j in map(lock.resolve, ds) if j is not None] for i, ds in enumerate(lock.deps)}
    prod_roots = refs(root.prod)
    dev_roots = refs(root.dev)
    for folder, entry in lock.workspaces.items():
        m = root if folder == "." else members.get(folder)
        if m is not None:
            edges[entry] = refs(m.prod)
        elif folder != ".":
            prod_roots.append(entry)
    for m in members.values():
        prod_roots.extend(refs(m.prod))
        dev_roots.extend(refs(m.dev))
    only_dev = development_only(edges, edges, prod_roots, dev_roots)
    for i, p in enumerate(lock.packages):
        if p is not None:
            p.dev = i in only_dev


# -- classic ----------------------------------------------------------------------


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        try:
            value = json.loads(token)
        except json.JSONDecodeError:
            return token[1:-1]
        return value if isinstance(value, str) else token[1:-1]
    return token


def _split_pair(text: str) -> tuple[str, str]:
    """``key value`` where either may be double-quoted -> (key, value), both unquoted."""
    if text.startswith('"'):
        end = 1
        while True:
            end = text.find('"', end)
            if end < 0:
                return _unquote(text), ""
            if text[end - 1] != "\\":
                break
            end += 1
        return _unquote(text[: end + 1]), _unquote(text[end + 1 :])
    key, _, value = text.partition(" ")
    return key, _unquote(value)


def _split_descriptors(header: str) -> list[str]:
    out: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
            buf.append(ch)
        elif ch == "," and not quoted:
            out.append(_unquote("".join(buf)))
            buf = []
        else:
            buf.append(ch)
    out.append(_unquote("".join(buf)))
    return [d for d in out if d]


def _classic_name(descriptor: str) -> tuple[str, str] | None:
    """(package name, range) a v1 descriptor installs; None for the project's own code."""
    name, rng = split_spec(descriptor)
    if not name:
        return None
    if rng.startswith("npm:"):
        # "npm:real@range" is an alias (ranges never hold '@'); "npm:^1.2.0" only spells out the protocol
        real, real_rng = split_spec(rng[4:])
        return (real, real_rng) if real_rng else (name, rng[4:])
    if rng.startswith(LOCAL_PROTOCOLS):
        return None
    return name, rng


def _classic(data: bytes, path: str) -> YarnLock:
    lock = YarnLock()
    text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    current: dict[str, Any] | None = None
    section: dict[str, str] | None = None
    entries: list[tuple[list[str], dict[str, Any]]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith(("<<<<<<<", "=======", ">>>>>>>")):
            lock.problems.append(f"line {lineno}: unresolved merge conflict marker")
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if indent == 0:
            section = None
            if not stripped.endswith(":"):
                lock.problems.append(f"line {lineno}: expected an entry header ending in ':'")
                current = None
                continue
            current = {}
            entries.append((_split_descriptors(stripped[:-1]), current))
            continue
        if current is None:
            lock.problems.append(f"line {lineno}: field outside any entry")
            continue
        if indent <= 2:
            section = None
            if stripped.endswith(":") and " " not in stripped.rstrip(":").strip('"'):
                key = _unquote(stripped[:-1])
                section = {}
                current[key] = section
                continue
            key, value = _split_pair(stripped)
            current[key] = value
            continue
        if section is None:
            lock.problems.append(f"line {lineno}: unexpected indentation")
            continue
        key, value = _split_pair(stripped)
        section[key] = value

    for descs, fields in entries:
        i = len(lock.packages)
        for d in descs:
            lock.index.setdefault(d, i)
        deps: list[str] = []
        for f in _DEP_FIELDS:
            sect = fields.get(f)
            if isinstance(sect, dict):
                deps.extend(f"{n}@{r}" for n, r in sect.items())
        lock.deps.append(deps)
        named = _classic_name(descs[0]) if descs else None
        version = fields.get("version")
        pkg: Package | None = None
        if named is not None:
            if isinstance(version, str) and version:
                pkg = npm_package(named[0], version, path)
            else:
                lock.problems.append(f"entry {', '.join(descs)!r} has no version")
        lock.packages.append(pkg)
    return lock


# -- Berry -----------------------------------------------------------------------------


def _berry(data: bytes, path: str) -> YarnLock:
    lock = YarnLock(berry=True)
    docs, problem = load_yaml(data)
    if problem:
        lock.problems.append(problem)
        return lock
    doc = docs[-1] if docs else None
    if not isinstance(doc, dict):
        lock.problems.append("not a YAML mapping")
        return lock
    for key, entry in doc.items():
        if key == "__metadata":
            continue
        if not isinstance(key, str) or not isinstance(entry, dict):
            lock.problems.append(f"entry {key!r} is not a mapping")
            continue
        i = len(lock.packages)
        for d in key.split(","):
            d = d.strip()
            if d:
                lock.index.setdefault(d, i)
        deps: list[str] = []
        for f in _DEP_FIELDS:
            sect = entry.get(f)
            if isinstance(sect, dict):
                deps.extend(f"{n}@{r}" for n, r in sect.items() if isinstance(n, str) and isinstance(r, str))
        lock.deps.append(deps)
        lock.packages.append(_berry_package(key, entry, path, lock.problems))
        resolution = entry.get("resolution")
        if isinstance(resolution, str):
            ref = split_spec(resolution)[1]
            if ref.startswith("workspace:"):
                folder = ref[len("workspace:") :].strip("/")
                lock.workspaces.setdefault(folder or ".", i)
    return lock


def _berry_package(key: str, entry: dict[str, Any], path: str, problems: list[str]) -> Package | None:
    resolution = entry.get("resolution")
    if not isinstance(resolution, str) or not resolution:
        problems.append(f"entry {key!r} has no resolution")
        return None
    name, ref = split_spec(resolution)
    if not name or not ref:
        problems.append(f"entry {key!r} has an unreadable resolution {resolution!r}")
        return None
    if ref.startswith("npm:"):
        version = ref[4:].split("::", 1)[0]  # "::__archiveUrl=..." names a custom tarball location
    elif ref.startswith(LOCAL_PROTOCOLS):
        return None
    else:
        v = entry.get("version")
        version = str(v) if isinstance(v, str | int | float) and not isinstance(v, bool) else ""
    if not version:
        problems.append(f"entry {key!r} has no version")
        return None
    return npm_package(name, version, path)
