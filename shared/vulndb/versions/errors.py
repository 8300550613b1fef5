"""The two ways a version comparison can refuse: an ecosystem it does not know, a version it cannot read."""

from __future__ import annotations

from shared.errors import HullwatchError


class VersionError(HullwatchError, ValueError):
    """Base class of the version-ordering errors (a ``ValueError``, so callers may catch either)."""


class UnsupportedEcosystem(VersionError):
    """The OSV ecosystem string names no version scheme this package knows."""

    def __init__(self, ecosystem: str) -> None:
        self.ecosystem = ecosystem
        super().__init__(f"unsupported ecosystem {ecosystem!r}: no version ordering is known for it")


class InvalidVersion(VersionError):
    """A version string that the ecosystem's own tool would reject (or could not order).

    ``ecosystem`` is the OSV ecosystem string when known (the scheme name otherwise),
    ``version`` the string as given and ``reason`` what is wrong with it.
    """

    def __init__(self, ecosystem: str, version: str, reason: str) -> None:
        self.ecosystem = ecosystem
        self.version = version
        self.reason = reason
        super().__init__(f"{ecosystem}: invalid version {version!r}: {reason}")

    def in_ecosystem(self, ecosystem: str) -> InvalidVersion:
        """The same error, named after the ecosystem the caller asked about."""
        return InvalidVersion(ecosystem, self.version, self.reason)
