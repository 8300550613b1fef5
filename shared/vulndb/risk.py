"""Severity, exploitability and the one priority number findings are sorted by.

Severity: the highest CVSS base score among the advisories' vectors, v4 preferred
over v3 when both exist (computed with the maintained ``cvss`` library, never by
hand); without a vector, the distribution's or GHSA's own rating.

Priority (higher first), one integer so every report and store sorts alike::

    priority = 1000 * kev            # exploited in the wild (CISA KEV) beats everything
             +  100 * severity       # CRITICAL 4, HIGH 3, MEDIUM 2, LOW 1, UNKNOWN 0
             +   50 * running        # the image runs in a cluster (when cluster inventory says so)
             +   20 * fixable        # a fix exists: the user can act now
             +   round(50 * epss)    # EPSS probability of exploitation in 30 days, 0..1

So a KEV-listed, fixable critical in a running image (1000+400+50+20+epss) comes
first; a critical without KEV (at most 400+50+20+50 = 520) never outranks any
KEV entry; and within a severity, EPSS orders what attackers are likelier to use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cvss
from cvss import CVSS3, CVSS4
from cvss.exceptions import CVSSError

from shared.domain.findings import CVSSScore, Severity
from shared.domain.unvalidated import unvalidated

#: What made the base scores a database stores (see scores_of): this module's scoring (the number: bump it when
#: base_score changes what it gives) and the cvss library's version. A database names it beside the scores, and
#: they are used only where it is this one; None (a library without a version) stores and trusts none.
SCORES_VERSION: str | None = (
    f"1/cvss {cvss.__version__}" if isinstance(getattr(cvss, "__version__", None), str) else None
)


@dataclass(frozen=True)
class SeverityInput:
    advisory_id: str
    severity: list[dict[str, str]]  # OSV "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/..."}]
    db_severity: str | None  # database_specific.severity (GHSA: "HIGH")
    affected_severity: str | None  # ecosystem_specific / database_specific of the affected entry
    #: base_score of each severity entry as a database stored it (scores_of), in place of scoring them again
    scores: Sequence[Sequence[Any] | None] | None = None


@dataclass
class Assessment:
    severity: Severity
    source: str
    # a tuple: the findings of the advisories assessed share it as their cvss field
    cvss: tuple[CVSSScore, ...] = ()


def _rating(score: float) -> Severity:
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.UNKNOWN


@lru_cache(maxsize=65_536)
def base_score(kind: str, vector: str) -> tuple[str, float] | None:
    """(CVSS version, base score) of a vector, or None for one the cvss library refuses or a kind it is not.

    Cached for the process: the library spends tens of microseconds on a vector (it computes the temporal and
    environmental scores too, in Decimal arithmetic), and advisories share a small set of vectors.
    """
    try:
        if kind == "CVSS_V4" or vector.startswith("CVSS:4.0/"):
            return "4.0", float(CVSS4(vector).base_score)
        if kind == "CVSS_V3" or vector.startswith("CVSS:3."):
            c3 = CVSS3(vector)
            return vector.split("/", 1)[0].split(":", 1)[1], float(c3.base_score)
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def scores_of(severity: Sequence[dict[str, str]]) -> list[tuple[str, float] | None]:
    """base_score of each entry of an OSV severity list, for a database to store (under SCORES_VERSION): the
    cvss library takes tens of microseconds a vector, a good part of matching a first image when hundreds of
    advisories are read for it."""
    return [base_score(s.get("type", ""), s.get("score", "")) for s in severity]


def parse_vector(kind: str, vector: str) -> CVSSScore | None:
    scored = base_score(kind, vector)
    if scored is None:
        return None
    return CVSSScore(version=scored[0], vector=vector, base_score=scored[1])


def assess(inputs: Sequence[SeverityInput]) -> Assessment:
    scores: list[CVSSScore] = []
    for inp in inputs:
        stored = inp.scores
        for i, s in enumerate(inp.severity):
            vector = s.get("score", "")
            scored = stored[i] if stored is not None else base_score(s.get("type", ""), vector)
            if scored is None:
                continue
            source = inp.advisory_id
            version, score = scored
            if type(source) is str and type(vector) is str and type(version) is str and type(score) is float:
                # every value already has its field's type: validation would return them as they are
                scores.append(
                    unvalidated(
                        CVSSScore, {"version": version, "vector": vector, "base_score": score, "source": source}
                    )
                )
            elif type(source) is str:
                # one validation with the source, rather than parse_vector's and then a copy to add it
                scores.append(CVSSScore(version=scored[0], vector=vector, base_score=scored[1], source=inp.advisory_id))
            else:
                scores.append(
                    CVSSScore(version=scored[0], vector=vector, base_score=scored[1]).model_copy(
                        update={"source": inp.advisory_id}
                    )
                )
    v4 = [s for s in scores if s.version == "4.0"]
    v3 = [s for s in scores if s.version.startswith("3")]
    for group, label in ((v4, "cvss-v4"), (v3, "cvss-v3")):
        if group:
            best = max(group, key=lambda s: s.base_score)
            return Assessment(_rating(best.base_score), f"{label} ({best.source})", tuple(scores))
    words = [
        (Severity.parse(inp.affected_severity or inp.db_severity), inp)
        for inp in inputs
        if inp.affected_severity or inp.db_severity
    ]
    words = [w for w in words if w[0] is not Severity.UNKNOWN]
    # OSV records of distributions put their own rating in severity[] with a non-CVSS type ("Ubuntu").
    for inp in inputs:
        for s in inp.severity:
            if not s.get("type", "").startswith("CVSS"):
                sev = Severity.parse(s.get("score"))
                if sev is not Severity.UNKNOWN:
                    words.append((sev, inp))
    if words:
        sev, inp = max(words, key=lambda w: w[0])
        return Assessment(sev, f"rating ({inp.advisory_id})", tuple(scores))
    return Assessment(Severity.UNKNOWN, "", tuple(scores))


def priorities(severity: Severity, kev: bool, epss: float | None) -> tuple[int, int]:
    """The priority without and with a fix (of an image not known to run): a fix adds its weight, 20."""
    without = priority(severity, kev, epss, False)
    return without, without + 20


def priority(severity: Severity, kev: bool, epss: float | None, fixable: bool, running: bool = False) -> int:
    """The documented priority (module docstring)."""
    return (
        1000 * int(kev)
        + 100 * int(severity)
        + 50 * int(running)
        + 20 * int(fixable)
        + round(50 * max(0.0, min(1.0, epss or 0.0)))
    )
