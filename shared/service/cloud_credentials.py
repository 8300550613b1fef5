"""Registry credentials in the cloud: one :class:`CredentialProvider` per registry kind, and a chain.

* **ACR** — a Microsoft Entra token (``DefaultAzureCredential``) is exchanged at
  ``https://REGISTRY/oauth2/exchange`` for an ACR refresh token. The refresh token
  is the password of the null-GUID user: the registry source then runs the
  normal Bearer challenge, and the registry's ``/oauth2/token`` endpoint turns it
  into a pull-scoped access token.
* **ECR** — ``GetAuthorizationToken`` (``AWS:password``), cached per account and
  region until shortly before ``expiresAt``; another account's registry through a
  role assumed with ``sts:AssumeRole`` when configuration names one.
* **GAR / GCR** — a Google OAuth access token as the password of ``oauth2accesstoken``.
* **Anything else** — a username and token kept in Key Vault or Secrets Manager,
  looked up by the secret name configured for that registry; no secret configured
  means anonymous pull.

Token sources (the Entra token, the Google token, the secret readers, the boto3
session) are injected, so every provider is tested without a cloud account; the
defaults import ``azure.identity``, ``google.auth`` and ``boto3`` only when used.
No credential is ever read from code or a default value.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import importlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import requests

from shared.errors import HullwatchError
from shared.scanning.sources.registry import plain_http_allowed
from shared.service.credentials import Allowlist, BasicCredentials, CredentialProvider
from shared.service.errors import Retryable

log = logging.getLogger(__name__)

#: The user name ACR expects with a refresh token (the null GUID).
ACR_REFRESH_TOKEN_USER = "00000000-0000-0000-0000-000000000000"  # noqa: S105 (a well-known name, not a secret)
#: Audience of a Microsoft Entra token the registry accepts (works whether or not ARM-audience tokens are allowed).
ACR_TOKEN_SCOPE = "https://containerregistry.azure.net/.default"  # noqa: S105 (a well-known name, not a secret)
GOOGLE_TOKEN_USER = "oauth2accesstoken"  # noqa: S105 (a well-known name, not a secret)
GOOGLE_TOKEN_SCOPE = "https://www.googleapis.com/auth/cloud-platform"  # noqa: S105 (a well-known name, not a secret)

#: Registry host patterns (``fnmatch``) and the kind of provider that serves them.
ACR_PATTERNS = ("*.azurecr.io", "*.azurecr.cn", "*.azurecr.us")
ECR_PATTERNS = ("*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn", "*.dkr.ecr-fips.*.amazonaws.com")
GAR_PATTERNS = ("*-docker.pkg.dev", "gcr.io", "*.gcr.io")

TokenFunction = Callable[[], str]


class RegistryCredentialsError(HullwatchError):
    """Credentials for a registry could not be obtained, and asking again will not help (refused, misconfigured)."""

    def __init__(self, registry: str, detail: str) -> None:
        self.registry = registry
        self.detail = detail
        super().__init__(f"{registry}: {detail}")


def _module(name: str) -> Any:
    """An optional cloud SDK module (boto3, botocore, google.auth), imported when a provider first needs it."""
    return importlib.import_module(name)


def _host(registry: str) -> str:
    return registry.strip().lower()


@dataclass
class _Cached:
    credentials: BasicCredentials
    expires_at: float  # epoch seconds


class _ExpiringCache:
    """Thread-safe (key -> credentials) cache; entries are dropped ``margin`` seconds before they expire."""

    def __init__(self, clock: Callable[[], float], margin: float) -> None:
        self._clock = clock
        self._margin = margin
        self._entries: dict[tuple[str, ...], _Cached] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> BasicCredentials | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit.expires_at - self._margin <= self._clock():
                return None
            return hit.credentials

    def put(self, key: tuple[str, ...], creds: BasicCredentials, expires_at: float) -> None:
        with self._lock:
            self._entries[key] = _Cached(creds, expires_at)


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verification (only to know when to refresh our own token)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


# -- ACR ---------------------------------------------------------------------------------------------------------


def default_entra_token(scope: str = ACR_TOKEN_SCOPE) -> TokenFunction:
    """A token function backed by one ``DefaultAzureCredential`` (managed identity in Azure, CLI on a laptop)."""
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()

    def token() -> str:
        return str(credential.get_token(scope).token)

    return token


class AcrCredentialProvider:
    """Entra token -> ``/oauth2/exchange`` -> refresh token, used as the password of the null-GUID user."""

    def __init__(
        self,
        entra_token: TokenFunction | None = None,
        *,
        tenant: str | None = None,
        insecure_registries: Iterable[str] = (),
        session: requests.Session | None = None,
        timeout: float = 15.0,
        refresh_ttl: float = 3 * 3600.0,
        margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._entra_token = entra_token
        self._tenant = tenant
        self._insecure = frozenset(_host(r) for r in insecure_registries)
        self._session = session or requests.Session()
        self._timeout = timeout
        self._refresh_ttl = refresh_ttl
        self._clock = clock
        self._cache = _ExpiringCache(clock, margin)

    def _token(self) -> str:
        if self._entra_token is None:
            self._entra_token = default_entra_token()
        return self._entra_token()

    def _exchange_url(self, registry: str) -> str:
        insecure = registry in self._insecure and plain_http_allowed(registry)
        return f"{'http' if insecure else 'https'}://{registry}/oauth2/exchange"

    def credentials(self, registry: str, repository: str) -> BasicCredentials:
        host = _host(registry)
        cached = self._cache.get((host,))
        if cached is not None:
            return cached
        form = {"grant_type": "access_token", "service": host, "access_token": self._token()}
        if self._tenant:
            form["tenant"] = self._tenant
        url = self._exchange_url(host)
        try:
            resp = self._session.post(url, data=form, timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise Retryable(f"{host}: token exchange failed: {type(exc).__name__}") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise Retryable(f"{host}: token exchange answered HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise RegistryCredentialsError(host, f"token exchange refused: HTTP {resp.status_code}")
        try:
            refresh = resp.json()["refresh_token"]
        except (ValueError, KeyError, TypeError):
            raise RegistryCredentialsError(host, "token exchange answered without a refresh_token") from None
        if not isinstance(refresh, str) or not refresh:
            raise RegistryCredentialsError(host, "token exchange answered an empty refresh_token")
        creds = BasicCredentials(ACR_REFRESH_TOKEN_USER, refresh)
        self._cache.put((host,), creds, _jwt_expiry(refresh) or self._clock() + self._refresh_ttl)
        return creds


# -- ECR ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EcrRegistry:
    account: str
    region: str


def parse_ecr_host(registry: str) -> EcrRegistry | None:
    """``ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]`` -> (account, region)."""
    labels = _host(registry).split(".")
    if len(labels) < 6 or labels[1] != "dkr" or labels[2] not in ("ecr", "ecr-fips"):
        return None
    if labels[4:6] != ["amazonaws", "com"] or not (labels[0].isdigit() and len(labels[0]) == 12):
        return None
    return EcrRegistry(labels[0], labels[3])


class BotoSession(Protocol):
    """What the ECR provider needs of ``boto3.session.Session``."""

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any: ...


def _boto_session(**kwargs: Any) -> BotoSession:
    session: BotoSession = _module("boto3.session").Session(**kwargs)
    return session


class EcrCredentialProvider:
    """``GetAuthorizationToken`` per (account, region), cached until ``expiresAt``; cross-account by assumed role."""

    def __init__(
        self,
        *,
        roles: Mapping[str, str] | None = None,
        session: BotoSession | None = None,
        session_factory: Callable[..., BotoSession] = _boto_session,
        endpoint_url: str | None = None,
        role_session_name: str = "hullwatch-registry-scan",
        margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._roles = dict(roles or {})
        self._session = session
        self._session_factory = session_factory
        self._endpoint_url = endpoint_url
        self._role_session_name = role_session_name
        self._cache = _ExpiringCache(clock, margin)
        self.token_requests = 0

    def _base(self) -> BotoSession:
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    def _client(self, service: str, region: str, session: BotoSession | None = None) -> Any:
        kwargs: dict[str, Any] = {"region_name": region}
        if self._endpoint_url:
            kwargs["endpoint_url"] = self._endpoint_url
        return (session or self._base()).client(service, **kwargs)

    def _ecr_client(self, target: EcrRegistry) -> Any:
        role = self._roles.get(target.account)
        if not role:
            return self._client("ecr", target.region)
        sts = self._client("sts", target.region)
        assumed = sts.assume_role(RoleArn=role, RoleSessionName=self._role_session_name)["Credentials"]
        session = self._session_factory(
            aws_access_key_id=assumed["AccessKeyId"],
            aws_secret_access_key=assumed["SecretAccessKey"],
            aws_session_token=assumed["SessionToken"],
        )
        return self._client("ecr", target.region, session)

    def credentials(self, registry: str, repository: str) -> BasicCredentials:
        target = parse_ecr_host(registry)
        if target is None:
            raise RegistryCredentialsError(registry, "not an ECR registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com)")
        key = (target.account, target.region)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        exceptions = _module("botocore.exceptions")
        try:
            self.token_requests += 1
            resp = self._ecr_client(target).get_authorization_token(registryIds=[target.account])
        except exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "?"))
            if code in ("ThrottlingException", "ServiceUnavailable", "ServerException", "InternalFailure"):
                raise Retryable(f"{registry}: GetAuthorizationToken: {code}") from None
            raise RegistryCredentialsError(registry, f"GetAuthorizationToken refused: {code}") from None
        except exceptions.BotoCoreError as exc:
            raise Retryable(f"{registry}: GetAuthorizationToken failed: {type(exc).__name__}") from None
        data = resp.get("authorizationData") or []
        if not data:
            raise RegistryCredentialsError(registry, "GetAuthorizationToken returned no authorization data")
        try:
            user, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
        except (KeyError, ValueError, binascii.Error):
            raise RegistryCredentialsError(registry, "GetAuthorizationToken returned an unreadable token") from None
        expires = data[0].get("expiresAt")
        expires_at = expires.timestamp() if isinstance(expires, datetime) else time.time() + 3600.0
        creds = BasicCredentials(user, password)
        self._cache.put(key, creds, expires_at)
        return creds


# -- GAR / GCR ---------------------------------------------------------------------------------------------------


def default_google_token(scope: str = GOOGLE_TOKEN_SCOPE) -> TokenFunction:
    """A token function backed by Google application-default credentials (workload identity federation in Azure/AWS)."""
    google_auth = _module("google.auth")
    transport = _module("google.auth.transport.requests")
    credentials, _ = google_auth.default(scopes=[scope])
    lock = threading.Lock()

    def token() -> str:
        with lock:
            if not credentials.valid:
                credentials.refresh(transport.Request())
            return str(credentials.token)

    return token


class GoogleCredentialProvider:
    """A Google OAuth access token as the password of ``oauth2accesstoken``."""

    def __init__(self, access_token: TokenFunction | None = None) -> None:
        self._access_token = access_token

    def credentials(self, registry: str, repository: str) -> BasicCredentials:
        if self._access_token is None:
            self._access_token = default_google_token()
        try:
            token = self._access_token()
        except HullwatchError:
            raise
        except Exception as exc:  # google.auth raises its own transport/refresh errors
            raise Retryable(f"{registry}: Google access token unavailable: {type(exc).__name__}") from None
        return BasicCredentials(GOOGLE_TOKEN_USER, token)


# -- static username/token from a secret store -------------------------------------------------------------------


class SecretReader(Protocol):
    """Reads one secret's value by name (Key Vault, Secrets Manager); None when it does not exist."""

    def read(self, name: str) -> str | None: ...


