"""Matching an inventory against the vulnerability database.

For each package the matcher looks up advisories by (OSV ecosystem, normalised
name) and evaluates their ``affected`` entries with the ecosystem's own version
ordering (:mod:`shared.vulndb.versions`):

- OS packages match only their distribution's own advisories for their release
  (``Debian:12``, ``Alpine:v3.19``, ``Ubuntu:22.04:LTS``), and Debian, Ubuntu and
  Alpine packages by their *source* package and source version, which is how
  those distributions publish fixes. Upstream version ranges are never applied
  to OS packages: a backported fix is fixed.
- ``versions`` lists match exactly; ``ECOSYSTEM`` and ``SEMVER`` ranges follow the
  OSV evaluation rules for ``introduced``, ``fixed``, ``last_affected`` and ``limit``.
- Aliases merge: one finding per (package instance, vulnerability), named by its
  CVE where it has one, listing every alias.

Speed: a :class:`Matcher` keeps what it loaded (it reads a database that does
not change under it): each affected entry is compiled once into the sort keys
of its range events, already ordered, so evaluating a package against it costs
a few string comparisons; normalised names, candidate ecosystems, advisories,
severity assessments and KEV/EPSS lookups are kept too. A package without
advisories costs one dictionary lookup once its key is known. Most rows need no
compiling at all: where the importer stored it (see :mod:`shared.vulndb.db`), a
row whose ranges are one interval comes with the sort keys of its bounds
(:func:`pack_interval`), and an advisory with the base scores of its CVSS
vectors, which are read when the file names the versions this code would use
to make them, and computed otherwise.

It also remembers what each (advisory ecosystem, name, version) it evaluated
came to: the findings less the package's own fields (name, purl, where it was
found), and the warnings. Every instance of that package version, in this call
or a later one (daily rescans of images that share base layers, binary packages
built from one source package), then costs a fresh copy of those findings with
its own fields, and no evaluation. The memo is bounded like the other caches.
"""

from __future__ import annotations

import gc
import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

from shared.domain import unvalidated
from shared.domain.findings import EPSSScore, Finding, KEVEntry
from shared.domain.models import OSInfo, Package
from shared.domain.unvalidated import assemble
from shared.vulndb import db, risk
from shared.vulndb.names import ecosystem_base, normalise
from shared.vulndb.versions import KEY_ENCODING, InvalidVersion, UnsupportedEcosystem, clear_caches, key_function
from shared.vulndb.versions._common import encode

#: OSV range types that order package versions (GIT ranges name commits).
_SEMVER = "SEMVER"
#: OS package types whose advisories are keyed by source package.
_BY_SOURCE = frozenset({"dpkg", "apk"})
#: Ecosystems whose advisories name a release inside the ecosystem string ("Red Hat:enterprise_linux:9::appstream").
_QUALIFIED = frozenset({"Red Hat", "SUSE", "openSUSE"})
#: Bound on the per-matcher caches of names and keys (a long-running matcher sees ever new packages).
_CACHE_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Affected:
    advisory_id: str
    ecosystem: str
    ranges: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    versions: frozenset[str]
    severity: str | None


@dataclass
class Advisory:
    id: str
    summary: str
    severity: list[dict[str, str]]
    db_severity: str | None
    aliases: list[str]
    references: list[str]
    #: id, summary, aliases and reference URLs are all exactly ``str`` (what pydantic would make of them)
    typed: bool = False
    #: the CVSS (version, base score) of each severity entry, as the database stored them; None: computed
    scores: list[Any] | None = None


@dataclass
class MatchResult:
    findings: list[Finding]
    warnings: list[str] = field(default_factory=list)


@lru_cache(maxsize=262_144)
def _key(scheme: str, version: str) -> Any:
    """sort_key(scheme, version), its errors included. It calls the scheme's key function itself: sort_key would
    look the scheme up and try the scheme's own cache first, for every version, and this is a cache already."""
    try:
        return key_function(scheme, cached=False)(version)
    except InvalidVersion as err:
        raise err.in_ecosystem(scheme) from None


def _scheme(range_type: str, ecosystem: str) -> str:
    # SEMVER ranges are plain SemVer 2.0 whatever the ecosystem (Go writes them without the 'v').
    return "npm" if range_type == _SEMVER else ecosystem


def _strips_v(range_type: str, ecosystem: str) -> bool:
    return range_type == _SEMVER or ecosystem_base(ecosystem) == "Go"


def _version_for(range_type: str, ecosystem: str, version: str) -> str:
    if _strips_v(range_type, ecosystem):
        return version[1:] if version.startswith("v") else version
    return version


# A compiled range: (scheme, strip a leading 'v'?, first unreadable event version or None, limit keys,
# the other events as (key or None for 'introduced 0', kind) in evaluation order, (key, version) of fixes).
_Range = tuple[str, bool, str | None, tuple[Any, ...], tuple[tuple[Any, str], ...], tuple[tuple[Any, str], ...]]


def _compile(ecosystem: str, ranges: Iterable[Sequence[Any]]) -> tuple[_Range, ...]:
    """Ranges ((type, ((kind, version), ...)), ...) with every event version turned into its sort key once,
    the events in evaluation order."""
    out = []
    for rtype, events in ranges:
        scheme, strip = _range_scheme(rtype, ecosystem)
        ordered: list[tuple[int, Any, str]] = []
        limits: list[Any] = []
        fixes: list[tuple[Any, str]] = []
        bad: str | None = None
        for kind, ver in events:
            if kind == "introduced" and ver == "0":
                ordered.append((0, None, kind))
                continue
            v = ver[1:] if strip and ver.startswith("v") else ver
            try:
                k = _key(scheme, v)
            except (InvalidVersion, UnsupportedEcosystem):
                if bad is None:
                    bad = v  # evaluation raises on it, as it always did; fixes skip it
                continue
            if kind == "limit":
                limits.append(k)
            else:
                ordered.append((1, k, kind))
                if kind == "fixed":
                    fixes.append((k, ver))
        if len(ordered) == 2:
            # the stable sort below, for the usual two events: swapped only if the second sorts strictly first
            first, second = ordered
            if first[1] is not None and (second[1] is None or first[1] > second[1]):
                ordered.reverse()
        elif len(ordered) > 2:
            ordered.sort(key=lambda t: (t[0], t[1]) if t[1] is not None else (0, 0))
        out.append((scheme, strip, bad, tuple(limits), tuple([(k, kind) for _, k, kind in ordered]), tuple(fixes)))
    return tuple(out)


# The one-range shape most entries have: one interval, from an introduced version (or from the start) up to a fix
# (excluded), a last affected version (included) or without end. As (scheme, strip a leading 'v'?, key of the
# introduced version or None for "0", key of the upper bound or None, whether the bound is included, the fix or
# None): evaluating it takes one or two comparisons.
_Simple = tuple[str, bool, Any, Any, bool, str | None]


