"""Images pulled from a registry over the OCI distribution API.

``REGISTRY/REPO[:TAG|@DIGEST]``: the manifest (or index, then the platform's
manifest) and the config are fetched, size-capped and digest-checked; layer
blobs are streamed straight into the layer walker, never held whole nor
written to disk. One ``requests`` session per source.

Transport rules:

* **HTTPS by default, TLS always verified.** A private CA is trusted by pointing
  ``REQUESTS_CA_BUNDLE`` at its certificate; there is no "skip verification".
* **Plain HTTP only with ``insecure=True``, and only for** loopback registries
  (``localhost``, ``127.0.0.0/8``, ``[::1]``, any port) **or a registry the user
  named with an explicit port** (``host:5000/repo``), which is how a private
  plain-HTTP registry is addressed. A registry named by host alone
  (``docker.io``, ``ghcr.io``, ``registry.example.com``) is never downgraded:
  ``insecure=True`` is refused for it with an error.
* **Redirects** (registries answer blob requests with 307 to storage) are
  followed here, at most :data:`MAX_REDIRECTS` hops; ``Authorization`` is only
  ever sent to the registry's own scheme/host/port, and an HTTPS registry may
  not redirect to plain HTTP.
* **Retries**: 429, 5xx, connection resets and timeouts are retried up to
  ``max_retries`` times with exponential backoff, honouring ``Retry-After``
  (seconds or an HTTP date, capped at :data:`MAX_RETRY_AFTER`). Connection
  refused, unknown hosts and TLS failures are not retried. Every request has a
  timeout.
* **Foreign layers** (descriptors with ``urls``) are never fetched from those
  URLs: they are fetched by digest from the registry, and skipped with a
  ``foreign-layer-skipped`` warning when it does not have them.

Every failure is an :class:`ImageError` whose subject is the reference as the
user wrote it, with a one-line detail.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import NoReturn
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.auth import AuthBase

from shared import __version__
from shared.domain.models import ImageInfo, ScanWarning
from shared.scanning import mediatypes as mt
from shared.scanning.errors import ImageError, LimitExceeded
from shared.scanning.layers import Entry
from shared.scanning.manifest import (
    Descriptor,
    ImageManifest,
    Index,
    Platform,
    image_platforms,
    parse_config,
    parse_manifest,
    select_platform,
    sha256_digest,
    verify_bytes,
)
from shared.scanning.reference import RegistryRef
from shared.scanning.sources import dockerconfig
from shared.scanning.sources.base import ImageHandle, ImageSource, LayerRef, ScanOptions, blob_entries
from shared.scanning.sources.registry_auth import (
    MAX_TOKEN_RESPONSE_BYTES,
    Authenticator,
    Credentials,
    one_line,
    pull_scope,
)
from shared.scanning.streams import CHUNK, ByteBudget, parse_digest

MAX_REDIRECTS = 5
DEFAULT_MAX_RETRIES = 4
#: Longest wait we accept from a ``Retry-After`` header, and the backoff ceiling.
MAX_RETRY_AFTER = 60.0
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
#: (connect, read) seconds for every request.
DEFAULT_TIMEOUT = (15.0, 60.0)
MAX_ERROR_BODY_BYTES = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDEMPOTENT = frozenset({"GET", "HEAD"})


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1`` (a bare host, without port)."""
    h = host.strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def split_host_port(registry: str) -> tuple[str, int | None]:
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = registry.partition(":")
    return host, int(port) if port.isdigit() else None


def plain_http_allowed(registry: str) -> bool:
    """May ``insecure=True`` use plain HTTP for this registry? See the module docstring."""
    host, port = split_host_port(registry)
    return is_loopback(host) or port is not None


