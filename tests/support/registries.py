"""Real local registries for tests: the distribution registry (``docker-registry``) on 127.0.0.1.

Three flavours, each on a free port with its config and storage in a temporary
directory:

* ``anonymous``: no auth;
* ``htpasswd``: Basic auth against a bcrypt htpasswd file (made with ``htpasswd -Bbn``);
* ``token``: the Bearer token flow, with :class:`TokenServer` (below) as the
  token service: it checks Basic credentials and signs RS256 JWTs whose ``x5c``
  header carries a self-signed certificate, which is also the registry's
  ``rootcertbundle``.

:func:`push` uploads an image (or an index and its images) over the
distribution API with ``requests``, doing the same auth flows as a client.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.images import Image, IndexImage

REGISTRY_BIN = "docker-registry"
SERVICE = "hullwatch-test-registry"
ISSUER = "hullwatch-test-issuer"
USERNAME = "user"
PASSWORD = "pass"
#: An identity token the token server accepts as an OAuth2 refresh token for USERNAME.
IDENTITY_TOKEN = "test-identity-token"


def registry_binary() -> str | None:
    return shutil.which(REGISTRY_BIN)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _QuietServer(ThreadingHTTPServer):
    """No tracebacks on stderr when a client goes away mid-answer (tests do that on purpose)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


# -- token server -------------------------------------------------------------


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hullwatch test token signer")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@dataclass
class TokenRequest:
    method: str
    service: str | None
    scopes: list[str]
    authorized: str | None  # the account the request authenticated as, if any