def _simple(ranges: tuple[_Range, ...]) -> _Simple | None:
    """The interval the compiled ranges are, if they are one (in evaluation order, as _evaluate reads them)."""
    if len(ranges) != 1:
        return None
    scheme, strip, bad, limits, ordered, fixes = ranges[0]
    if bad is not None or limits or not ordered or ordered[0][1] != "introduced":
        return None
    low = ordered[0][0]
    if len(ordered) == 1:
        return (scheme, strip, low, None, False, None) if not fixes else None
    if len(ordered) != 2:
        return None
    high, kind = ordered[1]
    if kind == "fixed" and len(fixes) == 1:
        return scheme, strip, low, high, False, fixes[0][1]
    if kind == "last_affected" and not fixes:
        return scheme, strip, low, high, True, None
    return None


# The compact JSON text the importer stores for one range of plain events. The ranges of every row an image reads
# are parsed and compiled, once per distinct text, and json.loads and the general compilation cost several times
# what reading that text with a regular expression does (a JSON string without escapes or control characters is
# its own text). So the commonest text, [introduced, fixed], is compiled straight from its match, other texts of
# one range are compiled from their events without json.loads, and every other text goes to json.loads.
_EVENT = r'\["(?:introduced|fixed|last_affected|limit)","[^"\\\x00-\x1f]*"\]'
_ONE_RANGE_JSON = re.compile(rf'\[\["(ECOSYSTEM|SEMVER)",\[((?:{_EVENT},)*{_EVENT})\]\]\]')
_EVENTS = re.compile(r'\["([a-z_]+)","([^"]*)"\]')
_INTRODUCED_FIXED_JSON = re.compile(
    r'\[\["(ECOSYSTEM|SEMVER)",\[\["introduced","([^"\\\x00-\x1f]*)"\],\["fixed","([^"\\\x00-\x1f]*)"\]\]\]\]'
)


def _compiled_ranges(ecosystem: str, text: str) -> tuple[tuple[_Range, ...], _Simple | None]:
    """The compiled ranges of an entry's ranges JSON, and the simple shape if they have it."""
    m = _INTRODUCED_FIXED_JSON.fullmatch(text)
    if m is not None:
        # the most common text, compiled as _compile would compile it, without its general loop
        rtype, introduced, fixed = m.groups()
        scheme, strip = _range_scheme(rtype, ecosystem)
        try:
            high = _key(scheme, fixed[1:] if strip and fixed.startswith("v") else fixed)
            if introduced == "0":
                low = None
            else:
                low = _key(scheme, introduced[1:] if strip and introduced.startswith("v") else introduced)
        except (InvalidVersion, UnsupportedEcosystem):
            low = high = None  # _compile below records the version it refuses
        if high is not None and (low is None or low <= high):
            compiled = (scheme, strip, None, (), ((low, "introduced"), (high, "fixed")), ((high, fixed),))
            return (compiled,), (scheme, strip, low, high, False, fixed)
    m = _ONE_RANGE_JSON.fullmatch(text)
    ranges = _compile(ecosystem, ((m[1], _EVENTS.findall(m[2])),) if m is not None else json.loads(text))
    return ranges, _simple(ranges)


# The compiled form of an affected row's ranges when they are one interval, which the importer stores beside the
# row (see pack_interval): (range type, key of the introduced version or None, key of the upper bound or None,
# whether the bound is included, the fix or None).
StoredInterval = tuple[str, str | None, str | None, bool, str | None]


def interval_of(ecosystem: str, ranges: Sequence[Sequence[Any]]) -> StoredInterval | None:
    """The compiled form of an affected entry's ranges (as the importer holds them: ((type, ((kind, version), ...)),
    ...)) if they are one interval; None for other ranges, and for ranges with a version their scheme refuses.

    Matching the first image against a large database parses and compiles the ranges of every row it reads; most
    are one interval (introduced, then fixed or last affected), whose compiled form is these few values. Stored
    beside the row, they let _interval_ranges rebuild the entry without parsing JSON or versions. The keys are
    this version of shared.vulndb.versions' keys (``KEY_ENCODING``): a database names the version it stored.
    """
    # One range of at most two events: with more, some event is a limit, a version the scheme refuses, or a third
    # event _simple declines, whatever the versions (so they need not be read).
    if len(ranges) != 1:
        return None
    range_type, events = ranges[0]
    n = len(events)
    if n > 2:
        return None
    # The importer calls this for every row it writes: the usual shapes, (introduced, fixed or last affected) and
    # (introduced), are done here as _compile and _simple do them, without their general loops.
    if n == 2 and events[0][0] == "introduced" and events[1][0] in ("fixed", "last_affected"):
        (_, first), (kind, second) = events
        scheme, strip = _range_scheme(range_type, ecosystem)
        try:
            high = _key(scheme, second[1:] if strip and second.startswith("v") else second)
            low = None if first == "0" else _key(scheme, first[1:] if strip and first.startswith("v") else first)
        except (InvalidVersion, UnsupportedEcosystem):
            return None  # _compile records the refused version, and _simple declines the range
        if low is not None and low > high:
            return None  # _compile orders the upper bound first, and _simple declines the range
        return range_type, low, high, kind == "last_affected", second if kind == "fixed" else None
    if n == 1 and events[0][0] == "introduced":
        first = events[0][1]
        if first == "0":
            return range_type, None, None, False, None
        scheme, strip = _range_scheme(range_type, ecosystem)
        try:
            low = _key(scheme, first[1:] if strip and first.startswith("v") else first)
        except (InvalidVersion, UnsupportedEcosystem):
            return None
        return range_type, low, None, False, None
    simple = _simple(_compile(ecosystem, ranges))
    if simple is None:
        return None
    _, _, low, high, included, fix = simple
    return range_type, low, high, included, fix


def stored_interval(ecosystem: str, ranges_json: str) -> StoredInterval | None:
    """interval_of an affected row's ranges, from their JSON text."""
    return interval_of(ecosystem, json.loads(ranges_json))


def _interval_ranges(ecosystem: str, stored: StoredInterval) -> tuple[tuple[_Range, ...], _Simple]:
    """What _compiled_ranges gives the ranges a stored_interval value was made from."""
    range_type, low, high, included, fix = stored
    scheme, strip = _range_scheme(range_type, ecosystem)
    ordered: tuple[tuple[Any, str], ...] = ((low, "introduced"),)
    if high is not None:
        ordered += ((high, "last_affected" if included else "fixed"),)
    fixes = ((high, fix),) if fix is not None else ()
    return ((scheme, strip, None, (), ordered, fixes),), (scheme, strip, low, high, included, fix)


