"""Java archives (jar, war, ear and their zip-based kin): Maven coordinates of what they hold.

An archive is read from memory with :mod:`shared.zipread`, which walks the
central directory once and keeps only the entries read here (zipfile built an
object for each of the tens of thousands of ``.class`` entries first: most of
the time outside decompression); archives nested in it (``WEB-INF/lib/*.jar`` of a war, ``lib/*.jar`` and the
modules of an ear, ``BOOT-INF/lib/*.jar`` of a Spring Boot jar, or any other
member with an archive suffix) are read the same way, recursively.

**Where a package is found.** ``found_in`` is the archive's path in the image;
for a nested archive the member names are appended, each after a ``!`` (the
separator of Java's own ``jar:`` URLs): ``app/shop.ear!web.war!WEB-INF/lib/x.jar``.

**What identifies an archive**, in this order:

1. Every ``META-INF/maven/<group>/<artifact>/pom.properties`` it holds gives one
   package ``groupId:artifactId`` at ``version`` (its own content wins over its
   path). A shaded ("uber") jar holds several and yields several packages.
   These files describe only the archive they are in: the pom.properties of a
   nested jar are read when that jar is, so nothing is counted twice.
2. With no readable pom.properties, or with only pom.properties the manifest
   does not describe (a shaded jar that kept its dependencies' files but not
   its own), ``META-INF/MANIFEST.MF`` (main section only), field by field:

   - version: ``Implementation-Version``, else ``Bundle-Version``, else the
     version in the file name;
   - artifactId: ``Implementation-Title`` when it is a single Maven-style token
     (maven-archiver writes the project name there, often a human title such as
     "Apache Commons Lang", which is not an id), else the artifactId in the file
     name, else ``Bundle-SymbolicName`` (without its directives);
   - groupId: ``Implementation-Vendor-Id``, but only when ``Bundle-SymbolicName``
     confirms it, i.e. equals what maven-bundle-plugin derives from that group
     and the artifactId (``<group>.<artifact>``, the group's last segment
     dropped from the artifactId's start, or the group alone when they match).
     Unconfirmed vendor ids are often an organisation's root (``org.apache``
     on every Apache Commons jar), and a group cut from a symbolic name
     (``slf4j.api`` -> ``slf4j``) or a vendor *name* is no group at all: a
     wrong group would match another project's advisories, so the group is
     left unknown instead.

   Values that are placeholders (``${...}``, ``%key``) or contain blanks where
   an id is expected are ignored.
3. With neither, the file name, ``<artifactId>-<version>.<ext>`` where the
   version is the last ``-`` followed by a digit (``guava-31.1-jre.jar`` ->
   ``guava`` ``31.1-jre``).

When the group is unknown the package is named by its artifactId alone, so its
purl has no namespace (``pkg:maven/commons-lang3@3.12.0``): that is all the
archive says, and without network access there is nothing to look it up in.
An archive that yields no artifactId and version yields no package.

A manifest *describes* a pom.properties package when its ``Bundle-SymbolicName``
is the one maven-bundle-plugin derives from the coordinates, its
``Implementation-Title`` is the artifactId, or its version is the package's.

**Licences.** pom.properties carries none. An OSGi ``Bundle-License`` header
gives the licences of the one package of that archive (not of archives nested
in it) that the manifest describes, or identified; none when that is
ambiguous. Well-known licence URLs become SPDX ids, other identifiers are kept
as written.

**Limits** (:class:`ArchiveLimits`): nesting depth, entries per archive
(counted, not taken from the end record), bytes per member (declared size
checked first, then the read itself capped) and bytes decompressed in total
from one top-level archive. Whatever goes past a limit is left out with a
warning; so is whatever is malformed. Warning codes: ``parse-error`` (not a zip,
corrupt member, bad pom.properties), ``file-too-large`` (a member or the
archive's byte budget), ``archive-too-deep`` (nesting), ``too-many-entries``.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field

from shared import zipread
from shared.domain.models import Package, ScanWarning

MiB = 1024 * 1024

#: File-name endings of zip-based Java archives: jar, web (war) and enterprise
#: (ear) archives, JBoss service/persistence archives (sar, par), Jenkins
#: plugins (hpi, jpi).
ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi")

NEST = "!"


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    #: Archives nested deeper than this below the top-level one are not opened.
    max_depth: int = 3
    #: Bytes decompressed from one top-level archive, nested archives included.
    max_total_bytes: int = 512 * MiB
    #: Bytes of one nested archive member.
    max_member_bytes: int = 256 * MiB
    #: Bytes of one pom.properties; of a MANIFEST.MF only this much is read (its
    #: main section comes first; signed jars add a digest section per class).
    max_metadata_bytes: int = 1 * MiB
    #: Entries in one archive's central directory.
    max_entries: int = 200_000


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(slots=True)
class JavaInventory:
    packages: list[Package] = field(default_factory=list)
    warnings: list[ScanWarning] = field(default_factory=list)


# -- small formats ---------------------------------------------------------------------

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unescape(s: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch != "\\" or i + 1 >= len(s):
            out.append(ch)
            i += 1
            continue
        nxt = s[i + 1]
        if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", s[i + 2 : i + 6]):
            out.append(chr(int(s[i + 2 : i + 6], 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out)


def _trailing_backslashes(line: str) -> int:
    return len(line) - len(line.rstrip("\\"))


def parse_properties(data: bytes) -> dict[str, str]:
    """A Java ``.properties`` file: comments, ``=``/``:``/blank separators, continuations, escapes."""
    lines = re.split(r"\r\n|\r|\n", _decode(data))
    props: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i].lstrip(" \t\f")
        i += 1
        if not line or line[0] in "#!":
            continue
        while _trailing_backslashes(line) % 2 == 1:
            line = line[:-1]
            if i >= len(lines):
                break
            line += lines[i].lstrip(" \t\f")
            i += 1
        j = 0
        while j < len(line) and line[j] not in "=: \t\f":
            j += 2 if line[j] == "\\" else 1
        key = line[:j]
        has_sep = j < len(line) and line[j] in "=:"
        rest = line[j + 1 :] if has_sep else line[j:]
        rest = rest.lstrip(" \t\f")
        if not has_sep and rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        props[_unescape(key)] = _unescape(rest)
    return props


def parse_manifest(data: bytes) -> dict[str, str]:
    """The main section of a JAR manifest, attribute names lowercased (they are case-insensitive).

    Lines end with CRLF, LF or CR; a line starting with one space continues the
    previous one; the main section ends at the first empty line.
    """
    attrs: dict[str, str] = {}
    current: list[str] = []

    def flush() -> None:
        if current:
            name, sep, value = "".join(current).partition(":")
            if sep and name.strip():
                attrs.setdefault(name.strip().lower(), value.strip())
            current.clear()

    for line in re.split(r"\r\n|\r|\n", _decode(data)):
        if line == "":
            break
        if line.startswith(" "):
            current.append(line[1:])
            continue
        flush()
        current.append(line)
    flush()
    return attrs


_FILE_NAME = re.compile(r"^(?P<artifact>[A-Za-z0-9_][A-Za-z0-9_.+-]*)-(?P<version>\d[^\s/]*)$")
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def coordinates_from_file_name(name: str) -> tuple[str, str] | None:
    """(artifactId, version) from an archive's file name, e.g. ``commons-lang3-3.12.0.jar``."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or f".{ext.lower()}" not in ARCHIVE_SUFFIXES:
        return None
    m = _FILE_NAME.match(stem)
    if m is None:
        return None
    return m.group("artifact"), m.group("version")


