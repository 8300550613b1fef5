"""Registry credential providers: ACR exchange against a local endpoint, ECR and Secrets Manager against moto server.

Key Vault has no local emulator here: its reader is tested with a fake
``SecretClient`` injected in its place (same ``get_secret`` call and the SDK's own
``ResourceNotFoundError``).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError

from shared.service.cloud_credentials import (
    ACR_REFRESH_TOKEN_USER,
    GOOGLE_TOKEN_USER,
    AcrCredentialProvider,
    EcrCredentialProvider,
    GoogleCredentialProvider,
    KeyVaultSecretReader,
    RegistryCredentialsError,
    SecretCredentialProvider,
    SecretsManagerSecretReader,
    cloud_chain,
    parse_ecr_host,
    parse_secret,
)
from shared.service.credentials import Allowlist, BasicCredentials
from shared.service.errors import RegistryNotAllowed, Retryable
from tests.conftest import require_module
from tests.support.services import start_moto

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "eu-west-1"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
# moto's GetAuthorizationToken says every token expires at 2015-01-01: a clock before that keeps it valid.
BEFORE_EXPIRY = datetime(2014, 12, 31, 12, tzinfo=UTC).timestamp()
AFTER_EXPIRY = datetime(2015, 1, 2, tzinfo=UTC).timestamp()


# -- moto server -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_module("moto.server", "pip install 'moto[server]'")
    svc = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield svc.url
    finally:
        svc.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    requests.post(f"{moto_url}/moto-api/reset", timeout=5)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return moto_url


# -- ACR ---------------------------------------------------------------------------------------------------------


def _jwt(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


class FakeAcrExchange:
    """A registry's ``/oauth2/exchange`` endpoint: checks the form, answers a refresh token (or a set status)."""

    def __init__(self, expected_token: str) -> None:
        self.expected_token = expected_token
        self.forms: list[dict[str, list[str]]] = []
        self.status = 200
        self.refresh_token = _jwt({"exp": int(time.time()) + 3 * 3600, "grant_type": "refresh_token"})
        exchange = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                form = parse_qs(body)
                exchange.forms.append(form)
                ok = (
                    self.path == "/oauth2/exchange"
                    and self.headers.get("Content-Type") == "application/x-www-form-urlencoded"
                    and form.get("grant_type") == ["access_token"]
                    and form.get("service") == [exchange.host]
                    and form.get("access_token") == [exchange.expected_token]
                )
                status = exchange.status if ok else 401
                payload = json.dumps({"refresh_token": exchange.refresh_token} if status == 200 else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def acr_exchange() -> Iterator[FakeAcrExchange]:
    fake = FakeAcrExchange("entra-token-for-acr")
    try:
        yield fake
    finally:
        fake.stop()


def test_acr_exchanges_the_entra_token_for_a_refresh_token(acr_exchange: FakeAcrExchange) -> None:
    calls: list[int] = []

    def entra_token() -> str:
        calls.append(1)
        return "entra-token-for-acr"

    provider = AcrCredentialProvider(entra_token, insecure_registries=[acr_exchange.host])
    creds = provider.credentials(acr_exchange.host, "team/app")
    assert creds == BasicCredentials(ACR_REFRESH_TOKEN_USER, acr_exchange.refresh_token)
    assert creds.username == "00000000-0000-0000-0000-000000000000"
    (form,) = acr_exchange.forms
    assert form == {
        "grant_type": ["access_token"],
        "service": [acr_exchange.host],
        "access_token": ["entra-token-for-acr"],
    }
    # the refresh token is kept until shortly before its own expiry: no second exchange
    assert provider.credentials(acr_exchange.host, "team/other") == creds
    assert len(acr_exchange.forms) == 1 and len(calls) == 1


def test_acr_refresh_token_is_renewed_near_its_expiry(acr_exchange: FakeAcrExchange) -> None:
    now = [time.time()]
    provider = AcrCredentialProvider(
        lambda: "entra-token-for-acr", insecure_registries=[acr_exchange.host], clock=lambda: now[0]
    )
    provider.credentials(acr_exchange.host, "app")
    now[0] += 3 * 3600 - 60  # within the refresh margin
    provider.credentials(acr_exchange.host, "app")
    assert len(acr_exchange.forms) == 2


def test_acr_refused_exchange_and_server_errors(acr_exchange: FakeAcrExchange) -> None:
    refused = AcrCredentialProvider(lambda: "a-wrong-token", insecure_registries=[acr_exchange.host])
    with pytest.raises(RegistryCredentialsError, match="HTTP 401"):
        refused.credentials(acr_exchange.host, "app")
    acr_exchange.status = 503
    flaky = AcrCredentialProvider(lambda: "entra-token-for-acr", insecure_registries=[acr_exchange.host])
    with pytest.raises(Retryable, match="HTTP 503"):
        flaky.credentials(acr_exchange.host, "app")


def test_acr_uses_https_unless_the_registry_is_a_configured_local_one() -> None:
    provider = AcrCredentialProvider(lambda: "t", insecure_registries=["myreg.azurecr.io", "127.0.0.1:5000"])
    assert provider._exchange_url("myreg.azurecr.io") == "https://myreg.azurecr.io/oauth2/exchange"
    assert provider._exchange_url("127.0.0.1:5000") == "http://127.0.0.1:5000/oauth2/exchange"


# -- ECR ---------------------------------------------------------------------------------------------------------


def test_parse_ecr_host() -> None:
    target = parse_ecr_host(ECR_HOST)
    assert target is not None and (target.account, target.region) == (ACCOUNT, REGION)
    assert parse_ecr_host(f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn") is not None
    assert parse_ecr_host("myreg.azurecr.io") is None
    assert parse_ecr_host("evil.dkr.ecr.eu-west-1.amazonaws.com") is None


def test_ecr_token_is_decoded_and_cached_until_expiry(aws: str) -> None:
    now = [BEFORE_EXPIRY]
    provider = EcrCredentialProvider(endpoint_url=aws, clock=lambda: now[0])
    creds = provider.credentials(ECR_HOST, "app")
    assert creds == BasicCredentials("AWS", f"{ACCOUNT}-auth-token")
    assert provider.credentials(ECR_HOST, "other") == creds
    assert provider.token_requests == 1  # one GetAuthorizationToken for two lookups
    now[0] = AFTER_EXPIRY
    provider.credentials(ECR_HOST, "app")
    assert provider.token_requests == 2


def test_ecr_cache_is_per_account_and_region(aws: str) -> None:
    provider = EcrCredentialProvider(endpoint_url=aws, clock=lambda: BEFORE_EXPIRY)
    provider.credentials(ECR_HOST, "app")
    provider.credentials(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com", "app")
    assert provider.token_requests == 2


def test_ecr_cross_account_through_an_assumed_role(aws: str) -> None:
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/hullwatch-pull"
    seen: list[dict[str, Any]] = []

    def session_factory(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return boto3.session.Session(**kwargs)

    provider = EcrCredentialProvider(
        roles={OTHER_ACCOUNT: role}, endpoint_url=aws, session_factory=session_factory, clock=lambda: BEFORE_EXPIRY
    )
    creds = provider.credentials(f"{OTHER_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com", "shared/base")
    assert creds == BasicCredentials("AWS", f"{OTHER_ACCOUNT}-auth-token")
    # the base session, then one built from the role's temporary credentials
    assumed = seen[-1]
    assert assumed["aws_session_token"] and assumed["aws_access_key_id"] != "testing"


def test_ecr_refuses_a_host_that_is_not_ecr() -> None:
    with pytest.raises(RegistryCredentialsError, match="not an ECR registry host"):
        EcrCredentialProvider().credentials("registry.example.com", "app")


# -- GAR ---------------------------------------------------------------------------------------------------------


def test_google_access_token_is_the_password_of_oauth2accesstoken() -> None:
    provider = GoogleCredentialProvider(lambda: "ya29.test-token")
    assert provider.credentials("europe-docker.pkg.dev", "proj/repo/app") == BasicCredentials(
        GOOGLE_TOKEN_USER, "ya29.test-token"
    )

    def broken() -> str:
        raise OSError("metadata server unreachable")

    with pytest.raises(Retryable, match="Google access token unavailable"):
        GoogleCredentialProvider(broken).credentials("gcr.io", "proj/app")


# -- static secrets ----------------------------------------------------------------------------------------------


def test_secrets_manager_reader_against_moto(aws: str) -> None:
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws)
    client.create_secret(Name="registry/example", SecretString=json.dumps({"username": "bot", "token": "s3cr3t"}))
    provider = SecretCredentialProvider(
        SecretsManagerSecretReader(region=REGION, endpoint_url=aws), {"registry.example.com": "registry/example"}
    )
    assert provider.credentials("registry.example.com", "app") == BasicCredentials("bot", "s3cr3t")
    assert provider.credentials("unconfigured.example.com", "app") is None  # anonymous
    missing = SecretCredentialProvider(SecretsManagerSecretReader(client), {"registry.example.com": "registry/absent"})
    with pytest.raises(RegistryCredentialsError, match="does not exist"):
        missing.credentials("registry.example.com", "app")


class FakeSecretClient:
    """Stands in for ``azure.keyvault.secrets.SecretClient`` (no Key Vault emulator exists)."""

    class _Secret:
        def __init__(self, value: str) -> None:
            self.value = value

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.calls: list[str] = []

    def get_secret(self, name: str) -> _Secret:
        self.calls.append(name)
        if name not in self.secrets:
            raise ResourceNotFoundError(f"Secret not found: {name}")
        return self._Secret(self.secrets[name])


def test_key_vault_reader_and_secret_cache() -> None:
    client = FakeSecretClient({"ghcr-bot": "bot:ghp_token"})
    reader = KeyVaultSecretReader("https://vault.example", client=client)
    now = [1000.0]
    provider = SecretCredentialProvider(reader, {"ghcr.io": "ghcr-bot"}, ttl=60, clock=lambda: now[0])
    assert provider.credentials("GHCR.io", "org/app") == BasicCredentials("bot", "ghp_token")
    provider.credentials("ghcr.io", "org/app")
    assert client.calls == ["ghcr-bot"]
    now[0] += 61
    provider.credentials("ghcr.io", "org/app")
    assert client.calls == ["ghcr-bot", "ghcr-bot"]
    assert reader.read("absent") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"username": "u", "password": "p"}', BasicCredentials("u", "p")),
        ('{"username": "u", "token": "t"}', BasicCredentials("u", "t")),
        ("u:t:with:colons", BasicCredentials("u", "t:with:colons")),
    ],
)
def test_parse_secret(value: str, expected: BasicCredentials) -> None:
    assert parse_secret("r", value) == expected