# An interval as the database stores it, in one TEXT value (the affected table's ``interval`` column): a letter
# naming the range type, the upper bound's kind and whether there is an introduced key, then the introduced key,
# the upper bound's key and the fix, each possibly empty, separated by _SEP. One value rather than five columns:
# the matcher reads it in place of the ranges' JSON text (COALESCE(interval, ranges)), so a row costs it one
# string either way, and it is split only for the first row of each distinct value. The letters are capitals,
# which never begin a JSON text: a value is told from the JSON by its first character.
_SEP = "\x1f"
#: letter -> (range type, upper bound: 0 none, 1 fixed, 2 last affected, has an introduced key)
_HEADS = {
    chr(ord("A") + 6 * semver + 2 * upper + has_low): ("SEMVER" if semver else "ECOSYSTEM", upper, bool(has_low))
    for semver in (0, 1)
    for upper in (0, 1, 2)
    for has_low in (0, 1)
}
_LETTERS = {shape: letter for letter, shape in _HEADS.items()}


def pack_interval(interval: StoredInterval) -> str | None:
    """The stored text of an interval; None for one that cannot be stored (a value holding the separator)."""
    range_type, low, high, included, fix = interval
    upper = 0 if high is None else 2 if included else 1
    letter = _LETTERS.get((range_type, upper, low is not None))
    if letter is None or (fix is not None) != (upper == 1):
        return None  # not a shape interval_of makes
    body = f"{'' if low is None else low}{_SEP}{'' if high is None else high}{_SEP}{'' if fix is None else fix}"
    if body.count(_SEP) != 2:
        return None  # a key or the fix holds the separator: the row keeps only its ranges
    return letter + body


def unpack_interval(text: str) -> StoredInterval | None:
    """The interval a pack_interval text stands for; None for any other text (the ranges' JSON)."""
    head = _HEADS.get(text[:1])
    if head is None:
        return None
    range_type, upper, has_low = head
    low, high, fix = text[1:].split(_SEP)
    return (
        range_type,
        low if has_low else None,
        high if upper else None,
        upper == 2,
        fix if upper == 1 else None,
    )


@lru_cache(maxsize=1024)
def _interval_shape(letter: str, ecosystem: str) -> tuple[str, bool, bool, int] | None:
    """(scheme, strip a leading 'v'?, has an introduced key, upper bound: 0 none, 1 fixed, 2 last affected) of
    the stored intervals of an ecosystem that begin with ``letter``; None for a letter no interval begins with."""
    head = _HEADS.get(letter)
    if head is None:
        return None
    range_type, upper, has_low = head
    scheme, strip = _range_scheme(range_type, ecosystem)
    return scheme, strip, has_low, upper


def _stored_ranges(ecosystem: str, text: str) -> tuple[tuple[_Range, ...], _Simple] | None:
    """_interval_ranges(ecosystem, unpack_interval(text)) in one step; None where unpack_interval gives None.

    The first image reads thousands of distinct intervals: the two steps, with the tuple between them and a
    lookup of the range type's scheme for each, take about a third longer than this (whose scheme lookup is
    one cached call per letter and ecosystem).
    """
    shape = _interval_shape(text[:1], ecosystem)
    if shape is None:
        return None
    scheme, strip, has_low, upper = shape
    low: str | None
    low, high, fix = text[1:].split(_SEP)
    if not has_low:
        low = None
    if upper == 1:
        return ((scheme, strip, None, (), ((low, "introduced"), (high, "fixed")), ((high, fix),)),), (
            scheme,
            strip,
            low,
            high,
            False,
            fix,
        )
    if upper == 2:
        return ((scheme, strip, None, (), ((low, "introduced"), (high, "last_affected")), ()),), (
            scheme,
            strip,
            low,
            high,
            True,
            None,
        )
    return ((scheme, strip, None, (), ((low, "introduced"),), ()),), (scheme, strip, low, None, False, None)


@lru_cache(maxsize=1024)
def _range_scheme(range_type: str, ecosystem: str) -> tuple[str, bool]:
    return _scheme(range_type, ecosystem), _strips_v(range_type, ecosystem)


@lru_cache(maxsize=4096)
def _compiled(entry: Affected) -> tuple[_Range, ...]:
    return _compile(entry.ecosystem, entry.ranges)


def evaluate(entry: Affected, version: str) -> tuple[bool, list[str]]:
    """(affected?, fixed versions above it) for one affected entry. Raises InvalidVersion."""
    return _evaluate(version in entry.versions, _compiled(entry), version)


def _evaluate(listed: bool, ranges: tuple[_Range, ...], version: str) -> tuple[bool, list[str]]:
    """``listed``: the version is in the entry's explicit ``versions``."""
    if listed:
        return True, _fixes_above(ranges, version)
    hit = False
    for scheme, strip, bad, limits, ordered, _ in ranges:
        v = _key(scheme, version[1:] if strip and version.startswith("v") else version)
        if bad is not None:
            _key(scheme, bad)  # raises InvalidVersion / UnsupportedEcosystem naming the event's version
        if limits and all(v >= lim for lim in limits):
            continue
        affected = False
        for k, kind in ordered:
            if kind == "introduced":
                if k is None or v >= k:
                    affected = True
            elif kind == "fixed":
                if v >= k:
                    affected = False
            elif kind == "last_affected" and v > k:
                affected = False
        if affected:
            hit = True
    if not hit:
        return False, []
    return True, _fixes_above(ranges, version)


def _fixes_above(ranges: tuple[_Range, ...], version: str) -> list[str]:
    out: list[str] = []
    for scheme, strip, _, _, _, fixes in ranges:
        if not fixes:
            continue
        try:
            v = _key(scheme, version[1:] if strip and version.startswith("v") else version)
        except (InvalidVersion, UnsupportedEcosystem):
            continue
        out.extend(ver for k, ver in fixes if k > v)
    return sorted(set(out)) if len(out) > 1 else out


def _candidate_ecosystems(pkg_eco: str, os: OSInfo | None, known: frozenset[str]) -> list[str]:
    """Advisory ecosystems that speak for a package's ecosystem (its own, plus release-qualified forms)."""
    out = [pkg_eco]
    base = ecosystem_base(pkg_eco)
    if os is None or base not in _QUALIFIED:
        return out
    major = os.version_id.split(".", 1)[0]
    for e in known:
        if not e.startswith(base + ":"):
            continue
        parts = e.split(":")
        if base == "Red Hat" and len(parts) > 2 and parts[2].split(".", 1)[0] == major:
            out.append(e)
        elif base == "SUSE" and os.version_id:
            want = os.version_id.replace(".", " SP") if "." in os.version_id else os.version_id
            if e.endswith(" " + want) or e.endswith(" " + os.version_id):
                out.append(e)
        elif base == "openSUSE" and os.version_id and e.endswith(" " + os.version_id):
            out.append(e)
    return out


# An affected row as the matcher keeps it: (advisory id, severity, explicit versions as their JSON text, compiled
# ranges, the simple shape or None). A plain tuple: the first image matched against a large database reads tens
# of thousands of rows, and building a tuple costs a fraction of an object's __init__.
_Entry = tuple[str, str | None, str, tuple[_Range, ...], _Simple | None]