def _placeholder(value: str) -> bool:
    return value.startswith("%") or "${" in value


def _as_id(value: str | None) -> str | None:
    if not value or _placeholder(value) or not _ID.match(value):
        return None
    return value


def _as_version(value: str | None) -> str | None:
    if not value or _placeholder(value) or any(c.isspace() for c in value) or not any(c.isdigit() for c in value):
        return None
    return value


def _symbolic_name(attrs: dict[str, str]) -> str | None:
    return _as_id(attrs.get("bundle-symbolicname", "").split(";", 1)[0].strip())


def _bundle_names(group: str, artifact: str) -> set[str]:
    """Symbolic names maven-bundle-plugin derives from group and artifact by default."""
    last = group.rsplit(".", 1)[-1]
    names = {f"{group}.{artifact}"}
    if artifact == last:
        names.add(group)
    elif artifact.startswith(last):
        rest = artifact[len(last) :].lstrip("-._")
        if rest:
            names.add(f"{group}.{rest}")
    return names


def _manifest_version(attrs: dict[str, str]) -> str | None:
    return _as_version(attrs.get("implementation-version")) or _as_version(attrs.get("bundle-version"))


def manifest_describes(attrs: dict[str, str], name: str, version: str) -> bool:
    """Whether a manifest is about the package ``group:artifact`` at ``version`` (and not about others).

    It is when its symbolic name is the one maven-bundle-plugin derives from the
    coordinates, its title is the artifactId, or its version is the package's.
    """
    group, _, artifact = name.rpartition(":")
    symbolic = _symbolic_name(attrs)
    return (
        (bool(group) and symbolic is not None and symbolic in _bundle_names(group, artifact))
        or attrs.get("implementation-title") == artifact
        or version in (attrs.get("implementation-version"), attrs.get("bundle-version"))
    )


