"""What both dialects share: the vendor's request as the one exports service's request."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from skuport.errors import ValidationFailed
from skuport.exports.schemas import ExportCreate


def export_request(**values: Any) -> ExportCreate:
    """The native request from translated values; what it refuses is a 422 naming the field."""
    try:
        return ExportCreate(**values)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
            for error in exc.errors()
        ]
        raise ValidationFailed(
            f"Invalid export: {details[0]['field']}: {details[0]['message']}",
            code="invalid_export",
            details=details,
        ) from exc
