"""Shared test plumbing.

``require_tool`` is how a test asks for a system tool: under CI (``CI=true``) a
missing tool fails the test, so an integration suite can never be skipped
silently; on a laptop it skips with the install hint.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

UNDER_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed ({hint})"
    if UNDER_CI:
        pytest.fail(message + " - required under CI", pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")


def require_module(name: str, hint: str) -> None:
    """Like :func:`require_tool`, for a Python module only some tests need."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        message = f"Python module {name} is not installed ({hint})"
        if UNDER_CI:
            pytest.fail(message + " - required under CI", pytrace=False)
        pytest.skip(message)


def unavailable(message: str) -> None:
    """A reference tool or input is missing: fail under CI (never a silent skip there), skip elsewhere."""
    if UNDER_CI:
        pytest.fail(message + " - required under CI", pytrace=False)
    pytest.skip(message)
