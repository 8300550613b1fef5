"""Registry credentials for the backend: one provider per registry kind, all behind one port.

Only registries named in configuration are ever contacted: :class:`Allowlist`
refuses an event naming any other host before a request is made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from shared.service.errors import RegistryNotAllowed


@dataclass(frozen=True)
class BasicCredentials:
    username: str
    password: str


class CredentialProvider(Protocol):
    """ACR (Entra token -> /oauth2/exchange refresh token), ECR (GetAuthorizationToken), GAR (access token),
    or a static username/token from Key Vault / Secrets Manager."""

    def credentials(self, registry: str, repository: str) -> BasicCredentials | None: ...


class Allowlist:
    def __init__(self, registries: Iterable[str]) -> None:
        self._hosts = frozenset(r.strip().lower() for r in registries if r.strip())

    def check(self, registry: str, event_id: str | None = None) -> None:
        if registry.strip().lower() not in self._hosts:
            raise RegistryNotAllowed(
                registry,
                f"not a configured registry; event {event_id or '?'} refused (configured: "
                f"{', '.join(sorted(self._hosts)) or 'none'})",
            )

    def __contains__(self, registry: str) -> bool:
        return registry.strip().lower() in self._hosts
