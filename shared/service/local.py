"""``hullwatch serve`` and ``hullwatch rescan``: the backend in one process, on embedded defaults.

Everything lives under one data directory::

    DATA_DIR/store.sqlite    findings, images, alerts, layer cache (SQLite, WAL)
    DATA_DIR/blobs/          inventories and layer states
    DATA_DIR/alerts.jsonl    every published alert, one CloudEvent JSON per line

HTTP endpoints (a stdlib ``http.server`` on 127.0.0.1 by default):

==========================  ==================================================================================
``POST /eventgrid``         ACR events delivered by an Event Grid webhook subscription, in the Event Grid or
                            the CloudEvents schema, one event or a batch. The subscription validation event is
                            answered ``{"validationResponse": CODE}``.
``OPTIONS /eventgrid``      The CloudEvents webhook handshake: ``WebHook-Request-Origin`` is echoed in
                            ``WebHook-Allowed-Origin``.
``POST /pubsub/gar``        A Pub/Sub push of an Artifact Registry / Container Registry notification.
``POST /eventbridge/ecr``   An EventBridge "ECR Image Action" event (e.g. through an API destination).
``GET /healthz``            ``{"status": "ok", "queued": N, "processed": N, "failed": N}``.
==========================  ==================================================================================

An endpoint validates the event, refuses registries that are not configured,
and puts a scan message on an in-process queue; a worker thread runs
:class:`~shared.service.scan.ScanService` on it, like the queue-triggered
worker of the cloud deployments. Answers: 202 with the accepted and skipped
counts; 400 for a malformed event or an unlisted registry (nothing is
enqueued; Event Grid does not retry a 400). Pub/Sub redelivers anything that is
not 2xx, so a refused Pub/Sub push is acknowledged with 200 and the reason in the
body (and in the log). The push's OIDC token is not verified here: bind
``serve`` to loopback (the default) or put it behind something that checks it.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import requests

from shared.errors import InputError
from shared.service import events
from shared.service.alerts import DEFAULT_RULES, AlertRule, LocalAlertPublisher
from shared.service.credentials import Allowlist, BasicCredentials
from shared.service.errors import InvalidEvent, Retryable
from shared.service.messages import BatchOutcome, ScanMessage, ScanOutcome, Skip
from shared.service.scan import ScanService, ServiceConfig
from shared.stores.blobs import LocalBlobStore
from shared.stores.sqlite import SQLiteStore

log = logging.getLogger("hullwatch.serve")

EVENTGRID_PATH = "/eventgrid"
PUBSUB_PATH = "/pubsub/gar"
EVENTBRIDGE_PATH = "/eventbridge/ecr"
HEALTH_PATH = "/healthz"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
MAX_BODY = events.MAX_BODY_BYTES
#: A message that keeps failing with a transient error is given up after this many attempts.
MAX_ATTEMPTS = 3
OUTBOX_INTERVAL = 60.0


class StaticCredentials:
    """Registry credentials from configuration (registry host -> username/password); others: docker config."""

    def __init__(self, creds: Mapping[str, BasicCredentials] | None = None) -> None:
        self._creds = {k.strip().lower(): v for k, v in (creds or {}).items()}

    def credentials(self, registry: str, repository: str) -> BasicCredentials | None:
        return self._creds.get(registry.strip().lower())


@dataclass
class LocalConfig:
    data_dir: Path
    registries: Sequence[str]
    db_path: Path
    insecure_registries: Sequence[str] = ()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    rules: Sequence[AlertRule] = DEFAULT_RULES
    credentials: Mapping[str, BasicCredentials] = field(default_factory=dict)
    platform: str | None = None
    #: Where alerts and one line per processed message are printed (default: standard output).
    stream: IO[str] | None = None
    outbox_interval: float = OUTBOX_INTERVAL
    session_factory: Callable[[], requests.Session] | None = None


class _LocalService(ScanService):
    """Owns its SQLite store: closing the service closes the store."""

    def close(self) -> None:
        super().close()
        if isinstance(self.store, SQLiteStore):
            self.store.close()


def build_service(config: LocalConfig) -> ScanService:
    """A ScanService on the embedded defaults under ``config.data_dir`` (close it when done)."""
    data = Path(config.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(data / "store.sqlite")
    blobs = LocalBlobStore(data / "blobs")
    publisher = LocalAlertPublisher(data / "alerts.jsonl", stream=config.stream)
    return _LocalService(
        store,
        blobs,
        StaticCredentials(config.credentials),
        publisher,
        ServiceConfig(
            registries=list(config.registries),
            db_path=Path(config.db_path),
            insecure_registries=frozenset(config.insecure_registries),
            rules=tuple(config.rules),
            platform=config.platform,
        ),
        session_factory=config.session_factory,
    )


@dataclass
class Processed:
    message: ScanMessage
    outcome: ScanOutcome | Skip | BatchOutcome | None
    error: str | None = None


class Worker:
    """The in-process queue and the thread that drains it through the ScanService."""

    def __init__(self, service: ScanService, stream: IO[str] | None = None, outbox_interval: float = OUTBOX_INTERVAL):
        self.service = service
        self.stream = stream
        self.outbox_interval = outbox_interval
        self.queue: queue.Queue[tuple[ScanMessage, int] | None] = queue.Queue()
        self.processed: list[Processed] = []
        self._thread = threading.Thread(target=self._loop, name="hullwatch-worker", daemon=True)
        self._lock = threading.Lock()
        self._last_outbox = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def submit(self, msg: ScanMessage) -> None:
        self.queue.put((msg, 1))

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every submitted message has been handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return self.queue.unfinished_tasks == 0

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread.is_alive():
            self.queue.put(None)
            self._thread.join(timeout)
        self.service.close()

    @property
    def failed(self) -> list[Processed]:
        with self._lock:
            return [p for p in self.processed if p.error is not None]

    def _say(self, text: str) -> None:
        print(text, file=self.stream if self.stream is not None else sys.stdout, flush=True)

    def _loop(self) -> None:
        while True:
            try:
                item = self.queue.get(timeout=1.0)
            except queue.Empty:
                self._maybe_outbox()
                continue
            try:
                if item is None:
                    return
                msg, attempt = item
                self._one(msg, attempt)
            finally:
                self.queue.task_done()

    def _one(self, msg: ScanMessage, attempt: int) -> None:
        try:
            outcome = self.service.handle(msg)
        except Retryable as exc:
            if attempt < MAX_ATTEMPTS:
                log.warning("%s: %s; retrying (attempt %d)", msg.event_id, exc, attempt + 1)
                time.sleep(min(2.0**attempt, 10.0))
                self.queue.put((msg, attempt + 1))
                return
            self._record(Processed(msg, None, f"gave up after {attempt} attempts: {exc}"))
            return
        except InputError as exc:
            self._record(Processed(msg, None, str(exc)))
            return
        except Exception as exc:
            log.exception("%s: failed", msg.event_id)
            self._record(Processed(msg, None, f"{type(exc).__name__}: {exc}"))
            return
        self._record(Processed(msg, outcome))
        self._maybe_outbox()

    def _record(self, p: Processed) -> None:
        with self._lock:
            self.processed.append(p)
        ref = p.message.reference if p.message.repository else (p.message.digest or "?")
        if p.error is not None:
            self._say(f"FAILED {p.message.action.value} {ref}: {p.error}")
        elif isinstance(p.outcome, Skip):
            self._say(f"skipped {p.message.action.value} {ref}: {p.outcome.reason}")
        elif isinstance(p.outcome, BatchOutcome):
            self._say(f"{p.message.action.value} {p.message.event_id}: {p.outcome.summary()}")
        elif p.outcome is not None:
            o = p.outcome
            how = "scanned" if o.scanned else "re-matched"
            self._say(
                f"{p.message.action.value} {ref}: {how} {o.digest}, {o.findings_open} open findings "
                f"({o.findings_new} new, {o.findings_resolved} resolved), {o.alerts_created} alerts"
            )

    def _maybe_outbox(self) -> None:
        if time.monotonic() - self._last_outbox < self.outbox_interval:
            return
        self._last_outbox = time.monotonic()
        try:
            report = self.service.publish_pending()
        except Exception:
            log.exception("outbox run failed")
            return
        if report.published or report.failed:
            self._say(f"outbox: {report.published} alerts published, {report.failed} still failing")


class _AppServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], worker: Worker, allowlist: Allowlist) -> None:
        super().__init__(address, _Handler)
        self.worker = worker
        self.allowlist = allowlist

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("request from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _AppServer
    protocol_version = "HTTP/1.1"
    server_version = "hullwatch"

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, doc: object | None = None, headers: Mapping[str, str] | None = None) -> None:
        body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if doc is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(411, {"error": "a Content-Length is required"})
            return None
        n = int(length)
        if n > MAX_BODY:
            self._send(413, {"error": f"body over {MAX_BODY} bytes"})
            self.close_connection = True
            return None
        return self.rfile.read(n)

    def do_GET(self) -> None:
        if self._path() != HEALTH_PATH:
            self._send(404, {"error": "not found"})
            return
        w = self.server.worker
        doc = {"status": "ok", "queued": w.queue.unfinished_tasks, "processed": len(w.processed)}
        doc["failed"] = len(w.failed)
        self._send(200, doc)

    def do_OPTIONS(self) -> None:
        origin = events.cloudevents_validation_origin(dict(self.headers.items()))
        if self._path() != EVENTGRID_PATH or origin is None:
            self._send(404 if self._path() != EVENTGRID_PATH else 400, {"error": "not a webhook validation request"})
            return
        self._send(200, None, {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST"})

    def do_POST(self) -> None:
        path = self._path()
        if path not in (EVENTGRID_PATH, PUBSUB_PATH, EVENTBRIDGE_PATH):
            self._send(404, {"error": "not found"})
            return
        body = self._body()
        if body is None:
            return
        try:
            if path == EVENTGRID_PATH:
                delivery = events.parse_event_grid(body)
                if delivery.validation_code is not None:
                    log.info("Event Grid subscription validation answered")
                    self._send(200, {"validationResponse": delivery.validation_code})
                    return
                items = delivery.items
            elif path == PUBSUB_PATH:
                items = [events.parse_gar_push(body)]
            else:
                items = [events.parse_ecr_event(body)]
            messages = [m for m in items if isinstance(m, ScanMessage)]
            for m in messages:
                self.server.allowlist.check(m.registry, m.event_id)
        except InvalidEvent as exc:
            log.warning("refused %s: %s", path, exc)
            status = 200 if path == PUBSUB_PATH else 400
            self._send(status, {"error": str(exc), "acknowledged": path == PUBSUB_PATH})
            return
        for m in messages:
            self.server.worker.submit(m)
        skipped = [s.reason for s in items if isinstance(s, Skip)]
        for reason in skipped:
            log.info("skipped: %s", reason)
        self._send(202, {"accepted": len(messages), "skipped": skipped})


def make_app(config: LocalConfig) -> tuple[ThreadingHTTPServer, Worker]:
    """The HTTP server (bound, not yet serving) and the worker (not yet started) of ``hullwatch serve``.

    Run them with ``worker.start()`` and ``server.serve_forever()`` (in a thread if
    you need to stop it: ``server.shutdown()``, then ``worker.stop()``).
    """
    service = build_service(config)
    worker = Worker(service, config.stream, config.outbox_interval)
    try:
        server = _AppServer((config.host, config.port), worker, Allowlist(config.registries))
    except OSError:
        service.close()
        raise
    return server, worker


def serve(
    host: str,
    port: int,
    data_dir: Path,
    registries: Sequence[str],
    db_path: Path,
    insecure_registries: Sequence[str] = (),
    *,
    credentials: Mapping[str, BasicCredentials] | None = None,
    rules: Sequence[AlertRule] = DEFAULT_RULES,
    stream: IO[str] | None = None,
) -> None:
    """Run ``hullwatch serve`` until interrupted (Ctrl-C): the CLI command calls exactly this.

    ``registries`` are the hosts events may name (``myreg.azurecr.io``, ``127.0.0.1:5000``);
    ``insecure_registries`` those of them reached over plain HTTP (loopback or host:port
    only); ``db_path`` the vulnerability database (``hullwatch db update`` makes it). Prints
    the listening address, one line per processed event and each alert to ``stream``
    (standard output by default).
    """
    config = LocalConfig(
        data_dir=Path(data_dir),
        registries=list(registries),
        db_path=Path(db_path),
        insecure_registries=list(insecure_registries),
        host=host,
        port=port,
        rules=rules,
        credentials=dict(credentials or {}),
        stream=stream,
    )
    server, worker = make_app(config)
    out = stream if stream is not None else sys.stdout
    bound_host, bound_port = server.server_address[:2]
    print(
        f"hullwatch serve: listening on http://{bound_host!s}:{bound_port} "
        f"({EVENTGRID_PATH}, {PUBSUB_PATH}, {EVENTBRIDGE_PATH}); data in {config.data_dir}",
        file=out,
        flush=True,
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop is a clean shutdown too
    worker.start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        worker.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@dataclass
class RescanSummary:
    messages: int = 0
    rescanned: int = 0
    skipped: int = 0
    failed: int = 0
    new_findings: int = 0
    resolved_findings: int = 0
    alerts: int = 0
    outbox_published: int = 0
    errors: list[str] = field(default_factory=list)


def rescan(
    data_dir: Path,
    db_path: Path,
    *,
    delta: bool = False,
    since_days: int = 30,
    registries: Sequence[str] = (),
    stream: IO[str] | None = None,
) -> RescanSummary:
    """Run ``hullwatch rescan`` on the embedded store under ``data_dir``: the CLI command calls exactly this.

    Default: the daily rescan (images pushed, pulled or scanned in the last
    ``since_days`` days, plus running ones). ``delta=True``: only the images whose
    packages are named by advisories added or changed since the last delta run
    (run it after ``hullwatch db update``). Stored inventories are re-matched
    against ``db_path``; no registry is contacted. Then the alert outbox is
    flushed. Prints each alert and a summary line to ``stream``.
    """
    config = LocalConfig(data_dir=Path(data_dir), registries=list(registries), db_path=Path(db_path), stream=stream)
    service = build_service(config)
    summary = RescanSummary()
    try:
        batches = service.delta_rescan() if delta else service.daily_rescan(since_days=since_days)
        for batch in batches:
            for msg in batch:
                summary.messages += 1
                try:
                    outcome = service.handle(msg)
                except (InputError, Retryable) as exc:
                    summary.failed += 1
                    summary.errors.append(f"{msg.digest}: {exc}")
                    continue
                results = outcome.results if isinstance(outcome, BatchOutcome) else [outcome]
                if isinstance(outcome, BatchOutcome):
                    summary.failed += len(outcome.failures)
                    summary.errors.extend(f"{f.digest}: {f.reason}" for f in outcome.failures)
                for one in results:
                    if isinstance(one, Skip):
                        summary.skipped += 1
                        continue
                    summary.rescanned += 1
                    summary.new_findings += one.findings_new
                    summary.resolved_findings += one.findings_resolved
                    summary.alerts += one.alerts_created
        summary.outbox_published = service.publish_pending().published
    finally:
        service.close()
    out = stream if stream is not None else sys.stdout
    kind = "delta" if delta else f"daily ({since_days} days)"
    print(
        f"rescan {kind}: {summary.rescanned} images re-matched, {summary.new_findings} new and "
        f"{summary.resolved_findings} resolved findings, {summary.alerts} alerts"
        + (f", {summary.failed} failed" if summary.failed else ""),
        file=out,
        flush=True,
    )
    return summary