def manifest_identity(attrs: dict[str, str], file_name: str) -> tuple[str, str] | None:
    """(name, version) of an archive from its manifest and file name (see the module's rules)."""
    from_name = coordinates_from_file_name(file_name)
    version = _manifest_version(attrs) or (from_name[1] if from_name else None)
    symbolic = _symbolic_name(attrs)
    artifact = _as_id(attrs.get("implementation-title")) or (from_name[0] if from_name else None) or symbolic
    if not artifact or not version:
        return None
    group = _as_id(attrs.get("implementation-vendor-id"))
    if group and "." in group and symbolic and symbolic in _bundle_names(group, artifact):
        return f"{group}:{artifact}", version
    return artifact, version


# Licence URLs as they appear in Bundle-License headers (scheme and "www." dropped) -> SPDX ids.
_LICENCE_URLS = {
    "apache.org/licenses/license-2.0": "Apache-2.0",
    "apache.org/licenses/license-2.0.txt": "Apache-2.0",
    "apache.org/licenses/license-2.0.html": "Apache-2.0",
    "opensource.org/licenses/apache-2.0": "Apache-2.0",
    "opensource.org/licenses/mit": "MIT",
    "opensource.org/licenses/mit-license.php": "MIT",
    "opensource.org/licenses/bsd-2-clause": "BSD-2-Clause",
    "opensource.org/licenses/bsd-3-clause": "BSD-3-Clause",
    "eclipse.org/legal/epl-v10.html": "EPL-1.0",
    "eclipse.org/legal/epl-2.0": "EPL-2.0",
    "eclipse.org/legal/epl-v20.html": "EPL-2.0",
    "gnu.org/licenses/lgpl-2.1.html": "LGPL-2.1-only",
    "gnu.org/licenses/old-licenses/lgpl-2.1.html": "LGPL-2.1-only",
    "gnu.org/licenses/lgpl-3.0.html": "LGPL-3.0-only",
}


def _split_unquoted(s: str, sep: str) -> list[str]:
    parts: list[str] = []
    quoted = False
    start = 0
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and quoted:
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append(s[start:i])
            start = i + 1
        i += 1
    parts.append(s[start:])
    return parts


def bundle_licenses(header: str) -> list[str]:
    """Licences named by an OSGi ``Bundle-License`` header: ``id-or-url;link=...`` entries, comma-separated."""
    out: list[str] = []
    for entry in _split_unquoted(header, ","):
        name = _split_unquoted(entry, ";")[0].strip().strip('"').strip()
        if not name or name == "<<EXTERNAL>>" or _placeholder(name):
            continue
        key = re.sub(r"^https?://", "", name.lower()).removeprefix("www.").rstrip("/")
        lic = _LICENCE_URLS.get(key, name)
        if lic not in out:
            out.append(lic)
    return out


# -- the archive walk --------------------------------------------------------------------

_POM_PROPERTIES = re.compile(r"(?:^|/)META-INF/maven/[^/]+/[^/]+/pom\.properties$")
_MANIFEST = "META-INF/MANIFEST.MF"
#: The last four bytes, lowercased, of the names the walk may read: archives, manifests (``t.mf``), and
#: pom.properties (``ties``); the exact tests are made on the decoded name.
_WANTED_TAILS = frozenset({s.encode() for s in ARCHIVE_SUFFIXES} | {b"t.mf", b"ties"})


def _wanted(raw: bytes) -> bool:
    """Whether a raw entry name may be one the walk reads (called for every entry: kept to one set lookup)."""
    return raw[-4:].lower() in _WANTED_TAILS


def count_entries(data: bytes, stop_after: int) -> int | None:
    """Entries in a zip's central directory, counted by hopping over their headers (None: no readable directory).

    The count an end record declares is not trusted: the entries are counted. Counting stops past ``stop_after``.
    """
    try:
        return zipread.entries(data, lambda _raw: False, stop_after)[0]
    except zipfile.BadZipFile:
        return None