@pytest.mark.parametrize("value", ['{"username": "u"}', "no-separator", "{not json"])
def test_parse_secret_refuses_incomplete_values(value: str) -> None:
    with pytest.raises(RegistryCredentialsError):
        parse_secret("r", value)


# -- the chain ---------------------------------------------------------------------------------------------------


class Recording:
    def __init__(self, name: str) -> None:
        self.name = name
        self.asked: list[str] = []

    def credentials(self, registry: str, repository: str) -> BasicCredentials | None:
        self.asked.append(registry)
        return BasicCredentials(self.name, "x")


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("myreg.azurecr.io", "acr"),
        (ECR_HOST, "ecr"),
        (f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn", "ecr"),
        ("europe-west1-docker.pkg.dev", "gar"),
        ("gcr.io", "gar"),
        ("eu.gcr.io", "gar"),
        ("ghcr.io", "static"),
        ("registry.example.com", "static"),
    ],
)
def test_chain_routes_by_host_pattern(host: str, kind: str) -> None:
    providers = {k: Recording(k) for k in ("acr", "ecr", "gar", "static")}
    chain = cloud_chain(**providers)
    creds = chain.credentials(host, "app")
    assert creds is not None and creds.username == kind


def test_chain_refuses_an_unlisted_registry_before_asking_any_provider() -> None:
    acr = Recording("acr")
    chain = cloud_chain(acr=acr, allowlist=Allowlist(["myreg.azurecr.io"]))
    assert chain.credentials("MyReg.azurecr.io", "app") is not None
    with pytest.raises(RegistryNotAllowed):
        chain.credentials("attacker.azurecr.io", "app")
    assert acr.asked == ["MyReg.azurecr.io"]


