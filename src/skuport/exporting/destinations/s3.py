"""The S3 destination (boto3): multipart upload, the object appears only when complete."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import boto3
from botocore.awsrequest import AWSHTTPConnectionPool, AWSHTTPSConnectionPool
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from skuport.errors import WorkStopped
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

PART_SIZE = 5 * 1024 * 1024
"""Multipart threshold and part size (S3 refuses parts under 5 MiB except the last)."""
_THROTTLED = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "ServiceUnavailable",
        "InternalError",
        "503",
        "500",
    }
)
_CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"})
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "403"})
_MISSING_CODES = frozenset({"NoSuchBucket", "404"})
_WRONG_REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "301", "400"})
"""Error codes S3 answers for wrong credentials, missing permissions, a missing bucket, a wrong region."""


class S3Config(DestinationConfig):
    """Bucket, key prefix, region, optional S3-compatible endpoint and static credentials."""

    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")
    path: str = ""
    region: str | None = Field(default=None, pattern=r"^[a-z0-9\-]+$")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    timeout_seconds: float = Field(default=60, gt=0, le=600)

    @field_validator("endpoint_url")
    @classmethod
    def _guarded(cls, value: str | None, info: ValidationInfo) -> str | None:
        if network.at_create(info):
            network.check_url(value)
        return value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return check_relative_path(value.lstrip("/"), what="path")

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> S3Config:
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValueError(
                "set both accessKeyId and secretAccessKey, or neither (standard credential chain)"
            )
        return self


def _pin(client: Any) -> None:
    """Every connection of this client passes the network guard and goes to the checked address.

    botocore has no public hook for its connection classes: its HTTP session keeps them in
    ``_pool_classes_by_scheme`` (read again for proxy managers) and in its pool manager's
    ``pool_classes_by_scheme``; both are replaced before the first request.
    """
    http = client._endpoint.http_session
    classes = {
        "http": network.pinned_pool(AWSHTTPConnectionPool, what="S3"),
        "https": network.pinned_pool(AWSHTTPSConnectionPool, what="S3"),
    }
    http._pool_classes_by_scheme = classes
    http._manager.pool_classes_by_scheme = classes


def _client_error(exc: BaseException) -> ClientError | None:
    """The ClientError behind ``exc`` (boto3's transfer manager wraps it)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class S3Destination:
    """Upload to ``s3://bucket/path/filename`` with boto3's transfer manager."""

    config_model: ClassVar[type[BaseModel]] = S3Config
    type: ClassVar[str] = "s3"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"accessKeyId", "secretAccessKey"})
    can_remove: ClassVar[bool] = True
    part_size: ClassVar[int] = PART_SIZE
    max_attempts: int = 3
    """Attempts per S3 request (botocore's standard retry mode: throttling, 5xx, connection errors)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = parse_config(S3Config, config, type_=self.type)
        self._cached_client: Any = None

    def _client(self) -> Any:
        if self.config.endpoint_url:  # AWS's own endpoints are public; a custom one passes the guard
            network.check_connect_url(self.config.endpoint_url, what="S3")
        if self._cached_client is None:
            self._cached_client = self._new_client()
        return self._cached_client

    def _new_client(self) -> Any:
        cfg = self.config
        session = boto3.session.Session(
            aws_access_key_id=cfg.access_key_id or None,
            aws_secret_access_key=cfg.secret_access_key or None,
            region_name=cfg.region or None,
        )
        client = session.client(
            "s3",
            endpoint_url=cfg.endpoint_url or None,
            config=BotoConfig(
                connect_timeout=min(cfg.timeout_seconds, 15),
                read_timeout=cfg.timeout_seconds,
                # total_max_attempts counts the first try; botocore's max_attempts counts retries only.
                retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
                s3={"addressing_style": "path"} if cfg.endpoint_url else None,
            ),
        )
        _pin(client)
        return client

    def _key(self, filename: str) -> str:
        return join_key(self.config.path, filename)

    def destination_path(self, filename: str) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.config.bucket}/{self._key(filename)}"

    def test_connection(self) -> None:
        """Check the bucket is reachable with these credentials (HeadBucket)."""
        try:
            self._client().head_bucket(Bucket=self.config.bucket)
        except Exception as exc:
            raise self._error(exc, "HeadBucket") from None

    def deliver(self, delivery: Delivery) -> str:
        """Upload in parts (one PUT below the part size); the object appears only at the fenced last step.

        Incomplete multipart uploads of the same key (a killed attempt's) are aborted first, and this
        attempt's own upload is aborted if it fails or loses its lease.
        """
        key = self._key(delivery.filename)
        extra: dict[str, str] = {"ContentType": delivery.content_type}
        client = self._client()
        bucket = self.config.bucket
        size = delivery.path.stat().st_size
        operation = "PutObject"
        try:
            self._abort_leftovers(client, key)
            if size < self.part_size:
                delivery.before_visible()
                with delivery.path.open("rb") as body:
                    client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
            else:
                operation = "CreateMultipartUpload"
                upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
                try:
                    operation = "UploadPart"
                    parts = self._upload_parts(client, key, upload_id, delivery, size)
                    delivery.before_visible()
                    operation = "CompleteMultipartUpload"
                    client.complete_multipart_upload(
                        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                    )
                except BaseException:
                    with contextlib.suppress(Exception):
                        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                    raise
        except WorkStopped:
            raise
        except Exception as exc:
            raise self._error(exc, operation) from None
        path = self.destination_path(delivery.filename)
        log.info("delivered %s to %s", delivery.filename, path)
        return path

    def remove(self, filenames: Sequence[str], fence: Fence) -> None:
        """Delete these objects (DeleteObject succeeds for a key that is not there)."""
        client = self._client()
        for filename in filenames:
            fence.check()
            try:
                client.delete_object(Bucket=self.config.bucket, Key=self._key(filename))
            except Exception as exc:
                raise self._error(exc, "DeleteObject") from None
            log.info("removed %s", self.destination_path(filename))

    def _upload_parts(
        self, client: Any, key: str, upload_id: str, delivery: Delivery, size: int
    ) -> list[dict[str, Any]]:
        # S3 allows 10,000 parts: grow the part for very large files.
        part_size = max(self.part_size, -(-size // 9_000))
        parts: list[dict[str, Any]] = []
        with delivery.path.open("rb") as src:
            while chunk := src.read(part_size):
                delivery.between_chunks()
                number = len(parts) + 1
                answer = client.upload_part(
                    Bucket=self.config.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
        return parts

    def _abort_leftovers(self, client: Any, key: str) -> None:
        """Abort incomplete multipart uploads of ``key`` (what a killed or failed attempt left)."""
        try:
            answer = client.list_multipart_uploads(Bucket=self.config.bucket, Prefix=key)
            for upload in answer.get("Uploads", []):
                if upload.get("Key") == key:
                    client.abort_multipart_upload(
                        Bucket=self.config.bucket, Key=key, UploadId=upload["UploadId"]
                    )
                    log.info(
                        "aborted an incomplete upload of s3://%s/%s left by an earlier attempt",
                        self.config.bucket,
                        key,
                    )
        except Exception:  # best effort: a bucket policy may forbid listing uploads
            log.debug("could not list or abort multipart uploads of s3://%s/%s", self.config.bucket, key)

    def _error(self, exc: BaseException, operation: str) -> DeliveryError:
        """A message naming the operation, the server's answer and what to check."""
        refused = network.delivery_error_in(exc)  # the guard, at connect time (wrapped by botocore)
        if refused is not None:
            return refused
        client_error = _client_error(exc)
        if client_error is not None:
            text, transient = self._answer_text(client_error, operation)
        else:
            text, transient = self._failure_text(exc, operation)
        return DeliveryError(redact(text, [self.config.secret_access_key]), transient=transient)

    def _answer_text(self, client_error: ClientError, operation: str) -> tuple[str, bool]:
        """The message for an error answer from S3, and whether the run can be retried."""
        err = client_error.response.get("Error", {})
        status = client_error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(err.get("Code") or status or "")
        message = str(err.get("Message") or code or "no message").rstrip(".")
        operation = client_error.operation_name or operation
        hint, transient = self._hint(code, status)
        return f"S3 {operation} failed: {message} ({status or code}). {hint}", transient

    def _hint(self, code: str, status: int | None) -> tuple[str, bool]:
        """What to check for an S3 error code and HTTP status, and whether the run can be retried."""
        cfg = self.config
        bucket = cfg.bucket
        if code in _CREDENTIAL_CODES:
            return f"Check accessKeyId and secretAccessKey for bucket '{bucket}'.", False
        if code in _DENIED_CODES or status == 403:
            return f"Check IAM permissions for bucket '{bucket}'.", False
        if code in _MISSING_CODES or status == 404:
            where = f" in region '{cfg.region}'." if cfg.region else "."
            return f"Check that bucket '{bucket}' exists" + where, False
        if code in _WRONG_REGION_CODES and status in (301, 400):
            configured = f" (configured: '{cfg.region}')." if cfg.region else "."
            return f"Check the region of bucket '{bucket}'" + configured, False
        if (status and status >= 500) or code in _THROTTLED:
            return "The S3 service failed or throttled; the run can be retried.", True
        return f"Check the destination settings for bucket '{bucket}'.", False

    def _failure_text(self, exc: BaseException, operation: str) -> tuple[str, bool]:
        """The message for a failure without an answer from S3, and whether the run can be retried."""
        failed = f"S3 {operation} failed"
        if isinstance(exc, NoCredentialsError):
            return (
                f"{failed}: no AWS credentials found. Set accessKeyId and secretAccessKey, "
                "or configure the standard AWS credential chain on the skuport server."
            ), False
        if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
            return (
                f"{failed}: timed out after {self.config.timeout_seconds:g} s talking to "
                f"{self._endpoint()}. Check network access to the endpoint, or raise timeoutSeconds."
            ), True
        if isinstance(exc, EndpointConnectionError):
            return (
                f"{failed}: could not connect to {self._endpoint()}. "
                "Check endpointUrl/region and that the server can reach it."
            ), True
        if isinstance(exc, HTTPClientError):
            return (
                f"{failed}: the connection to {self._endpoint()} broke ({exc}). The run can be retried."
            ), True
        if isinstance(exc, BotoCoreError):
            return (
                f"{failed}: {exc}. Check the destination settings for bucket '{self.config.bucket}'."
            ), False
        if isinstance(exc, OSError):
            return f"{failed}: {exc.strerror or exc}. Check network access to {self._endpoint()}.", True
        return f"{failed}: {type(exc).__name__}: {exc}.", False

    def _endpoint(self) -> str:
        if self.config.endpoint_url:
            return self.config.endpoint_url
        return f"S3 in region '{self.config.region or 'default'}'"
