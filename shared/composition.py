"""Composition: one typed settings object from the environment, and the services built from it once.

Azure Functions, AWS Lambda and the local CLI all come here for their services;
nothing else constructs a store, a blob store, a publisher or a credential
provider. :func:`components` builds them on first use and keeps them for the
life of the process (one cold start), so clients and connection pools are
reused across invocations. Adapters are picked by settings:

============ ======================================================================
store        ``sqlite`` (embedded default, a file) or ``cosmos`` (Azure Cosmos DB: key,
             key from Secrets Manager, or ``DefaultAzureCredential``)
blobs        ``local`` (files), ``azure`` (Blob Storage, by identity or connection
             string) or ``s3``
alerts       Event Grid when a topic endpoint is configured (key, key from Secrets
             Manager, or identity), else a local JSON-lines file
credentials  ACR / ECR / GAR / static-secret providers chained by registry host
============ ======================================================================

This module never imports ``azure.functions`` or ``aws_lambda_powertools``; cloud
SDKs are imported by the builders that use them, so a local run needs none.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.errors import InputError
from shared.service import events, rescan
from shared.service.alerts import DEFAULT_RULES, AlertPublisher, AlertRule, LocalAlertPublisher, load_rules
from shared.service.cloud_credentials import (
    AcrCredentialProvider,
    EcrCredentialProvider,
    GoogleCredentialProvider,
    KeyVaultSecretReader,
    PushTokenVerifier,
    SecretCredentialProvider,
    SecretReader,
    SecretsManagerSecretReader,
    cloud_chain,
)
from shared.service.credentials import Allowlist, CredentialProvider
from shared.service.errors import Retryable
from shared.service.messages import MAX_BATCH_DIGESTS, Action, BatchOutcome, ScanMessage, Skip
from shared.service.scan import ScanService, ServiceConfig
from shared.stores.ports import BlobStore, Store
from shared.vulndb import db as vulndb

log = logging.getLogger("hullwatch.composition")

DEFAULT_SCAN_QUEUE = "scan-requests"
#: Bytes per read when the vulnerability database is hashed, compressed or decompressed.
_COPY_CHUNK = 1024 * 1024
#: One ``SendMessageBatch`` takes ten entries, and its bodies together may not pass the queue's maximum
#: message size: 256 KiB as the templates create the queue (SQS's long-standing default).
SQS_BATCH_ENTRIES = 10
SQS_BATCH_BYTES = 256 * 1024


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def _in_function() -> bool:
    """Running in Azure Functions or AWS Lambda (where only the temporary directory is writable)."""
    return bool(os.environ.get("FUNCTIONS_WORKER_RUNTIME") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def _default_state_dir() -> Path:
    return Path(tempfile.gettempdir()) / "hullwatch" if _in_function() else Path(".hullwatch")


class ConfigurationError(InputError):
    """Settings that cannot be used together (a Cosmos store without an endpoint, say)."""


class Settings(BaseSettings):
    """Everything a deployment configures, from ``HULLWATCH_*`` environment variables (or keyword arguments).

    Lists are comma-separated (``HULLWATCH_REGISTRY_ALLOWLIST=a.azurecr.io,b.azurecr.io``);
    mappings are JSON (``HULLWATCH_CROSS_ACCOUNT_ROLES={"210987654321": "arn:aws:iam::..."}``).
    No secret has a default: keys come from the environment of the platform (app settings
    backed by Key Vault references, Lambda environment) or, better, are not needed (identity).
    """

    model_config = SettingsConfigDict(env_prefix="HULLWATCH_", extra="ignore", populate_by_name=True, frozen=True)

    # registries: only these are ever contacted
    registry_allowlist: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias=_env("HULLWATCH_REGISTRY_ALLOWLIST", "HULLWATCH_REGISTRIES", "registry_allowlist")
    )
    insecure_registries: Annotated[tuple[str, ...], NoDecode] = ()
    acr_tenant: str | None = None
    cross_account_roles: dict[str, str] = Field(default_factory=dict, description="ECR account id -> role ARN")
    registry_secrets: dict[str, str] = Field(default_factory=dict, description="registry host -> secret name")
    registry_vault: Literal["none", "keyvault", "secretsmanager"] = Field(
        default="none", description="Where registry_secrets live: Key Vault or Secrets Manager."
    )
    key_vault_url: str | None = None

    # local state (the embedded defaults live under one directory; /tmp/hullwatch in a function)
    state_dir: Path = Field(default_factory=lambda: _default_state_dir())

    # store
    store: Literal["sqlite", "cosmos"] = "sqlite"
    sqlite_path: Path | None = None
    cosmos_endpoint: str | None = None
    cosmos_database: str = "hullwatch"
    cosmos_key: SecretStr | None = None
    cosmos_secret_arn: str | None = None
    cosmos_create_containers: bool = Field(
        default=False, description="Create the database and containers when missing (the templates create them)."
    )

    # blobs (inventories, layer results, state) and the published vulnerability database
    blobs: Literal["local", "azure", "s3"] | None = Field(
        default=None, description="Unset: azure with a blob endpoint, s3 with a bucket, else local."
    )
    blob_root: Path | None = None
    blob_endpoint: str | None = None
    blob_connection_string: SecretStr | None = None
    inventory_container: str = "inventories"
    vulndb_container: str = "vulndb"
    inventory_bucket: str | None = None
    blob_create_containers: bool = Field(
        default=False, description="Create missing containers/buckets (the templates create them)."
    )
    vulndb_path: Path | None = Field(default=None, validation_alias=_env("HULLWATCH_DB", "vulndb_path"))
    vulndb_check_seconds: float = 60.0
    osv_base_url: str | None = None
    ecosystems: Annotated[tuple[str, ...], NoDecode] = ()

    # alerts
    eventgrid_endpoint: str | None = Field(
        default=None,
        validation_alias=_env(
            "HULLWATCH_EVENTGRID_ENDPOINT", "HULLWATCH_EVENTGRID_TOPIC_ENDPOINT", "eventgrid_endpoint"
        ),
    )
    eventgrid_key: SecretStr | None = None
    eventgrid_secret_arn: str | None = None
    alerts_file: Path | None = None
    alert_rules_file: Path | None = None
    alert_source: str = "/hullwatch"

    # queues
    scan_queue: str = DEFAULT_SCAN_QUEUE
    scan_queue_url: str | None = None
    max_dequeue_count: int = Field(default=5, ge=1, description="host.json queues.maxDequeueCount")

    # rescans
    rescan_window_days: int = Field(default=30, ge=1)
    rescan_batch_size: int = Field(
        default=rescan.DEFAULT_BATCH,
        ge=1,
        le=MAX_BATCH_DIGESTS,
        description="Images per rescan-batch queue message (each message is also kept under the queues' size limit).",
    )

    # Pub/Sub push authentication (GAR/GCR): verification is on when an audience is configured
    pubsub_audience: str | None = None
    pubsub_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    pubsub_service_account: str | None = None

    # AWS: idempotency of the ECR trigger; an endpoint override for local AWS stand-ins
    idempotency_table: str | None = None
    idempotency_ttl: int = Field(default=3600, ge=60)
    aws_endpoint_url: str | None = None

    # scanning
    platform: str | None = None

    @field_validator("registry_allowlist", "insecure_registries", "ecosystems", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("registry_allowlist", "insecure_registries")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.strip().lower() for v in value if v.strip()))

    # derived paths
    @property
    def sqlite_file(self) -> Path:
        return self.sqlite_path or self.state_dir / "store.db"

    @property
    def blob_kind(self) -> Literal["local", "azure", "s3"]:
        if self.blobs is not None:
            return self.blobs
        if self.blob_endpoint or self.blob_connection_string is not None:
            return "azure"
        return "s3" if self.inventory_bucket else "local"

    @property
    def vulndb_file(self) -> Path:
        """The local vulnerability database: HULLWATCH_DB, in a function the state directory, else the user cache."""
        if self.vulndb_path is not None:
            return self.vulndb_path
        return self.state_dir / "vulndb.sqlite" if _in_function() else vulndb.default_path()

    @property
    def blob_dir(self) -> Path:
        return self.blob_root or self.state_dir / "blobs"

    @property
    def alerts_path(self) -> Path:
        return self.alerts_file or self.state_dir / "alerts.jsonl"

    @property
    def poison_queue(self) -> str:
        """Where the Functions host moves a message after ``max_dequeue_count`` failed attempts."""
        return f"{self.scan_queue}-poison"


# -- builders ------------------------------------------------------------------------------------------------------


def _secret_value(settings: Settings, arn: str) -> str:
    reader = SecretsManagerSecretReader(endpoint_url=settings.aws_endpoint_url)
    value = reader.read(arn)
    if value is None:
        raise ConfigurationError(arn, "secret does not exist")
    text = value.strip()
    if text.startswith("{"):  # {"key": "..."} or a single-valued JSON object
        doc = json.loads(text)
        if isinstance(doc, dict):
            found = doc.get("key") or (next(iter(doc.values())) if len(doc) == 1 else None)
            if isinstance(found, str):
                return found
        raise ConfigurationError(arn, 'secret JSON needs a "key" field')
    return text


def build_store(settings: Settings) -> Store:
    if settings.store == "sqlite":
        from shared.stores.sqlite import SQLiteStore

        settings.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        store: Store = SQLiteStore(settings.sqlite_file)
        return store
    if not settings.cosmos_endpoint:
        raise ConfigurationError("HULLWATCH_COSMOS_ENDPOINT", "required with HULLWATCH_STORE=cosmos")
    from shared.stores import cosmos

    credential: Any
    if settings.cosmos_key is not None:
        credential = settings.cosmos_key.get_secret_value()
    elif settings.cosmos_secret_arn:
        credential = _secret_value(settings, settings.cosmos_secret_arn)
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    store = cosmos.CosmosStore(
        settings.cosmos_endpoint,
        credential,
        settings.cosmos_database,
        create_if_missing=settings.cosmos_create_containers,
    )
    return store


def build_blobs(settings: Settings, container: str | None = None) -> BlobStore:
    """The blob store for inventories (``container`` None) or another container (the vulnerability database).

    Azure: one container each. S3: the inventory bucket, another container as a key prefix. Local: a
    directory each.
    """
    kind = settings.blob_kind
    if kind == "local":
        from shared.stores.blobs import LocalBlobStore

        return LocalBlobStore(settings.blob_dir if container is None else settings.state_dir / container)
    from shared.stores import cloudblobs

    create = settings.blob_create_containers
    if kind == "azure":
        name = container or settings.inventory_container
        if settings.blob_connection_string is not None:
            conn = settings.blob_connection_string.get_secret_value()
            return cloudblobs.AzureBlobStore.from_connection_string(conn, name, create=create)
        if not settings.blob_endpoint:
            raise ConfigurationError("HULLWATCH_BLOB_ENDPOINT", "required with HULLWATCH_BLOBS=azure")
        return cloudblobs.AzureBlobStore.from_account_url(settings.blob_endpoint, name, create=create)
    if not settings.inventory_bucket:
        raise ConfigurationError("HULLWATCH_INVENTORY_BUCKET", "required with HULLWATCH_BLOBS=s3")
    return cloudblobs.S3BlobStore.from_bucket(
        settings.inventory_bucket,
        prefix="" if container is None else f"{container}/",
        endpoint_url=settings.aws_endpoint_url,
        create=create,
    )


def build_publisher(settings: Settings) -> AlertPublisher:
    if not settings.eventgrid_endpoint:
        return LocalAlertPublisher(settings.alerts_path, source=settings.alert_source)
    from shared.alerts import eventgrid

    credential: Any
    if settings.eventgrid_key is not None:
        from azure.core.credentials import AzureKeyCredential

        credential = AzureKeyCredential(settings.eventgrid_key.get_secret_value())
    elif settings.eventgrid_secret_arn:
        from azure.core.credentials import AzureKeyCredential

        credential = AzureKeyCredential(_secret_value(settings, settings.eventgrid_secret_arn))
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    publisher: AlertPublisher = eventgrid.EventGridPublisher(
        settings.eventgrid_endpoint, credential, source=settings.alert_source
    )
    return publisher


def build_secret_reader(settings: Settings) -> SecretReader | None:
    if settings.registry_vault == "keyvault":
        if not settings.key_vault_url:
            raise ConfigurationError("HULLWATCH_KEY_VAULT_URL", "required with HULLWATCH_REGISTRY_VAULT=keyvault")
        return KeyVaultSecretReader(settings.key_vault_url)
    if settings.registry_vault == "secretsmanager":
        return SecretsManagerSecretReader(endpoint_url=settings.aws_endpoint_url)
    return None


def build_credentials(settings: Settings) -> CredentialProvider:
    """The provider chain; nothing is contacted until a registry's credentials are first asked for."""
    reader = build_secret_reader(settings) if settings.registry_secrets else None
    return cloud_chain(
        acr=AcrCredentialProvider(tenant=settings.acr_tenant, insecure_registries=settings.insecure_registries),
        ecr=EcrCredentialProvider(roles=settings.cross_account_roles, endpoint_url=settings.aws_endpoint_url),
        gar=GoogleCredentialProvider(),
        static=SecretCredentialProvider(reader, settings.registry_secrets),
        allowlist=Allowlist(settings.registry_allowlist),
    )


