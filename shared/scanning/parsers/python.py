"""Python packages: installed distribution metadata and the lock files of pip, Poetry, Pipenv and uv.

Every parser takes bytes and returns ``(packages, problems)``: the packages it
could read and, for anything it could not, one sentence each (the analyzer
turns those into scan warnings naming the file). Nothing here raises on bad
input and nothing does I/O.

Names are kept as the file declares them (``zope.interface``, ``Jinja2``,
``typing_extensions``); the purl normalises them per PEP 503, so identity is
the normalised name while reports show the declared one.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from email.parser import HeaderParser
from email.policy import compat32
from typing import Any

from shared.domain.models import Package

Parsed = tuple[list[Package], list[str]]

PYTHON = "python"

#: Distribution names as PEP 508 allows them (letters, digits, and inner '.', '_', '-').
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _package(name: str, version: str, path: str, *, licenses: list[str] | None = None, dev: bool = False) -> Package:
    return Package(
        type=PYTHON,
        name=name,
        version=version,
        licenses=licenses or [],
        purl="",
        found_in=path,
        dev=dev,
    )


def _text(content: bytes) -> str:
    """Text of a metadata or requirements file: UTF-8 (BOM or not), or UTF-16 when it starts with a BOM."""
    if content[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return content.decode("utf-16", errors="replace")
    return content.decode("utf-8-sig", errors="replace")


# -- installed distributions ----------------------------------------------------------


def _licenses(headers: Any) -> list[str]:
    """Declared licences: License-Expression (PEP 639) if present, else License, else the classifiers.

    The License field sometimes holds the whole licence text; a value spanning
    lines is text, not a name, and is left out.
    """
    expression = (headers.get("License-Expression") or "").strip()
    if expression:
        return [expression]
    out: list[str] = []
    value = (headers.get("License") or "").strip()
    if value and "\n" not in value and value.upper() != "UNKNOWN":
        out.append(value)
    if out:
        return out
    for classifier in headers.get_all("Classifier") or []:
        parts = [p.strip() for p in str(classifier).split("::")]
        # "License :: OSI Approved" alone names no licence
        if len(parts) >= 2 and parts[0] == "License" and parts[-1] != "OSI Approved" and parts[-1] not in out:
            out.append(parts[-1])
    return out


def parse_metadata(content: bytes, path: str) -> Parsed:
    """One installed distribution from its core metadata (``METADATA``, ``PKG-INFO`` or an ``.egg-info`` file).

    Core metadata is a set of RFC 822 headers. The standard library's email
    parser reads it exactly the way ``importlib.metadata`` does (that is what
    it uses), tolerates the malformed headers real files have, and needs no
    third-party dependency; ``packaging.metadata`` would add one and reject
    fields that older tools wrote loosely.
    """
    headers = HeaderParser(policy=compat32).parsestr(_text(content), headersonly=True)
    name = str(headers.get("Name") or "").strip()
    version = str(headers.get("Version") or "").strip()
    if not name:
        return [], ["no Name field; not core metadata or truncated"]
    if not _NAME.fullmatch(name):
        return [], [f"invalid distribution name {name!r}"]
    if not version:
        return [], [f"{name}: no Version field; truncated metadata?"]
    return [_package(name, version, path, licenses=_licenses(headers))], []


# -- requirements files -------------------------------------------------------------------

# Options that take another requirements file; pip follows them, a scanner reading one file cannot.
_INCLUDE_OPTIONS = ("-r", "--requirement")
# Per-requirement options that may follow a requirement on its line.
_TRAILING_OPTION = re.compile(r"\s--[a-z][a-z-]*\b")
_REQUIREMENT = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*(?P<spec>.*)",
)
_COMMENT = re.compile(r"(^|\s)#.*$")
# What a pinned version may hold: PEP 440 characters (epoch '!', local '+'); no wildcards.
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with backslash continuations joined and comments removed."""
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buf:
            start = number
        if raw.endswith("\\"):
            buf.append(raw[:-1])
            continue
        buf.append(raw)
        line = _COMMENT.sub("", " ".join(buf)).strip()
        buf = []
        if line:
            yield start, line
    if buf:
        line = _COMMENT.sub("", " ".join(buf)).strip()
        if line:
            yield start, line


def _pinned_version(spec: str) -> str | None:
    """The version of an exact pin (``==1.2`` or ``===1.2``) in a specifier list, else None."""
    spec = spec.strip()
    if spec.startswith("(") and spec.endswith(")"):
        spec = spec[1:-1]
    for clause in spec.split(","):
        clause = clause.strip()
        for op in ("===", "=="):
            if clause.startswith(op):
                version = clause[len(op) :].strip()
                return version if _VERSION.fullmatch(version) else None
    return None


def _include_target(line: str) -> str | None:
    for opt in _INCLUDE_OPTIONS:
        if line == opt:
            return ""
        if line.startswith(opt + "=") or line.startswith(opt + " "):
            return line[len(opt) + 1 :].strip()
        if opt == "-r" and line.startswith("-r"):
            return line[2:].strip()
    return None


def parse_requirements(content: bytes, path: str) -> Parsed:
    """The exactly pinned requirements (``name==version``) of a pip requirements file.

    Ranges say what *could* be installed, so they are left out; so are URLs,
    local paths and editable installs, which name no index version. Extras and
    environment markers are dropped (the marker is about the target machine,
    which a source tree does not tell). Nested ``-r`` files are not followed.
    """
    packages: list[Package] = []
    problems: list[str] = []
    for number, line in _logical_lines(_text(content)):
        if line.startswith("-"):
            target = _include_target(line)
            if target is not None:
                problems.append(f"line {number}: includes {target or 'another file'!r}, which is not followed")
            continue
        line = _TRAILING_OPTION.split(line, maxsplit=1)[0]
        requirement = line.split(";", 1)[0].strip()
        if "@" in requirement or "://" in requirement or requirement.startswith((".", "/")):
            continue  # a direct reference (name @ url), a URL or a local path
        m = _REQUIREMENT.fullmatch(requirement)
        if m is None:
            continue
        version = _pinned_version(m.group("spec"))
        if version is not None:
            packages.append(_package(m.group("name"), version, path))
    return packages, problems


