"""Error hierarchy shared by every package.

Each package raises subclasses of :class:`HullwatchError`. The CLI maps
:class:`InputError` (anything the user or an upstream system handed us that is
wrong) to exit code 2 with a one-line message; platform adapters map the same
classes to HTTP statuses or retries in one place each.
"""

from __future__ import annotations


class HullwatchError(Exception):
    """Base class for every error hullwatch raises on purpose."""


class InputError(HullwatchError):
    """Bad input: a malformed reference, an unreachable registry, a corrupt layer...

    ``subject`` names the input (an image reference, a file); ``detail`` says
    what is wrong with it. ``str()`` gives the one-line message users see.
    """

    def __init__(self, subject: str, detail: str) -> None:
        self.subject = subject
        self.detail = detail
        super().__init__(f"{subject}: {detail}")


class UsageError(InputError):
    """The command line itself is wrong (an unknown flag value, a bad platform string)."""