def alert_rules(settings: Settings) -> Sequence[AlertRule]:
    return load_rules(settings.alert_rules_file) if settings.alert_rules_file else DEFAULT_RULES


def build_service(
    settings: Settings,
    *,
    store: Store | None = None,
    blobs: BlobStore | None = None,
    credentials: CredentialProvider | None = None,
    publisher: AlertPublisher | None = None,
) -> ScanService:
    config = ServiceConfig(
        registries=settings.registry_allowlist,
        db_path=settings.vulndb_file,
        insecure_registries=frozenset(settings.insecure_registries),
        rules=alert_rules(settings),
        platform=settings.platform,
    )
    return ScanService(
        store if store is not None else build_store(settings),
        blobs if blobs is not None else build_blobs(settings),
        credentials if credentials is not None else build_credentials(settings),
        publisher if publisher is not None else build_publisher(settings),
        config,
    )


# -- the vulnerability database, published with a version -------------------------------------------------------


@dataclass(frozen=True)
class VulnDbVersion:
    version: str
    key: str
    sha256: str
    size: int


class VulnDbChannel:
    """Publishes the vulnerability database to a blob store with a version; workers fetch a new version.

    ``publish`` uploads the database (gzip) as ``PREFIX<version>.sqlite.gz`` and
    then points ``PREFIX current.json`` at it (an unchanged database is not
    uploaded again). ``sync`` reads the small pointer at most every
    ``check_seconds`` and downloads only when the version differs from the one
    installed locally, replacing the file atomically: the scan service notices
    the new file and reopens it, and keeps it open (warm) otherwise.

    The database can be a gigabyte on a function with 2 GB of memory, so neither
    direction holds it in memory: ``publish`` gzips it into a temporary file
    beside it and streams that to the blob store (``put_file``); ``sync``
    streams the download into a temporary file (``get_file``), then gunzips it
    into another one chunk by chunk while hashing, and only a file whose digest
    matches the pointer replaces the installed one. The temporary files live
    beside the database (the same filesystem, so the replace is a rename) and
    are removed whatever happens.
    """

    POINTER = "current.json"

    def __init__(self, blobs: BlobStore, path: Path, *, prefix: str = "", check_seconds: float = 60.0) -> None:
        self.blobs = blobs
        self.path = Path(path)
        self.prefix = prefix
        self.check_seconds = check_seconds
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    @property
    def _marker(self) -> Path:
        return self.path.with_name(self.path.name + ".version")

    def current(self) -> VulnDbVersion | None:
        data = self.blobs.get(self.prefix + self.POINTER)
        if data is None:
            return None
        doc = json.loads(data)
        return VulnDbVersion(str(doc["version"]), str(doc["key"]), str(doc["sha256"]), int(doc["size"]))

    def installed(self) -> str | None:
        try:
            return self._marker.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def publish(self, now: datetime | None = None) -> VulnDbVersion:
        digest = hashlib.sha256()
        size = 0
        with self.path.open("rb") as f:
            for chunk in iter(lambda: f.read(_COPY_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
        sha = digest.hexdigest()
        current = self.current()
        if current is not None and current.sha256 == sha:
            self._marker.write_text(current.version, encoding="utf-8")
            return current
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        version = f"{stamp}-{sha[:12]}"
        key = f"{self.prefix}{version}.sqlite.gz"
        with self._scratch(".gz") as packed:
            with self.path.open("rb") as src, gzip.GzipFile(packed, "wb", compresslevel=6, mtime=0) as gz:
                shutil.copyfileobj(src, gz, _COPY_CHUNK)
            self.blobs.put_file(key, packed)
        published = VulnDbVersion(version, key, sha, size)
        pointer = {"version": version, "key": key, "sha256": sha, "size": size}
        self.blobs.put(self.prefix + self.POINTER, json.dumps(pointer).encode())
        self._marker.write_text(version, encoding="utf-8")
        return published

    def sync(self, force: bool = False) -> bool:
        """Install the published version if it is newer than the local one; True when a new file was installed."""
        with self._lock:
            now = time.monotonic()
            if not force and self._checked_at is not None and now - self._checked_at < self.check_seconds:
                return False
            self._checked_at = now
            current = self.current()
            if current is None or current.version == self.installed():
                return False
            with self._scratch(".gz") as packed, self._scratch("") as raw:
                if not self.blobs.get_file(current.key, packed):
                    log.warning("vulnerability database %s is published but missing", current.key)
                    return False
                digest = hashlib.sha256()
                try:
                    with gzip.open(packed, "rb") as gz, raw.open("wb") as out:
                        for chunk in iter(lambda: gz.read(_COPY_CHUNK), b""):
                            digest.update(chunk)
                            out.write(chunk)
                except (OSError, EOFError, zlib.error) as exc:  # not gzip, corrupt, or cut short
                    log.warning("vulnerability database %s is unreadable (%s); kept the old one", current.key, exc)
                    return False
                if digest.hexdigest() != current.sha256:
                    log.warning("vulnerability database %s does not match its digest; kept the old one", current.key)
                    return False
                raw.replace(self.path)
            self._marker.write_text(current.version, encoding="utf-8")
            log.info("vulnerability database %s installed", current.version)
            return True

    @contextmanager
    def _scratch(self, suffix: str) -> Iterator[Path]:
        """A temporary file beside the database (same filesystem: a rename installs it), removed afterwards."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".vulndb-", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)


@dataclass
class RefreshReport:
    version: str
    fetched: list[str]
    unchanged: list[str]
    rescans: int  # images
    messages: list[ScanMessage] = field(default_factory=list)  # the rescan-batch queue messages naming them


# -- intake: what the triggers call ------------------------------------------------------------------------------


class Intake:
    """Validates an incoming registry event into a scan request: parse, authenticate, and the allowlist.

    A trigger enqueues what this returns and does nothing else. An event naming a
    registry that is not configured raises
    :class:`~shared.service.errors.RegistryNotAllowed` before anything is enqueued,
    so a forged event cannot make the worker contact an arbitrary host.
    """

    def __init__(self, allowlist: Allowlist, verifier: PushTokenVerifier | None = None) -> None:
        self.allowlist = allowlist
        self.verifier = verifier

    def _checked(self, item: ScanMessage | Skip) -> ScanMessage | Skip:
        if isinstance(item, ScanMessage):
            self.allowlist.check(item.registry, item.event_id)
        return item

    def acr_event(self, event: Mapping[str, Any]) -> ScanMessage | Skip:
        """One ACR event from Event Grid, in the Event Grid or the CloudEvents schema."""
        return self._checked(events.parse_acr_event(event))

    def gar_push(self, body: bytes, authorization: str | None) -> ScanMessage | Skip:
        """A Pub/Sub push; its OIDC token is verified first when an audience is configured."""
        if self.verifier is not None:
            self.verifier.verify(authorization)
        return self._checked(events.parse_gar_push(body))

    def ecr_event(self, event: Mapping[str, Any]) -> ScanMessage | Skip:
        """An EventBridge "ECR Image Action" event."""
        return self._checked(events.parse_ecr_event(event))


class SqsScanQueue:
    """Scan requests to SQS as JSON, batched: ten messages, and at most 256 KiB, to a ``SendMessageBatch``.

    A failed entry raises Retryable (the caller's platform runs it again; a repeated request is harmless).
    """

    def __init__(self, queue_url: str, client: Any = None, *, endpoint_url: str | None = None) -> None:
        if client is None:
            import importlib

            client = importlib.import_module("boto3").client("sqs", endpoint_url=endpoint_url)
        self.queue_url = queue_url
        self.client = client

    def put(self, message: ScanMessage) -> str:
        """One scan request (``SendMessage``); returns the SQS message id."""
        resp = self.client.send_message(QueueUrl=self.queue_url, MessageBody=message.model_dump_json())
        return str(resp["MessageId"])

    def send(self, messages: Iterable[ScanMessage]) -> int:
        """Send messages as they come (a generator is consumed lazily); returns how many were sent."""
        sent = 0
        chunk: list[str] = []
        size = 0
        for m in messages:
            body = m.model_dump_json()
            length = len(body.encode())
            if chunk and (len(chunk) >= SQS_BATCH_ENTRIES or size + length > SQS_BATCH_BYTES):
                sent += self._send_batch(chunk)
                chunk, size = [], 0
            chunk.append(body)
            size += length
        if chunk:
            sent += self._send_batch(chunk)
        return sent

    def _send_batch(self, bodies: Sequence[str]) -> int:
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)]
        resp = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        failed = resp.get("Failed") or []
        if failed:
            codes = ", ".join(sorted({str(f.get("Code", "?")) for f in failed}))
            raise Retryable(f"{self.queue_url}: {len(failed)} of {len(bodies)} messages not sent ({codes})")
        return len(bodies)


# -- one set of components per process ---------------------------------------------------------------------------


class Components:
    """The services of one process, built lazily from one :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._shared: tuple[Store, BlobStore, CredentialProvider, AlertPublisher] | None = None
        self._services: list[ScanService] = []
        self._local = threading.local()
        self._channel: VulnDbChannel | None = None
        self._verifier: PushTokenVerifier | None = None
        self._sqs: SqsScanQueue | None = None
        self._allowlist = Allowlist(settings.registry_allowlist)

    @property
    def allowlist(self) -> Allowlist:
        return self._allowlist

    def service(self) -> ScanService:
        """This thread's scan service (the service is not thread-safe; its store, blobs and clients are shared)."""
        svc: ScanService | None = getattr(self._local, "service", None)
        if svc is None:
            with self._lock:
                if self._shared is None:
                    s = self.settings
                    self._shared = (build_store(s), build_blobs(s), build_credentials(s), build_publisher(s))
                store, blobs, credentials, publisher = self._shared
                svc = build_service(
                    self.settings, store=store, blobs=blobs, credentials=credentials, publisher=publisher
                )
                self._services.append(svc)
            self._local.service = svc
        return svc

    def close(self) -> None:
        with self._lock:
            for svc in self._services:
                svc.close()
            self._services.clear()
            if self._shared is not None:
                for part in self._shared:
                    closer = getattr(part, "close", None)
                    if callable(closer):
                        closer()
                self._shared = None

    def vulndb_channel(self) -> VulnDbChannel:
        with self._lock:
            if self._channel is None:
                blobs = build_blobs(self.settings, container=self.settings.vulndb_container)
                self._channel = VulnDbChannel(
                    blobs,
                    self.settings.vulndb_file,
                    check_seconds=self.settings.vulndb_check_seconds,
                )
            return self._channel

    def worker(self) -> ScanService:
        """The scan service with the newest published vulnerability database installed (checked once a minute)."""
        self.vulndb_channel().sync()
        return self.service()

    def push_verifier(self) -> PushTokenVerifier | None:
        """The Pub/Sub push token verifier, when an audience is configured."""
        if not self.settings.pubsub_audience:
            return None
        with self._lock:
            if self._verifier is None:
                self._verifier = PushTokenVerifier(
                    self.settings.pubsub_audience,
                    jwks_url=self.settings.pubsub_jwks_url,
                    service_account=self.settings.pubsub_service_account,
                )
            return self._verifier

    def intake(self) -> Intake:
        return Intake(self._allowlist, self.push_verifier())

    def scan_queue(self) -> SqsScanQueue:
        """The SQS scan queue (AWS); Azure triggers use the queue output binding instead."""
        with self._lock:
            if self._sqs is None:
                if not self.settings.scan_queue_url:
                    raise ConfigurationError("HULLWATCH_SCAN_QUEUE_URL", "required to send scan requests to SQS")
                self._sqs = SqsScanQueue(self.settings.scan_queue_url, endpoint_url=self.settings.aws_endpoint_url)
            return self._sqs

    def record_failure(
        self, queue: str, message_id: str, body: bytes | str, reason: str, attempts: int | None = None
    ) -> dict[str, Any]:
        """Keep why a queue message failed (beside the inventories, under ``failures/QUEUE/ID.json``)."""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        doc: dict[str, Any] = {
            "queue": queue,
            "message_id": message_id,
            "attempts": attempts,
            "reason": reason[:2000],
            "failed_at": datetime.now(UTC).isoformat(),
            "message": text[: 64 * 1024],
        }
        key = f"failures/{queue}/{hashlib.sha256(message_id.encode()).hexdigest()[:32]}.json"
        try:
            self.service().blobs.put(key, json.dumps(doc).encode())
        except Exception:  # the record is a courtesy: never let it hide the failure being recorded
            log.exception("could not record the failure of message %s", message_id)
        return doc

    def record_batch_failures(
        self, queue: str, message_id: str, outcome: BatchOutcome, attempts: int | None = None
    ) -> list[dict[str, Any]]:
        """Record each image of a rescan-batch that failed on its own, as a single-image RESCAN one can replay.

        The batch message itself succeeded (the other images were re-matched), so the
        platform deletes it; these records are what is left of the failed images.
        """
        docs = []
        for failure in outcome.failures:
            single = ScanMessage(
                action=Action.RESCAN,
                registry="",
                repository="",
                digest=failure.digest,
                source="rescan",
                event_id=f"{outcome.event_id}/{failure.digest}",
            )
            docs.append(
                self.record_failure(
                    queue, f"{message_id}/{failure.digest}", single.model_dump_json(), failure.reason, attempts
                )
            )
        return docs

    def daily_rescan(self) -> Iterator[ScanMessage]:
        """The daily rescan's queue messages: rescan-batch messages of up to ``rescan_batch_size`` images each."""
        s = self.settings
        return rescan.queue_messages(self.service().daily_rescan(s.rescan_window_days, s.rescan_batch_size))

    def refresh_vulndb(self) -> RefreshReport:
        """Update the OSV database, publish the new version, and list the images its changes affect.

        The database-delta rescans come back as rescan-batch messages for the caller
        to enqueue (the same queue and the same batching as the daily rescan); the
        delta watermark advances once every image has been listed.
        """
        from shared.vulndb.update import update

        channel = self.vulndb_channel()
        channel.sync(force=True)  # start from the published version: only changed ecosystems are downloaded
        result = update(
            self.settings.vulndb_file, self.settings.ecosystems or None, base_url=self.settings.osv_base_url
        )
        published = channel.publish()
        batches = self.service().delta_rescan(batch_size=self.settings.rescan_batch_size)
        messages = list(rescan.queue_messages(batches))
        return RefreshReport(
            version=published.version,
            fetched=result.fetched,
            unchanged=result.unchanged,
            rescans=sum(rescan.image_count(m) for m in messages),
            messages=messages,
        )


_components: Components | None = None
_components_lock = threading.Lock()


def components() -> Components:
    """This process's components (built on first use: once per cold start)."""
    global _components
    with _components_lock:
        if _components is None:
            _components = Components(Settings())
        return _components


def reset(settings: Settings | None = None) -> Components | None:
    """Forget the process's components (tests; a new configuration). With settings, install them now."""
    global _components
    with _components_lock:
        old = _components
        _components = Components(settings) if settings is not None else None
    if old is not None:
        old.close()
    return _components


def scan_queue_name() -> str:
    """The scan queue's name, read when a trigger module is imported (bindings are declared at import)."""
    return os.environ.get("HULLWATCH_SCAN_QUEUE") or DEFAULT_SCAN_QUEUE