# -- Poetry -------------------------------------------------------------------------------


def _toml(content: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return tomllib.loads(content.decode("utf-8-sig")), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    except tomllib.TOMLDecodeError as exc:
        return None, f"invalid TOML: {exc}"


def _tables(value: object) -> Iterable[dict[str, Any]]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, dict))


def parse_poetry_lock(content: bytes, path: str) -> Parsed:
    """Packages of a ``poetry.lock``.

    Development-only packages are marked from what the lock file says: Poetry
    1.x writes ``category = "dev"``; Poetry 2 writes ``groups`` (a package
    outside the ``main`` group is development-only). Lock files of Poetry
    1.5 to 1.8 carry neither, and their packages are all taken as runtime.
    """
    doc, error = _toml(content)
    if doc is None:
        return [], [error or "unreadable"]
    packages: list[Package] = []
    skipped = 0
    for entry in _tables(doc.get("package")):
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            skipped += 1
            continue
        groups = entry.get("groups")
        if isinstance(groups, list) and groups:
            dev = "main" not in groups
        else:
            dev = entry.get("category") == "dev"
        packages.append(_package(name, version, path, dev=dev))
    problems = [f"{skipped} [[package]] entries without a name or version were skipped"] if skipped else []
    return packages, problems


# -- Pipenv -------------------------------------------------------------------------------


def parse_pipfile_lock(content: bytes, path: str) -> Parsed:
    """Packages of a ``Pipfile.lock``: ``default`` are runtime, ``develop`` development-only.

    A package in both sections is runtime. Entries without a ``version`` (git,
    path or editable sources) name no index release and are left out.
    """
    try:
        doc = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [], [f"invalid JSON: {exc}"]
    if not isinstance(doc, dict):
        return [], ["not a Pipfile.lock: the top level is not an object"]
    runtime: dict[tuple[str, str], bool] = {}
    for section, dev in (("default", False), ("develop", True)):
        entries = doc.get(section)
        if not isinstance(entries, dict):
            continue
        for name, info in entries.items():
            if not isinstance(info, dict):
                continue
            version = info.get("version")
            if not isinstance(version, str) or not version.startswith("=="):
                continue
            key = (name, version.lstrip("="))
            runtime[key] = runtime.get(key, False) or not dev
    return [_package(n, v, path, dev=not rt) for (n, v), rt in runtime.items()], []


# -- uv -----------------------------------------------------------------------------------


def _uv_ref(dep: dict[str, Any]) -> tuple[str, str | None] | None:
    name = dep.get("name")
    if not isinstance(name, str):
        return None
    version = dep.get("version")
    return name, version if isinstance(version, str) else None


def parse_uv_lock(content: bytes, path: str) -> Parsed:
    """Packages of a ``uv.lock``, with development-only ones marked.

    The project itself (and each workspace member) is the package whose source
    is ``editable`` or ``virtual``; it is not listed. A package is runtime
    when it is reachable from a project's dependencies or optional
    dependencies (extras followed); what only its dependency groups
    (``[package.dev-dependencies]``) reach is development-only. The same name
    may be locked at several versions (one per environment); a dependency then
    names the version it means.
    """
    doc, error = _toml(content)
    if doc is None:
        return [], [error or "unreadable"]
    entries = list(_tables(doc.get("package")))
    by_name: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        if isinstance(e.get("name"), str):
            by_name.setdefault(e["name"], []).append(e)

    def resolve(dep: dict[str, Any]) -> list[dict[str, Any]]:
        # Without a version the name is locked once; if it is not, every
        # candidate counts as reached rather than guessing one.
        ref = _uv_ref(dep)
        if ref is None:
            return []
        candidates = by_name.get(ref[0], [])
        if ref[1] is not None:
            candidates = [c for c in candidates if c.get("version") == ref[1]]
        return candidates

    def is_project(e: dict[str, Any]) -> bool:
        source = e.get("source")
        return isinstance(source, dict) and ("editable" in source or "virtual" in source)

    projects = [e for e in entries if is_project(e)]
    reached: set[int] = set()
    stack: list[tuple[dict[str, Any], tuple[str, ...]]] = []
    for p in projects:
        extras = p.get("optional-dependencies")
        stack.append((p, tuple(extras) if isinstance(extras, dict) else ()))
    seen: set[tuple[int, tuple[str, ...]]] = set()
    while stack:
        e, extras = stack.pop()
        if (id(e), extras) in seen:
            continue
        seen.add((id(e), extras))
        reached.add(id(e))
        deps = list(_tables(e.get("dependencies")))
        optional = e.get("optional-dependencies")
        if isinstance(optional, dict):
            for extra in extras:
                deps.extend(_tables(optional.get(extra)))
        for dep in deps:
            wanted = dep.get("extra")
            dep_extras = tuple(x for x in wanted if isinstance(x, str)) if isinstance(wanted, list) else ()
            stack.extend((target, dep_extras) for target in resolve(dep))

    packages: list[Package] = []
    for e in entries:
        name, version = e.get("name"), e.get("version")
        if is_project(e) or not isinstance(name, str) or not isinstance(version, str) or not version:
            continue
        dev = bool(projects) and id(e) not in reached
        packages.append(_package(name, version, path, dev=dev))
    return packages, []
