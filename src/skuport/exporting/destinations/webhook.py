"""The webhook destination (httpx): the file as the body, Standard Webhooks signature, retries, SSRF guard."""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import ipaddress
import logging
import random
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import httpcore
import httpx
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from skuport.exporting.destinations import network
from skuport.exporting.destinations.base import (
    Delivery,
    DeliveryError,
    DestinationConfig,
    Fence,
    parse_config,
    redact,
)

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "upgrade",
        "te",
        "trailer",
        "expect",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
CHUNK = 64 * 1024


class WebhookConfig(DestinationConfig):
    """Receiver URL, method, extra headers, signing secret, timeout and attempts."""

    url: str = Field(max_length=2048)
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    secret: str | None = Field(default=None, min_length=8, max_length=1024)
    timeout_seconds: float = Field(default=30, gt=0, le=300)
    max_attempts: int = Field(default=5, ge=1, le=10)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
            raise ValueError("url must be an http:// or https:// URL with a host name")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError("url has an invalid port") from None
        if network.at_create(info):
            network.check_url(value)
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by skuport and cannot be configured")
            if any(ch in header_value for ch in "\r\n\x00"):
                raise ValueError(f"header {name!r} must not contain line breaks or NUL")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value and value.startswith("whsec_"):
            try:
                if not base64.b64decode(value[len("whsec_") :], validate=True):
                    raise ValueError
            except (binascii.Error, ValueError):
                raise ValueError("a 'whsec_' secret must be followed by base64") from None
        return value


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: ``whsec_<base64>`` decoded, any other string as UTF-8."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode()


def sign_file(key: bytes, msg_id: str, timestamp: int, path: Path) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}." + body>``, reading the body in chunks."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode(), hashlib.sha256)
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            mac.update(chunk)
    return "v1," + base64.b64encode(mac.digest()).decode()


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe for messages and run history."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))


def resolve_checked(host: str, port: int) -> str:
    """Resolve ``host`` to one address to connect to, through the network guard."""
    try:
        return network.resolve_checked(host, port, what="Webhook")
    except network.NetworkRefused:
        raise
    except DeliveryError as exc:  # the name did not resolve: worth another attempt
        raise _Retryable(exc.message) from None


