"""The destination protocol: validate config, test the connection, deliver a file."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from skuport.errors import SkuportError

MASK = "********"
"""What a secret looks like in an API answer, an error or a log line."""


class DeliveryError(SkuportError):
    """Delivering the file failed."""

    status_code = 502
    code = "delivery_failed"

    def __init__(self, message: str | None = None, *, transient: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.transient = transient
        """True for failures worth another attempt later (connection, timeout, 5xx, throttling)."""


class DestinationConfigError(SkuportError):
    """The destination configuration is invalid."""

    status_code = 422
    code = "invalid_destination_config"


class Fence(Protocol):
    """The right to make a delivery visible: a run's lease (skuport.scheduling.lifecycle.Lease)."""

    cancel: threading.Event

    def check(self) -> None:
        """Raise :class:`~skuport.errors.WorkStopped` unless the work may still do something visible."""


class _Unfenced:
    """The fence of a delivery that no lease owns (the CLI, a connection test)."""

    cancel = threading.Event()

    def check(self) -> None:
        """Always allowed."""


UNFENCED: Fence = _Unfenced()


@dataclass(frozen=True)
class Delivery:
    """One file to deliver, with what the receiver needs to know about it.

    A compressed file is delivered as a file (``application/gzip``), never with a Content-Encoding: the
    Azure SDK and browsers would decompress it silently and hand out a plain file named ``.gz``.
    """

    path: Path
    filename: str
    content_type: str
    delivery_id: str
    """Stable across retries of the same scheduled run (webhook-id, idempotency, ``.part`` names)."""
    fence: Fence = UNFENCED
    """Checked right before every step a reader can see; its cancel is looked at between chunks."""
    message_id: str | None = None
    """The receiver's idempotency key where it differs from ``delivery_id`` (a part of a split export:
    its content's, so a receiver that de-duplicates keeps no part the manifest does not list)."""

    def before_visible(self) -> None:
        """Right before a step a reader can see: raise WorkStopped unless the lease still holds."""
        self.fence.check()

    def between_chunks(self) -> None:
        """Between two chunks of a transfer: stop at once if the work was cancelled."""
        if self.fence.cancel.is_set():
            self.fence.check()

    @property
    def part_suffix(self) -> str:
        """A temporary-name suffix derived from the delivery, so a retry replaces what a failed try left."""
        return f".{hashlib.sha256(self.delivery_id.encode()).hexdigest()[:12]}.part"


class Destination(Protocol):
    """A place export files are delivered to; one module per type, registered in one dict."""

    config_model: ClassVar[type[BaseModel]]
    type: ClassVar[str]
    secret_fields: ClassVar[frozenset[str]]
    can_remove: ClassVar[bool]
    """Whether :meth:`remove` deletes (a webhook receiver's files cannot be taken back)."""

    def __init__(self, config: Mapping[str, Any]) -> None: ...

    def test_connection(self) -> None:
        """Check that the destination is reachable and writable; raise DeliveryError if not."""

    def destination_path(self, filename: str) -> str:
        """Where ``filename`` will land, e.g. ``s3://bucket/key``."""
        ...

    def deliver(self, delivery: Delivery) -> str:
        """Deliver the file atomically; return its destination path; raise DeliveryError."""
        ...

    def remove(self, filenames: Sequence[str], fence: Fence) -> None:
        """Delete these files where present (parts an earlier attempt left), each under ``fence``."""
        ...


class DestinationConfig(BaseModel):
    """Base of the per-destination config models: camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=True,
        hide_input_in_errors=True,
    )


M = TypeVar("M", bound=BaseModel)


def parse_config(
    model: type[M], config: Mapping[str, Any] | None, *, type_: str, check_network: bool = False
) -> M:
    """Validate ``config`` against ``model``; a DestinationConfigError (422) lists what is wrong.

    ``check_network``: also pass configured addresses through the network guard (create and PUT; a
    delivery checks again right before it connects, pinned to what it checked).
    """
    if config is not None and not isinstance(config, Mapping):
        raise DestinationConfigError(
            f"destinationConfig for '{type_}' must be an object.",
            details=[{"field": "destinationConfig", "message": "must be an object", "type": "dict_type"}],
        )
    try:
        return model.model_validate(dict(config or {}), context={"check_network": check_network})
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(["destinationConfig", *(str(p) for p in err["loc"])]),
                "message": err["msg"].removeprefix("Value error, "),
                "type": err["type"],
            }
            for err in exc.errors(include_input=False)
        ]
        first = details[0]
        raise DestinationConfigError(
            f"Invalid {type_} destinationConfig: {first['field']}: {first['message']}", details=details
        ) from None


def join_key(prefix: str, filename: str) -> str:
    """``prefix`` (a folder, with or without a trailing slash) joined with ``filename`` by one slash."""
    prefix = prefix.strip("/")
    return f"{prefix}/{filename}" if prefix else filename


MAX_PATH_LENGTH = 1024
"""Longest destination path or file name template accepted (file systems allow about 4096)."""
MAX_PATH_DEPTH = 32
"""Most folder levels in a destination path."""
MAX_NAME_BYTES = 255
"""Longest single path part, in bytes (every common file system's limit)."""


def check_relative_path(value: str, *, what: str, allow_empty: bool = True) -> str:
    """Refuse a path that could leave its base: absolute, ``..``, backslashes, NUL or control characters."""
    if not value:
        if allow_empty:
            return value
        raise ValueError(f"{what} must not be empty")
    if "\\" in value:
        raise ValueError(f"{what} must use forward slashes, not backslashes")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{what} must not contain NUL or control characters")
    parts = value.strip("/").split("/")
    if ".." in parts or ".." in value:
        raise ValueError(f"{what} must not contain '..'")
    if len(value) > MAX_PATH_LENGTH:
        raise ValueError(f"{what} must be at most {MAX_PATH_LENGTH} characters")
    if len(parts) > MAX_PATH_DEPTH:
        raise ValueError(f"{what} must have at most {MAX_PATH_DEPTH} folder levels")
    if any(len(part.encode()) > MAX_NAME_BYTES for part in parts):
        raise ValueError(f"each part of {what} must be at most {MAX_NAME_BYTES} bytes (file systems' limit)")
    return value


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each (non-trivial) secret replaced by the mask."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text
