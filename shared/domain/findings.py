"""Vulnerability findings: what matching an inventory against the database produces."""

from __future__ import annotations

from datetime import date
from enum import IntEnum

from pydantic import BaseModel, ConfigDict, Field


class Severity(IntEnum):
    """Ordered severities; the names are what reports print."""

    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str | None) -> Severity:
        """Map a CVSS rating or a distribution's / GHSA's word to a severity."""
        if not text:
            return cls.UNKNOWN
        word = text.strip().lower()
        return _WORDS.get(word, cls.UNKNOWN)


_WORDS = {
    "critical": Severity.CRITICAL,
    "important": Severity.HIGH,
    "high": Severity.HIGH,
    "moderate": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "negligible": Severity.LOW,
    "unimportant": Severity.LOW,
    "none": Severity.LOW,
}


class _Model(BaseModel):
    # Frozen: findings are values. The matcher hands out many findings that share one advisory's tuples and
    # nested models (and one set of set fields), and every step after matching (exemptions, VEX, reports,
    # the service's lifecycle) makes changed findings with model_copy(update=...), never by assignment. Freezing
    # makes an assignment fail loudly instead of reaching other findings through what they share.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CVSSScore(_Model):
    version: str = Field(description="'3.0', '3.1' or '4.0'")
    vector: str
    base_score: float
    source: str = Field(default="", description="The advisory the vector came from.")


class KEVEntry(_Model):
    date_added: date | None = None
    due_date: date | None = None
    ransomware: str | None = Field(default=None, description="'Known' or 'Unknown' use in ransomware campaigns.")


class EPSSScore(_Model):
    score: float
    percentile: float


class Suppression(_Model):
    """Why a finding does not count: an exemption of the policy file or a VEX statement."""

    kind: str = Field(description="'exemption' or 'vex'")
    reason: str
    source: str = Field(description="The policy or VEX file (and statement) that suppressed it.")
    expires: date | None = None


class ExpiredExemption(_Model):
    reason: str
    source: str
    expired: date


class Finding(_Model):
    """One vulnerability in one package instance; aliases merged under one id (its CVE where it has one)."""

    # The collections are tuples (JSON arrays, as lists would be; the JSON schema is the same): the findings of
    # one advisory in many packages share them, which costs nothing because nobody can change them. (A comment,
    # not the docstring: the docstring is the schema's description.)

    id: str
    aliases: tuple[str, ...] = Field(default_factory=tuple, description="Every other id: GHSA, PYSEC, DSA, ...")
    advisories: tuple[str, ...] = Field(default_factory=tuple, description="The database records that matched.")
    summary: str = ""
    package_type: str
    package_name: str
    package_purl: str
    package_ecosystem: str
    installed_version: str
    fixed_versions: tuple[str, ...] = Field(default_factory=tuple)
    fix_available: bool
    found_in: str
    layer_diff_id: str | None = None
    severity: str = Field(description="CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN")
    severity_source: str = Field(default="", description="cvss-v4, cvss-v3, or the advisory's own rating")
    cvss: tuple[CVSSScore, ...] = Field(default_factory=tuple)
    kev: KEVEntry | None = None
    epss: EPSSScore | None = None
    priority: int = Field(description="Higher first; see shared/vulndb/risk.py for the formula.")
    references: tuple[str, ...] = Field(default_factory=tuple)
    suppressed: Suppression | None = None
    expired_exemptions: tuple[ExpiredExemption, ...] = Field(default_factory=tuple)