class _Retryable(Exception):
    """A failure worth another attempt (connection trouble, 5xx, 429)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _PinnedBackend(httpcore.SyncBackend):
    """Connect to the address that was checked, whatever DNS says by now (no DNS rebinding)."""

    def __init__(self, address: str) -> None:
        self._address = address

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        """Open the TCP connection to the pinned address; TLS still verifies the URL's host name."""
        return super().connect_tcp(
            self._address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class WebhookDestination:
    """POST (or PUT) the file to a URL, signed, with retries and backoff."""

    config_model: ClassVar[type[BaseModel]] = WebhookConfig
    type: ClassVar[str] = "webhook"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"url", "secret", "headers.*"})
    can_remove: ClassVar[bool] = False
    secret_urls: ClassVar[frozenset[str]] = frozenset({"url"})
    """The URL may carry credentials (user info, a token in the query): encrypted at rest, and shown
    with those parts masked (``https://********@host/hook?token=********``)."""
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = parse_config(WebhookConfig, config, type_=self.type)

    def destination_path(self, filename: str) -> str:
        """The receiver's URL (without query string or user info)."""
        return public_url(self.config.url)

    def test_connection(self) -> None:
        """Check the receiver's address is allowed and a TCP connection opens."""
        parts = urlsplit(self.config.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = resolve_checked(parts.hostname or "", port)
            with socket.create_connection((address, port), timeout=self.config.timeout_seconds):
                pass
        except network.NetworkRefused:
            raise self._fail(f"Webhook connection test failed: {network.POLICY}.") from None
        except _Retryable as exc:
            raise self._fail(f"Webhook connection test failed: {exc.reason}. Check the url.") from None
        except OSError as exc:
            raise self._fail(
                f"Webhook connection test failed: cannot reach {public_url(self.config.url)} "
                f"({exc.strerror or exc}). Check the url and the receiver."
            ) from None

    def deliver(self, delivery: Delivery) -> str:
        """Send the file; retry 5xx, 429 and connection errors with backoff; never retry other 4xx."""
        cfg = self.config
        target = public_url(cfg.url)
        last = ""
        for attempt in range(1, cfg.max_attempts + 1):
            # Every POST is visible to the receiver: only while the run still holds its lease.
            delivery.before_visible()
            try:
                self._attempt(delivery)
                log.info("delivered %s to %s (attempt %d)", delivery.filename, target, attempt)
                return target
            except _Retryable as exc:
                last = exc.reason
                if attempt == cfg.max_attempts:
                    break
                delay = self._backoff(attempt)
                if exc.retry_after is not None:
                    if exc.retry_after > self.retry_after_cap:
                        raise self._fail(
                            f"Webhook {cfg.method} to {target} failed: {exc.reason}, and the receiver asked "
                            f"to retry after {exc.retry_after:.0f} s, longer than skuport waits within one "
                            f"run ({self.retry_after_cap:.0f} s). The run can be retried later.",
                            transient=True,
                        ) from None
                    delay = max(delay, exc.retry_after)
                log.warning(
                    "webhook %s to %s, attempt %d/%d: %s; retrying in %.1f s",
                    cfg.method,
                    target,
                    attempt,
                    cfg.max_attempts,
                    exc.reason,
                    delay,
                )
                self._pause(delivery, delay)
        raise self._fail(
            f"Webhook {cfg.method} to {target} failed after {cfg.max_attempts} attempt"
            f"{'s' if cfg.max_attempts != 1 else ''}: {last}. Check that the receiver is up "
            "and accepts the file; the run can be retried.",
            transient=True,
        )

    def remove(self, filenames: Sequence[str], fence: Fence) -> None:
        """A receiver's files cannot be taken back: what belongs to a delivery is what its manifest (sent
        last) lists."""
        if filenames:
            log.info(
                "webhook: %d earlier part(s) cannot be withdrawn; the manifest lists the current ones",
                len(filenames),
            )

    def _pause(self, delivery: Delivery, delay: float) -> None:
        """Wait before the next attempt; a cancelled run stops waiting at once."""
        if self.sleep is not time.sleep:
            self.sleep(delay)
        elif delivery.fence.cancel.wait(delay):
            delivery.before_visible()

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random, capped."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))

    def _attempt(self, delivery: Delivery) -> None:
        cfg = self.config
        parts = urlsplit(cfg.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve_checked(parts.hostname or "", port)
        size = delivery.path.stat().st_size
        headers = {
            **cfg.headers,
            "Content-Type": delivery.content_type,
            "Content-Length": str(size),
            "User-Agent": "skuport-webhook/1",
        }
        if not any(name.lower() == "content-disposition" for name in cfg.headers):  # the job's own wins
            headers["Content-Disposition"] = _disposition(delivery.filename)
        if cfg.secret:
            timestamp = int(time.time())
            message_id = delivery.message_id or delivery.delivery_id
            headers["webhook-id"] = message_id
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = sign_file(
                signing_key(cfg.secret), message_id, timestamp, delivery.path
            )
        transport = httpx.HTTPTransport(retries=0)
        transport._pool._network_backend = _PinnedBackend(address)
        timeout = httpx.Timeout(cfg.timeout_seconds)
        try:
            with httpx.Client(
                transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
            ) as client:
                response = client.request(cfg.method, cfg.url, headers=headers, content=_chunks(delivery))
        except httpx.TimeoutException:
            raise _Retryable(f"no answer within {cfg.timeout_seconds:g} s (timeout)") from None
        except httpx.TransportError as exc:
            reason = str(exc) or "connection closed"
            raise _Retryable(f"connection failed ({type(exc).__name__}: {reason})") from None
        status = response.status_code
        said = self._snippet(response)
        if 200 <= status < 300:
            return
        answer = f"{status} {response.reason_phrase}".strip()
        if said:
            answer += f" (receiver said: {said!r})"
        if status == 429 or status >= 500:
            wait = _retry_after(response.headers.get("retry-after")) if status == 429 else None
            raise _Retryable(answer, wait)
        target = public_url(cfg.url)
        if 300 <= status < 400:
            raise self._fail(
                f"Webhook {cfg.method} to {target} was redirected: {answer}. skuport does not "
                "follow redirects; set url to the final address."
            )
        raise self._fail(
            f"Webhook {cfg.method} to {target} was refused: {answer}. Not retried; check the "
            "url, method, headers and signing secret the receiver expects."
        )

    def _snippet(self, response: httpx.Response) -> str:
        text = response.text[:200] if response.content else ""
        text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
        return redact(text, self._secrets())

    def _secrets(self) -> list[str | None]:
        # Header values often carry tokens; short ones ("true", "text/csv") would only garble messages.
        from skuport.secrets import url_credentials

        return [
            self.config.secret,
            *(v for v in self.config.headers.values() if len(v) >= 8),
            *url_credentials(self.config.url),
        ]

    def _fail(self, message: str, *, transient: bool = False) -> DeliveryError:
        return DeliveryError(redact(message, self._secrets()), transient=transient)


def _chunks(delivery: Delivery) -> Iterator[bytes]:
    """The body in chunks; a cancelled run stops sending (the receiver sees an incomplete request)."""
    with delivery.path.open("rb") as src:
        while chunk := src.read(CHUNK):
            delivery.between_chunks()
            yield chunk


def _disposition(filename: str) -> str:
    """``attachment`` with the file's name (its last part; RFC 6266, UTF-8 names in ``filename*``)."""
    name = filename.rpartition("/")[2]
    ascii_name = name.encode("ascii", "replace").decode().replace("\\", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