class _Walk:
    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.left = limits.max_total_bytes
        self.out = JavaInventory()

    def warn(self, code: str, where: str, what: str) -> None:
        self.out.warnings.append(ScanWarning(code=code, message=f"{where}: {what}", path=where))

    def read(self, data: bytes, entry: zipread.Entry, where: str, cap: int, *, prefix: bool) -> bytes | None:
        """A member's bytes, at most ``cap`` of them; with ``prefix`` its first ``cap`` bytes are enough.

        The declared size is checked first; the read itself is capped too, since
        the declared size is only what the archive claims.
        """
        member = f"{where}{NEST}{_shown(entry.name)}"
        if not prefix and entry.size > cap:
            self.warn("file-too-large", member, f"declares {entry.size} bytes, over the {cap}-byte cap; not read")
            return None
        budget_note = (
            f"reading it would pass the {self.limits.max_total_bytes}-byte limit on bytes decompressed "
            "from one archive; not read"
        )
        if min(entry.size, cap) > self.left:
            self.warn("file-too-large", member, budget_note)
            return None
        limit = min(cap, self.left)
        try:
            if prefix:
                content = zipread.read(data, entry, min(entry.size, limit), whole=False)[: min(entry.size, limit)]
            else:
                content = zipread.read(data, entry, limit)
        except Exception as exc:  # corrupt or hostile members raise many kinds of errors
            self.left -= min(self.left, entry.size, cap)
            self.warn("parse-error", member, f"cannot be decompressed ({type(exc).__name__}: {exc})")
            return None
        self.left -= min(self.left, len(content))
        if len(content) > limit:
            over_cap = f"holds more than the {cap}-byte cap; not read"
            self.warn("file-too-large", member, over_cap if len(content) > cap else budget_note)
            return None
        return content

    def archive(self, data: bytes, where: str, depth: int) -> None:
        lim = self.limits
        try:
            count, chosen = zipread.entries(data, _wanted, lim.max_entries)
        except Exception as exc:  # BadZipFile, but also struct, value and size errors on crafted input
            self.warn("parse-error", where, f"not a readable zip archive ({type(exc).__name__}: {exc})")
            return
        if count > lim.max_entries:
            self.warn("too-many-entries", where, f"has more than {lim.max_entries} entries; not read")
            return
        self._members(data, chosen, where, depth)

    def _members(self, data: bytes, chosen: list[zipread.Entry], where: str, depth: int) -> None:
        lim = self.limits
        own: list[Package] = []
        seen: set[tuple[str, str]] = set()
        manifest: dict[str, str] | None = None
        nested: list[zipread.Entry] = []
        for entry in chosen:
            name = _shown(entry.name)
            if name.endswith("/"):
                continue  # a directory
            if _POM_PROPERTIES.search(name):
                raw = self.read(data, entry, where, lim.max_metadata_bytes, prefix=False)
                if raw is None:
                    continue
                props = parse_properties(raw)
                g, a, v = (props.get(k, "").strip() for k in ("groupId", "artifactId", "version"))
                if not (g and a and v) or any(_placeholder(x) for x in (g, a, v)):
                    self.warn("parse-error", f"{where}{NEST}{name}", "lacks a groupId, artifactId or version")
                    continue
                key = (f"{g}:{a}", v)
                if key not in seen:
                    seen.add(key)
                    own.append(_package(key[0], v, where))
            elif name.upper() == _MANIFEST:
                raw = self.read(data, entry, where, lim.max_metadata_bytes, prefix=True)
                if raw is not None:
                    manifest = parse_manifest(raw)
            elif name.lower().endswith(ARCHIVE_SUFFIXES):
                nested.append(entry)

        attrs = manifest or {}
        described = [p for p in own if manifest_describes(attrs, p.name, p.version)]
        if not own or (not described and _manifest_version(attrs)):
            ident = manifest_identity(attrs, where.rsplit(NEST, 1)[-1])
            if ident is not None and ident not in seen:
                own.append(_package(ident[0], ident[1], where))
                described = [own[-1]]
        if len(described) == 1 and attrs.get("bundle-license"):
            described[0].licenses = bundle_licenses(attrs["bundle-license"])
        self.out.packages.extend(own)

        for entry in nested:
            child = f"{where}{NEST}{_shown(entry.name)}"
            if depth + 1 > lim.max_depth:
                self.warn("archive-too-deep", child, f"nested more than {lim.max_depth} archives deep; not opened")
                continue
            raw = self.read(data, entry, where, lim.max_member_bytes, prefix=False)
            if raw is not None:
                self.archive(raw, child, depth + 1)
                del raw


def _shown(name: str) -> str:
    """An entry's name as zipfile shows it: up to a NUL, should a crafted name hold one."""
    return name.split("\0", 1)[0]


def _package(name: str, version: str, where: str) -> Package:
    return Package(type="maven", name=name, version=version, purl="", found_in=where)


def parse_archive(data: bytes, path: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> JavaInventory:
    """Packages of a Java archive and of the archives nested in it, with warnings for what could not be read."""
    walk = _Walk(limits)
    walk.archive(data, path, 0)
    return walk.out
