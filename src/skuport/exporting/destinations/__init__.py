"""Destinations: one module per type, registered in one dict keyed by the type string the API accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from skuport.exporting.destinations.azure_blob import AzureBlobDestination
from skuport.exporting.destinations.base import (
    Delivery,
    DeliveryError,
    Destination,
    DestinationConfigError,
    parse_config,
)
from skuport.exporting.destinations.filenames import render_filename, validate_filename_template
from skuport.exporting.destinations.local import LocalDestination
from skuport.exporting.destinations.s3 import S3Destination
from skuport.exporting.destinations.sftp import SftpDestination
from skuport.exporting.destinations.webhook import WebhookDestination

DESTINATIONS: dict[str, type[Destination]] = {
    S3Destination.type: S3Destination,
    AzureBlobDestination.type: AzureBlobDestination,
    SftpDestination.type: SftpDestination,
    WebhookDestination.type: WebhookDestination,
    LocalDestination.type: LocalDestination,
}


def destination_class(type_: str) -> type[Destination]:
    """The class registered for ``type_``; an unknown type is a 422 naming the known ones."""
    try:
        return DESTINATIONS[type_]
    except (KeyError, TypeError):
        known = ", ".join(f"'{name}'" for name in DESTINATIONS)
        raise DestinationConfigError(
            f"Unknown destinationType {type_!r}; use one of {known}.",
            details=[{"field": "destinationType", "message": f"must be one of {known}", "type": "enum"}],
        ) from None


def get_destination(type_: str, config: Mapping[str, Any]) -> Destination:
    """A ready destination of ``type_`` built from its (decrypted) config."""
    return destination_class(type_)(config)


def validate_config(type_: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config, validated and normalised (camelCase keys, unset options left out); 422 if invalid."""
    cls = destination_class(type_)
    model: BaseModel = parse_config(cls.config_model, config, type_=type_, check_network=True)
    return model.model_dump(by_alias=True, exclude_none=True)


def secret_fields(type_: str) -> frozenset[str]:
    """Config keys of ``type_`` holding secrets (``name.*``: every value of that object)."""
    return destination_class(type_).secret_fields


def secret_urls(type_: str) -> frozenset[str]:
    """Secret config keys of ``type_`` that hold URLs: shown with only their credentials masked."""
    return frozenset(getattr(destination_class(type_), "secret_urls", frozenset()))


__all__ = [
    "DESTINATIONS",
    "Delivery",
    "DeliveryError",
    "Destination",
    "DestinationConfigError",
    "destination_class",
    "get_destination",
    "render_filename",
    "secret_fields",
    "secret_urls",
    "validate_config",
    "validate_filename_template",
]
