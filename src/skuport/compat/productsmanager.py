"""Products Manager's export API (seed 003), at ``/compat/productsmanager/api/v1``.

``POST /exports`` with ``format`` (csv, xlsx, json), ``filters`` and ``fields``; ``GET /exports/{id}``
with the seed's snake_case fields; ``GET /exports/{id}/download`` with the bearer token. Errors keep
skuport's envelope: the seed documents none of its own.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from skuport.api import SessionDep, Timestamp, api_router, error_responses
from skuport.auth.deps import CurrentUser
from skuport.compat.translate import export_request
from skuport.exporting.selection import ExportFormat
from skuport.exports import service
from skuport.exports.models import Export, ExportStatus
from skuport.exports.router import DOWNLOAD_RESPONSES, file_response

router = api_router(tags=["compat: Products Manager"])
BASE = "/compat/productsmanager/api/v1"


class PmFormat(StrEnum):
    """The formats Products Manager exports."""

    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"


class PmStatus(StrEnum):
    """Products Manager's export statuses."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


_STATUS = {
    ExportStatus.PENDING: PmStatus.PENDING,
    ExportStatus.IN_PROGRESS: PmStatus.PROCESSING,
    ExportStatus.COMPLETED: PmStatus.COMPLETED,
    ExportStatus.FAILED: PmStatus.FAILED,
    ExportStatus.INTERRUPTED: PmStatus.FAILED,
}


class PmExportCreate(BaseModel):
    """Body of ``POST /exports`` (seed 003)."""

    model_config = ConfigDict(extra="forbid")

    format: PmFormat = Field(default=PmFormat.CSV, description="Output format: csv, xlsx, or json.")
    filters: dict[str, Any] | None = Field(
        default=None,
        description="Filters to export a subset of the catalogue (GET /records syntax).",
        examples=[{"brand": "Ma Marque"}],
    )
    fields: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Fields to include, in this order; all when omitted.",
        examples=[["ean", "title", "price", "stock"]],
    )


class PmExportCreated(BaseModel):
    """Answer of ``POST /exports``."""

    id: str
    status: PmStatus
    format: PmFormat
    created_at: Timestamp


class PmExport(BaseModel):
    """An export as ``GET /exports/{id}`` shows it (seed 003); ``error`` only when it failed."""

    model_config = ConfigDict(
        json_schema_extra={
            "required": [
                "id",
                "status",
                "format",
                "row_count",
                "file_size_bytes",
                "download_url",
                "expires_at",
                "created_at",
                "completed_at",
            ]
        }
    )

    id: str
    status: PmStatus
    format: PmFormat
    row_count: int | None
    file_size_bytes: int | None
    download_url: str | None = Field(description="This dialect's download route, once completed.")
    expires_at: Timestamp | None
    created_at: Timestamp
    completed_at: Timestamp | None
    error: str | None = Field(default=None, description="Why the export failed (failed exports only).")


def _read(export: Export, request: Request) -> PmExport:
    status = _STATUS[ExportStatus(export.status)]
    available = export.status == ExportStatus.COMPLETED and not export.file_expired
    url = f"{str(request.base_url).rstrip('/')}{BASE}/exports/{export.id}/download" if available else None
    error = None
    if status == PmStatus.FAILED:
        error = (
            "; ".join(f"{kind}: {message}" for kind, message in (export.errors_log or {}).items())
            or "The export was interrupted."
        )
    return PmExport(
        id=export.id,
        status=status,
        format=PmFormat(export.format),
        row_count=export.record_count,
        file_size_bytes=export.file_size,
        download_url=url,
        expires_at=export.expires_at,
        created_at=export.created_at,
        completed_at=export.completed_at,
        error=error,
    )


@router.post("/exports", status_code=202, response_model=PmExportCreated, responses=error_responses(429))
def create_export(body: PmExportCreate, session: SessionDep, user: CurrentUser) -> PmExportCreated:
    """Start an export of the catalogue or a filtered subset; poll it with GET /exports/{id}."""
    # The vendor has no scopes: one column per field, holding its global value.
    export = service.create_export(
        session,
        user=user,
        body=export_request(
            format=ExportFormat(body.format), filters=body.filters, fields=body.fields, dimension_scope={}
        ),
    )
    return PmExportCreated(
        id=export.id, status=PmStatus.PENDING, format=body.format, created_at=export.created_at
    )


@router.get("/exports/{export_id}", response_model=PmExport)
def get_export(export_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """The status of an export and, once completed, its size, row count and download URL."""
    read = _read(service.get_export(session, export_id=export_id, user=user), request)
    return JSONResponse(read.model_dump(mode="json", exclude={"error"} if read.error is None else set()))


@router.get("/exports/{export_id}/download", response_class=Response, responses=DOWNLOAD_RESPONSES)
def download_export(export_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """The completed export's file, as a binary stream."""
    return file_response(service.open_download(session, export_id=export_id, user=user))