class _NoAuth(AuthBase):
    """Stops requests from adding ~/.netrc credentials: we decide what each host is sent."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        reason = getattr(e, "reason", None)
        nested = [reason, e.__cause__, e.__context__, *e.args]
        todo.extend(x for x in nested if isinstance(x, BaseException))


def _describe_connection_error(exc: BaseException) -> tuple[str, bool]:
    """(short reason, retryable) for a failed request."""
    chain = list(_causes(exc))
    if any(isinstance(e, requests.exceptions.SSLError | urllib3.exceptions.SSLError) for e in chain):
        inner = [e for e in chain if type(e).__module__ == "ssl"]
        text = str(inner[-1]) if inner else str(exc)
        return "TLS: " + one_line(text, 160), False
    if any(isinstance(e, urllib3.exceptions.NameResolutionError) for e in chain) or any(
        type(e).__name__ == "gaierror" for e in chain
    ):
        return "host name not found", False
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused", False
    if any(isinstance(e, requests.exceptions.Timeout | TimeoutError | urllib3.exceptions.TimeoutError) for e in chain):
        return "timed out", True
    if any(isinstance(e, ConnectionResetError | ConnectionAbortedError) for e in chain):
        return "connection reset", True
    if any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        inner = [e for e in chain if isinstance(e, OSError) and not isinstance(e, urllib3.exceptions.HTTPError)]
        return one_line(str(inner[-1]) if inner else "cannot connect", 160), False
    if any(isinstance(e, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema) for e in chain):
        return "invalid URL", False
    return "connection failed (" + one_line(type(chain[-1]).__name__, 60) + ")", True


def retry_after_seconds(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """A ``Retry-After`` header (delta-seconds or HTTP-date) in seconds, capped; None if absent/invalid."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return min(float(v), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or (lambda: datetime.now(UTC)))()).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def backoff_seconds(attempt: int) -> float:
    return float(min(BACKOFF_BASE * (2**attempt), BACKOFF_MAX))


class _Transport:
    """HTTP with timeouts, bounded retries and hand-followed redirects, errors made one line."""

    def __init__(
        self,
        session: requests.Session,
        subject: str,
        *,
        timeout: tuple[float, float],
        max_retries: int,
        sleep: Callable[[float], None],
    ) -> None:
        self.session = session
        self.subject = subject
        self.timeout = timeout
        self.max_retries = max_retries
        self.sleep = sleep

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        form: Mapping[str, str] | None = None,
        what: str,
        retry_non_idempotent: bool = False,
    ) -> tuple[requests.Response, int]:
        """The final (non-redirect) response, streaming, and the number of attempts made.

        Retries 429/5xx answers while attempts remain; the caller sees the last one.
        """
        retryable_method = method in _IDEMPOTENT or retry_non_idempotent
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._follow(method, url, headers, form, what)
            except requests.RequestException as exc:
                reason, retryable = _describe_connection_error(exc)
                if retryable and retryable_method and attempt <= self.max_retries:
                    self.sleep(backoff_seconds(attempt - 1))
                    continue
                host = urlsplit(getattr(exc.request, "url", None) or url).netloc or url
                if reason.startswith("TLS: "):
                    hint = ""
                    if "WRONG_VERSION_NUMBER" in reason or "wrong version number" in reason:
                        hint = " (is it a plain-HTTP registry? only then pass --insecure-registry)"
                    elif "CERTIFICATE_VERIFY_FAILED" in reason:
                        hint = " (a private CA? point REQUESTS_CA_BUNDLE at its certificate)"
                    raise ImageError(self.subject, f"TLS error talking to {host}: {reason[5:]}{hint}") from None
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise ImageError(self.subject, f"cannot reach {host}: {reason}{tries}") from None
            status = resp.status_code
            if (status == 429 or status >= 500) and retryable_method and attempt <= self.max_retries:
                delay = retry_after_seconds(resp.headers.get("Retry-After"))
                resp.close()
                self.sleep(backoff_seconds(attempt - 1) if delay is None else delay)
                continue
            return resp, attempt

    def _follow(
        self, method: str, url: str, headers: Mapping[str, str], form: Mapping[str, str] | None, what: str
    ) -> requests.Response:
        origin = urlsplit(url)
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(current)
            hop_headers = dict(headers)
            if (parts.scheme, parts.netloc.lower()) != (origin.scheme, origin.netloc.lower()):
                hop_headers = {k: v for k, v in hop_headers.items() if k.lower() != "authorization"}
            resp = self.session.request(
                method,
                current,
                headers=hop_headers,
                data=form,
                stream=True,
                timeout=self.timeout,
                allow_redirects=False,
                auth=_NoAuth(),
            )
            location = resp.headers.get("Location")
            if resp.status_code not in _REDIRECTS or not location:
                return resp
            resp.close()
            nxt = urljoin(current, location)
            nparts = urlsplit(nxt)
            if nparts.scheme not in ("http", "https") or not nparts.netloc:
                raise ImageError(self.subject, f"{what}: redirected to an unusable URL {one_line(nxt, 120)!r}")
            if nparts.scheme == "http" and parts.scheme == "https":
                raise ImageError(
                    self.subject, f"{what}: refusing a redirect from HTTPS to plain HTTP ({nparts.netloc})"
                )
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                method, form = "GET", None
            current = nxt
        raise ImageError(self.subject, f"{what}: more than {MAX_REDIRECTS} redirects")