def test_no_provider_means_anonymous() -> None:
    assert cloud_chain().credentials("registry.example.com", "app") is None


def test_building_providers_contacts_nothing() -> None:
    # identity clients are made on first use, so a cold start without a lookup costs nothing
    assert AcrCredentialProvider()._entra_token is None
    assert EcrCredentialProvider()._session is None
    assert GoogleCredentialProvider()._access_token is None


# -- settings -> the provider chain --------------------------------------------------------------------------------


def test_settings_from_the_environment_build_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.composition import Settings, build_credentials

    monkeypatch.setenv("HULLWATCH_REGISTRY_ALLOWLIST", " MyReg.azurecr.io, ghcr.io ,,")
    monkeypatch.setenv("HULLWATCH_CROSS_ACCOUNT_ROLES", json.dumps({OTHER_ACCOUNT: "arn:aws:iam::x:role/r"}))
    monkeypatch.setenv("HULLWATCH_REGISTRY_SECRETS", json.dumps({"ghcr.io": "ghcr-bot"}))
    monkeypatch.setenv("HULLWATCH_EVENTGRID_TOPIC_ENDPOINT", "https://topic.example/api/events")
    settings = Settings()
    assert settings.registry_allowlist == ("myreg.azurecr.io", "ghcr.io")
    assert settings.cross_account_roles == {OTHER_ACCOUNT: "arn:aws:iam::x:role/r"}
    assert settings.eventgrid_endpoint == "https://topic.example/api/events"
    chain = build_credentials(settings)
    assert isinstance(chain.provider_for("myreg.azurecr.io"), AcrCredentialProvider)
    assert isinstance(chain.provider_for(ECR_HOST), EcrCredentialProvider)
    assert isinstance(chain.provider_for("ghcr.io"), SecretCredentialProvider)
    with pytest.raises(RegistryNotAllowed):
        chain.credentials("elsewhere.azurecr.io", "app")  # refused before any token is asked for
