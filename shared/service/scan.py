"""The scan worker: one queue message in, inventory and findings persisted, alerts out.

:meth:`ScanService.handle` is what every platform's worker calls (Azure queue
trigger, Lambda SQS handler, ``hullwatch serve``'s in-process queue):

- **PUSH**: the registry must be in the allowlist (else
  :class:`~shared.service.errors.RegistryNotAllowed`, before any request);
  credentials come from the :class:`~shared.service.credentials.CredentialProvider`.
  *Scan once per digest*: when the event names a digest whose inventory is
  stored, nothing is requested from the registry at all; otherwise the
  manifest (and config) are resolved, and if that digest is known the stored
  inventory is reused (no layer is downloaded). Only a new digest is pulled and
  inventoried; its inventory (the ScanResult JSON) goes to the blob store,
  referenced from the image record (never inline: Cosmos items are capped at 2 MB).
- **DELETE**: the repository's references are removed from the image; when none
  remain the image is marked deleted and all its findings are resolved.
- **RESCAN**: the stored inventory is re-matched; no registry request.
- **RESCAN_BATCH** (``rescan-batch``, what the daily and database-delta rescans
  enqueue): each named image is re-matched in turn. An image that fails for a
  reason of its own (a corrupt inventory, say) is reported in the
  :class:`~shared.service.messages.BatchOutcome` and the rest go on; the
  platform's worker records it. A failure that is not the image's (the store
  throttling past its retries, the image changing under us too often, the
  vulnerability database unusable) stops the batch and is raised, so the whole
  message is retried: rescans are idempotent, and the images already done cost
  a read or two each the second time.

After every match: the findings lifecycle (:mod:`shared.service.lifecycle`) is
applied to the stored findings and the changes written in one batch; the image
summary (severity counts, matched_at, the vulnerability data version) is
written with an ETag condition; alert rules run on the transitions; alerts are
stored (create-if-absent, the image's alerts in one batched call) *before* the
findings, so a worker that dies in between leaves them for the outbox rather
than losing them; then they are published and their outcomes recorded in one
more batched call. A push also refreshes the inverted index
(``index_packages``) the database-delta rescans use; a RESCAN re-matches the
same inventory, so its index entries are unchanged and are not rewritten (that
keeps an unchanged image's rescan at three store requests: read the image,
read its findings, write the image).

**Analyse once per layer.** An image whose layer stack (diff_ids in order)
was analysed before by the same analyzers has, by construction, the same final
filesystem, so its inventory is rebuilt from the cache and *no layer is
downloaded* (an image rebuilt with only a new label or environment variable,
or pushed as a Docker and as an OCI manifest). A shared *prefix* of layers (a
common base image under new application layers) is reused too: after each
layer the layer engine's state is stored under the chain key of the layers so
far, keyed by the analyzer name/version set as well (:class:`BlobLayerStates`:
the entry in the store, the compressed state in blobs), and the next image
sharing those lower layers restores it and downloads and analyses only its own layers.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic_core
import requests

from shared.domain.findings import Finding
from shared.domain.models import LayerInfo, ScanResult
from shared.errors import InputError
from shared.scanning import reference
from shared.scanning.analyzers.all import enabled_analyzers
from shared.scanning.errors import ImageError
from shared.scanning.manifest import Platform
from shared.scanning.scanner import scan_handle
from shared.scanning.sources.base import ImageHandle, ScanOptions
from shared.scanning.sources.registry import RegistrySource
from shared.service import alerts as alerting
from shared.service import lifecycle, rescan
from shared.service.alerts import DEFAULT_RULES, AlertPublisher, AlertRule, PublishReport
from shared.service.credentials import Allowlist, CredentialProvider
from shared.service.errors import Retryable
from shared.service.messages import Action, BatchOutcome, ImageFailure, ScanMessage, ScanOutcome, Skip
from shared.stores import fingerprints as fp
from shared.stores.errors import PreconditionFailed, StoreUnavailable
from shared.stores.models import AlertRecord, ImageRecord, LayerCacheEntry
from shared.stores.ports import BlobStore, Store
from shared.vulndb import db
from shared.vulndb.errors import VulnDBError
from shared.vulndb.matcher import Matcher

log = logging.getLogger("hullwatch.service")

#: Blob key of the database-delta watermark (the newest advisory ``modified`` already rescanned for).
WATERMARK_KEY = "state/vulndb-watermark.json"
#: Attempts at a read-modify-write of one image before giving the message back to the platform.
MAX_ATTEMPTS = 4
#: Handle warnings that describe the pull rather than the layers (not part of a cached inventory).
_HANDLE_WARNINGS = frozenset({"platform-mismatch", "foreign-layer-skipped"})
#: Registry failures worth a platform retry (the rest are the event's fault: acknowledged, not retried).
_TRANSIENT = ("answered HTTP 5", "rate-limiting", "cannot reach", "timed out", "connection reset", "connection to")
#: Failures in a rescan batch that are not the image's fault: they stop the batch and are raised.
_BATCH_STOPPERS: tuple[type[BaseException], ...] = (Retryable, StoreUnavailable)


@dataclass(frozen=True)
class ServiceConfig:
    """What a deployment configures. Only ``registries`` are ever contacted."""

    registries: Sequence[str]
    db_path: Path
    insecure_registries: frozenset[str] = frozenset()  # plain HTTP (loopback or host:port only)
    rules: Sequence[AlertRule] = DEFAULT_RULES
    platform: str | None = None  # os/arch[/variant] picked from an index; default linux/amd64
    include_dev: bool = False
    last_seen_refresh: timedelta = lifecycle.DEFAULT_LAST_SEEN_REFRESH
    layer_cache: bool = True
    max_image_bytes: int = field(default_factory=lambda: ScanOptions().max_image_bytes)


@dataclass
class _Match:
    findings: list[Finding]
    keys: set[tuple[str, str]]
    db_version: str


class _VulnDB:
    """The vulnerability database, opened once and kept warm; reopened when the file is replaced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sig: tuple[int, int, int] | None = None
        self._matcher: Matcher | None = None
        self.version = ""
        self.newest_modified: str | None = None

    def matcher(self) -> Matcher:
        try:
            st = self.path.stat()
            sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            sig = None
        if self._matcher is None or sig != self._sig:
            conn = db.open_readonly(self.path)  # raises VulnDBError naming the file
            if self._matcher is not None:
                self._matcher.conn.close()
            newest, count = conn.execute("SELECT max(modified), count(*) FROM advisories").fetchone()
            self._matcher = Matcher(conn)
            self._sig = sig
            self.newest_modified = newest
            self.version = f"{newest or 'empty'}/{count}"
        return self._matcher

    def close(self) -> None:
        if self._matcher is not None:
            self._matcher.conn.close()
            self._matcher = None