def _read_body(resp: requests.Response, limit: int, subject: str, what: str, strict: bool) -> bytes:
    """Read a small response body; over ``limit``: LimitExceeded if strict, else truncated."""
    length = resp.headers.get("Content-Length", "")
    if strict and length.isdigit() and int(length) > limit:
        resp.close()
        raise LimitExceeded(subject, f"{what} is {int(length)} bytes, over the {limit}-byte limit")
    buf = bytearray()
    try:
        while True:
            chunk = resp.raw.read(min(CHUNK, limit + 1 - len(buf)), decode_content=True)
            if not chunk:
                break
            buf += chunk
            if len(buf) > limit:
                if strict:
                    raise LimitExceeded(subject, f"{what} is more than {limit} bytes, over the {limit}-byte limit")
                break
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason, _ = _describe_connection_error(exc)
        raise ImageError(subject, f"{what}: connection lost while reading ({reason})") from None
    finally:
        resp.close()
    return bytes(buf[:limit]) if not strict else bytes(buf)


def _error_codes(body: bytes) -> tuple[list[str], str]:
    """Distribution error codes and messages from an error body."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return [], ""
    codes: list[str] = []
    msgs: list[str] = []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list):
        for e in errors:
            if isinstance(e, dict):
                if isinstance(e.get("code"), str):
                    codes.append(e["code"])
                if isinstance(e.get("message"), str):
                    msgs.append(e["message"])
    return codes, one_line("; ".join(msgs))


class _Body:
    """A streaming response body as a Readable; network failures become ImageError."""

    def __init__(self, resp: requests.Response, subject: str, where: str) -> None:
        self._resp = resp
        self._subject = subject
        self._where = where

    def read(self, n: int = -1, /) -> bytes:
        try:
            data: bytes = self._resp.raw.read(n if n >= 0 else None, decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError, requests.RequestException) as exc:
            reason, _ = _describe_connection_error(exc)
            host = urlsplit(self._resp.url).netloc
            raise ImageError(self._subject, f"{self._where}: connection to {host} lost ({reason})") from None
        return data


class RegistrySource(ImageSource):
    """An image in a registry. See the module docstring for the transport rules."""

    def __init__(
        self,
        ref: RegistryRef,
        *,
        username: str | None = None,
        password: str | None = None,
        insecure: bool = False,
        docker_config: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        self.ref = ref
        self.subject = ref.original
        if password is not None and not username:
            raise ImageError(self.subject, "a registry password was given without a username")
        if username and password is None:
            raise ImageError(self.subject, "a registry username was given without a password")
        if insecure and not plain_http_allowed(ref.registry):
            raise ImageError(
                self.subject,
                f"plain HTTP is only allowed for localhost or a registry named with an explicit port, "
                f"not {ref.registry}",
            )
        self._explicit = Credentials(username, password) if username else None
        self._docker_config = docker_config
        scheme = "http" if insecure else "https"
        self.base_url = f"{scheme}://{ref.registry}"
        self.scope = pull_scope(ref.repository)
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"hullwatch/{__version__}"
        self._transport = _Transport(self.session, self.subject, timeout=timeout, max_retries=max_retries, sleep=sleep)
        self.auth = Authenticator(
            registry=ref.registry,
            subject=self.subject,
            credentials=self._credentials,
            fetch=self._fetch_token,
            allow_http_realm=insecure,
        )
        self._open_handles = 0

    # -- credentials and auth ------------------------------------------------

    def _credentials(self) -> Credentials | None:
        if self._explicit is not None:
            return self._explicit
        try:
            return dockerconfig.credentials_for(self.ref.registry, self._docker_config)
        except dockerconfig.DockerConfigError as exc:
            raise ImageError(self.subject, f"{exc.subject}: {exc.detail}") from None

    def _fetch_token(
        self, method: str, url: str, headers: Mapping[str, str], form: Mapping[str, str] | None
    ) -> tuple[int, bytes]:
        what = f"token request to {urlsplit(url).netloc}"
        resp, _ = self._transport.send(method, url, headers, form=form, what=what, retry_non_idempotent=True)
        return resp.status_code, _read_body(resp, MAX_TOKEN_RESPONSE_BYTES, self.subject, what, strict=True)

    def request(self, method: str, path: str, *, accept: str | None = None, what: str) -> requests.Response:
        """A registry request with auth (challenge, retry once), retries and redirects.

        Returns a streaming response with any status except 401 (and 429/5xx
        once retries are used up); the caller reads or closes it.
        """
        url = self.base_url + path
        challenged = False
        while True:
            headers = {"Accept": accept} if accept else {"Accept-Encoding": "identity"}
            auth = self.auth.header(self.scope)
            if auth:
                headers["Authorization"] = auth
            resp, attempts = self._transport.send(method, url, headers, what=what)
            from_registry = urlsplit(resp.url or url).netloc.lower() == urlsplit(url).netloc.lower()
            if resp.status_code == 401 and from_registry:
                www = resp.headers.get("WWW-Authenticate")
                resp.close()
                if not challenged and self.auth.challenge(www, self.scope):
                    challenged = True
                    continue
                raise self.auth.failure(www, self.ref.repository)
            if resp.status_code in (429,) or resp.status_code >= 500:
                resp.close()
                if resp.status_code == 429:
                    raise ImageError(
                        self.subject, f"{self.ref.registry} is rate-limiting us (HTTP 429 after {attempts} attempts)"
                    )
                raise ImageError(
                    self.subject,
                    f"{urlsplit(resp.url or url).netloc} answered HTTP {resp.status_code} for {what} "
                    f"(after {attempts} attempts)",
                )
            return resp

    def fail(self, resp: requests.Response, what: str, not_found: str) -> NoReturn:
        """Raise the one-line error for a non-2xx answer."""
        body = _read_body(resp, MAX_ERROR_BODY_BYTES, self.subject, what, strict=False)
        codes, message = _error_codes(body)
        status = resp.status_code
        host = urlsplit(resp.url).netloc or self.ref.registry
        if "NAME_UNKNOWN" in codes:
            raise ImageError(self.subject, f"repository {self.ref.repository} not found on {self.ref.registry}")
        if status == 404 or "MANIFEST_UNKNOWN" in codes or "BLOB_UNKNOWN" in codes:
            raise ImageError(self.subject, not_found)
        if status == 403 or "DENIED" in codes:
            creds = self.auth.credentials if self.auth.scheme else self._explicit
            who = f" for the given credentials ({creds.origin})" if creds is not None else ""
            raise ImageError(
                self.subject,
                f"{host} denied access to {self.ref.repository}{who}" + (f": {message}" if message else ""),
            )
        raise ImageError(
            self.subject, f"{host} answered HTTP {status} for {what}" + (f": {message}" if message else "")
        )

    # -- manifests and config ------------------------------------------------

    def _get_manifest(self, reference: str, expect: Descriptor | None) -> tuple[ImageManifest | Index, str, bytes]:
        """(parsed manifest, its digest, its bytes). ``expect`` is the index entry, if any."""
        is_digest = ":" in reference
        what = f"manifest {reference}"
        if is_digest:
            not_found = f"manifest {reference} not found in {self.ref.repository}"
        else:
            not_found = f"tag {reference!r} not found in {self.ref.repository}"
        resp = self.request(
            "GET", f"/v2/{self.ref.repository}/manifests/{reference}", accept=mt.MANIFEST_ACCEPT, what=what
        )
        if resp.status_code != 200:
            self.fail(resp, what, not_found)
        content_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        header_digest = resp.headers.get("Docker-Content-Digest", "").strip()
        data = _read_body(resp, mt.MAX_MANIFEST_BYTES, self.subject, "manifest", strict=True)
        if is_digest:
            verify_bytes(data, reference, self.subject)
            digest = reference
        elif header_digest:
            verify_bytes(data, header_digest, self.subject)
            digest = header_digest
        else:
            digest = sha256_digest(data)
        known = mt.MANIFESTS | {mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED}
        media_type = content_type if content_type in known else None
        if expect is not None and expect.media_type:
            media_type = expect.media_type
        parsed = parse_manifest(data, media_type, self.subject)
        return parsed, digest, data

    def _get_config(self, desc: Descriptor) -> bytes:
        what = f"image config {desc.digest}"
        if desc.size > mt.MAX_CONFIG_BYTES:
            raise LimitExceeded(
                self.subject, f"image config is {desc.size} bytes, over the {mt.MAX_CONFIG_BYTES}-byte limit"
            )
        resp = self.request("GET", f"/v2/{self.ref.repository}/blobs/{desc.digest}", what=what)
        if resp.status_code != 200:
            self.fail(resp, what, f"image config {desc.digest} not found in {self.ref.repository}")
        data = _read_body(resp, mt.MAX_CONFIG_BYTES, self.subject, "image config", strict=True)
        verify_bytes(data, desc.digest, f"{self.subject}: image config")
        return data

    def _blob_missing(self, digest: str) -> bool:
        """HEAD a blob: True when the registry says it does not have it."""
        resp = self.request("HEAD", f"/v2/{self.ref.repository}/blobs/{digest}", what=f"blob {digest}")
        resp.close()
        return resp.status_code == 404

    # -- resolve -------------------------------------------------------------

    def resolve(self, options: ScanOptions) -> list[ImageHandle]:
        try:
            return self._resolve(options)
        except BaseException:
            self.session.close()
            raise

    def _resolve(self, options: ScanOptions) -> list[ImageHandle]:
        if self.ref.digest:
            parse_digest(self.ref.digest, self.subject)
        top, top_digest, _ = self._get_manifest(self.ref.reference, None)
        chosen: list[tuple[ImageManifest, str, Descriptor | None]] = []
        index_digest: str | None = None
        if isinstance(top, Index):
            index_digest = top_digest
            if options.all_platforms:
                entries = image_platforms(top)
                if not entries:
                    raise ImageError(self.subject, "the index lists no image manifests")
            else:
                entries = [select_platform(top, options.platform, self.subject)]
            for entry in entries:
                child, child_digest, _ = self._get_manifest(entry.digest, entry)
                if not isinstance(child, ImageManifest):
                    raise ImageError(self.subject, f"index entry {entry.digest} is itself an index (not supported)")
                chosen.append((child, child_digest, entry))
        else:
            chosen.append((top, top_digest, None))
        handles: list[ImageHandle] = []
        for manifest, digest, desc in chosen:
            handles.append(self._handle(manifest, digest, desc, index_digest, options))
        self._open_handles = len(handles)
        return handles

    def _handle(
        self,
        manifest: ImageManifest,
        digest: str,
        entry: Descriptor | None,
        index_digest: str | None,
        options: ScanOptions,
    ) -> RegistryImageHandle:
        config = parse_config(self._get_config(manifest.config), f"{self.subject}: image config")
        if len(config.diff_ids) != len(manifest.layers):
            raise ImageError(
                self.subject,
                f"image config lists {len(config.diff_ids)} layers (diff_ids) but the manifest has "
                f"{len(manifest.layers)}",
            )
        platform: Platform | None = None
        if config.os and config.architecture:
            platform = Platform(config.os, config.architecture, config.variant)
        elif entry is not None and entry.platform is not None:
            platform = entry.platform
        warnings: list[ScanWarning] = []
        if entry is None and options.platform is not None and platform is not None:
            want = options.platform
            if (want.os, want.architecture) != (platform.os, platform.architecture) or (
                want.variant is not None and want.variant != platform.variant
            ):
                warnings.append(
                    ScanWarning(
                        code="platform-mismatch",
                        message=f"asked for platform {want} but the image is a single-platform {platform} image",
                    )
                )
        layers: list[LayerRef] = []
        skipped: set[int] = set()
        for i, d in enumerate(manifest.layers):
            lay = LayerRef(
                index=i,
                digest=d.digest,
                diff_id=config.diff_ids[i],
                media_type=d.media_type,
                size=d.size,
                urls=d.urls,
                created_by=config.layer_history[i],
            )
            layers.append(lay)
            if d.urls and self._blob_missing(d.digest):
                skipped.add(i)
                warnings.append(_foreign_warning(lay))
        info = ImageInfo(
            reference=self.ref.original,
            source="registry",
            registry=self.ref.registry,
            repository=self.ref.repository,
            tag=self.ref.tag,
            digest=digest,
            index_digest=index_digest,
            manifest_media_type=manifest.media_type,
            config_digest=manifest.config.digest,
            platform=str(platform) if platform else None,
        )
        return RegistryImageHandle(info, layers, warnings, source=self, skipped=skipped)

    def release(self) -> None:
        """Called by each handle's close(); the session closes with the last one."""
        self._open_handles -= 1
        if self._open_handles <= 0:
            self.session.close()


