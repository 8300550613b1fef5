"""Blob storage in the cloud: :class:`AzureBlobStore` (Azure Blob Storage) and :class:`S3BlobStore` (Amazon S3).

Both keep the :class:`~shared.stores.ports.BlobStore` port exactly as the local
:class:`~shared.stores.blobs.LocalBlobStore` does: ``put`` overwrites, ``get``
of a missing key is ``None``, and the same keys are refused
(:class:`~shared.stores.blobs.BlobKeyError`: empty, longer than 1024
characters, with NUL or a backslash, absolute, or with an empty, ``.`` or
``..`` segment), so a key that works in one store works in all three.

``put_file``/``get_file`` stream a local file to and from the store with the
SDKs' chunked transfers (Azure: blocks read from the open file and ranged
reads written into it; S3: boto3's managed ``upload_file``/``download_file``),
a bounded number of chunks in flight, so a file of a gigabyte (the
vulnerability database) never has to fit in memory.

Each creates its container or bucket when missing (``create=False`` when the
infrastructure owns it) and counts its reads and writes (``get_count``,
``put_count``). The SDKs retry transient failures themselves (Azure: the
storage SDK's exponential retry; S3: botocore's ``standard`` retry mode, five
attempts); what is still failing after that is raised as
:class:`~shared.stores.errors.StoreUnavailable`.
"""

from __future__ import annotations

import importlib
import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContainerClient

from shared.stores.blobs import MAX_KEY_LENGTH, BlobKeyError
from shared.stores.errors import StoreUnavailable

log = logging.getLogger(__name__)

#: Objects larger than this are uploaded in blocks (Azure) or parts (S3), several at a time.
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MAX_CONCURRENCY = 4
#: Blocks or parts in flight when a file is uploaded: each is held in memory while it travels, so this bounds
#: the memory an upload of any size takes (two 4 MiB blocks on Azure, two 8 MiB parts on S3).
FILE_CONCURRENCY = 2
#: Azure reads fetch at most 1 MiB a request. The storage SDK gathers each response's pieces with ``list()``
#: on a stream whose ``len()`` is its byte count, so the list is first sized to one slot per byte: a read
#: briefly takes about ten times its size (the default first read, 32 MiB, would take over 300 MiB).
#: Uploads of a stream take the SDK's memory-efficient path (each block read from the stream as it is sent,
#: not first copied whole) only when blocks are larger than ``min_large_block_upload_threshold``.
_AZURE_GET_SIZE = 1024 * 1024
_AZURE_OPTIONS: dict[str, Any] = {
    "max_single_put_size": MULTIPART_THRESHOLD,
    "max_block_size": 4 * 1024 * 1024,
    "min_large_block_upload_threshold": 1024 * 1024 + 1,
    "max_single_get_size": _AZURE_GET_SIZE,
    "max_chunk_get_size": _AZURE_GET_SIZE,
}


def check_key(key: str) -> str:
    """The key, if every blob store accepts it; else BlobKeyError (the local store's rules)."""
    if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise BlobKeyError(repr(key[:80]), "not a usable blob key (empty, too long or with NUL)")
    if key.startswith("/") or "\\" in key:
        raise BlobKeyError(repr(key), "not a usable blob key (absolute or with a backslash)")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise BlobKeyError(repr(key), f"not a usable blob key (segment {segment!r})")
    return key


def _prefix(prefix: str) -> str:
    """A key prefix as a folder (``vulndb/``); checked like a key."""
    if not prefix:
        return ""
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    check_key(prefix[:-1])
    return prefix


def _transient(status: int | None) -> bool:
    return status is not None and (status == 429 or status >= 500)


class _Counts:
    def __init__(self) -> None:
        self.get_count = 0
        self.put_count = 0
        self._count_lock = threading.Lock()

    def _counted(self, kind: str) -> None:
        with self._count_lock:
            if kind == "get":
                self.get_count += 1
            else:
                self.put_count += 1


