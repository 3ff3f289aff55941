"""The Azure Blob destination (azure-storage-blob): stage blocks, then commit them in one step."""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from azure.core.credentials import AzureSasCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobBlock, BlobClient, BlobServiceClient, ContentSettings, ExponentialRetry
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool

from skuport.exporting.destinations import network
from skuport.exporting.destinations.base import (
    Delivery,
    DeliveryError,
    DestinationConfig,
    Fence,
    check_relative_path,
    join_key,
    parse_config,
    redact,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

BLOCK_SIZE = 4 * 1024 * 1024


class AzureBlobConfig(DestinationConfig):
    """Container, blob folder, and either a connection string or an account URL with a SAS token or key."""

    container: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    path: str = ""
    connection_string: str | None = None
    account_url: str | None = Field(default=None, pattern=r"^https?://[^?#]+$")
    sas_token: str | None = None
    account_key: str | None = None
    timeout_seconds: float = Field(default=60, gt=0, le=600)

    @field_validator("account_url")
    @classmethod
    def _guarded_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if network.at_create(info):
            network.check_url(value)
        return value

    @field_validator("connection_string")
    @classmethod
    def _guarded_endpoint(cls, value: str | None, info: ValidationInfo) -> str | None:
        if network.at_create(info):
            network.check_url(_blob_endpoint(value))
        return value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return check_relative_path(value.lstrip("/"), what="path")

    @model_validator(mode="after")
    def _one_way_in(self) -> AzureBlobConfig:
        if bool(self.connection_string) == bool(self.account_url):
            raise ValueError("set either connectionString, or accountUrl with sasToken or accountKey")
        if self.account_url and bool(self.sas_token) == bool(self.account_key):
            raise ValueError("with accountUrl, set exactly one of sasToken and accountKey")
        if self.connection_string and (self.sas_token or self.account_key):
            raise ValueError("sasToken and accountKey go with accountUrl, not with connectionString")
        return self


def _without_query(url: str) -> str:
    """``url`` without its query string (a SAS token lives there)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _blob_endpoint(connection_string: str | None) -> str | None:
    """The BlobEndpoint of a connection string (None: the account's public endpoint)."""
    for part in (connection_string or "").split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "blobendpoint":
            return value.strip()
    return None


def _account_name(account_url: str) -> str:
    """The storage account name: the first label of the host, or the first path segment (emulators)."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    if ".blob." in host:
        return host.split(".", 1)[0]
    segment = parts.path.strip("/").split("/", 1)[0]
    return segment or host.split(".", 1)[0]


class _PinnedAdapter(HTTPAdapter):
    """requests' adapter whose connections pass the network guard and go to the checked address."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": network.pinned_pool(HTTPConnectionPool, what="Azure Blob"),
            "https": network.pinned_pool(HTTPSConnectionPool, what="Azure Blob"),
        }


def _pinned_session() -> requests.Session:
    session = requests.Session()
    for scheme in ("http://", "https://"):
        session.mount(scheme, _PinnedAdapter())
    return session


class AzureBlobDestination:
    """Deliver as a block blob: blocks are staged, and the blob appears when the block list is committed."""

    config_model: ClassVar[type[BaseModel]] = AzureBlobConfig
    type: ClassVar[str] = "azure-blob"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"connectionString", "sasToken", "accountKey"})
    can_remove: ClassVar[bool] = True
    block_size: ClassVar[int] = BLOCK_SIZE
    retry_total: int = 2
    retry_initial_backoff: float = 2.0
    """Seconds before the first retry; later ones add 3**n (the storage SDK's exponential policy)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = parse_config(AzureBlobConfig, config, type_=self.type)

    def _service(self) -> BlobServiceClient:
        cfg = self.config
        options: dict[str, Any] = {
            "transport": RequestsTransport(
                session=_pinned_session(),
                session_owner=True,
                connection_timeout=min(cfg.timeout_seconds, 15),
                read_timeout=cfg.timeout_seconds,
            ),
            "connection_timeout": min(cfg.timeout_seconds, 15),
            "read_timeout": cfg.timeout_seconds,
            "retry_policy": ExponentialRetry(
                initial_backoff=self.retry_initial_backoff,  # type: ignore[arg-type]
                increment_base=3,
                retry_total=self.retry_total,
                random_jitter_range=1,
            ),
        }
        try:
            if cfg.connection_string:
                return BlobServiceClient.from_connection_string(cfg.connection_string, **options)
            assert cfg.account_url is not None
            credential: Any
            if cfg.sas_token:
                credential = AzureSasCredential(cfg.sas_token.lstrip("?"))
            else:
                credential = {"account_name": _account_name(cfg.account_url), "account_key": cfg.account_key}
            return BlobServiceClient(cfg.account_url, credential=credential, **options)
        except ValueError:
            raise DeliveryError(
                "Azure Blob client setup failed: the connection string or account URL could not be parsed. "
                "Check connectionString (copy it from the storage account's Access keys page) or accountUrl."
            ) from None

    def _blob(self, filename: str) -> BlobClient:
        return self._service().get_blob_client(self.config.container, join_key(self.config.path, filename))

    def destination_path(self, filename: str) -> str:
        """The blob URL (without any SAS token)."""
        return _without_query(self._blob(filename).url)

    def test_connection(self) -> None:
        """Stage one uncommitted block on a probe blob (proves write access), then remove it."""
        self._guard()
        blob = self._blob(".skuport-connection-test")
        self._call("Put Block", lambda: blob.stage_block(_block_id("probe", 0), b"skuport"))
        with contextlib.suppress(Exception):
            blob.delete_blob()

    def _guard(self) -> None:
        """The network guard, right before connecting (the account's endpoint or a custom one)."""
        cfg = self.config
        endpoint = _blob_endpoint(cfg.connection_string) if cfg.connection_string else cfg.account_url
        if endpoint:
            network.check_connect_url(endpoint, what="Azure Blob")

    def deliver(self, delivery: Delivery) -> str:
        """Stage the file in blocks, then commit the list; uncommitted blocks of a new blob are removed."""
        self._guard()
        blob = self._blob(delivery.filename)
        existed = self._call("Get Blob Properties", blob.exists)
        prefix = uuid.uuid4().hex[:16]
        blocks: list[BlobBlock] = []
        try:
            with delivery.path.open("rb") as src:
                while chunk := src.read(self.block_size):
                    delivery.between_chunks()
                    block_id = _block_id(prefix, len(blocks))
                    stage = functools.partial(blob.stage_block, block_id, chunk, length=len(chunk))
                    self._call("Put Block", stage)
                    blocks.append(BlobBlock(block_id=block_id))
            settings = ContentSettings(content_type=delivery.content_type)
            delivery.before_visible()
            self._call("Put Block List", lambda: blob.commit_block_list(blocks, content_settings=settings))
        except BaseException:
            if not existed:
                # A blob that was never committed holds only our blocks: deleting it discards them.
                with contextlib.suppress(Exception):
                    blob.delete_blob()
            raise
        path = _without_query(blob.url)
        log.info("delivered %s to %s", delivery.filename, path)
        return path

    def remove(self, filenames: Sequence[str], fence: Fence) -> None:
        """Delete these blobs where present."""
        self._guard()
        for filename in filenames:
            blob = self._blob(filename)
            fence.check()
            try:
                blob.delete_blob()
            except ResourceNotFoundError:
                continue
            except Exception as exc:
                raise self._error(exc, "Delete Blob") from None
            log.info("removed %s", _without_query(blob.url))

    def _call(self, operation: str, func: Callable[[], T]) -> T:
        """Run one SDK call, turning its failure into a DeliveryError a person can act on."""
        try:
            return func()
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._error(exc, operation) from None

    def _error(self, exc: BaseException, operation: str) -> DeliveryError:
        refused = network.delivery_error_in(exc)  # the guard, at connect time (wrapped by the SDK)
        if refused is not None:
            return refused
        cfg = self.config
        container = cfg.container
        endpoint = self._endpoint()
        if isinstance(exc, (HttpResponseError, ClientAuthenticationError)):
            status = exc.status_code
            raw_code = getattr(exc, "error_code", None)
            code = str(getattr(raw_code, "value", raw_code) or "")
            reason = (str(exc.message or "").strip().splitlines() or [""])[0]
            if not reason or reason.startswith("Operation returned an invalid status"):
                reason = str(exc.reason or code or "no answer")  # a HEAD answer has no body to read
            reason = reason.split(" Make sure the value of")[0].rstrip(".")
            if status == 403 or code in ("AuthenticationFailed", "AuthorizationFailure"):
                hint = (
                    f"Check the account key, SAS token or connection string for container '{container}' "
                    "(a SAS needs write permission and must not have expired)."
                )
            elif code == "ContainerNotFound" or status == 404:
                hint = f"Check that container '{container}' exists in {endpoint}."
            elif status is not None and status >= 500:
                hint = "The storage service failed; the run can be retried."
            else:
                hint = f"Check the destination settings for container '{container}'."
            text = f"Azure Blob {operation} failed: {reason} ({status}{', ' + code if code else ''}). {hint}"
            transient = status is not None and (status >= 500 or status in (408, 429))
        elif isinstance(exc, ServiceResponseError) and "timed out" in str(exc).lower():
            text = (
                f"Azure Blob {operation} failed: timed out after {cfg.timeout_seconds:g} s waiting for "
                f"{endpoint}. Check network access to the storage account, or raise timeoutSeconds."
            )
            transient = True
        elif isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            text = (
                f"Azure Blob {operation} failed: could not connect to {endpoint}. "
                "Check the account URL / BlobEndpoint and that the server can reach it."
            )
            transient = True
        else:
            text = f"Azure Blob {operation} failed: {type(exc).__name__}: {exc}."
            transient = False
        return DeliveryError(
            redact(text, [cfg.connection_string, cfg.sas_token, cfg.account_key]), transient=transient
        )

    def _endpoint(self) -> str:
        try:
            return _without_query(self._service().url).rstrip("/")
        except DeliveryError:
            return "the storage account"


def _block_id(prefix: str, index: int) -> str:
    """Block ids of one blob must all have the same length: a fixed-width counter."""
    return base64.b64encode(f"{prefix}-{index:06d}".encode()).decode()
