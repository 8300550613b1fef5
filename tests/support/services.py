"""Real local stand-ins for the cloud services, for the integration tests.

* :func:`start_cosmos`: ``@vercel/cosmosdb-server`` (Cosmos DB NoSQL API, HTTPS
  with a self-signed certificate) through ``cosmos_launcher.js``;
* :func:`start_azurite`: Azurite's blob service (Azure Blob Storage);
* :func:`start_moto`: ``moto_server`` (S3 and the other AWS APIs);
* :class:`EventGridReceiver`: an in-process HTTP server standing in for an
  Event Grid topic: it records each POST and answers ``{}``;
* :class:`FaultProxy`: an in-process HTTP proxy in front of a service that
  answers chosen requests with an error (429, 503, ...) before forwarding.

Every server listens on 127.0.0.1 on a port the system picks (each program is
started with port 0 and prints the port it got), is polled until it answers,
and is stopped by its PID. The session fixtures at the end start each one once
per test process; without Node.js, the npm packages or ``moto[server]`` they
fail under CI (``CI=true``) and skip elsewhere.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import require_module, require_tool

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "node_modules" / ".bin"
COSMOS_LAUNCHER = Path(__file__).resolve().parent / "cosmos_launcher.js"
NPM_HINT = "npm ci --ignore-scripts (package.json pins it)"

#: The Cosmos DB emulator's well-known key; the stand-in accepts any base64 key.
COSMOS_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
#: Azurite's well-known development account.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#: moto accepts any credentials; boto3 still wants some.
AWS_ACCESS_KEY = "testing"
AWS_SECRET_KEY = "testing"
AWS_REGION = "us-east-1"

START_TIMEOUT = 60.0


class ServiceError(RuntimeError):
    """A stand-in did not start; the message carries the end of its log."""


@dataclass
class ServiceProcess:
    """A started server: its URL, its PID and its log file."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the PID, then SIGKILL if it has not exited after ``timeout`` seconds."""
        if self.process.poll() is not None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout)
        except ProcessLookupError:
            pass


def _spawn(
    name: str,
    argv: list[str],
    workdir: Path,
    listening: re.Pattern[str],
    ready: Callable[[str], bool],
    timeout: float = START_TIMEOUT,
) -> ServiceProcess:
    """Start ``argv`` in ``workdir``, read its URL from its log (``listening``'s ``url`` group), poll ``ready``."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    svc = ServiceProcess(name, "", proc, log)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServiceError(f"{name} exited with {proc.returncode}:\n{svc.log_tail()}")
            if not svc.url:
                m = listening.search(log.read_text(errors="replace"))
                if m:
                    svc.url = m.group("url")
            if svc.url and ready(svc.url):
                return svc
            time.sleep(0.05)
        raise ServiceError(f"{name} did not answer within {timeout:.0f} s:\n{svc.log_tail()}")
    except BaseException:
        svc.stop()
        raise


def _answers(url: str, ok: Callable[[int], bool] = lambda status: status < 500) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the Cosmos stand-in's self-signed certificate
            return ok(requests.get(url, timeout=2, verify=False).status_code)
    except requests.RequestException:
        return False


# -- Cosmos DB -----------------------------------------------------------------------------------


def start_cosmos(workdir: Path) -> ServiceProcess:
    """``cosmos_launcher.js``: the Cosmos DB stand-in over HTTPS with keep-alive (see the launcher's comments)."""
    return _spawn(
        "cosmosdb-server",
        ["node", str(COSMOS_LAUNCHER), "--port", "0"],
        workdir,
        re.compile(r"listening on (?P<url>https://127\.0\.0\.1:\d+)"),
        lambda url: _answers(url + "/", lambda s: s == 200),
    )


# -- Azurite ---------------------------------------------------------------------------------------


def start_azurite(workdir: Path) -> ServiceProcess:
    """Azurite's blob service, in memory (nothing written to ``workdir`` but its log)."""
    return _spawn(
        "azurite-blob",
        [
            str(NODE_BIN / "azurite-blob"),
            "--silent",
            "--inMemoryPersistence",
            "--extentMemoryLimit",
            "512",
            "--disableTelemetry",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--skipApiVersionCheck",
            "--loose",
        ],
        workdir,
        re.compile(r"listens on (?P<url>http://127\.0\.0\.1:\d+)"),
        lambda url: _answers(f"{url}/{AZURITE_ACCOUNT}?comp=list"),
    )


def azurite_connection_string(svc: ServiceProcess) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={svc.url}/{AZURITE_ACCOUNT};"
    )