class AzureBlobStore(_Counts):
    """Blobs in one Azure Blob Storage container, under an optional key ``prefix``.

    Made from a ``ContainerClient``, or with :meth:`from_connection_string`
    (Azurite, or an account key) or :meth:`from_account_url` (an Entra
    credential; ``DefaultAzureCredential()`` unless given: managed identity in Azure).
    """

    def __init__(self, container_client: ContainerClient, *, prefix: str = "", create: bool = True) -> None:
        super().__init__()
        self._container = container_client
        self.prefix = _prefix(prefix)
        self.name = f"azure blob container {container_client.container_name}"
        if create:
            self._create()

    @classmethod
    def from_connection_string(
        cls, connection_string: str, container: str, *, prefix: str = "", create: bool = True
    ) -> AzureBlobStore:
        client = ContainerClient.from_connection_string(connection_string, container, **_AZURE_OPTIONS)
        return cls(client, prefix=prefix, create=create)

    @classmethod
    def from_account_url(
        cls,
        account_url: str,
        container: str,
        credential: str | TokenCredential | None = None,
        *,
        prefix: str = "",
        create: bool = True,
    ) -> AzureBlobStore:
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        client = ContainerClient(account_url, container, credential=credential, **_AZURE_OPTIONS)
        return cls(client, prefix=prefix, create=create)

    def _create(self) -> None:
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise StoreUnavailable(f"{self.name}: cannot create it ({exc})") from exc
        except HttpResponseError as exc:
            if _transient(exc.status_code):
                raise StoreUnavailable(f"{self.name}: cannot create it (HTTP {exc.status_code})") from exc
            if exc.status_code != 403:
                raise
            # an identity allowed to read and write blobs but not to create containers: the templates made it
            log.debug("%s: not allowed to create it; assuming it exists", self.name)

    @contextmanager
    def _failures(self, doing: str) -> Iterator[None]:
        """Connection failures and transient statuses become StoreUnavailable naming ``doing``; others propagate."""
        try:
            yield
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise StoreUnavailable(f"{self.name}: cannot {doing} ({exc})") from exc
        except HttpResponseError as exc:
            if _transient(exc.status_code):
                raise StoreUnavailable(f"{self.name}: cannot {doing} (HTTP {exc.status_code})") from exc
            raise

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        with self._failures(f"write {key}"):
            self._container.upload_blob(self.prefix + key, data, overwrite=True, max_concurrency=MAX_CONCURRENCY)
        self._counted("put")

    def get(self, key: str) -> bytes | None:
        check_key(key)
        self._counted("get")
        with self._failures(f"read {key}"):
            try:
                return self._container.download_blob(self.prefix + key, max_concurrency=MAX_CONCURRENCY).readall()
            except ResourceNotFoundError:
                return None

    def put_file(self, key: str, path: Path) -> None:
        """Upload a file in blocks read from it as they are sent (a seekable stream of known length)."""
        check_key(key)
        with self._failures(f"write {key}"), Path(path).open("rb") as f:
            size = Path(path).stat().st_size
            self._container.upload_blob(
                self.prefix + key, f, length=size, overwrite=True, max_concurrency=FILE_CONCURRENCY
            )
        self._counted("put")

    def get_file(self, key: str, path: Path) -> bool:
        """Download a blob into ``path`` in ranged reads of 1 MiB, one at a time, each written as it arrives."""
        check_key(key)
        self._counted("get")
        with self._failures(f"read {key}"):
            try:
                downloader = self._container.download_blob(self.prefix + key, max_concurrency=1)
            except ResourceNotFoundError:
                return False
            with Path(path).open("wb") as out:
                downloader.readinto(out)
        return True


def _boto3() -> Any:
    """boto3, imported when an S3 store is made (only the AWS deployment needs it)."""
    return importlib.import_module("boto3")