def _reference_of(msg: ScanMessage, digest: str | None) -> str:
    base = f"{msg.registry}/{msg.repository}"
    if msg.tag:
        return f"{base}:{msg.tag}"
    return f"{base}@{digest or msg.digest}"


def _repo_of(ref_text: str) -> str:
    """registry/repository of a stored reference."""
    name = ref_text.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    if sep and "/" not in tail:
        return head
    return name


def _os_text(result: ScanResult) -> str | None:
    if result.os is None:
        return None
    return f"{result.os.family} {result.os.version_id}".strip()


def _retryable(exc: ImageError) -> bool:
    return any(t in exc.detail for t in _TRANSIENT)


class ScanService:
    """The worker's logic, independent of any platform.

    One instance may serve several threads (a Functions host runs synchronous
    functions in a thread pool): matching, which shares the warm database
    connection, is serialised; the store and blob adapters are thread-safe.
    """

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        credentials: CredentialProvider,
        publisher: AlertPublisher,
        config: ServiceConfig,
        *,
        now: Callable[[], datetime] | None = None,
        session_factory: Callable[[], requests.Session] | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.credentials = credentials
        self.publisher = publisher
        self.config = config
        self.allowlist = Allowlist(config.registries)
        self._insecure = frozenset(r.strip().lower() for r in config.insecure_registries)
        self._now = now or (lambda: datetime.now(UTC))
        self._session_factory = session_factory
        self._db = _VulnDB(Path(config.db_path))
        self._analyzers = enabled_analyzers("image")
        self._analyzer_versions = {a.name: a.version for a in self._analyzers}
        self._platform = Platform.parse(config.platform) if config.platform else None
        self._watermark_checked: str | None = None
        self._match_lock = threading.Lock()

    def close(self) -> None:
        with self._match_lock:
            self._db.close()

    # -- the queue message -----------------------------------------------------------------

    def handle(self, msg: ScanMessage) -> ScanOutcome | Skip | BatchOutcome:
        """Process one message. Raises InvalidEvent/RegistryNotAllowed (acknowledge, never retry),
        Retryable (let the platform retry), or another InputError (a bad image: acknowledge).

        A rescan-batch message gives a :class:`BatchOutcome`; its ``failures`` are the
        images that failed on their own, for the caller to record.
        """
        if msg.action is Action.RESCAN:
            return self._rescan(msg)
        if msg.action is Action.RESCAN_BATCH:
            return self._rescan_batch(msg)
        self.allowlist.check(msg.registry, msg.event_id)
        if msg.action is Action.DELETE:
            return self._delete(msg)
        return self._push(msg)

    # -- PUSH ----------------------------------------------------------------------------------

    def _push(self, msg: ScanMessage) -> ScanOutcome:
        now = self._now()
        if msg.digest:
            known = self.store.get_image(msg.digest)
            result = self._stored_inventory(known)
            if known is not None and result is not None:
                log.info("%s: digest %s already inventoried; not pulled again", msg.event_id, msg.digest)
                return self._persist(msg.digest, result, _reference_of(msg, msg.digest), now, msg=msg, scanned=False)
        creds = self.credentials.credentials(msg.registry, msg.repository)
        ref = reference.parse(msg.reference)
        if not isinstance(ref, reference.RegistryRef):
            raise InputError(msg.reference, "not a registry reference")
        source = RegistrySource(
            ref,
            username=creds.username if creds else None,
            password=creds.password if creds else None,
            insecure=msg.registry.lower() in self._insecure,
            session=self._session_factory() if self._session_factory else None,
        )
        try:
            handles = source.resolve(ScanOptions(platform=self._platform, max_image_bytes=self.config.max_image_bytes))
        except ImageError as exc:
            if _retryable(exc):
                raise Retryable(exc.subject, exc.detail) from exc
            raise
        try:
            handle = handles[0]
            digest = handle.info.digest or msg.digest
            if not digest:
                raise InputError(msg.reference, "the registry did not give the manifest digest")
            known = self.store.get_image(digest)
            result = self._stored_inventory(known)
            scanned = False
            if result is None:
                result, scanned = self._inventory(handle)
            else:
                log.info("%s: digest %s already inventoried; no layer pulled", msg.event_id, digest)
        except ImageError as exc:
            if _retryable(exc):
                raise Retryable(exc.subject, exc.detail) from exc
            raise
        finally:
            for h in handles:
                h.close()
        return self._persist(digest, result, _reference_of(msg, digest), now, msg=msg, scanned=scanned)

    def ingest(
        self, result: ScanResult, ref: str, *, event_id: str = "ingest", pushed_at: datetime | None = None
    ) -> ScanOutcome:
        """Store an inventory made elsewhere (a CI scan, an SBOM, a benchmark) as if ``ref`` had been pushed.

        ``ref`` is ``registry/repository:tag`` or ``@digest``; the digest is the result's
        ``image.digest``. The registry must be allowed. Nothing is pulled.
        """
        digest = result.image.digest
        if not digest:
            raise InputError(ref, "the inventory has no image digest")
        parsed = reference.parse(ref)
        if not isinstance(parsed, reference.RegistryRef):
            raise InputError(ref, "not a registry reference")
        self.allowlist.check(parsed.registry, event_id)
        msg = ScanMessage(
            action=Action.PUSH,
            registry=parsed.registry,
            repository=parsed.repository,
            tag=parsed.tag if not parsed.digest else None,
            digest=digest,
            source="local",
            event_id=event_id,
            event_time=pushed_at,
        )
        clean = result.model_copy(update={"findings": None, "vulnerability_db": None})
        self.blobs.put(fp.inventory_key(digest), clean.model_dump_json().encode())
        return self._persist(digest, clean, _reference_of(msg, digest), self._now(), msg=msg, scanned=True)

    def _stored_inventory(self, image: ImageRecord | None) -> ScanResult | None:
        if image is None or not image.inventory_key:
            return None
        data = self.blobs.get(image.inventory_key)
        if data is None:
            log.warning("%s: inventory blob %s is missing; pulling again", image.digest, image.inventory_key)
            return None
        return ScanResult.model_validate_json(data)

    def _inventory(self, handle: ImageHandle) -> tuple[ScanResult, bool]:
        """(inventory, scanned): from the layer-stack cache if this stack was analysed before, else a scan."""
        diff_ids = [lay.diff_id for lay in handle.layers]
        stack_ok = (
            self.config.layer_cache
            and bool(diff_ids)
            and all(diff_ids)
            and not any(w.code == "foreign-layer-skipped" for w in handle.warnings)
        )
        chain_key = fp.layer_chain_key([d for d in diff_ids if d], self._analyzer_versions) if stack_ok else None
        if chain_key is not None:
            entry = self.store.get_layer_cache(chain_key)
            data = self.blobs.get(entry.result_key) if entry is not None else None
            if data is not None:
                cached = ScanResult.model_validate_json(data)
                log.info("%s: layer stack analysed before; no layer downloaded", handle.info.reference)
                return self._rebuilt(cached, handle), False
        states = BlobLayerStates(self.store, self.blobs, self._now) if self.config.layer_cache else None
        try:
            result = scan_handle(
                handle,
                ScanOptions(platform=self._platform, max_image_bytes=self.config.max_image_bytes),
                now=self._now,
                analyzers=self._analyzers,
                layer_cache=states,
            )
        finally:
            if states is not None:
                states.close()
        result = result.model_copy(update={"findings": None, "vulnerability_db": None})
        digest = result.image.digest or ""
        inv_key = fp.inventory_key(digest)
        self.blobs.put(inv_key, result.model_dump_json().encode())
        if self.config.layer_cache:
            if chain_key is not None and not any(w.code == "foreign-layer-skipped" for w in result.warnings):
                top = diff_ids[-1] or ""
                self.store.put_layer_cache(
                    LayerCacheEntry(key=chain_key, diff_id=top, result_key=inv_key, created_at=self._now())
                )
        return result, True

    def _rebuilt(self, cached: ScanResult, handle: ImageHandle) -> ScanResult:
        info = handle.info.model_copy(
            update={
                "layers": [
                    LayerInfo(
                        index=lay.index,
                        digest=lay.digest,
                        diff_id=lay.diff_id,
                        media_type=lay.media_type,
                        size=lay.size,
                        created_by=lay.created_by,
                    )
                    for lay in handle.layers
                ]
            }
        )
        warnings = [w for w in cached.warnings if w.code not in _HANDLE_WARNINGS] + list(handle.warnings)
        result = cached.model_copy(
            update={
                "image": info,
                "scanned_at": self._now(),
                "warnings": warnings,
                "findings": None,
                "vulnerability_db": None,
            }
        )
        self.blobs.put(fp.inventory_key(info.digest or ""), result.model_dump_json().encode())
        return result

    # -- DELETE --------------------------------------------------------------------------------

    def _delete(self, msg: ScanMessage) -> ScanOutcome | Skip:
        if not msg.digest:
            return Skip(reason=f"{msg.reference}: a deletion without a digest names no image", event_id=msg.event_id)
        repo = f"{msg.registry}/{msg.repository}"
        created: list[AlertRecord] = []
        for _ in range(MAX_ATTEMPTS):
            now = self._now()
            image = self.store.get_image(msg.digest)
            if image is None:
                return Skip(reason=f"{msg.digest}: not a stored image; nothing to resolve", event_id=msg.event_id)
            remaining = [r for r in image.references if _repo_of(r) != repo]
            if remaining:
                try:
                    self.store.put_image(image.model_copy(update={"references": remaining}), if_match=image.etag)
                except PreconditionFailed:
                    continue
                return ScanOutcome(digest=msg.digest, scanned=False, findings_open=sum(image.severity_counts.values()))
            stored = self.store.findings_for_image(msg.digest)
            lc = lifecycle.resolve_all(stored, now)
            subject = _reference_of(msg, msg.digest)
            alerts = alerting.evaluate(lc.transitions, subject, now, self.config.rules)
            # an earlier attempt's alerts are stored already: this one's list leaves them out, so keep them
            created.extend(self.store.create_alerts(msg.digest, alerts))
            try:
                self.store.put_findings(msg.digest, lc.writes)
                self.store.put_image(
                    image.model_copy(
                        update={
                            "references": [],
                            "deleted": True,
                            "running": False,
                            "severity_counts": lc.severity_counts(),
                        }
                    ),
                    if_match=image.etag,
                )
            except PreconditionFailed:
                continue
            report = self._publish(created)
            return ScanOutcome(
                digest=msg.digest,
                scanned=False,
                findings_open=0,
                findings_resolved=lc.count(lifecycle.RESOLVED),
                alerts_created=report.created,
                alerts_published=report.published,
            )
        raise Retryable(msg.digest, f"the image changed under us {MAX_ATTEMPTS} times; retry later")

    # -- RESCAN ----------------------------------------------------------------------------------

    def _rescan(self, msg: ScanMessage) -> ScanOutcome | Skip:
        if not msg.digest:
            raise InputError(msg.event_id, "a rescan message needs the image digest")
        image = self.store.get_image(msg.digest)
        if image is None:
            return Skip(reason=f"{msg.digest}: not a stored image", event_id=msg.event_id)
        if image.deleted:
            return Skip(reason=f"{msg.digest}: deleted; not rescanned", event_id=msg.event_id)
        result = self._stored_inventory(image)
        if result is None:
            return Skip(reason=f"{msg.digest}: no stored inventory; the next push scans it", event_id=msg.event_id)
        subject = image.references[0] if image.references else msg.digest
        return self._persist(msg.digest, result, subject, self._now(), image=image, scanned=False)

    def _rescan_batch(self, msg: ScanMessage) -> BatchOutcome:
        out = BatchOutcome(event_id=msg.event_id)
        digests = msg.digests or ()
        for n, digest in enumerate(digests):
            one = ScanMessage(
                action=Action.RESCAN,
                registry=msg.registry,
                repository=msg.repository,
                digest=digest,
                source=msg.source,
                event_id=f"{msg.event_id}/{digest}",
            )
            try:
                try:
                    out.results.append(self._rescan(one))
                except VulnDBError as exc:
                    # the database is missing or unreadable, not the image: every image would fail alike.
                    # Retryable, not the InputError it is, so the message is retried (a worker installs the
                    # published version on its next check) rather than poisoned at once.
                    raise Retryable(f"{msg.event_id}: vulnerability database unusable ({exc})") from exc
            except _BATCH_STOPPERS as exc:
                log.warning(
                    "%s: stopped at image %d of %d (%s: %s); the message will be retried",
                    msg.event_id,
                    n + 1,
                    len(digests),
                    type(exc).__name__,
                    exc,
                )
                raise
            except Exception as exc:
                log.exception("%s: rescan of %s failed; going on with the rest of the batch", msg.event_id, digest)
                out.failures.append(ImageFailure(digest=digest, reason=f"{type(exc).__name__}: {exc}"))
        return out

    # -- match, lifecycle, store, alert ------------------------------------------------------------

    def _match(self, result: ScanResult, *, index_keys: bool) -> _Match:
        with self._match_lock:
            matcher = self._db.matcher()
            self._baseline_watermark()
            m = matcher.match(result.packages, result.os, include_dev=self.config.include_dev)
            keys: set[tuple[str, str]] = set()
            if index_keys:
                keys = {(eco, name) for p in result.packages for eco, name, _ in matcher.lookup_keys(p, result.os)}
            version = self._db.version
        for w in m.warnings:
            log.debug("%s: %s", result.image.digest, w)
        return _Match(m.findings, keys, version)

    def _persist(
        self,
        digest: str,
        result: ScanResult,
        subject: str,
        now: datetime,
        *,
        msg: ScanMessage | None = None,
        image: ImageRecord | None = None,
        scanned: bool,
    ) -> ScanOutcome:
        matched = self._match(result, index_keys=msg is not None)
        created: list[AlertRecord] = []
        for attempt in range(MAX_ATTEMPTS):
            if image is None or attempt > 0:
                image = self.store.get_image(digest)
            stored = self.store.findings_for_image(digest)
            lc = lifecycle.apply(digest, stored, matched.findings, now, last_seen_refresh=self.config.last_seen_refresh)
            alerts = alerting.evaluate(lc.transitions, subject, now, self.config.rules)
            created.extend(self.store.create_alerts(digest, alerts))
            record = self._image_record(digest, image, result, matched, lc, now, msg, subject)
            try:
                if lc.writes:
                    self.store.put_findings(digest, lc.writes)
                self.store.put_image(record, if_match=image.etag if image is not None else None)
            except PreconditionFailed:
                log.info("%s: changed concurrently; re-reading (attempt %d)", digest, attempt + 1)
                continue
            break
        else:
            raise Retryable(digest, f"the image changed under us {MAX_ATTEMPTS} times; retry later")
        if msg is not None:  # a push: the inventory (or its reference) is new, index its packages
            self.store.index_packages(digest, matched.keys)
        report = self._publish(created)
        return ScanOutcome(
            digest=digest,
            scanned=scanned,
            findings_open=len(lc.open),
            findings_new=lc.count(lifecycle.NEW),
            findings_resolved=lc.count(lifecycle.RESOLVED),
            alerts_created=report.created,
            alerts_published=report.published,
        )

    def _image_record(
        self,
        digest: str,
        image: ImageRecord | None,
        result: ScanResult,
        matched: _Match,
        lc: lifecycle.LifecycleResult,
        now: datetime,
        msg: ScanMessage | None,
        subject: str,
    ) -> ImageRecord:
        refs = list(image.references) if image is not None else []
        update: dict[str, object] = {
            "severity_counts": lc.severity_counts(),
            "matched_at": now,
            "db_version": matched.db_version,
        }
        if msg is not None:
            if subject not in refs:
                refs.append(subject)
            pushed = msg.event_time or now
            if image is not None and image.pushed_at is not None and image.pushed_at > pushed:
                pushed = image.pushed_at
            update.update(
                {
                    "references": refs,
                    "pushed_at": pushed,
                    "deleted": False,
                    "inventory_key": fp.inventory_key(digest),
                    "platform": result.image.platform,
                    "os": _os_text(result),
                    "package_count": len(result.packages),
                }
            )
            if image is None or image.scanned_at is None:
                update["scanned_at"] = result.scanned_at
        if image is None:
            return ImageRecord.model_validate({"digest": digest, **update})
        return image.model_copy(update=update)

    def _publish(self, created: Sequence[AlertRecord]) -> PublishReport:
        report = alerting.publish_batch(self.store, self.publisher, created, self._now)
        report.created = len(created)
        for error in report.errors:
            log.warning("alert not published (%s); left for the outbox", error)
        return report

    # -- timers ------------------------------------------------------------------------------------

    def publish_pending(self, limit: int = 100) -> PublishReport:
        """The outbox: publish alerts whose publication failed earlier (attempts and last_error recorded)."""
        return alerting.publish_pending(self.store, self.publisher, self._now, limit)

    def daily_rescan(self, since_days: int = 30, batch_size: int = rescan.DEFAULT_BATCH) -> Iterator[list[ScanMessage]]:
        """Batches of RESCAN messages: images pushed, pulled or scanned in the window, plus running ones.

        Each batch is one queue message's worth (:func:`rescan.queue_messages` packs it into a
        rescan-batch message); in-process callers can hand the batches to :meth:`run` as they are.
        """
        return rescan.daily_batches(self.store, self._now(), since_days, batch_size)

    def delta_rescan(
        self, changed_keys: Iterable[tuple[str, str]] | None = None, batch_size: int = rescan.DEFAULT_BATCH
    ) -> Iterator[list[ScanMessage]]:
        """Batches of RESCAN messages for the images whose packages new vulnerability data names.

        ``changed_keys`` are (ecosystem, normalised name) pairs; when None they are read from the
        vulnerability database: advisories modified since the stored watermark (and CVEs newly in
        KEV), and the watermark advances once every batch has been yielded.
        """
        if changed_keys is not None:
            return rescan.delta_batches(self.store, changed_keys, self._now(), batch_size)
        return self._delta_from_db(batch_size)

    def _delta_from_db(self, batch_size: int) -> Iterator[list[ScanMessage]]:
        since = self._read_watermark()
        changed = rescan.changed_advisory_keys(Path(self.config.db_path), since)
        log.info("vulnerability data since %s: %d advisories changed", since, len(changed.advisories))
        yield from rescan.delta_batches(self.store, changed.keys, self._now(), batch_size)
        if changed.watermark is not None:
            self._write_watermark(changed.watermark)

    def run(self, batches: Iterable[Sequence[ScanMessage]]) -> list[ScanOutcome | Skip]:
        """Handle messages in this process (``hullwatch rescan`` and tests; platforms enqueue them instead).

        One result per image: a rescan-batch message contributes its images' results. An image
        of a batch that failed on its own raises here (nothing records it in this process).
        """
        out: list[ScanOutcome | Skip] = []
        for batch in batches:
            for m in batch:
                res = self.handle(m)
                if isinstance(res, BatchOutcome):
                    if res.failures:
                        f = res.failures[0]
                        raise InputError(f.digest, f"rescan failed: {f.reason}")
                    out.extend(res.results)
                else:
                    out.append(res)
        return out

    # -- the delta watermark ------------------------------------------------------------------------

    def _read_watermark(self) -> str | None:
        data = self.blobs.get(WATERMARK_KEY)
        if data is None:
            return None
        try:
            value = json.loads(data).get("modified")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    def _write_watermark(self, modified: str) -> None:
        self.blobs.put(WATERMARK_KEY, json.dumps({"modified": modified}).encode())

    def _baseline_watermark(self) -> None:
        """The first time a database is used, its newest advisory becomes the delta baseline."""
        if self._watermark_checked == self._db.version:
            return
        self._watermark_checked = self._db.version
        if self._read_watermark() is None and self._db.newest_modified:
            self._write_watermark(self._db.newest_modified)