class KeyVaultSecretReader:
    """Secrets from Azure Key Vault (``azure-keyvault-secrets``), with ``DefaultAzureCredential`` unless given one."""

    def __init__(self, vault_url: str, credential: Any = None, client: Any = None) -> None:
        if client is None:
            from azure.keyvault.secrets import SecretClient

            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            client = SecretClient(vault_url=vault_url, credential=credential)
        self._client = client

    def read(self, name: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            value = self._client.get_secret(name).value
        except ResourceNotFoundError:
            return None
        return None if value is None else str(value)


class SecretsManagerSecretReader:
    """Secrets from AWS Secrets Manager (``GetSecretValue``); the client comes from the caller or boto3."""

    def __init__(self, client: Any = None, *, region: str | None = None, endpoint_url: str | None = None) -> None:
        if client is None:
            client = _module("boto3").client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
        self._client = client

    def read(self, name: str) -> str | None:
        try:
            resp = self._client.get_secret_value(SecretId=name)
        except self._client.exceptions.ResourceNotFoundException:
            return None
        value = resp.get("SecretString")
        return None if value is None else str(value)


def parse_secret(registry: str, value: str) -> BasicCredentials:
    """A secret holds JSON ``{"username": ..., "password"|"token": ...}`` or ``username:token``."""
    text = value.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise RegistryCredentialsError(registry, "the registry secret is not valid JSON") from None
        user = doc.get("username") if isinstance(doc, dict) else None
        secret = (doc.get("password") or doc.get("token")) if isinstance(doc, dict) else None
        if isinstance(user, str) and user and isinstance(secret, str) and secret:
            return BasicCredentials(user, secret)
        raise RegistryCredentialsError(registry, 'the registry secret needs "username" and "password" or "token"')
    user, sep, secret = text.partition(":")
    if not (sep and user and secret):
        raise RegistryCredentialsError(registry, "the registry secret is neither JSON nor username:token")
    return BasicCredentials(user, secret)


class SecretCredentialProvider:
    """Username and token from a secret store, by the secret name configured for each registry host."""

    def __init__(
        self,
        reader: SecretReader | None,
        secret_names: Mapping[str, str],
        *,
        ttl: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._names = {_host(k): v for k, v in secret_names.items()}
        self._ttl = ttl
        self._clock = clock
        self._cache = _ExpiringCache(clock, 0.0)

    def credentials(self, registry: str, repository: str) -> BasicCredentials | None:
        host = _host(registry)
        name = self._names.get(host)
        if name is None:
            return None  # anonymous pull
        cached = self._cache.get((host,))
        if cached is not None:
            return cached
        if self._reader is None:
            raise RegistryCredentialsError(host, f"secret {name!r} is configured but no secret store is")
        value = self._reader.read(name)
        if value is None:
            raise RegistryCredentialsError(host, f"secret {name!r} does not exist")
        creds = parse_secret(host, value)
        self._cache.put((host,), creds, self._clock() + self._ttl)
        return creds


# -- the chain ---------------------------------------------------------------------------------------------------


class ChainProvider:
    """Picks a provider by registry host pattern (first match wins), else the fallback.

    With an allowlist, a registry that is not configured is refused before any
    provider is asked (no credentials, and no token exchange, for a forged host).
    """

    def __init__(
        self,
        routes: Sequence[tuple[Sequence[str], CredentialProvider]],
        fallback: CredentialProvider | None = None,
        allowlist: Allowlist | None = None,
    ) -> None:
        self._routes = [(tuple(p.lower() for p in patterns), provider) for patterns, provider in routes]
        self._fallback = fallback
        self._allowlist = allowlist

    def provider_for(self, registry: str) -> CredentialProvider | None:
        host = _host(registry)
        for patterns, provider in self._routes:
            if any(fnmatch.fnmatchcase(host, p) for p in patterns):
                return provider
        return self._fallback

    def credentials(self, registry: str, repository: str) -> BasicCredentials | None:
        if self._allowlist is not None:
            self._allowlist.check(registry)
        provider = self.provider_for(registry)
        return None if provider is None else provider.credentials(registry, repository)


def cloud_chain(
    *,
    acr: CredentialProvider | None = None,
    ecr: CredentialProvider | None = None,
    gar: CredentialProvider | None = None,
    static: CredentialProvider | None = None,
    allowlist: Allowlist | None = None,
) -> ChainProvider:
    """The standard chain: ``*.azurecr.io`` -> ACR, ``*.dkr.ecr.*.amazonaws.com`` -> ECR, GAR/GCR, else static."""
    routes: list[tuple[Sequence[str], CredentialProvider]] = []
    for patterns, provider in ((ACR_PATTERNS, acr), (ECR_PATTERNS, ecr), (GAR_PATTERNS, gar)):
        if provider is not None:
            routes.append((patterns, provider))
    return ChainProvider(routes, static, allowlist)


# -- inbound: Pub/Sub push OIDC tokens ---------------------------------------------------------------------------

#: Issuers of Google-signed ID tokens (Pub/Sub push authentication), and where their signing keys are published.
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"


class PushTokenRejected(HullwatchError):
    """A Pub/Sub push whose OIDC token is missing or does not verify (issuer, audience, signature, expiry)."""


class PushTokenVerifier:
    """Verifies the ``Authorization: Bearer`` ID token Pub/Sub attaches to an authenticated push.

    Checks the RS256 signature against Google's JWKS (fetched once, cached, and
    re-fetched when a token names an unknown key id), the issuer, the configured
    audience, expiry and issue time, and, when configured, the push service
    account (``email`` with ``email_verified``).
    """

    def __init__(
        self,
        audience: str,
        *,
        jwks_url: str = GOOGLE_JWKS_URL,
        issuers: Sequence[str] = GOOGLE_ISSUERS,
        service_account: str | None = None,
        leeway: float = 30.0,
        jwks_lifespan: float = 3600.0,
        timeout: float = 10.0,
    ) -> None:
        import jwt

        if not audience:
            raise ValueError("a push token audience is required")
        self.audience = audience
        self.issuers = tuple(issuers)
        self.service_account = service_account
        self.leeway = leeway
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=jwks_lifespan, timeout=timeout)

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims; raises PushTokenRejected, or Retryable when Google's keys cannot be fetched."""
        import jwt

        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PushTokenRejected("no bearer token on the push request")
        token = token.strip()
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise Retryable(f"signing keys unavailable: {exc}") from None
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise PushTokenRejected(f"token signing key: {exc}") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuers,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise PushTokenRejected(f"token rejected: {exc}") from None
        if self.service_account is not None and (
            claims.get("email") != self.service_account or claims.get("email_verified") is not True
        ):
            raise PushTokenRejected(f"token is not from {self.service_account}")
        return claims