class S3BlobStore(_Counts):
    """Objects in one S3 bucket, under an optional key ``prefix``.

    Made from a boto3 S3 client, or with :meth:`from_bucket` (boto3's default
    credential chain: the Lambda role in AWS; ``endpoint_url`` points it
    elsewhere, a moto server in tests).
    """

    def __init__(self, client: Any, bucket: str, *, prefix: str = "", create: bool = True) -> None:
        super().__init__()
        self._client = client
        self.bucket = bucket
        self.prefix = _prefix(prefix)
        self.name = f"s3 bucket {bucket}"
        self._errors = importlib.import_module("botocore.exceptions")
        self._boto3_errors = importlib.import_module("boto3.exceptions")
        transfer = importlib.import_module("boto3.s3.transfer")
        self._transfer = transfer.TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=MAX_CONCURRENCY
        )
        self._file_transfer = transfer.TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_THRESHOLD,
            max_concurrency=FILE_CONCURRENCY,
        )
        if create:
            self._create()

    @classmethod
    def from_bucket(
        cls,
        bucket: str,
        *,
        prefix: str = "",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        create: bool = True,
        **client_options: Any,
    ) -> S3BlobStore:
        """A store on a new boto3 client (``client_options`` go to ``boto3.client``: credentials, ...)."""
        config = importlib.import_module("botocore.config").Config(retries={"mode": "standard", "max_attempts": 5})
        client = _boto3().client(
            "s3", region_name=region_name, endpoint_url=endpoint_url, config=config, **client_options
        )
        return cls(client, bucket, prefix=prefix, create=create)

    def _status(self, exc: BaseException) -> int | None:
        response = getattr(exc, "response", None)
        if not isinstance(response, dict):
            return None
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if isinstance(status, int) else None

    def _code(self, exc: BaseException) -> str:
        response = getattr(exc, "response", None)
        if not isinstance(response, dict):
            return ""
        return str(response.get("Error", {}).get("Code", ""))

    def _unavailable(self, what: str, exc: BaseException) -> BaseException:
        """StoreUnavailable for a connection failure or a transient status; the error itself otherwise."""
        if isinstance(exc, self._errors.ClientError):
            status = self._status(exc)
            if _transient(status):
                return StoreUnavailable(f"{self.name}: {what} (HTTP {status})")
            same: BaseException = exc
            return same
        return StoreUnavailable(f"{self.name}: {what} ({type(exc).__name__}: {exc})")

    def _create(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except self._errors.ClientError as exc:
            if self._status(exc) == 403:
                log.debug("%s: not allowed to look it up; assuming it exists", self.name)
                return
            if self._status(exc) != 404 and self._code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self._unavailable("cannot read it", exc) from exc
        except self._errors.BotoCoreError as exc:
            raise self._unavailable("cannot read it", exc) from exc
        region = self._client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**kwargs)
        except self._errors.ClientError as exc:
            if self._code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._unavailable("cannot create it", exc) from exc

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        try:
            self._client.upload_fileobj(io.BytesIO(data), self.bucket, self.prefix + key, Config=self._transfer)
        except (self._errors.ClientError, self._errors.BotoCoreError) as exc:
            raise self._unavailable(f"cannot write {key}", exc) from exc
        self._counted("put")

    def get(self, key: str) -> bytes | None:
        check_key(key)
        self._counted("get")
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            body: bytes = response["Body"].read()
            return body
        except self._errors.ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404", "NotFound") or self._status(exc) == 404:
                return None
            raise self._unavailable(f"cannot read {key}", exc) from exc
        except self._errors.BotoCoreError as exc:
            raise self._unavailable(f"cannot read {key}", exc) from exc

    def put_file(self, key: str, path: Path) -> None:
        """Upload a file with boto3's managed transfer: parts read from the file as they are sent."""
        check_key(key)
        try:
            self._client.upload_file(str(path), self.bucket, self.prefix + key, Config=self._file_transfer)
        except (self._errors.ClientError, self._errors.BotoCoreError) as exc:
            raise self._unavailable(f"cannot write {key}", exc) from exc
        except self._boto3_errors.S3UploadFailedError as exc:
            # boto3 wraps the client error of a failed upload; judge the error it wraps
            cause = exc.__context__
            if isinstance(cause, self._errors.ClientError):
                raise self._unavailable(f"cannot write {key}", cause) from exc
            raise StoreUnavailable(f"{self.name}: cannot write {key} ({exc})") from exc
        self._counted("put")

    def get_file(self, key: str, path: Path) -> bool:
        """Download an object into ``path`` with boto3's managed transfer (ranged parts written as they arrive)."""
        check_key(key)
        self._counted("get")
        try:
            self._client.download_file(self.bucket, self.prefix + key, str(path), Config=self._file_transfer)
        except self._errors.ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404", "NotFound") or self._status(exc) == 404:
                return False
            raise self._unavailable(f"cannot read {key}", exc) from exc
        except (self._errors.BotoCoreError, self._boto3_errors.RetriesExceededError) as exc:
            raise self._unavailable(f"cannot read {key}", exc) from exc
        return True