class BlobLayerStates:
    """The scanner's layer-state cache on the backend's stores: the entry in the store, the state in blobs.

    A new image writes one state per layer. The writes (compression, the blob,
    the store entry) run on one background thread while the scanner reads the
    next layer, so the network round trips overlap the decompression instead
    of adding to it; :meth:`close` waits for them. A write that fails is
    logged and dropped: the cache only saves work, and an entry is written
    only after its blob, so a reader never finds an entry without its state.
    """

    def __init__(self, store: Store, blobs: BlobStore, now: Callable[[], datetime]) -> None:
        self.store, self.blobs, self._now = store, blobs, now
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.store.get_layer_cache(key)
        data = self.blobs.get(entry.result_key) if entry is not None else None
        if data is None:
            return None
        try:
            state = json.loads(zlib.decompress(data))
        except (zlib.error, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def put(self, key: str, state: dict[str, Any]) -> None:
        # Encoded here, on the scanner's thread: the state shares objects with the engine, which goes on
        # changing. pydantic-core's encoder (already a dependency) is several times faster than json's.
        data = pydantic_core.to_json(state)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hullwatch-layer-states")
        self._pending.append(self._pool.submit(self._write, key, data))

    def _write(self, key: str, data: bytes) -> None:
        result_key = "layerstates/" + key.replace(":", "/") + ".json.z"
        # level 1: written after every layer of every new image, read back rarely; a few percent larger than
        # level 6 for this JSON, at a fraction of the CPU (zlib releases the GIL while it works)
        self.blobs.put(result_key, zlib.compress(data, 1))
        self.store.put_layer_cache(LayerCacheEntry(key=key, diff_id="", result_key=result_key, created_at=self._now()))

    def close(self) -> None:
        """Wait for the pending writes (each failure logged, none raised) and stop the thread."""
        pending, self._pending = self._pending, []
        for f in pending:
            try:
                f.result()
            except Exception as exc:  # the cache is an optimisation: a lost entry costs a later re-read
                log.warning("layer state not cached: %s: %s", type(exc).__name__, exc)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
