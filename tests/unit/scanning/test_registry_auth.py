"""Challenge parsing and the Basic / Bearer flows, against a scripted token fetcher."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.scanning.errors import ImageError
from shared.scanning.sources.registry_auth import (
    Authenticator,
    Challenge,
    Credentials,
    parse_challenges,
    pull_scope,
)

SCOPE = pull_scope("team/app")
BEARER = 'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull"'


def test_parse_bearer_challenge() -> None:
    assert parse_challenges(BEARER) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.example.com/token",
                "service": "registry.example.com",
                "scope": "repository:team/app:pull",
            },
        )
    ]


def test_parse_several_challenges_escapes_and_odd_spacing() -> None:
    header = (
        r'Basic realm="Registry \"main\"" , Bearer  realm = "https://a/t?x=1,2" ,error="insufficient_scope",Scope=x'
    )
    got = parse_challenges(header)
    assert [c.scheme for c in got] == ["basic", "bearer"]
    assert got[0].params == {"realm": 'Registry "main"'}
    assert got[1].params == {"realm": "https://a/t?x=1,2", "error": "insufficient_scope", "scope": "x"}


@pytest.mark.parametrize("header", [None, "", ",,,", "=novalue", "Negotiate"])
def test_parse_odd_headers_never_raise(header: str | None) -> None:
    got = parse_challenges(header)
    assert all(isinstance(c, Challenge) for c in got)


def test_parse_unquoted_values() -> None:
    assert parse_challenges("Bearer realm=https://a/token,service=reg") == [
        Challenge("bearer", {"realm": "https://a/token", "service": "reg"})
    ]


@dataclass
class FakeTokenServer:
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    calls: list[tuple[str, str, dict[str, str], dict[str, str] | None]] = field(default_factory=list)

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], form: Mapping[str, str] | None
    ) -> tuple[int, bytes]:
        self.calls.append((method, url, dict(headers), dict(form) if form is not None else None))
        if self.answers:
            return self.answers.pop(0)
        return 200, json.dumps({"token": f"tok{len(self.calls)}", "expires_in": 300}).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(
    creds: Credentials | None, fetch: FakeTokenServer, clock: Clock | None = None, allow_http: bool = False
) -> tuple[Authenticator, list[int]]:
    loads: list[int] = []

    def load() -> Credentials | None:
        loads.append(1)
        return creds

    auth = Authenticator(
        registry="registry.example.com",
        subject="registry.example.com/team/app:1",
        credentials=load,
        fetch=fetch,
        allow_http_realm=allow_http,
        clock=clock or Clock(),
    )
    return auth, loads


def test_no_header_before_a_challenge_and_credentials_loaded_lazily() -> None:
    auth, loads = make(Credentials("u", "p"), FakeTokenServer())
    assert auth.header(SCOPE) is None
    assert loads == []


def test_bearer_flow_with_basic_credentials() -> None:
    server = FakeTokenServer()
    auth, loads = make(Credentials("u", "p"), server)
    assert auth.challenge(BEARER, SCOPE) is True
    assert auth.header(SCOPE) == "Bearer tok1"
    assert loads == [1]
    ((method, url, headers, form),) = server.calls
    assert method == "GET" and form is None
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://auth.example.com/token"
    assert parse_qs(parts.query) == {
        "service": ["registry.example.com"],
        "scope": ["repository:team/app:pull"],
        "account": ["u"],
    }
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_anonymous_bearer_flow_sends_no_authorization() -> None:
    server = FakeTokenServer()
    auth, _ = make(None, server)
    assert auth.challenge(BEARER, SCOPE) is True
    assert server.calls[0][2] == {}
    assert "account" not in server.calls[0][1]


def test_access_token_field_is_accepted() -> None:
    server = FakeTokenServer([(200, b'{"access_token": "abc"}')])
    auth, _ = make(None, server)
    auth.challenge(BEARER, SCOPE)
    assert auth.header(SCOPE) == "Bearer abc"


def test_identity_token_is_a_refresh_token_post() -> None:
    server = FakeTokenServer()
    auth, _ = make(Credentials(identity_token="refresh-me", origin="docker config"), server)
    auth.challenge(BEARER, SCOPE)
    ((method, url, headers, form),) = server.calls
    assert (method, url) == ("POST", "https://auth.example.com/token")
    assert "Authorization" not in headers
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-me",
        "client_id": "hullwatch",
        "scope": "repository:team/app:pull",
        "service": "registry.example.com",
    }


def test_token_is_cached_until_shortly_before_expiry() -> None:
    server = FakeTokenServer()
    clock = Clock()
    auth, _ = make(None, server, clock)
    auth.challenge(BEARER, SCOPE)
    for _ in range(5):
        assert auth.header(SCOPE) == "Bearer tok1"
    clock.now += 285
    assert auth.header(SCOPE) == "Bearer tok1"
    clock.now += 10  # inside the refresh margin of a 300 s token
    assert auth.header(SCOPE) == "Bearer tok2"
    assert len(server.calls) == 2


def test_token_without_expires_in_lives_60_seconds() -> None:
    server = FakeTokenServer([(200, b'{"token": "short"}')])
    clock = Clock()
    auth, _ = make(None, server, clock)
    auth.challenge(BEARER, SCOPE)
    clock.now += 45
    assert auth.header(SCOPE) == "Bearer short"
    clock.now += 10
    assert auth.header(SCOPE) == "Bearer tok2"


def test_token_server_rejecting_credentials() -> None:
    auth, _ = make(Credentials("u", "bad"), FakeTokenServer([(401, b'{"details":"nope"}')]))
    with pytest.raises(ImageError) as exc:
        auth.challenge(BEARER, SCOPE)
    assert str(exc.value) == (
        "registry.example.com/team/app:1: authentication failed for registry.example.com: "
        "check the username and password (--username/--password)"
    )


def test_token_server_refusing_anonymous() -> None:
    auth, _ = make(None, FakeTokenServer([(401, b"")]))
    with pytest.raises(ImageError) as exc:
        auth.challenge(BEARER, SCOPE)
    assert "registry.example.com requires authentication" in str(exc.value)


def test_token_server_errors_are_one_line() -> None:
    body = json.dumps({"errors": [{"code": "X", "message": "down\nfor\tmaintenance"}]}).encode()
    auth, _ = make(None, FakeTokenServer([(502, body)]))
    with pytest.raises(ImageError) as exc:
        auth.challenge(BEARER, SCOPE)
    assert str(exc.value).endswith(
        "token server auth.example.com for registry.example.com answered HTTP 502: down for maintenance"
    )

    auth, _ = make(None, FakeTokenServer([(200, b"<html>")]))
    with pytest.raises(ImageError) as exc:
        auth.challenge(BEARER, SCOPE)
    assert "returned no token" in str(exc.value)


def test_plain_http_realm_refused_unless_allowed() -> None:
    header = 'Bearer realm="http://auth.example.com/token",service="s"'
    auth, _ = make(Credentials("u", "p"), FakeTokenServer())
    with pytest.raises(ImageError) as exc:
        auth.challenge(header, SCOPE)
    assert "plain-HTTP token realm" in str(exc.value)
    auth, _ = make(Credentials("u", "p"), FakeTokenServer(), allow_http=True)
    assert auth.challenge(header, SCOPE) is True


def test_basic_challenge() -> None:
    auth, _ = make(Credentials("u", "p"), FakeTokenServer())
    assert auth.challenge('Basic realm="r"', SCOPE) is True
    assert auth.header(SCOPE) == "Basic " + base64.b64encode(b"u:p").decode()
    # a second Basic challenge: the same credentials again would not help
    assert auth.challenge('Basic realm="r"', SCOPE) is False
    assert "authentication failed for registry.example.com" in str(auth.failure('Basic realm="r"', "team/app"))


def test_basic_challenge_without_credentials() -> None:
    auth, _ = make(None, FakeTokenServer())
    assert auth.challenge('Basic realm="r"', SCOPE) is False
    assert str(auth.failure('Basic realm="r"', "team/app")) == (
        "registry.example.com/team/app:1: registry.example.com requires authentication: "
        "pass --username/--password or log in with docker login"
    )


def test_insufficient_scope_with_credentials() -> None:
    auth, _ = make(Credentials("u", "p", origin="docker config /x/config.json"), FakeTokenServer())
    auth.challenge(BEARER, SCOPE)
    msg = str(auth.failure(BEARER + ',error="insufficient_scope"', "team/app"))
    assert "denied pull access to team/app" in msg
    assert "docker config /x/config.json" in msg


def test_unknown_scheme_is_not_answered() -> None:
    auth, _ = make(Credentials("u", "p"), FakeTokenServer())
    assert auth.challenge('Negotiate realm="x"', SCOPE) is False
    assert auth.header(SCOPE) is None
