"""Registry authentication: ``WWW-Authenticate`` challenges, Basic, and the Bearer token flow.

A registry answers an unauthenticated request with 401 and a challenge. For
``Basic`` we resend with the user's credentials. For ``Bearer`` we ask the token
server named by ``realm`` for a token for ``service`` and the scope we need
(``repository:REPO:pull``), with the user's credentials as Basic auth if there
are any (or their identity token as an OAuth2 refresh token, POSTed as a form),
then resend with ``Authorization: Bearer TOKEN``. Tokens are cached per
(realm, service, scope) until shortly before they expire, and once a registry
has challenged us the right header is sent up front on every later request.

This module does no HTTP itself: the registry source hands it a
:data:`TokenFetch` that goes through its own session, retries and redirects.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from shared.scanning.errors import ImageError

#: (method, url, headers, form or None) -> (HTTP status, body bytes, at most MAX_TOKEN_RESPONSE_BYTES)
TokenFetch = Callable[[str, str, Mapping[str, str], Mapping[str, str] | None], tuple[int, bytes]]

#: Token responses larger than this are refused.
MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024
#: Lifetime assumed when a token server gives no ``expires_in`` (the token spec's default).
DEFAULT_TOKEN_SECONDS = 60
#: Refresh this many seconds before a token's stated expiry.
EXPIRY_MARGIN_SECONDS = 10
CLIENT_ID = "hullwatch"

_HTTP_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM_RE = re.compile(rf"\s*({_HTTP_TCHARS})\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^\s,]*)\s*")
_SCHEME_RE = re.compile(rf"\s*({_HTTP_TCHARS})(?=\s|,|$)\s*")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "basic", "bearer", ...
    params: dict[str, str]


def parse_challenges(header: str | None) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` header (RFC 7235), in order.

    Parameter names are lower-cased and quoted values unescaped; anything that
    does not parse is skipped rather than failing the whole header.
    """
    out: list[Challenge] = []
    if not header:
        return out
    pos, n = 0, len(header)
    current: Challenge | None = None
    while pos < n:
        if header[pos] in " \t,":
            pos += 1
            continue
        m = _PARAM_RE.match(header, pos)
        if m and current is not None:
            value = m.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            current.params[m.group(1).lower()] = value
            pos = m.end()
            continue
        m = _SCHEME_RE.match(header, pos)
        if m:
            current = Challenge(m.group(1).lower(), {})
            out.append(current)
            pos = m.end()
            continue
        # unparseable (e.g. token68): skip to the next comma
        nxt = header.find(",", pos)
        pos = n if nxt < 0 else nxt + 1
    return out