# -- moto --------------------------------------------------------------------------------------------


def start_moto(workdir: Path) -> ServiceProcess:
    """``moto_server`` (every AWS API moto has, S3 included); ``POST /moto-api/reset`` forgets everything."""
    return _spawn(
        "moto-server",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        workdir,
        re.compile(r"Running on (?P<url>http://127\.0\.0\.1:\d+)"),
        lambda url: _answers(f"{url}/moto-api/", lambda s: s == 200),
    )


# -- in-process HTTP servers -----------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that goes away mid-answer is not a test failure


@dataclass
class ReceivedPost:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class EventGridReceiver:
    """An Event Grid topic stand-in on 127.0.0.1: records every POST and answers ``{}``.

    A request without the right ``aeg-sas-key`` gets 401 like Event Grid; set
    :attr:`status` to make it answer an error instead (500: the topic is failing).
    """

    def __init__(self, key: str = "test-topic-key") -> None:
        self.key = key
        self.status = 200
        self.received: list[ReceivedPost] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                post = ReceivedPost(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    receiver.received.append(post)
                    status = receiver.status
                if post.headers.get("aeg-sas-key") != receiver.key:
                    status = 401
                if status == 200:
                    answer = b"{}"
                else:
                    message = {"error": {"code": "Unauthorized" if status == 401 else "InternalServerError"}}
                    answer = json.dumps(message).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/api/events"
        self._thread = threading.Thread(target=self._server.serve_forever, name="eventgrid-receiver", daemon=True)
        self._thread.start()

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.status = 200

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@dataclass
class Fault:
    """Answer ``status`` (with ``headers``) to the next ``count`` requests that match, instead of forwarding."""

    status: int
    count: int
    method: str | None = None
    path_contains: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        return (
            self.count > 0
            and (self.method is None or self.method == method)
            and (self.path_contains is None or self.path_contains in path)
        )


@dataclass
class ProxiedRequest:
    method: str
    path: str
    at: float  # time.monotonic() when it arrived
    status: int
    injected: bool


_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)


class FaultProxy:
    """A plain-HTTP proxy on 127.0.0.1 in front of ``upstream`` (HTTP or HTTPS, certificate not checked).

    Requests matching a :class:`Fault` are answered with its status and headers
    (a Cosmos DB-style JSON error body) without reaching the upstream; the rest
    are forwarded. Every request is recorded in :attr:`requests`.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port
        self._upstream = (parts.scheme, parts.hostname, parts.port)
        self.faults: list[Fault] = []
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = proxy._take_fault(self.command, self.path)
                if fault is not None:
                    answer = json.dumps({"code": str(fault.status), "message": "injected by the test proxy"}).encode()
                    status, headers = fault.status, {"Content-Type": "application/json", **fault.headers}
                else:
                    status, headers, answer = proxy._forward(self.command, self.path, dict(self.headers), body)
                with proxy._lock:
                    proxy.requests.append(ProxiedRequest(self.command, self.path, arrived, status, fault is not None))
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in _HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    def add_fault(
        self,
        status: int,
        count: int,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        retry_after_ms: int | None = None,
    ) -> Fault:
        headers = {"x-ms-retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        fault = Fault(status, count, method, path_contains, headers)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def matching(self, method: str | None = None, path_contains: str | None = None) -> list[ProxiedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path_contains is None or path_contains in r.path)
            ]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    return fault
        return None

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        scheme, host, port = self._upstream
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=30, context=self._tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "host"}
            out["Host"] = f"{host}:{port}"
            conn.request(method, path, body=body if body or method in ("POST", "PUT", "PATCH") else None, headers=out)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# -- session fixtures ---------------------------------------------------------------------------------


def _require_node_package(binary: str) -> None:
    require_tool("node", "Node.js 20 (apt-get install nodejs)")
    require_tool(str(NODE_BIN / binary), NPM_HINT)


@pytest.fixture(scope="session")
def cosmos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    _require_node_package("cosmosdb-server")
    require_module("azure.cosmos", "pip install -e '.[azure]'")
    svc = start_cosmos(tmp_path_factory.mktemp("cosmosdb-server"))
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    _require_node_package("azurite-blob")
    require_module("azure.storage.blob", "pip install -e '.[azure]'")
    svc = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    require_module("moto.server", "pip install 'moto[server]'")
    require_module("boto3", "pip install -e '.[aws]'")
    svc = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def eventgrid_receiver() -> Iterator[EventGridReceiver]:
    receiver = EventGridReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()
