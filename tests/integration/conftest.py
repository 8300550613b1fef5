"""Session-wide real services for the integration tests.

The three registries (anonymous, htpasswd, token) are started once per test
session on 127.0.0.1 and stopped by PID at the end. Without ``docker-registry``
the fixtures fail under CI (``CI=true``) and skip elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require_tool
from tests.support.registries import REGISTRY_BIN, Registry, start_registry


def _registry(tmp_path_factory: pytest.TempPathFactory, flavour: str) -> Iterator[Registry]:
    require_tool(REGISTRY_BIN, "apt-get install docker-registry")
    if flavour == "htpasswd":
        require_tool("htpasswd", "apt-get install apache2-utils")
    reg = start_registry(tmp_path_factory.mktemp(f"registry-{flavour}"), flavour)
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def anon_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _registry(tmp_path_factory, "anonymous")


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _registry(tmp_path_factory, "htpasswd")


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _registry(tmp_path_factory, "token")
