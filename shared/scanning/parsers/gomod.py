"""Module requirements of a ``go.mod`` file.

Read: ``require`` lines and blocks (``// indirect`` ones too: they are as much
a part of the build list), with ``replace`` directives applied the way cmd/go
applies them (a replacement naming the old version applies to that version
only and wins over one that does not). Ignored: ``exclude`` (it removes a
version from consideration, it adds nothing), ``retract``, ``godebug``,
``tool``, ``ignore`` and ``toolchain``.

Not reported:

* the ``module`` itself: it is the tree being scanned, with no version;
* the ``go`` directive as ``stdlib``: it states the minimum language version
  the module needs, not the toolchain anything is built with, so a version
  taken from it would be a guess (the toolchain of a built program is read
  from the binary instead).

A requirement replaced by a local directory (``=> ../fork``) is reported under
its original module path with an empty version: the code comes from a
directory, not from a published version, as for Go binaries.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.models import Package
from shared.scanning.parsers.gobinary import is_local_path


@dataclass(frozen=True, slots=True)
class Replace:
    old_path: str
    old_version: str | None
    new_path: str
    new_version: str | None


def _tokens(line: str) -> tuple[list[str], str | None]:
    """(tokens, problem) of one go.mod line, comments dropped.

    Tokens are bare words, "interpreted" and `raw` strings, '(', ')' and '=>'.
    """
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            i += 1
        elif line.startswith("//", i):
            break
        elif c == '"':
            j = i + 1
            buf: list[str] = []
            while j < n and line[j] != '"':
                if line[j] == "\\" and j + 1 < n:
                    buf.append(line[j + 1])
                    j += 2
                else:
                    buf.append(line[j])
                    j += 1
            if j >= n:
                return out, "unterminated quoted string"
            out.append("".join(buf))
            i = j + 1
        elif c == "`":
            j = line.find("`", i + 1)
            if j < 0:
                return out, "unterminated raw string"
            out.append(line[i + 1 : j])
            i = j + 1
        elif c in "()":
            out.append(c)
            i += 1
        elif line.startswith("=>", i):
            out.append("=>")
            i += 2
        else:
            j = i
            while j < n and not line[j].isspace() and line[j] not in '()"`' and not line.startswith("=>", j):
                if line.startswith("//", j):
                    break
                j += 1
            out.append(line[i:j])
            i = j
    return out, None


def _directives(text: str, problems: list[str]) -> list[tuple[int, str, list[str]]]:
    """(line number, verb, arguments) for every directive, blocks expanded."""
    out: list[tuple[int, str, list[str]]] = []
    block: str | None = None
    block_line = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        toks, problem = _tokens(line)
        if problem:
            problems.append(f"line {lineno}: {problem}")
            continue
        if not toks:
            continue
        if block is not None:
            if toks == [")"]:
                block = None
                continue
            out.append((lineno, block, toks))
            continue
        if len(toks) >= 2 and toks[-1] == "(":
            if len(toks) != 2:
                problems.append(f"line {lineno}: malformed block start")
                continue
            block, block_line = toks[0], lineno
            continue
        if len(toks) == 3 and toks[1] == "(" and toks[2] == ")":
            continue  # an empty one-line block: "require ()"
        out.append((lineno, toks[0], toks[1:]))
    if block is not None:
        problems.append(f"line {block_line}: {block} block is never closed")
    return out


def _replacement(args: list[str]) -> Replace | None:
    if "=>" not in args:
        return None
    k = args.index("=>")
    old, new = args[:k], args[k + 1 :]
    if len(old) not in (1, 2) or len(new) not in (1, 2):
        return None
    return Replace(
        old_path=old[0],
        old_version=old[1] if len(old) == 2 else None,
        new_path=new[0],
        new_version=new[1] if len(new) == 2 else None,
    )


def parse_go_mod(data: bytes, path: str) -> tuple[list[Package], list[str]]:
    """(packages, problems) of a go.mod file."""
    problems: list[str] = []
    text = data.decode("utf-8", "replace")
    requires: list[tuple[str, str]] = []
    replaces: list[Replace] = []
    for lineno, verb, args in _directives(text, problems):
        if verb == "require":
            if len(args) != 2:
                problems.append(f"line {lineno}: require needs a module path and a version")
                continue
            requires.append((args[0], args[1]))
        elif verb == "replace":
            rep = _replacement(args)
            if rep is None:
                problems.append(f"line {lineno}: malformed replace directive")
                continue
            replaces.append(rep)

    out: list[Package] = []
    seen: set[tuple[str, str]] = set()
    for mod_path, version in requires:
        exact = next((r for r in replaces if r.old_path == mod_path and r.old_version == version), None)
        rep = exact or next((r for r in replaces if r.old_path == mod_path and r.old_version is None), None)
        name, ver = mod_path, version
        if rep is not None:
            if is_local_path(rep.new_path) or not rep.new_version:
                name, ver = mod_path, ""
            else:
                name, ver = rep.new_path, rep.new_version
        if (name, ver) in seen:
            continue
        seen.add((name, ver))
        out.append(Package(type="golang", name=name, version=ver, purl="", found_in=path))
    return out, problems