def _lists(listed: dict[str, frozenset[str]], text: str, version: str) -> bool:
    """Whether ``version`` is one of an entry's explicit versions, ``text`` (their JSON).

    The text becomes a set (kept in ``listed``) only once a version is found in it: most entries are never
    asked about a version they list.
    """
    if text == "[]":
        return False
    # A plain version (no quote, backslash or control character) appears in the compact JSON
    # exactly as itself between quotes; if it does not, it is not listed.
    if f'"{version}"' not in text and _PLAIN.fullmatch(version):
        return False
    versions = listed.get(text)
    if versions is None:
        if len(listed) >= _CACHE_LIMIT:
            listed.clear()
        versions = listed[text] = frozenset(json.loads(text))
    return version in versions


_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')

#: What the items of an advisory's aliases and reference URLs must all be for the advisory to count as typed.
_ONLY_STR = frozenset({str})
#: A reference's URL (a KeyError for a reference without one, as indexing it gives).
_URL = itemgetter("url")


#: The scanner json.loads itself runs (the default decoder's).
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # (not in the stubs)


def _loads(text: str) -> Any:
    """json.loads(text), for the texts the database makes (no whitespace around the value).

    json.loads reaches the scanner through two calls of its own and a whitespace match on either side; for an
    advisory's few hundred characters that is half the time of parsing it, and the first image reads a thousand
    of them. Any text the scanner does not take whole (whitespace around it, extra data, no value) goes to
    json.loads, which gives its value or raises its error as always; an error inside the value is the one
    json.loads raises, since it is the same scanner at the same position.
    """
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def _scores_fit(scores: Any, severity: list[Any]) -> bool:
    """Whether stored scores have the shape the importer writes: one [version, base score] or null per entry of
    the advisory's severity list."""
    return (
        type(scores) is list
        and len(scores) == len(severity)
        and all(
            x is None or (type(x) is list and len(x) == 2 and type(x[0]) is str and type(x[1]) is float) for x in scores
        )
    )


class _Group:
    """What the findings of one set of advisories share, whatever the package: computed once."""

    __slots__ = (
        "advisories",
        "aliases",
        "assessment",
        "epss",
        "kev",
        "priorities",
        "references",
        "summary",
        "typed",
    )

    def __init__(
        self,
        advisories: tuple[str, ...],
        aliases: tuple[str, ...],
        references: tuple[str, ...],
        summary: str,
        assessment: risk.Assessment,
        kev: Any,
        epss: Any,
        typed: bool,
    ) -> None:
        self.typed = typed  # every value taken from the database has exactly the type its Finding field holds
        self.advisories = advisories
        self.aliases = aliases
        self.references = references
        self.summary = summary
        self.assessment = assessment
        self.kev = kev
        self.epss = epss
        score = epss.score if epss else None
        # priority without and with a fix
        self.priorities = risk.priorities(assessment.severity, kev is not None, score)


# A hit: the entry that matched and the fixed versions above the package's version.
_Hit = tuple[_Entry, list[str]]
# A warning, less the package: (version compared, what went wrong, advisory not evaluated).
_Warning = tuple[str, str, str]
#: The fields the matcher sets (the others keep their defaults): what model_fields_set says of its findings.
_SET_FIELDS = frozenset(Finding.model_fields) - {"suppressed", "expired_exemptions"}


class _Prepared:
    """One finding of a memoised outcome, less the package.

    ``fields`` are a finding's field values, laid out as in a validated finding's ``__dict__`` (field order),
    with some package's fields in the package's places. Its values are immutable (strings, numbers, tuples,
    frozen models), so every finding made from it shares them. ``fields_set`` is the finding's
    ``model_fields_set``, shared by those findings too: pydantic changes that set only when a field is
    assigned, which a frozen Finding refuses, and model_copy gives the copy a set of its own. ``sort_key``
    orders by priority (higher first), then id (see :func:`_package_key`).
    """

    __slots__ = ("fields", "fields_set", "sort_key")

    def __init__(self, fields: dict[str, Any], fields_set: set[str], sort_key: str) -> None:
        self.fields = fields
        self.fields_set = fields_set
        self.sort_key = sort_key

    @classmethod
    def of(cls, finding: Finding) -> _Prepared:
        """From a validated finding."""
        fields = dict(finding.__dict__)
        return cls(fields, set(finding.model_fields_set), _finding_key(finding.priority, finding.id))


# the sort key parts of the usual priorities (see _finding_key)
_PRIORITY_KEYS = {priority: encode([-priority]) for priority in range(2_000)}


def _finding_key(priority: int, cid: str) -> str:
    """The part of a finding's sort key its priority and id make: encode([-priority, cid])."""
    head = _PRIORITY_KEYS.get(priority)
    if head is None or "\0" in cid:
        return encode([-priority, cid])
    return f"{head}{cid}\0\0"  # what encode makes of a string without a NUL


def _group_key(items: list[_Hit]) -> Any:
    """What a group (Matcher._group) depends on: the advisories and the entries' severities, in order."""
    return items[0][0][:2] if len(items) == 1 else tuple([e[:2] for e, _ in items])


class _Outcome:
    """What one package version came to against its advisories (see the module docstring)."""

    __slots__ = ("findings", "warnings")

    def __init__(self, findings: tuple[_Prepared, ...], warnings: tuple[_Warning, ...]) -> None:
        self.findings = findings
        self.warnings = warnings


_NOTHING = _Outcome((), ())


def _copy(prepared: _Prepared, package: dict[str, Any]) -> Finding:
    """A finding with a prepared finding's fields and a package's fields, made without validating again.

    The advisory side was validated (or checked to be exactly typed) when the finding was prepared, the package
    side in the Package model. Pydantic's model_copy would make the same through generic copies of the field dict,
    the set of set fields and the extras, at about twice the cost, which would be most of a warm match's time;
    this sets the four attributes of a pydantic model instance directly (shared.domain.unvalidated). Each finding
    gets a field dict of its own; the values in it, and the set of set fields, are shared (see _Prepared). (_match
    inlines the same steps for its loop.)
    """
    fields = prepared.fields.copy()
    fields.update(package)
    return assemble(Finding, fields, prepared.fields_set)


# What a package's route (Matcher._route) depends on, read in one call.
_IDENTITY = attrgetter("ecosystem", "type", "name", "source_name")
# (key or None, keys or None, by source?)
_Route = tuple[Any, Any, bool]
_NO_ROUTE: _Route = (None, None, False)


def _route_keys(route: _Route) -> list[tuple[str, str]]:
    """The (ecosystem, name) keys a route reads."""
    key, multi, _ = route
    return [key] if multi is None else list(multi)


