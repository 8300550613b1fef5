"""The layer engine: reads each layer once, as a stream, and builds the final view.

For every layer, in order, it walks the entries of the layer tar (or of a
directory, for ``dir:`` scans), applies whiteouts and opaque directories to the
layers below, and hands each file an analyzer asked for to that analyzer right
away. Only those files are ever held in memory, one at a time and each under
its analyzer's size cap; what is kept between layers is the analyzers' parsed
results, keyed by path. After the last layer, the results that survive in the
final filesystem are merged, and each package is attributed to the layer that
introduced it: the lowest layer from which every later version of its database
file still lists it.
"""

from __future__ import annotations

import hashlib
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import BinaryIO

from shared.domain.models import Executable, OSInfo, Package, ScanWarning
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput
from shared.scanning.errors import ImageError
from shared.scanning.streams import Readable

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


class EntryKind(Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "other"


@dataclass(slots=True)
class Entry:
    """One filesystem entry of a layer, as the engine sees it."""

    name: str  # as stored in the archive (before normalisation)
    kind: EntryKind
    size: int
    mode: int
    linkname: str
    #: Opens the content for reading, once, front to back.
    open: Callable[[], Readable]


Warn = Callable[[ScanWarning], None]


def iter_tar(stream: BinaryIO, where: str, subject: str) -> Iterator[Entry]:
    """Entries of a tar stream, read strictly front to back (``r|``: no seeking)."""
    try:
        tf = tarfile.open(fileobj=stream, mode="r|")
    except tarfile.ReadError as exc:
        if "empty file" in str(exc):
            return  # a zero-byte layer has no entries
        raise ImageError(subject, f"{where}: not a tar archive ({exc})") from None
    except (EOFError, OSError) as exc:
        raise ImageError(subject, f"{where}: not a tar archive ({exc})") from None
    while True:
        try:
            ti = tf.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ImageError(subject, f"{where}: truncated or corrupt tar ({exc})") from None
        if ti is None:
            break
        # TarFile keeps every member it has seen; in a long stream that is
        # memory growing with image size. We never look back, so drop them.
        tf.members.clear()  # type: ignore[attr-defined]
        if ti.isreg():
            kind = EntryKind.FILE
        elif ti.isdir():
            kind = EntryKind.DIR
        elif ti.issym():
            kind = EntryKind.SYMLINK
        elif ti.islnk():
            kind = EntryKind.HARDLINK
        else:
            kind = EntryKind.OTHER

        def open_member(_ti: tarfile.TarInfo = ti) -> Readable:
            what = f"{where}: truncated or corrupt tar at {_ti.name!r}"
            if _ti.sparse is None:
                return _MemberReader(tf.fileobj, _ti.offset_data, _ti.size, subject, what)
            return _Guarded(tf.extractfile(_ti), subject, what)  # GNU sparse files need tarfile's own reader

        yield Entry(ti.name, kind, ti.size, ti.mode, ti.linkname, open_member)


class _MemberReader:
    """Reads one member's bytes straight from the tar stream.

    ``TarFile.extractfile`` builds a buffered file object per member; for an
    image of tens of thousands of files, most read for their first four bytes
    only, that costs more than the reading. The stream is already at the
    member's data after ``next()``; tarfile skips whatever is left unread.
    """

    __slots__ = ("_end", "_pos", "_stream", "_subject", "_what")

    def __init__(self, stream: object, start: int, size: int, subject: str, what: str) -> None:
        self._stream = stream
        self._pos = start
        self._end = start + size
        self._subject = subject
        self._what = what

    def read(self, n: int = -1, /) -> bytes:
        remaining = self._end - self._pos
        if remaining <= 0:
            return b""
        if n < 0 or n > remaining:
            n = remaining
        stream = self._stream
        try:
            if stream.tell() != self._pos:  # type: ignore[attr-defined]
                stream.seek(self._pos)  # type: ignore[attr-defined]
            data: bytes = stream.read(n)  # type: ignore[attr-defined]
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise ImageError(self._subject, f"{self._what} ({exc})") from None
        if len(data) < n:
            raise ImageError(self._subject, f"{self._what} (unexpected end of data)")
        self._pos += n
        return data


class _Guarded:
    """Turns read errors of a tar member into an ImageError naming the layer and entry."""

    __slots__ = ("_f", "_subject", "_what")

    def __init__(self, f: Readable | None, subject: str, what: str) -> None:
        self._f = f
        self._subject = subject
        self._what = what

    def read(self, n: int = -1, /) -> bytes:
        if self._f is None:
            return b""
        try:
            return self._f.read(n)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise ImageError(self._subject, f"{self._what} ({exc})") from None


def normalise(name: str) -> tuple[str | None, str | None]:
    """(clean relative path, problem). A path is None when the entry escapes the root."""
    problem = None
    if name.startswith("/"):
        problem = "absolute path"
        name = name.lstrip("/")
    if name.startswith("./"):
        name = name[2:]
    if ".." in name or "//" in name or "/./" in name or name.endswith("/") or name in (".", ""):
        parts: list[str] = []
        for seg in name.split("/"):
            if seg in ("", "."):
                continue
            if seg == "..":
                if not parts:
                    return None, "path escapes the image root"
                parts.pop()
            else:
                parts.append(seg)
        name = "/".join(parts)
    return name, problem


def resolve_link(path: str, target: str) -> str | None:
    """Where a symlink at ``path`` points, inside the root; None if it climbs out."""
    if target.startswith("/"):
        joined = target.lstrip("/")
    else:
        joined = posixpath.join(posixpath.dirname(path), target)
    clean, _ = normalise(joined)
    return clean


@dataclass(slots=True)
class _Version:
    layer_index: int
    diff_id: str | None
    analyzer: str
    result: AnalysisResult
    # its form in export_state, made once: the layer cache exports the state after every layer, and most
    # versions (a base layer's package database) are exported again and again unchanged
    exported: dict[str, object] | None = field(default=None, compare=False)

    def export(self) -> dict[str, object]:
        if self.exported is None:
            r = self.result
            self.exported = {
                "layer": self.layer_index,
                "diff_id": self.diff_id,
                "analyzer": self.analyzer,
                "packages": [p.model_dump(mode="json") for p in r.packages],
                "os": r.os.model_dump(mode="json") if r.os is not None else None,
                "os_priority": r.os_priority,
            }
        return self.exported


ELF_MAGIC = b"\x7fELF"
HASH_CHUNK = 1 << 20


@dataclass
class EngineOutput:
    os: OSInfo | None
    packages: list[Package]
    executables: list[Executable] = field(default_factory=list)


class LayerEngine:
    """Builds the final view of an image from its layers, lowest first.

    With ``executables`` on, every regular file of the final view that has an
    execute bit or starts with the ELF magic is recorded with its size, mode,
    sha256 and layer: runtime drift detection compares what a container runs
    against this list. Analyzers with ``executables = True`` (Go and Rust
    binaries) also get the content of every ELF file.
    """

    def __init__(self, analyzers: Iterable[Analyzer], warn: Warn, *, executables: bool = True) -> None:
        self._analyzers = list(analyzers)
        self._warn = warn
        self._collect_exec = executables
        self._binary_analyzers = [a for a in self._analyzers if a.executables]
        self._peek = executables or bool(self._binary_analyzers)
        self._binary_cap = max((a.max_file_size for a in self._binary_analyzers), default=0)
        # path -> executable record, for files still present in the view
        self._exec: dict[str, Executable] = {}
        # export_state's form of each executable, with the object it was made from (see _Version.exported)
        self._exec_exported: dict[str, tuple[Executable, dict[str, object]]] = {}
        self._exact: dict[str, list[Analyzer]] = {}
        self._prefix_analyzers = [a for a in self._analyzers if a.prefixes]
        self._suffix_analyzers = [a for a in self._analyzers if a.suffixes]
        self._prefixes = tuple(p for a in self._prefix_analyzers for p in a.prefixes)
        self._suffixes = tuple(s for a in self._suffix_analyzers for s in a.suffixes)
        for a in self._analyzers:
            for p in a.paths:
                self._exact.setdefault(p, []).append(a)
        # path -> versions of what analyzers made of it, lowest layer first
        self._versions: dict[str, list[_Version]] = {}

    # -- matching -----------------------------------------------------------

    def wanted(self, path: str) -> list[Analyzer]:
        found = self._exact.get(path)
        out = list(found) if found else []
        if self._prefixes and path.startswith(self._prefixes):
            out.extend(
                a for a in self._prefix_analyzers if path.startswith(a.prefixes) and a.required(path) and a not in out
            )
        if self._suffixes and path.endswith(self._suffixes):
            out.extend(
                a for a in self._suffix_analyzers if path.endswith(a.suffixes) and a.required(path) and a not in out
            )
        return out

    # -- one layer ------------------------------------------------------------

    def add_layer(self, index: int, diff_id: str | None, entries: Iterable[Entry], label: str) -> None:
        """Walk one layer's entries. ``label`` names the layer in warnings."""
        whiteouts: list[str] = []
        opaque: list[str] = []
        versions = self._versions
        execs = self._exec
        for e in entries:
            path, problem = normalise(e.name)
            if path is None:
                self._warn(
                    ScanWarning(
                        code="path-escape",
                        message=f"{label}: entry {e.name!r} escapes the image root; skipped",
                        layer_diff_id=diff_id,
                        path=e.name,
                    )
                )
                continue
            if problem:
                self._warn(
                    ScanWarning(
                        code="absolute-path",
                        message=f"{label}: entry {e.name!r} has an {problem}; read as {path!r}",
                        layer_diff_id=diff_id,
                        path=e.name,
                    )
                )
            if not path:
                continue
            base = path.rsplit("/", 1)[-1]
            if base.startswith(WHITEOUT_PREFIX):
                parent = path[: len(path) - len(base)]
                if base == OPAQUE_MARKER:
                    opaque.append(parent)
                else:
                    whiteouts.append(parent + base[len(WHITEOUT_PREFIX) :])
                continue

            if e.kind is EntryKind.SYMLINK or e.kind is EntryKind.HARDLINK:
                target = resolve_link(path, e.linkname) if e.kind is EntryKind.SYMLINK else normalise(e.linkname)[0]
                if target is None:
                    self._warn(
                        ScanWarning(
                            code="link-escape",
                            message=f"{label}: {e.kind.value} {e.name!r} -> {e.linkname!r} points outside the "
                            "image root; not followed",
                            layer_diff_id=diff_id,
                            path=e.name,
                        )
                    )
                if path in versions:
                    self._drop_from(path, index)  # the file was replaced by a link
                execs.pop(path, None)
                if e.kind is EntryKind.HARDLINK and target is not None:
                    src = execs.get(target)
                    if src is not None and src.layer_index == index:
                        execs[path] = src.model_copy(update={"path": path})
                    if self.wanted(path):
                        self._hardlink(path, target, index, label, diff_id)
                continue

            if e.kind is not EntryKind.FILE:
                if path in versions:
                    self._drop_from(path, index)
                execs.pop(path, None)
                continue

            wants = self.wanted(path)
            exec_bits = e.mode & 0o111
            if not wants and not self._peek:
                continue
            f = e.open()
            content: bytes | None = None
            head = b""
            binary = bool(self._binary_analyzers)
            # A file that will be read whole anyway (an analyzer asked for it, or it is executable and the
            # binary analyzers may want it) is read in one go: no separate peek, no second copy.
            cap = max(
                [a.max_file_size for a in wants] + ([self._binary_cap] if exec_bits and binary else []), default=0
            )
            if cap and e.size <= cap:
                content = f.read(cap)
                head = content[:4]
            elif self._peek:
                head = f.read(4)
            is_elf = head == ELF_MAGIC
            if is_elf and binary:
                extra = [a for a in self._binary_analyzers if a not in wants and e.size <= a.max_file_size]
                if extra:
                    if content is None:  # an ELF without execute bits (a shared library)
                        content = head + f.read(self._binary_cap - len(head))
                    wants = wants + extra
            is_exec = self._collect_exec and (bool(exec_bits) or is_elf)
            if not is_exec:
                execs.pop(path, None)
            if wants and (content is None or any(len(content) > a.max_file_size for a in wants)):
                too_big = min(a.max_file_size for a in wants)
                self._warn(
                    ScanWarning(
                        code="file-too-large",
                        message=f"{label}: {path} is {e.size} bytes, over the {too_big}-byte cap; not analysed",
                        layer_diff_id=diff_id,
                        path=path,
                    )
                )
            if is_exec:
                if content is not None:
                    digest = hashlib.sha256(content).hexdigest()
                else:
                    h = hashlib.sha256(head)
                    while chunk := f.read(HASH_CHUNK):
                        h.update(chunk)
                    digest = h.hexdigest()
                execs[path] = Executable(
                    path=path,
                    size=e.size,
                    mode=stat.S_IMODE(e.mode),
                    sha256=digest,
                    elf=is_elf,
                    layer_index=index,
                    layer_diff_id=diff_id,
                )
            if content is not None and wants:
                fits = [a for a in wants if len(content) <= a.max_file_size]
                if fits:
                    self._analyze(path, content, e.mode, index, diff_id, fits, label)

        # Whiteouts hide what lower layers had; they never hide this layer's files.
        for gone in whiteouts:
            self._delete_tree(gone, below=index)
        for parent in opaque:
            self._delete_tree(parent.rstrip("/"), below=index, keep_dir=True)

    def _analyze(
        self,
        path: str,
        content: bytes,
        mode: int,
        index: int,
        diff_id: str | None,
        wants: list[Analyzer],
        label: str,
    ) -> None:
        fi = FileInput(path=path, content=content, mode=stat.S_IMODE(mode), layer_index=index, layer_diff_id=diff_id)
        slot = self._versions.setdefault(path, [])
        # A later entry for the same path in the same layer replaces the earlier one.
        slot[:] = [v for v in slot if v.layer_index != index]
        for a in wants:
            try:
                result = a.analyze(fi)
            except Exception as exc:
                self._warn(
                    ScanWarning(
                        code="analyzer-error",
                        message=f"{label}: {a.name} could not read {path}: {exc}",
                        layer_diff_id=diff_id,
                        path=path,
                    )
                )
                continue
            for w in result.warnings:
                if w.layer_diff_id is None:
                    w.layer_diff_id = diff_id
                self._warn(w)
            result.warnings = []
            slot.append(_Version(index, diff_id, a.name, result))
        if not slot:
            del self._versions[path]

    def _hardlink(self, path: str, target: str, index: int, label: str, diff_id: str | None) -> None:
        src = self._versions.get(target)
        same_layer = [v for v in src or [] if v.layer_index == index]
        if same_layer:
            slot = self._versions.setdefault(path, [])
            slot[:] = [v for v in slot if v.layer_index != index]
            slot.extend(_Version(index, diff_id, v.analyzer, v.result) for v in same_layer)
        else:
            self._warn(
                ScanWarning(
                    code="hardlink-unresolved",
                    message=f"{label}: {path} is a hard link to {target}, which no analyzer read; not analysed",
                    layer_diff_id=diff_id,
                    path=path,
                )
            )

    def _drop_from(self, path: str, index: int) -> None:
        """The entry at ``path`` in layer ``index`` is not a file: lower versions are gone."""
        slot = self._versions.get(path)
        if slot is None:
            return
        slot[:] = [v for v in slot if v.layer_index > index]
        if not slot:
            del self._versions[path]

    def _delete_tree(self, root: str, below: int, keep_dir: bool = False) -> None:
        prefix = root + "/" if root else ""
        for p in [p for p in self._exec if (not keep_dir and p == root) or p.startswith(prefix)]:
            if (self._exec[p].layer_index or 0) < below:
                del self._exec[p]
        for p in list(self._versions):
            if (not keep_dir and p == root) or p.startswith(prefix):
                slot = self._versions[p]
                slot[:] = [v for v in slot if v.layer_index >= below]
                if not slot:
                    del self._versions[p]

    # -- the final view ---------------------------------------------------------

    # -- state between layers (the layer cache) ----------------------------------

    def export_state(self) -> dict[str, object]:
        """Everything the engine keeps after the layers read so far, as JSON-able data.

        Restored with :meth:`import_state` into a fresh engine with the same
        analyzers, the next layer is read exactly as if the earlier layers had
        just been read: the layer cache stores this under the layers' chain key.
        """
        exported = self._exec_exported
        executables = []
        for path, e in self._exec.items():
            done = exported.get(path)
            if done is None or done[0] is not e:  # new, or replaced by a later layer
                done = exported[path] = (e, e.model_dump(mode="json"))
            executables.append(done[1])
        if len(exported) > len(self._exec):
            for path in [p for p in exported if p not in self._exec]:
                del exported[path]
        return {
            "versions": {path: [v.export() for v in slot] for path, slot in self._versions.items()},
            "executables": executables,
        }

    def import_state(self, state: dict[str, object]) -> None:
        versions = state.get("versions")
        executables = state.get("executables")
        if not isinstance(versions, dict) or not isinstance(executables, list):
            raise ValueError("not a layer-engine state")
        self._versions = {
            path: [
                _Version(
                    v["layer"],
                    v["diff_id"],
                    v["analyzer"],
                    AnalysisResult(
                        packages=[Package.model_validate(p) for p in v["packages"]],
                        os=OSInfo.model_validate(v["os"]) if v["os"] is not None else None,
                        os_priority=v["os_priority"],
                    ),
                )
                for v in slot
            ]
            for path, slot in versions.items()
        }
        self._exec = {e["path"]: Executable.model_validate(e) for e in executables}

    def finish(self) -> EngineOutput:
        os_info: OSInfo | None = None
        os_prio = -1
        packages: list[Package] = []
        for path in sorted(self._versions):
            by_analyzer: dict[str, list[_Version]] = {}
            for v in self._versions[path]:
                by_analyzer.setdefault(v.analyzer, []).append(v)
            for versions in by_analyzer.values():
                last = versions[-1]
                if last.result.os is not None and last.result.os_priority > os_prio:
                    os_info, os_prio = last.result.os, last.result.os_priority
                if last.result.packages:
                    packages.extend(_attribute(versions))
        executables = [self._exec[p] for p in sorted(self._exec)]
        return EngineOutput(os=os_info, packages=packages, executables=executables)


def _key(p: Package) -> tuple[str, str, str | None]:
    return (p.name, p.version, p.arch)


def _attribute(versions: list[_Version]) -> list[Package]:
    """The final version's packages, each tagged with the layer that introduced it."""
    last = versions[-1]
    key_sets = [{_key(p) for p in v.result.packages} for v in versions]
    out = []
    for p in last.result.packages:
        k = _key(p)
        intro = len(versions) - 1
        while intro > 0 and k in key_sets[intro - 1]:
            intro -= 1
        v = versions[intro]
        out.append(p.model_copy(update={"layer_index": v.layer_index, "layer_diff_id": v.diff_id}))
    return out
