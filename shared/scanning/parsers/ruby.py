"""Ruby gems: installed gem specifications and Bundler's ``Gemfile.lock``.

Every parser takes bytes and returns ``(packages, problems)``, like the other
language parsers: what it could read, and one sentence for each thing it
could not. Nothing raises on bad input and nothing does I/O.

An installed ``.gemspec`` is Ruby source that RubyGems wrote with
``Gem::Specification#to_ruby``; it is never executed here. Its shape is
regular (one ``s.attr = value`` assignment per line, literals frozen with
``.freeze``), so the few attributes an inventory needs are read with line
patterns and Ruby string literals decoded by hand.
"""

from __future__ import annotations

import re

from shared.domain.models import Package

Parsed = tuple[list[Package], list[str]]

GEM = "gem"

_GEM_NAME = re.compile(r"[A-Za-z0-9._-]+")
_BLOCK_VAR = re.compile(r"Gem::Specification\.new\s*(?:do\s*|\{\s*)\|\s*(\w+)\s*\|")
_ASSIGN = re.compile(r"^\s*(\w+)\.(name|version|licenses|license)\s*=(?![=~])\s*(.*)$")
# Ruby string literals: "..." (escapes), '...', %q/%Q with paired delimiters.
_LITERAL = re.compile(
    r'"((?:[^"\\]|\\.)*)"'
    r"|'((?:[^'\\]|\\.)*)'"
    r"|%[qQ](?:\{([^}]*)\}|\(([^)]*)\)|<([^>]*)>|\[([^\]]*)\])"
)
_WORDS = re.compile(r"%[wW](?:\{([^}]*)\}|\(([^)]*)\)|<([^>]*)>|\[([^\]]*)\])")
_ESCAPE = re.compile(r"\\(u\{[0-9A-Fa-f ]+\}|u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{1,2}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "s": " ", "e": "\x1b", "0": "\0"}


def _package(name: str, version: str, path: str, licenses: list[str] | None = None) -> Package:
    return Package(type=GEM, name=name, version=version, licenses=licenses or [], purl="", found_in=path)


def _unescape(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc.startswith("u{"):
            return "".join(chr(int(cp, 16)) for cp in esc[2:-1].split())
        if esc.startswith("u") and len(esc) == 5:
            return chr(int(esc[1:], 16))
        if esc.startswith("x") and len(esc) > 1:
            return chr(int(esc[1:], 16))
        return _SIMPLE_ESCAPES.get(esc, esc)

    return _ESCAPE.sub(one, body)


def _literals(rhs: str) -> list[str]:
    """The string literals of a right-hand side, in order (``%w[...]`` word lists included)."""
    out: list[tuple[int, str]] = []
    for m in _LITERAL.finditer(rhs):
        if m.group(1) is not None:
            out.append((m.start(), _unescape(m.group(1))))
        elif m.group(2) is not None:
            out.append((m.start(), m.group(2).replace("\\'", "'").replace("\\\\", "\\")))
        else:
            out.append((m.start(), next(g for g in m.groups()[2:] if g is not None)))
    for m in _WORDS.finditer(rhs):
        words = next(g for g in m.groups() if g is not None)
        out.extend((m.start(), w) for w in words.split())
    return [s for _, s in sorted(out, key=lambda t: t[0])]


def _stub(line: str) -> tuple[str, str] | None:
    """(name, version) of RubyGems' ``# stub: NAME VERSION PLATFORM PATHS`` line."""
    parts = line[len("# stub:") :].split()
    if len(parts) >= 2 and _GEM_NAME.fullmatch(parts[0]):
        return parts[0], parts[1]
    return None


def parse_gemspec(content: bytes, path: str) -> Parsed:
    """One installed gem from its specification file: name, version and licences."""
    text = content.decode("utf-8", errors="replace")
    m = _BLOCK_VAR.search(text)
    receiver = m.group(1) if m else None
    values: dict[str, str] = {}
    stub: tuple[str, str] | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if stub is None and line.startswith("# stub:"):
            stub = _stub(line)
            continue
        a = _ASSIGN.match(line)
        if a is None or (receiver is not None and a.group(1) != receiver):
            continue
        attr, rhs = a.group(2), a.group(3)
        if attr.startswith("license"):
            attr = "licenses"
            # an array written over several lines
            if rhs.lstrip().startswith("[") and "]" not in rhs:
                while i < len(lines) and "]" not in rhs:
                    rhs += " " + lines[i]
                    i += 1
        values.setdefault(attr, rhs)

    names = _literals(values.get("name", ""))
    versions = _literals(values.get("version", ""))
    name = names[0].strip() if names else (stub[0] if stub else "")
    version = versions[0].strip() if versions else (stub[1] if stub else "")
    if not name:
        return [], ["no gem name (no literal `.name = ...` nor a `# stub:` line)"]
    if not _GEM_NAME.fullmatch(name):
        return [], [f"invalid gem name {name!r}"]
    if not version:
        return [], [f"{name}: no literal version (`.version = ...`)"]
    licenses = [lic for lic in _literals(values.get("licenses", "")) if lic]
    return [_package(name, version, path, licenses)], []


def parse_gemfile_lock(content: bytes, path: str) -> Parsed:
    """The gems of a Bundler lock file: the specs of its ``GEM`` sections (one per rubygems source).

    A spec line is ``    name (version)`` or, for a platform-specific gem,
    ``    name (version-platform)``; like Bundler, everything after the first
    ``-`` is the platform. Indented deeper lines are a spec's own dependency
    constraints. ``GIT`` and ``PATH`` sections are gems built from a checkout,
    not releases of the gem index, and are left out. Bundler does not record
    groups in the lock file, so nothing is marked development-only.
    """
    text = content.decode("utf-8", errors="replace")
    section = ""
    in_specs = False
    seen: set[tuple[str, str]] = set()
    packages: list[Package] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if not line[0].isspace():
            section = line.strip()
            in_specs = False
            continue
        if section != "GEM":
            continue
        if line.startswith("  ") and not line.startswith("   "):
            in_specs = line.strip() == "specs:"
            continue
        if not in_specs or not line.startswith("    ") or line.startswith("     "):
            continue
        spec = line.strip()
        name, sep, rest = spec.partition(" (")
        if not sep or not rest.endswith(")") or not _GEM_NAME.fullmatch(name):
            problems.append(f"line {number}: not a gem spec: {spec!r}")
            continue
        version = rest[:-1].split("-", 1)[0].strip()
        if not version:
            problems.append(f"line {number}: {name} has no version")
            continue
        if (name, version) not in seen:
            seen.add((name, version))
            packages.append(_package(name, version, path))
    return packages, problems