def _package_key(p: Package) -> str:
    """The package's part of a finding's sort key.

    Findings are sorted by priority (higher first), id, package name, installed version, and where the
    package was found. Each finding's key is those fields encoded into one string whose string order is their
    order as a tuple (the encoding of version sort keys, ``shared.vulndb.versions._common.encode``): sorting
    strings costs a fraction of sorting tuples built by a key function. The encoding is prefix-free, so it
    concatenates: a prepared finding keeps the part of the first two fields, and each package adds this one.
    """
    name, version, found_in = p.name, p.version, p.found_in
    if "\0" in name or "\0" in version or "\0" in found_in:
        return encode([name, version, found_in])
    return f"{name}\0\0{version}\0\0{found_in}\0\0"  # what encode makes of strings without a NUL


def _package_fields(p: Package) -> dict[str, Any]:
    return {
        "package_type": p.type,
        "package_name": p.name,
        "package_purl": p.purl,
        "package_ecosystem": p.ecosystem or "",
        "installed_version": p.version,
        "found_in": p.found_in,
        "layer_diff_id": p.layer_diff_id,
    }


class Matcher:
    """Matches inventories against one open database; keeps what it loaded warm between calls."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._affected: dict[tuple[str, str], list[_Entry]] = {}
        self._advisories: dict[str, Advisory] = {}
        self._canonical: dict[str, str] = {}
        self._ecosystems: frozenset[str] | None = None
        self._names: dict[tuple[str, str], str] = {}
        self._routes: dict[str | None, dict[tuple[Any, ...], _Route]] = {}  # by OS release, then by _IDENTITY
        self._candidates: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._groups: dict[Any, _Group] = {}  # by (advisory id, entry severity), or a tuple of those
        self._listed: dict[str, frozenset[str]] = {}  # explicit versions, by their JSON text
        self._cves: dict[str, tuple[Any, Any]] = {}
        # compiled ranges by ecosystem, then by the stored text (an interval or the ranges' JSON)
        self._compiled: dict[str, dict[str, tuple[tuple[_Range, ...], _Simple | None]]] = {}
        self._withdrawn_ids: frozenset[str] | None = None
        self._withdrawn_indexed: bool | None = None
        self._ranges_sql: str | None = None  # what _load reads for an entry's ranges (see _stored_columns)
        self._scores_sql: str | None = None  # what _load_advisories reads for stored CVSS scores
        # (ecosystem, normalised name, version), or a tuple of those for a package with several keys
        self._outcomes: dict[Any, _Outcome] = {}

    def forget_versions(self) -> None:
        """Forget what package versions came to, keeping what was read from the database (for benchmarks and
        tests): the memo of outcomes and the process's caches of version sort keys, so the
        next match meets its versions as if for the first time, with the database's rows already compiled."""
        self._outcomes.clear()
        _key.cache_clear()
        clear_caches()

    # -- loading ---------------------------------------------------------------

    def known_ecosystems(self) -> frozenset[str]:
        if self._ecosystems is None:
            # DISTINCT by skipping through the (ecosystem, name) index: one seek per ecosystem, not a full scan
            sql = (
                "WITH RECURSIVE e(x) AS (SELECT min(ecosystem) FROM affected "
                "UNION ALL SELECT (SELECT min(ecosystem) FROM affected WHERE ecosystem > x) FROM e "
                "WHERE x IS NOT NULL) SELECT x FROM e WHERE x IS NOT NULL"
            )
            self._ecosystems = frozenset(r[0] for r in self.conn.execute(sql))
        return self._ecosystems

    def _withdrawn(self) -> frozenset[str] | None:
        """Ids of withdrawn advisories, read once from their small index; None for files without that index."""
        if self._withdrawn_indexed is None:
            self._withdrawn_indexed = bool(
                self.conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'advisories_withdrawn'"
                ).fetchone()
            )
        if not self._withdrawn_indexed:
            return None
        if self._withdrawn_ids is None:
            rows = self.conn.execute(
                "SELECT id FROM advisories INDEXED BY advisories_withdrawn WHERE withdrawn IS NOT NULL"
            )
            self._withdrawn_ids = frozenset(r[0] for r in rows)
        return self._withdrawn_ids

    def _stored_columns(self) -> None:
        """Decide, once, whether to read what the importer stored beside rows: the intervals of affected rows and
        the CVSS scores of advisories. Each is read only where the file has its column and names in ``meta`` the
        version that made the values (the sort-key encoding; the scoring and the cvss library), equal to this
        one's; otherwise (a file of the first schema, or written by another version) they are computed, as for
        the rows without them. The rest of the file reads the same either way."""
        try:
            meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            meta = {}
        affected = {r[1] for r in self.conn.execute("PRAGMA table_info(affected)")}
        advisories = {r[1] for r in self.conn.execute("PRAGMA table_info(advisories)")}
        keys_trusted = "interval" in affected and meta.get(db.META_SORT_KEYS) == str(KEY_ENCODING)
        scores_trusted = (
            "cvss" in advisories and risk.SCORES_VERSION is not None and meta.get(db.META_CVSS) == risk.SCORES_VERSION
        )
        # (an interval in place of the ranges' JSON, told apart by its first character: see pack_interval)
        self._ranges_sql = "COALESCE(a.interval, a.ranges)" if keys_trusted else "a.ranges"
        self._scores_sql = "COALESCE(cvss, 'null')" if scores_trusted else "'null'"

    def _load(self, keys: Iterable[tuple[str, str]]) -> None:
        missing = [k for k in set(keys) if k not in self._affected]
        if not missing:
            return
        if self._ranges_sql is None:
            self._stored_columns()
        found: dict[tuple[str, str], list[_Entry]] = {k: [] for k in missing}
        withdrawn = self._withdrawn()
        # The keys drive the query (CROSS JOIN fixes the join order): each is one seek in the (ecosystem, name)
        # index, never a scan. Withdrawn advisories have no affected rows; the set of their ids (or, in files
        # without its index, a join with the advisories) keeps it so whatever wrote the file.
        if withdrawn is not None:
            tail = ""
        else:
            tail = " CROSS JOIN advisories v ON v.id = a.advisory_id WHERE v.withdrawn IS NULL"
            withdrawn = frozenset()
        compiled = self._compiled
        for i in range(0, len(missing), 400):
            chunk = missing[i : i + 400]
            placeholders = ",".join(["(?, ?, ?)"] * len(chunk))
            params = [x for j, (e, n) in enumerate(chunk) for x in (j, e, n)]
            # only '?' placeholders are interpolated into the query; each row names its key by its
            # position in the chunk (an int), not by its ecosystem and name again
            sql = (
                f"WITH k(i, e, n) AS (VALUES {placeholders}) "  # noqa: S608
                f"SELECT k.i, a.advisory_id, {self._ranges_sql}, NULLIF(a.versions, '[]'), a.severity "
                "FROM k CROSS JOIN affected a ON a.ecosystem = k.e AND a.name = k.n" + tail
            )
            # (no versions listed, the usual case, comes as None: no string made for each row)
            # The rows of one key come one after another (the key drives the join), so what depends on the key
            # alone (its list, its ecosystem's compiled texts) is looked up when the key changes, not per row.
            last = -1
            eco = ""
            add: Any = None
            texts: dict[str, tuple[tuple[_Range, ...], _Simple | None]] = {}
            for j, adv, ranges, versions, sev in self.conn.execute(sql, params):
                if adv in withdrawn:
                    continue
                if j != last:
                    last = j
                    key = chunk[j]
                    add = found[key].append
                    eco = key[0]
                    texts = compiled.get(eco) or compiled.setdefault(eco, {})
                c = texts.get(ranges)
                if c is None:
                    if len(texts) >= _CACHE_LIMIT:
                        texts.clear()
                    c = texts[ranges] = _stored_ranges(eco, ranges) or _compiled_ranges(eco, ranges)
                # an entry: (advisory id, severity, versions JSON) and the compiled pair, in one tuple
                add((adv, sev, "[]" if versions is None else versions, *c))
        self._affected.update(found)

    def _load_advisories(self, ids: Iterable[str]) -> None:
        missing = [i for i in set(ids) if i not in self._advisories]
        if missing and self._scores_sql is None:
            self._stored_columns()
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            marks = ",".join("?" * len(chunk))
            # severity, aliases, references and stored scores in one JSON document: one parse per advisory
            sql = (
                "SELECT id, summary, db_severity, "  # noqa: S608
                f"'[' || severity || ',' || aliases || ',' || refs || ',' || {self._scores_sql} || ']' "
                f"FROM advisories WHERE id IN ({marks})"
            )
            for aid, summary, dbsev, lists in self.conn.execute(sql, chunk):
                sev, aliases, refs, scores = _loads(lists)
                if scores is not None and not _scores_fit(scores, sev):
                    scores = None  # not what the importer writes: computed instead
                urls = list(map(_URL, refs))
                # (the types of the lists' items as a set, made in C: the usual lists hold strings only)
                typed = (
                    type(aid) is str
                    and type(summary) is str
                    and _ONLY_STR.issuperset(map(type, aliases))
                    and _ONLY_STR.issuperset(map(type, urls))
                )
                adv = Advisory(aid, summary, sev, dbsev, aliases, urls, typed, scores)
                self._advisories[aid] = adv
                self._canonical[aid] = canonical_id(aid, adv.aliases)

    # -- matching ----------------------------------------------------------------

    def _normalised(self, eco: str, name: str) -> str:
        k = (eco, name)
        n = self._names.get(k)
        if n is None:
            if len(self._names) >= _CACHE_LIMIT:
                self._names.clear()
            n = self._names[k] = normalise(eco, name)
        return n

    def _candidate(self, pkg_eco: str, os: OSInfo | None) -> tuple[str, ...]:
        if os is None or ecosystem_base(pkg_eco) not in _QUALIFIED:
            return (pkg_eco,)
        k = (pkg_eco, os.version_id)
        c = self._candidates.get(k)
        if c is None:
            c = self._candidates[k] = tuple(_candidate_ecosystems(pkg_eco, os, self.known_ecosystems()))
        return c

    def lookup_keys(self, p: Package, os: OSInfo | None) -> list[tuple[str, str, str]]:
        """(advisory ecosystem, normalised name, version to compare) for one package."""
        if not p.ecosystem or not p.version:
            return []  # e.g. a Go module replaced by a local directory: nothing to compare
        version = (p.source_version or p.version) if p.type in _BY_SOURCE else p.version
        return [(eco, name, version) for eco, name in self._lookup_names(p, os)]

    def _lookup_names(self, p: Package, os: OSInfo | None) -> list[tuple[str, str]]:
        """lookup_keys less the version, for a package with an ecosystem."""
        pkg_eco = p.ecosystem or ""
        name = (p.source_name or p.name) if p.type in _BY_SOURCE else p.name
        by_rpm_source = p.type == "rpm" and p.source_name and p.source_name != p.name
        if os is None or ecosystem_base(pkg_eco) not in _QUALIFIED:
            out = [(pkg_eco, self._normalised(pkg_eco, name))]
            if by_rpm_source:
                out.append((pkg_eco, self._normalised(pkg_eco, p.source_name or "")))
            return out
        out = []
        for eco in self._candidate(pkg_eco, os):
            out.append((eco, self._normalised(eco, name)))
            if by_rpm_source:
                out.append((eco, self._normalised(eco, p.source_name or "")))
        return out

    def match(
        self,
        packages: Sequence[Package],
        os: OSInfo | None = None,
        *,
        include_dev: bool = False,
    ) -> MatchResult:
        # Matching allocates tens of thousands of small objects (findings above all) and makes no reference
        # cycles; the cyclic garbage collector, left on, would walk the matcher's caches again and again
        # meanwhile (a third of the time of a warm match). It is paused for the call, and resumed after it
        # if it was on.
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self._match(packages, os, include_dev)
        finally:
            if paused:
                gc.enable()

    def _match(self, packages: Sequence[Package], os: OSInfo | None, include_dev: bool) -> MatchResult:
        affected = self._affected
        outcomes = self._outcomes
        listed = self._listed
        # Pass 1: each package's lookup keys (its route, cached by what it depends on: see _route) and the memo key
        # of its version. A package no advisory names costs one C call reading four attributes and one dictionary
        # lookup once its route is known, whatever its version. A plan is (package, memo key, key, version) for a
        # package of one lookup key, (package, memo key, None, memo key) for one of several; the memo key is
        # (ecosystem, normalised name, version), or the tuple of those of its keys.
        osk = None if os is None else os.version_id
        cache = self._routes.get(osk)
        if cache is None:
            cache = self._routes[osk] = {}
        identity = _IDENTITY
        plans: list[tuple[Package, Any, Any, Any]] = []
        unsettled: list[tuple[tuple[Any, ...], _Route]] = []
        missing: set[tuple[str, str]] = set()
        for p in packages:
            if p.dev and not include_dev:
                continue
            ident = identity(p)
            route = cache.get(ident)
            if route is None:
                route = self._route(p, os)
                if route is not _NO_ROUTE:
                    keys = _route_keys(route)
                    unknown = [k for k in keys if k not in affected]
                    if unknown:
                        missing.update(unknown)
                        unsettled.append((ident, route))  # settled once its keys are loaded
                    elif not any(affected[k] for k in keys):
                        route = _NO_ROUTE  # no advisory names this package
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[ident] = route
            if route is _NO_ROUTE:
                continue
            version = p.version
            if not version:
                continue  # e.g. a Go module replaced by a local directory: nothing to compare
            key, multi, by_source = route
            if by_source:
                version = p.source_version or version
            if multi is None:
                plans.append((p, (*key, version), key, version))
            else:
                mkey = tuple([(eco, name, version) for eco, name in multi])
                plans.append((p, mkey, None, mkey))
        if missing:
            self._load(missing)
        for ident, route in unsettled:
            if not any(affected[k] for k in _route_keys(route)):
                cache[ident] = _NO_ROUTE
        # Pass 2: evaluate what the memo does not know yet, once per memo key. (The outcomes this call uses
        # are kept apart from the memo, which may be emptied meanwhile when it reaches its bound.)
        known: dict[Any, _Outcome] = {}
        fresh: dict[Any, tuple[Package, list[_Hit], list[_Warning]]] = {}
        for p, mkey, key, version in plans:
            if mkey in known or mkey in fresh:
                continue
            outcome = outcomes.get(mkey)
            if outcome is not None:
                known[mkey] = outcome
                continue
            hits: list[_Hit] = []
            warned: list[_Warning] = []
            if key is not None:
                entries = affected[key]
                if entries:
                    _evaluate_entries(version, entries, set(), hits, warned, listed)
            else:
                seen: set[str] = set()
                for eco, name, v in version:
                    entries = affected[(eco, name)]
                    if entries:
                        _evaluate_entries(v, entries, seen, hits, warned, listed)
            fresh[mkey] = (p, hits, warned)
        first: dict[int, list[Finding]] = {}
        if fresh:
            first = self._remember(fresh, known)
        # Pass 3: the findings and warnings of every package, in inventory order, then sorted.
        findings: list[Finding] = []
        sort_keys: list[str] = []
        warnings: list[str] = []
        done: set[int] = set()
        new, set_dict, set_fields_set, set_extra, set_private = (
            Finding.__new__,
            unvalidated.set_dict,
            unvalidated.set_fields_set,
            unvalidated.set_extra,
            unvalidated.set_private,
        )
        for p, mkey, _, _ in plans:
            outcome = known[mkey]
            if outcome.warnings:
                for version, error, advisory in outcome.warnings:
                    warnings.append(f"{p.name} {version} ({p.found_in}): {error}; {advisory} not evaluated")
            if not outcome.findings:
                continue
            pid = id(p)
            if pid in done:
                continue  # the same package object twice: one finding per (package instance, vulnerability)
            done.add(pid)
            pkey = _package_key(p)
            made = first.pop(pid, None) if first else None
            if made is not None:
                findings += made
                sort_keys += [prepared.sort_key + pkey for prepared in outcome.findings]
                continue
            package = _package_fields(p)
            for prepared in outcome.findings:
                # _copy(prepared, package), inlined: this loop makes every finding of a warm match
                fields = prepared.fields.copy()
                fields.update(package)
                finding = new(Finding)
                set_dict(finding, fields)
                set_fields_set(finding, prepared.fields_set)
                set_extra(finding, None)
                set_private(finding, None)
                findings.append(finding)
                sort_keys.append(prepared.sort_key + pkey)
        # A stable sort by the keys (see _package_key); equal keys keep inventory order.
        order = sorted(range(len(findings)), key=sort_keys.__getitem__)
        return MatchResult(findings=[findings[i] for i in order], warnings=warnings)

    def _route(self, p: Package, os: OSInfo | None) -> _Route:
        """Where a package's advisories are: (key, None, by source?) for a package of one lookup key, the key being
        (ecosystem, normalised name); (None, keys, by source?) for a package of several (rpm, release-qualified
        ecosystems), in lookup_keys' order; _NO_ROUTE for a package without an ecosystem. "By source": the version
        compared is the source version where the package has one (dpkg, apk), else the package's version.

        It depends on the package's _IDENTITY attributes and, for release-qualified ecosystems, on the OS release
        (os.version_id): what _match caches it by. It does not depend on the version.
        """
        eco = p.ecosystem
        if not eco:
            return _NO_ROUTE
        ptype = p.type
        by_source = ptype in _BY_SOURCE
        if (os is not None and ecosystem_base(eco) in _QUALIFIED) or ptype == "rpm":
            return (None, tuple(self._lookup_names(p, os)), by_source)
        name = (p.source_name or p.name) if by_source else p.name
        return ((eco, self._normalised(eco, name)), None, by_source)

    def _remember(
        self, fresh: dict[Any, tuple[Package, list[_Hit], list[_Warning]]], known: dict[Any, _Outcome]
    ) -> dict[int, list[Finding]]:
        """Turn newly evaluated hits into outcomes, memoised and added to ``known``; return the findings of the
        package each was evaluated for (by ``id``): the validated findings the outcome was prepared from."""
        self._load_advisories({e[0] for _, hits, _ in fresh.values() for e, _ in hits})
        canonical = self._canonical
        made = self._groups
        by_cid: dict[Any, dict[str, list[_Hit]]] = {}
        new_groups: set[str] = set()  # the ids of the groups to make: their KEV and EPSS entries are read
        for mkey, (_, hits, _) in fresh.items():
            groups: dict[str, list[_Hit]] = {}
            for hit in hits:
                aid = hit[0][0]
                cid = canonical.get(aid) or canonical_id(aid, [])
                group = groups.get(cid)
                if group is None:
                    groups[cid] = [hit]
                else:
                    group.append(hit)
            for cid, items in groups.items():
                if _group_key(items) not in made:
                    new_groups.add(cid)
            by_cid[mkey] = groups
        cves = self._kev_epss(new_groups)
        outcomes = self._outcomes
        first: dict[int, list[Finding]] = {}
        for mkey, (p, _, warned) in fresh.items():
            groups = by_cid[mkey]
            if not groups and not warned:
                outcome = _NOTHING
            else:
                package = _package_fields(p)
                prepared = tuple(self._prepare(cid, items, cves, package) for cid, items in groups.items())
                if prepared:
                    first[id(p)] = [_copy(x, package) for x in prepared]
                outcome = _Outcome(prepared, tuple(warned))
            if len(outcomes) >= _CACHE_LIMIT:
                outcomes.clear()
            outcomes[mkey] = known[mkey] = outcome
        return first

    def _prepare(
        self, cid: str, items: list[_Hit], cves: dict[str, tuple[Any, Any]], package: dict[str, Any]
    ) -> _Prepared:
        """The finding of one vulnerability in a package (the advisories ``items`` hit), less the package."""
        g = self._group(cid, items, cves)
        fixed_versions: tuple[str, ...]
        if len(items) == 1:
            fixed_versions = tuple(items[0][1])
        else:
            fixed: set[str] = set()
            for _, f in items:
                fixed.update(f)
            fixed_versions = tuple(sorted(fixed))
        fixable = bool(fixed_versions)
        sev = g.assessment
        priority = g.priorities[fixable]
        if g.typed:
            # Every value has exactly the type its field holds: strings and lists of strings from the database
            # (checked when the advisories were read), validated models (CVSS, KEV, EPSS), the package's fields
            # (validated in Package), fixed versions (strings of the ranges), and the rest made here. Pydantic's
            # validation would return equal values, at a cost that is a large part of a first match; the fields
            # are laid out as it would lay them out (the model's field order, the same set fields). The tuples are
            # the group's, shared by every finding of the group: immutable, so sharing them is safe.
            fields = {
                "id": cid,
                "aliases": g.aliases,
                "advisories": g.advisories,
                "summary": g.summary,
                "package_type": package["package_type"],
                "package_name": package["package_name"],
                "package_purl": package["package_purl"],
                "package_ecosystem": package["package_ecosystem"],
                "installed_version": package["installed_version"],
                "fixed_versions": fixed_versions,
                "fix_available": fixable,
                "found_in": package["found_in"],
                "layer_diff_id": package["layer_diff_id"],
                "severity": sev.severity.name,
                "severity_source": sev.source,
                "cvss": sev.cvss,
                "kev": g.kev,
                "epss": g.epss,
                "priority": priority,
                "references": g.references,
                "suppressed": None,
                "expired_exemptions": (),
            }
            return _Prepared(fields, set(_SET_FIELDS), _finding_key(priority, cid))
        finding = Finding(
            id=cid,
            summary=g.summary,
            severity=sev.severity.name,
            severity_source=sev.source,
            kev=g.kev,
            epss=g.epss,
            **package,
            aliases=g.aliases,
            advisories=g.advisories,
            fixed_versions=fixed_versions,
            fix_available=fixable,
            cvss=sev.cvss,
            priority=priority,
            references=g.references,
        )
        return _Prepared.of(finding)

    def _group(self, cid: str, items: list[_Hit], cves: dict[str, tuple[Any, Any]]) -> _Group:
        """Aliases, references, summary, severity and priority of the advisories behind a finding (cached)."""
        gkey = _group_key(items)
        g = self._groups.get(gkey)
        if g is not None:
            return g
        names: set[str] = set()
        refs: dict[str, None] = {}  # in first-seen order: a dict's keys keep their insertion order
        summary = ""
        severities: list[risk.SeverityInput] = []
        typed = type(cid) is str
        for (aid, severity, *_), _ in items:
            names.add(aid)
            adv = self._advisories.get(aid)
            if adv is None:
                typed = typed and type(aid) is str
                continue
            typed = typed and adv.typed
            names.update(adv.aliases)
            refs.update(dict.fromkeys(adv.references))
            summary = summary or adv.summary
            severities.append(risk.SeverityInput(adv.id, adv.severity, adv.db_severity, severity, adv.scores))
        advisories = tuple(sorted({e[0] for e, _ in items}))
        names.discard(cid)
        # (cves has what _remember read for the groups it found missing; should the cache have been emptied
        # since, the entries are read now)
        kev, epss = cves.get(cid) or self._kev_epss({cid}).get(cid, (None, None))
        if len(self._groups) >= _CACHE_LIMIT:
            self._groups.clear()
        assessment = risk.assess(severities)
        g = self._groups[gkey] = _Group(
            advisories, tuple(sorted(names)), tuple(refs), summary, assessment, kev, epss, typed
        )
        return g

    def _kev_epss(self, cve_ids: set[str]) -> dict[str, tuple[Any, Any]]:
        known = self._cves
        out: dict[str, tuple[Any, Any]] = {}
        ids = []
        for c in cve_ids:
            if not c.startswith("CVE-"):
                continue
            hit = known.get(c)
            if hit is None:
                ids.append(c)
            elif hit[0] is not None or hit[1] is not None:
                out[c] = hit
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            got: dict[str, tuple[Any, Any]] = {}
            q = ",".join("?" * len(chunk))
            for cve, added, due, ransom in self.conn.execute(
                f"SELECT cve, date_added, due_date, ransomware FROM kev WHERE cve IN ({q})",  # noqa: S608
                chunk,
            ):
                got[cve] = (KEVEntry(date_added=added or None, due_date=due or None, ransomware=ransom), None)
            for cve, score, pct in self.conn.execute(
                f"SELECT cve, score, percentile FROM epss WHERE cve IN ({q})",  # noqa: S608
                chunk,
            ):
                kev = got.get(cve, (None, None))[0]
                if type(score) is float and type(pct) is float:
                    # (the usual values, REAL columns: validation would return them as they are)
                    epss = unvalidated.unvalidated(EPSSScore, {"score": score, "percentile": pct})
                else:
                    epss = EPSSScore(score=score, percentile=pct)
                got[cve] = (kev, epss)
            out.update(got)
            if len(known) + len(chunk) > _CACHE_LIMIT:
                known.clear()
            for c in chunk:
                known[c] = got.get(c, (None, None))
        return out