@dataclass(frozen=True)
class Credentials:
    """What we may authenticate with, and where it came from (for error messages)."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    origin: str = "--username/--password"

    @property
    def has_basic(self) -> bool:
        return bool(self.username) and self.password is not None

    def basic_header(self) -> str:
        raw = f"{self.username or ''}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


@dataclass
class _Token:
    value: str
    expires_at: float


def one_line(text: str, limit: int = 200) -> str:
    """Server-supplied text made safe for a one-line message: no control characters, bounded."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Authenticator:
    """Answers a registry's challenges and supplies the ``Authorization`` header.

    ``credentials`` is called at most once, on the first challenge: an image on
    an anonymous registry never makes us read the docker config or run a
    credential helper.
    """

    def __init__(
        self,
        *,
        registry: str,
        subject: str,
        credentials: Callable[[], Credentials | None],
        fetch: TokenFetch,
        allow_http_realm: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.subject = subject
        self._load_credentials = credentials
        self._credentials: Credentials | None = None
        self._loaded = False
        self._fetch = fetch
        self._allow_http_realm = allow_http_realm
        self._clock = clock
        self._scheme: str | None = None
        self._bearer: dict[str, str] = {}
        self._tokens: dict[tuple[str, str, str], _Token] = {}

    @property
    def credentials(self) -> Credentials | None:
        if not self._loaded:
            self._credentials = self._load_credentials()
            self._loaded = True
        return self._credentials

    @property
    def scheme(self) -> str | None:
        """The scheme the registry asked for, once it has challenged us."""
        return self._scheme

    def header(self, scope: str) -> str | None:
        """The ``Authorization`` value to send to the registry now, if any."""
        if self._scheme == "basic":
            creds = self.credentials
            return creds.basic_header() if creds is not None and creds.has_basic else None
        if self._scheme == "bearer":
            key = self._key(scope)
            tok = self._tokens.get(key)
            if tok is None or self._clock() >= tok.expires_at:
                tok = self._fetch_token(scope)
            return "Bearer " + tok.value
        return None

    def challenge(self, www_authenticate: str | None, scope: str) -> bool:
        """Respond to a 401. True when a retry with new credentials may succeed.

        Raises ImageError when the token server refuses us.
        """
        challenges = parse_challenges(www_authenticate)
        bearer = next((c for c in challenges if c.scheme == "bearer" and c.params.get("realm")), None)
        if bearer is not None:
            self._scheme = "bearer"
            self._bearer = dict(bearer.params)
            self._tokens.pop(self._key(scope), None)
            self._fetch_token(scope)
            return True
        if any(c.scheme == "basic" for c in challenges):
            creds = self.credentials
            if self._scheme == "basic" or creds is None or not creds.has_basic:
                return False  # nothing new to offer
            self._scheme = "basic"
            return True
        return False

    def failure(self, www_authenticate: str | None, repository: str) -> ImageError:
        """The error for a 401 that our credentials (or lack of them) could not get past."""
        creds = self.credentials
        if creds is None or not (creds.has_basic or creds.identity_token):
            return self._needs_credentials()
        insufficient = any(c.params.get("error") == "insufficient_scope" for c in parse_challenges(www_authenticate))
        if insufficient:
            return ImageError(
                self.subject,
                f"{self.registry} denied pull access to {repository} for the given credentials "
                f"({creds.origin}): no permission, or the repository does not exist",
            )
        return self._bad_credentials(creds)

    def _needs_credentials(self) -> ImageError:
        return ImageError(
            self.subject,
            f"{self.registry} requires authentication: pass --username/--password or log in with docker login",
        )

    def _bad_credentials(self, creds: Credentials) -> ImageError:
        return ImageError(
            self.subject,
            f"authentication failed for {self.registry}: check the username and password ({creds.origin})",
        )

    def _key(self, scope: str) -> tuple[str, str, str]:
        return (self._bearer.get("realm", ""), self._bearer.get("service", ""), scope)

    def _fetch_token(self, scope: str) -> _Token:
        realm = self._bearer.get("realm", "")
        service = self._bearer.get("service")
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ImageError(self.subject, f"{self.registry} named an unusable token realm {one_line(realm)!r}")
        if parts.scheme == "http" and not self._allow_http_realm:
            raise ImageError(
                self.subject,
                f"{self.registry} sent a plain-HTTP token realm ({one_line(realm)}); refusing to use it over HTTPS",
            )
        creds = self.credentials
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": CLIENT_ID}
            form["scope"] = scope
            if service:
                form["service"] = service
            status, body = self._fetch("POST", realm, {}, form)
        else:
            query: dict[str, str] = {}
            if service:
                query["service"] = service
            query["scope"] = scope
            headers: dict[str, str] = {}
            if creds is not None and creds.has_basic:
                headers["Authorization"] = creds.basic_header()
                query["account"] = creds.username or ""
            url = realm + ("&" if parts.query else "?") + urlencode(query)
            status, body = self._fetch("GET", url, headers, None)
        host = parts.netloc
        if status in (401, 403):
            if creds is None or not (creds.has_basic or creds.identity_token):
                raise self._needs_credentials()
            raise self._bad_credentials(creds)
        if status != 200:
            raise ImageError(
                self.subject, f"token server {host} for {self.registry} answered HTTP {status}{_error_text(body)}"
            )
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            doc = None
        value = None
        expires_in: object = None
        if isinstance(doc, dict):
            value = doc.get("token") or doc.get("access_token")
            expires_in = doc.get("expires_in")
        if not isinstance(value, str) or not value:
            raise ImageError(self.subject, f"token server {host} for {self.registry} returned no token")
        lifetime = expires_in if isinstance(expires_in, int) and expires_in > 0 else DEFAULT_TOKEN_SECONDS
        margin = min(EXPIRY_MARGIN_SECONDS, lifetime / 2)
        tok = _Token(value, self._clock() + lifetime - margin)
        self._tokens[self._key(scope)] = tok
        return tok


def _error_text(body: bytes) -> str:
    """': message' from a registry-style JSON error body, or ''."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    msgs: list[str] = []
    if isinstance(doc, dict):
        errors = doc.get("errors")
        if isinstance(errors, list):
            for e in errors:
                if isinstance(e, dict) and isinstance(e.get("message"), str):
                    msgs.append(e["message"])
        for key in ("error_description", "error", "details", "message"):
            if not msgs and isinstance(doc.get(key), str):
                msgs.append(doc[key])
    return f": {one_line('; '.join(msgs))}" if msgs else ""