def _foreign_warning(lay: LayerRef) -> ScanWarning:
    return ScanWarning(
        code="foreign-layer-skipped",
        message=(
            f"{lay.label} is a foreign (non-distributable) layer the registry does not serve; "
            f"it was not scanned (it is never downloaded from its own URLs)"
        ),
        layer_diff_id=lay.diff_id,
    )


class RegistryImageHandle(ImageHandle):
    def __init__(
        self,
        info: ImageInfo,
        layers: list[LayerRef],
        warnings: list[ScanWarning],
        *,
        source: RegistrySource,
        skipped: set[int] | None = None,
    ) -> None:
        super().__init__(info, layers, warnings)
        self._source = source
        self._skipped = set(skipped or ())
        self._closed = False

    def layer_entries(self, layer: LayerRef, budget: ByteBudget) -> Iterator[Entry]:
        if layer.index in self._skipped or not layer.digest:
            return
        src = self._source
        what = f"{layer.label} blob"
        resp = src.request("GET", f"/v2/{src.ref.repository}/blobs/{layer.digest}", what=what)
        try:
            if resp.status_code == 404 and layer.urls:
                resp.close()
                self._skipped.add(layer.index)
                self.warnings.append(_foreign_warning(layer))
                return
            if resp.status_code != 200:
                src.fail(resp, what, f"{layer.label}: blob {layer.digest} not found in {src.ref.repository}")
            yield from blob_entries(_Body(resp, src.subject, layer.label), layer, src.subject, budget)
        finally:
            resp.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._source.release()