def _evaluate_entries(
    version: str,
    entries: list[_Entry],
    seen: set[str],
    hits: list[_Hit],
    warnings: list[_Warning],
    listed: dict[str, frozenset[str]],
) -> None:
    """Evaluate a key's entries for one version, skipping advisories in ``seen`` (which the hits join)."""
    # the version's key for the last (scheme, strip) the simple entries used: they mostly share one
    last_scheme: str | None = None
    last_strip = False
    version_key: Any = None
    # _lists' first test, made once for the version rather than once per entry listing versions: a plain version
    # absent from an entry's JSON text is not listed there
    needle = f'"{version}"'
    plain = _PLAIN.fullmatch(version) is not None
    for entry in entries:
        aid, _, versions_json, ranges, simple = entry
        if aid in seen:
            continue
        try:
            if simple is not None:
                if (
                    versions_json != "[]"
                    and (not plain or needle in versions_json)
                    and _lists(listed, versions_json, version)
                ):
                    seen.add(aid)  # an explicitly listed version is affected, as _evaluate has it
                    hits.append((entry, _fixes_above(ranges, version)))
                    continue
                scheme, strip, low, high, included, fix = simple
                if scheme is not last_scheme or strip is not last_strip:
                    version_key = _key(scheme, version[1:] if strip and version.startswith("v") else version)
                    last_scheme, last_strip = scheme, strip  # (not reached when the version is refused)
                if (low is None or version_key >= low) and (
                    high is None or version_key < high or (included and version_key == high)
                ):
                    seen.add(aid)
                    hits.append((entry, [fix] if fix is not None else []))
                continue
            listed_here = (
                versions_json != "[]"
                and (not plain or needle in versions_json)
                and _lists(listed, versions_json, version)
            )
            hit, fixes = _evaluate(listed_here, ranges, version)
        except (InvalidVersion, UnsupportedEcosystem) as exc:
            warnings.append((version, str(exc), aid))
            continue
        if hit:
            seen.add(aid)
            hits.append((entry, fixes))


def canonical_id(advisory_id: str, aliases: Sequence[str]) -> str:
    """The CVE a record is known by (the lowest, if several); else the lowest of its own id and aliases.

    Records that alias each other without any CVE (a GHSA and a PYSEC) thus get the same id and merge.
    """
    if advisory_id.startswith("CVE-"):
        return advisory_id
    cves = sorted(a for a in aliases if a.startswith("CVE-"))
    return cves[0] if cves else min([advisory_id, *aliases])