class TokenServer:
    """A token service for the registry's ``auth: token``, on 127.0.0.1.

    GET with Basic credentials (or none: an anonymous token with no access), or
    POST ``grant_type=refresh_token`` with :data:`IDENTITY_TOKEN`. Wrong
    credentials get 401. Every request is recorded in :attr:`requests`.
    """

    def __init__(self, username: str = USERNAME, password: str = PASSWORD, expires_in: int = 300) -> None:
        self.username = username
        self.password = password
        self.expires_in = expires_in
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert = _self_signed(self.key)
        self.requests: list[TokenRequest] = []
        self._pem_key = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self._x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                q = parse_qs(urlsplit(self.path).query)
                account: str | None = None
                header = self.headers.get("Authorization", "")
                if header:
                    if not header.startswith("Basic "):
                        return self._deny()
                    try:
                        user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                    except ValueError:
                        return self._deny()
                    if (user, pw) != (server.username, server.password):
                        return self._deny()
                    account = user
                self._grant("GET", q, account)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                q = parse_qs(self.rfile.read(length).decode())
                if q.get("grant_type") != ["refresh_token"] or q.get("refresh_token") != [IDENTITY_TOKEN]:
                    return self._deny()
                self._grant("POST", q, server.username)

            def _deny(self) -> None:
                body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _grant(self, method: str, q: dict[str, list[str]], account: str | None) -> None:
                scopes = [s for value in q.get("scope", []) for s in value.split(" ") if s]
                service = q["service"][0] if q.get("service") else None
                server.requests.append(TokenRequest(method, service, scopes, account))
                token = server.sign(account, service or SERVICE, scopes if account else [])
                body = json.dumps({"token": token, "access_token": token, "expires_in": server.expires_in}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def sign(self, account: str | None, audience: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            granted = [a for a in actions.split(",") if a in ("pull", "push")]
            if granted:
                access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": account or "",
            "aud": audience,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return jwt.encode(claims, self._pem_key, algorithm="RS256", headers={"x5c": [self._x5c]})

    def write_cert(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- registry -----------------------------------------------------------------


@dataclass
class Registry:
    """A running ``docker-registry``. ``host`` is what goes in image references."""

    flavour: str  # anonymous | htpasswd | token
    port: int
    root: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None

    def ref(self, repo: str, tag: str = "latest") -> str:
        return f"{self.host}/{repo}:{tag}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.token_server is not None:
            self.token_server.stop()


def _config(root: Path, port: int, auth: dict[str, Any] | None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "storage")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        # foreign layers (descriptors with urls) are refused unless an allow list is set
        "validation": {"manifests": {"urls": {"allow": ["^https?://"]}}},
    }
    if auth:
        cfg["auth"] = auth
    return cfg


def start_registry(
    root: Path,
    flavour: str = "anonymous",
    username: str = USERNAME,
    password: str = PASSWORD,
    timeout: float = 20.0,
) -> Registry:
    """Start ``docker-registry`` on 127.0.0.1 and wait until /v2/ answers."""
    binary = registry_binary()
    if binary is None:
        raise RuntimeError(f"{REGISTRY_BIN} is not installed (Debian package docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    token_server: TokenServer | None = None
    auth: dict[str, Any] | None = None
    if flavour == "htpasswd":
        htpasswd = shutil.which("htpasswd")
        if htpasswd is None:
            raise RuntimeError("htpasswd is not installed (Debian package apache2-utils)")
        line = subprocess.run(
            [htpasswd, "-Bbn", username, password], check=True, capture_output=True, text=True
        ).stdout.strip()
        (root / "htpasswd").write_text(line + "\n")
        auth = {"htpasswd": {"realm": "hullwatch-test", "path": str(root / "htpasswd")}}
    elif flavour == "token":
        token_server = TokenServer(username, password)
        bundle = token_server.write_cert(root / "token-signer.pem")
        auth = {
            "token": {
                "realm": token_server.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(bundle),
            }
        }
    elif flavour != "anonymous":
        raise ValueError(f"unknown registry flavour {flavour!r}")
    last_log = ""
    for _ in range(3):  # the free port may be taken between probing and binding
        port = free_port()
        config_path = root / "config.yml"
        # JSON is YAML: no YAML library needed
        config_path.write_text(json.dumps(_config(root, port, auth), indent=2))
        log_path = root / f"registry-{port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [binary, "serve", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        reg = Registry(
            flavour,
            port,
            root,
            proc,
            log_path,
            username if flavour != "anonymous" else None,
            password if flavour != "anonymous" else None,
            token_server,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = requests.get(f"{reg.url}/v2/", timeout=2)
                if r.status_code in (200, 401):
                    return reg
            except requests.RequestException:
                pass
            time.sleep(0.05)
        last_log = reg.log()
        reg.token_server = None  # keep it for the next try
        reg.stop()
    if token_server is not None:
        token_server.stop()
    raise RuntimeError(f"{REGISTRY_BIN} did not become ready; its log:\n{last_log[-4000:]}")


# -- pushing ------------------------------------------------------------------


class _PushSession:
    """Minimal client auth for pushing: Basic, or Bearer with pull,push scope."""

    def __init__(self, base: str, repo: str, auth: tuple[str, str] | None) -> None:
        self.base = base.rstrip("/")
        self.repo = repo
        self.creds = auth
        self.session = requests.Session()
        self.header: str | None = None

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        for _ in range(2):
            headers = dict(kw.pop("headers", None) or {})
            if self.header:
                headers["Authorization"] = self.header
            r = self.session.request(method, url, headers=headers, timeout=30, **kw)
            kw["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
            if r.status_code != 401:
                return r
            self._authenticate(r.headers.get("WWW-Authenticate", ""))
        return r

    def _authenticate(self, www: str) -> None:
        if self.creds is None:
            raise RuntimeError(f"registry wants auth ({www}) but no credentials were given to push()")
        basic = "Basic " + base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
        if www.lower().startswith("basic"):
            self.header = basic
            return
        params = dict(
            (k.strip(), v.strip().strip('"')) for k, _, v in (p.partition("=") for p in www.split(" ", 1)[1].split(","))
        )
        query = {"service": params.get("service", ""), "scope": f"repository:{self.repo}:pull,push"}
        r = requests.get(params["realm"] + "?" + urlencode(query), headers={"Authorization": basic}, timeout=30)
        r.raise_for_status()
        self.header = "Bearer " + (r.json().get("token") or r.json()["access_token"])


def _push_blob(s: _PushSession, digest: str, data: bytes) -> None:
    head = s.request("HEAD", f"{s.base}/v2/{s.repo}/blobs/{digest}")
    if head.status_code == 200:
        return
    r = s.request("POST", f"{s.base}/v2/{s.repo}/blobs/uploads/")
    if r.status_code != 202:
        raise RuntimeError(f"blob upload start failed: HTTP {r.status_code} {r.text[:300]}")
    location = urljoin(f"{s.base}/", r.headers["Location"])
    sep = "&" if "?" in location else "?"
    r = s.request(
        "PUT",
        f"{location}{sep}{urlencode({'digest': digest})}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    if r.status_code != 201:
        raise RuntimeError(f"blob upload of {digest} failed: HTTP {r.status_code} {r.text[:300]}")


def _push_manifest(s: _PushSession, reference: str, data: bytes, media_type: str) -> None:
    r = s.request("PUT", f"{s.base}/v2/{s.repo}/manifests/{reference}", data=data, headers={"Content-Type": media_type})
    if r.status_code != 201:
        raise RuntimeError(f"manifest push of {reference} failed: HTTP {r.status_code} {r.text[:500]}")


def push(
    registry_url: str,
    repo: str,
    tag: str,
    img: Image | IndexImage,
    auth: tuple[str, str] | None = None,
) -> str:
    """Upload ``img`` as ``repo:tag`` (an index: its images by digest first). Returns the manifest digest."""
    s = _PushSession(registry_url, repo, auth)
    try:
        if isinstance(img, IndexImage):
            for child, _plat in img.images:
                for digest, data in child.blobs.items():
                    _push_blob(s, digest, data)
                _push_manifest(s, child.digest, child.manifest, child.manifest_media_type)
        else:
            for digest, data in img.blobs.items():
                _push_blob(s, digest, data)
        _push_manifest(s, tag, img.manifest, img.manifest_media_type)
    finally:
        s.session.close()
    return img.digest


# -- a scriptable fake HTTP server, for what a real registry will not do ----------


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]


#: (method, path, headers) -> (status, headers, body); body None for no body.
#: Return DROP to close the connection without answering.
Responder = Any
DROP: tuple[str, dict[str, str], None] = ("drop", {}, None)


class FakeServer:
    """A threading HTTP server on 127.0.0.1 whose answers a test scripts with ``respond``.

    Every request is recorded in :attr:`hits`. A response header
    ``X-No-Length: 1`` makes it send the body without Content-Length (ended by
    closing the connection).
    """

    def __init__(self, respond: Responder = None) -> None:
        self.hits: list[Hit] = []
        self.respond: Responder = respond or (lambda method, path, headers: (404, {}, b""))
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                headers = {k: v for k, v in self.headers.items()}
                server.hits.append(Hit(self.command, self.path, headers))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, out_headers, body = server.respond(self.command, self.path, headers)
                if status == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                no_length = out_headers.pop("X-No-Length", None)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                if no_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif "Content-Length" not in out_headers:
                    self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                if body and self.command != "HEAD":
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

            do_GET = do_HEAD = do_POST = do_PUT = _handle

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_image(img: Image | IndexImage, repo: str, tag: str = "latest") -> dict[str, tuple[str, bytes]]:
    """path -> (content type, bytes) for an image's manifests and blobs, as a registry serves them."""
    out: dict[str, tuple[str, bytes]] = {}
    images = [child for child, _ in img.images] if isinstance(img, IndexImage) else [img]
    for child in images:
        out[f"/v2/{repo}/manifests/{child.digest}"] = (child.manifest_media_type, child.manifest)
        for digest, data in child.blobs.items():
            out[f"/v2/{repo}/blobs/{digest}"] = ("application/octet-stream", data)
    out[f"/v2/{repo}/manifests/{tag}"] = (img.manifest_media_type, img.manifest)
    out[f"/v2/{repo}/manifests/{img.digest}"] = (img.manifest_media_type, img.manifest)
    return out
