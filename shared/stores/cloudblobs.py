"""Blob storage in the cloud: :class:`AzureBlobStore` (Azure Blob Storage) and :class:`S3BlobStore` (Amazon S3).

Both keep the :class:`~shared.stores.ports.BlobStore` port exactly as the local
:class:`~shared.stores.blobs.LocalBlobStore` does: ``put`` overwrites, ``get``
of a missing key is ``None``, and the same keys are refused
(:class:`~shared.stores.blobs.BlobKeyError`: empty, longer than 1024
characters, with NUL or a backslash, absolute, or with an empty, ``.`` or
``..`` segment), so a key that works in one store works in all three.

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
_AZURE_OPTIONS: dict[str, Any] = {"max_single_put_size": MULTIPART_THRESHOLD, "max_block_size": 4 * 1024 * 1024}


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

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        try:
            self._container.upload_blob(self.prefix + key, data, overwrite=True, max_concurrency=MAX_CONCURRENCY)
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise StoreUnavailable(f"{self.name}: cannot write {key} ({exc})") from exc
        except HttpResponseError as exc:
            if _transient(exc.status_code):
                raise StoreUnavailable(f"{self.name}: cannot write {key} (HTTP {exc.status_code})") from exc
            raise
        self._counted("put")

    def get(self, key: str) -> bytes | None:
        check_key(key)
        self._counted("get")
        try:
            return self._container.download_blob(self.prefix + key, max_concurrency=MAX_CONCURRENCY).readall()
        except ResourceNotFoundError:
            return None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise StoreUnavailable(f"{self.name}: cannot read {key} ({exc})") from exc
        except HttpResponseError as exc:
            if _transient(exc.status_code):
                raise StoreUnavailable(f"{self.name}: cannot read {key} (HTTP {exc.status_code})") from exc
            raise


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
        transfer = importlib.import_module("boto3.s3.transfer")
        self._transfer = transfer.TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=MAX_CONCURRENCY
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
