"""Commerce Layer's export API (seed 004), at ``/compat/commercelayer/api``: JSON:API throughout.

Requests and responses are ``application/vnd.api+json``; errors are JSON:API error objects
(``{"errors": [{"status", "code", "title", "detail", "source": {"pointer"}}]}``), whatever raised them:
the exports service, authentication, or the body's validation. ``resource_type`` ``skus`` and ``products``
name skuport's records; the vendor's ``code`` and ``name`` are the ``sku`` and ``product-name``
attributes, in ``fields`` and in (suffixed) ``filters``. An export holds at most
``SKUPORT_COMPAT_COMMERCELAYER_MAX_RECORDS`` records (10,000, as the vendor documents).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_snake
from starlette.exceptions import HTTPException as StarletteHTTPException

from skuport.api import DeclaredErrorsRoute, Flag, SessionDep, iso_z
from skuport.auth.deps import CurrentUser
from skuport.compat.translate import export_request
from skuport.config import get_settings
from skuport.errors import SkuportError, ValidationFailed
from skuport.exporting.selection import ExportFormat, Include
from skuport.exports import service
from skuport.exports.models import Export, ExportStatus
from skuport.exports.schemas import ResourceType

BASE = "/compat/commercelayer/api"
MEDIA_TYPE = "application/vnd.api+json"
VENDOR_NAMES = {"code": "sku", "name": "product-name"}
"""Commerce Layer's sku fields -> the demo catalogue's attribute aliases (fields and filters)."""
_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "RECORD_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
}
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Record not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation error",
    429: "Too many requests",
}
_FILTER_OPERATORS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "contains", "exists")
_STATUS = {
    ExportStatus.PENDING: "pending",
    ExportStatus.IN_PROGRESS: "in_progress",
    ExportStatus.COMPLETED: "completed",
    ExportStatus.FAILED: "interrupted",
    ExportStatus.INTERRUPTED: "interrupted",
}


class JsonApiResponse(JSONResponse):
    """A JSON:API document."""

    media_type = MEDIA_TYPE


def _error(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    pointer: str | None = None,
    native: str | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "status": str(status),
        "code": code or _CODES.get(status, "ERROR"),
        "title": _TITLES.get(status, "Error"),
        "detail": detail,
    }
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    if native:
        error["meta"] = {"code": native}  # skuport's error code, for those who know it
    return error


def _errors(status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None) -> Response:
    return JsonApiResponse({"errors": errors}, status_code=status, headers=headers)


def router_error(status: int, detail: str, headers: dict[str, str] | None) -> JsonApiResponse:
    """An error the router answers itself (no such route, wrong method), as a JSON:API error object."""
    return JsonApiResponse({"errors": [_error(status, detail)]}, status_code=status, headers=headers)


def _pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return "/" + "/".join(parts)


def _from_skuport(exc: SkuportError) -> Response:
    errors = []
    for item in exc.details:
        if isinstance(item, dict) and isinstance(item.get("field"), str):
            detail = str(item.get("message") or exc.message)
            errors.append(
                _error(exc.status_code, detail, pointer=_attribute_pointer(item["field"]), native=exc.code)
            )
    return _errors(exc.status_code, errors or [_error(exc.status_code, exc.message, native=exc.code)])


_NATIVE_ATTRIBUTES = {
    "format": "format",
    "filters": "filters",
    "fields": "fields",
    "includes": "includes",
    "metadata": "metadata",
    "dimensionScope": "filters",
}


def _attribute_pointer(field: str) -> str:
    name = field.split(".")[0]
    return f"/data/attributes/{_NATIVE_ATTRIBUTES.get(name, to_snake(name))}"


class JsonApiRoute(DeclaredErrorsRoute):
    """A route whose every error, raised anywhere in the request's handling, is a JSON:API error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SkuportError as exc:
                return _from_skuport(exc)
            except RequestValidationError as exc:
                if any(err.get("type") == "json_invalid" for err in exc.errors()):
                    return _errors(400, [_error(400, "The request body is not valid JSON.")])
                return _errors(
                    422,
                    [
                        _error(422, str(err.get("msg", "invalid")), pointer=_pointer(err["loc"]))
                        for err in exc.errors()
                    ],
                )
            except StarletteHTTPException as exc:
                return _errors(
                    exc.status_code,
                    [_error(exc.status_code, str(exc.detail))],
                    headers=getattr(exc, "headers", None),
                )

        return route


class ErrorSource(BaseModel):
    pointer: str = Field(examples=["/data/attributes/format"])


class ErrorObject(BaseModel):
    """One JSON:API error object."""

    status: str = Field(examples=["422"])
    code: str = Field(examples=["VALIDATION_ERROR"])
    title: str
    detail: str
    source: ErrorSource | None = None
    meta: dict[str, Any] | None = Field(default=None, description="skuport's own error code.")


class ErrorDocument(BaseModel):
    """Every error of this dialect: ``{"errors": [...]}``."""

    errors: list[ErrorObject]


_DESCRIPTIONS = {
    400: "Malformed document",
    401: "Missing, invalid or expired token",
    403: "Role not allowed",
    404: "No such export",
    409: "Conflict with the export's status",
    413: "Document too large",
    415: "Not application/vnd.api+json",
    422: "Validation failed",
    429: "Too many exports pending or in progress",
}


def _error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorDocument, "description": _DESCRIPTIONS[code]} for code in codes}


JsonApiRoute.error_model = ErrorDocument
router = APIRouter(
    tags=["compat: Commerce Layer"], route_class=JsonApiRoute, default_response_class=JsonApiResponse
)


# --- documents --------------------------------------------------------------------------------------


class CreateAttributes(BaseModel):
    """``data.attributes`` of a new export (seed 004)."""

    model_config = ConfigDict(extra="forbid")

    resource_type: Literal["skus", "products", "records"] = Field(
        description="What to export: skus and products are skuport's records."
    )
    format: Literal["json", "csv"] = Field(default="json", description="json (default) or csv.")
    includes: list[Include] = Field(default_factory=list, description="categories or completeness.")
    fields: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=500
    )
    filters: dict[str, Any] | None = Field(default=None, examples=[{"code_eq": "CW-001"}])
    dry_data: Flag = False
    reference: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    reference_origin: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class CreateData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["exports"]
    attributes: CreateAttributes


class CreateDocument(BaseModel):
    """``POST /exports``: ``{"data": {"type": "exports", "attributes": {…}}}``."""

    model_config = ConfigDict(extra="forbid")

    data: CreateData


class UpdateAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interrupt: Literal[True] = Field(alias="_interrupt", description="Interrupt the export.")


class UpdateData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["exports"]
    id: str | None = None
    attributes: UpdateAttributes


class UpdateDocument(BaseModel):
    """``PATCH /exports/{id}``: ``{"data": {"type": "exports", "attributes": {"_interrupt": true}}}``."""

    model_config = ConfigDict(extra="forbid")

    data: UpdateData


class ExportAttributes(BaseModel):
    """Seed 004's attributes of an export."""

    resource_type: str = Field(examples=["skus"])
    format: str = Field(examples=["json"])
    status: Literal["pending", "in_progress", "completed", "interrupted"]
    includes: list[str]
    fields: list[str] | None
    filters: dict[str, Any] | None
    dry_data: bool
    started_at: str | None
    completed_at: str | None
    interrupted_at: str | None
    records_count: int | None
    attachment_url: str | None = Field(description="Downloads the file without a token, until it expires.")
    errors_log: dict[str, Any]
    created_at: str
    updated_at: str
    reference: str | None
    reference_origin: str | None
    metadata: dict[str, Any]


class ExportResource(BaseModel):
    """An export as a JSON:API resource object."""

    id: str
    type: Literal["exports"]
    links: dict[str, str]
    attributes: ExportAttributes
    relationships: dict[str, Any]
    meta: dict[str, Any]


class ExportDocument(BaseModel):
    data: ExportResource


class ExportListDocument(BaseModel):
    data: list[ExportResource]
    meta: dict[str, int]
    links: dict[str, str]


class EventResource(BaseModel):
    id: str
    type: Literal["events"]
    attributes: dict[str, str]
    links: dict[str, str]


class EventsDocument(BaseModel):
    data: list[EventResource]


class LinkageDocument(BaseModel):
    data: list[dict[str, str]]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + BASE


def _vendor_name(name: str) -> str:
    return VENDOR_NAMES.get(name, name)


def _filters(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """The vendor's filter keys (``code_eq``, ``name``) in skuport's names (``sku_eq``, ``product-name``)."""
    if filters is None:
        return None
    translated: dict[str, Any] = {}
    for key, value in filters.items():
        base, _, operator = key.rpartition("_")
        if base and operator in _FILTER_OPERATORS:
            translated[f"{_vendor_name(base)}_{operator}"] = value
        else:
            translated[_vendor_name(key)] = value
    return translated


def _resource(export: Export, request: Request) -> dict[str, Any]:
    """An export as a JSON:API resource object, with seed 004's attributes."""
    base = _base(request)
    self_url = f"{base}/exports/{export.id}"

    def stamp(value: dt.datetime | None) -> str | None:
        return iso_z(value) if value is not None else None

    vendor = export.metadata_json or {}
    return {
        "id": export.id,
        "type": "exports",
        "links": {"self": self_url},
        "attributes": {
            "resource_type": export.resource_type,
            "format": export.format,
            "status": _STATUS[ExportStatus(export.status)],
            "includes": list(export.includes or []),
            "fields": export.fields,
            "filters": export.filters,
            "dry_data": export.dry_data,
            "started_at": stamp(export.started_at),
            "completed_at": stamp(export.completed_at),
            "interrupted_at": stamp(export.interrupted_at or export.failed_at),
            "records_count": export.progress_total if export.record_count is None else export.record_count,
            "attachment_url": service.download_url(export, base_url=str(request.base_url)),
            "errors_log": export.errors_log or {},
            "created_at": stamp(export.created_at),
            "updated_at": stamp(export.updated_at),
            "reference": export.reference,
            "reference_origin": export.reference_origin,
            "metadata": vendor,
        },
        "relationships": {
            "events": {
                "links": {"self": f"{self_url}/relationships/events", "related": f"{self_url}/events"}
            },
        },
        "meta": {"mode": "live", "organization_id": "skuport"},
    }


def _events(export: Export) -> list[tuple[str, Any]]:
    """What happened to an export, oldest first: (event name, when)."""
    happened = [
        ("create", export.created_at),
        ("start", export.started_at),
        ("complete", export.completed_at),
        ("fail", export.failed_at),
        ("interrupt", export.interrupted_at),
    ]
    return [(name, when) for name, when in happened if when is not None]


def _json_api_body(request: Request) -> None:
    """Refuse a body that is not a JSON:API document (415) before reading it."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (MEDIA_TYPE, "application/json"):
        raise SkuportError(
            f"Send the document as {MEDIA_TYPE}.", status_code=415, code="unsupported_media_type"
        )


# --- endpoints --------------------------------------------------------------------------------------


@router.post(
    "/exports",
    status_code=201,
    dependencies=[Depends(_json_api_body)],
    response_model=ExportDocument,
    responses=_error_responses(415, 429),
)
def create_export(
    document: Annotated[CreateDocument, Body(media_type=MEDIA_TYPE)],
    request: Request,
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    """Create an export of skus (records): 201 with the export resource, pending until a worker starts it."""
    attributes = document.data.attributes
    body = export_request(
        resource_type=ResourceType(attributes.resource_type),
        format=ExportFormat(attributes.format),
        includes=attributes.includes,
        fields=[_vendor_name(f) for f in attributes.fields or []] or None,
        filters=_filters(attributes.filters),
        dry_data=attributes.dry_data,
        reference=attributes.reference,
        reference_origin=attributes.reference_origin,
        metadata=attributes.metadata,
        dimension_scope={},
    )  # the vendor has no scopes: one column (key) per field, its global value
    limit = get_settings().compat_commercelayer_max_records
    export = service.create_export(session, body=body, user=user, max_records=limit or None)
    resource = _resource(export, request)
    return JsonApiResponse(
        {"data": resource}, status_code=201, headers={"Location": resource["links"]["self"]}
    )


@router.get("/exports", response_model=ExportListDocument)
def list_exports(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    number: Annotated[int, Query(alias="page[number]", ge=1, le=2**31 - 1)] = 1,
    size: Annotated[int, Query(alias="page[size]", ge=1, le=25)] = 10,
) -> Response:
    """Your exports (everyone's for admins), newest first, a page at a time (at most 25 per page)."""
    rows, total = service.list_exports(session, user=user, offset=(number - 1) * size, limit=size)
    pages = max(1, math.ceil(total / size))
    url = f"{_base(request)}/exports"

    def page(n: int) -> str:
        return f"{url}?{urlencode({'page[number]': n, 'page[size]': size})}"

    links = {"first": page(1), "last": page(pages)}
    if number > 1:
        links["prev"] = page(min(number - 1, pages))
    if number < pages:
        links["next"] = page(number + 1)
    return JsonApiResponse(
        {
            "data": [_resource(e, request) for e in rows],
            "meta": {"record_count": total, "page_count": pages},
            "links": links,
        }
    )


@router.get("/exports/{export_id}", response_model=ExportDocument)
def get_export(export_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """One export: its status, records count and, once completed, its attachment URL."""
    return JsonApiResponse(
        {"data": _resource(service.get_export(session, export_id=export_id, user=user), request)}
    )


@router.patch(
    "/exports/{export_id}",
    dependencies=[Depends(_json_api_body)],
    response_model=ExportDocument,
    responses=_error_responses(409, 415),
)
def update_export(
    export_id: str,
    document: Annotated[UpdateDocument, Body(media_type=MEDIA_TYPE)],
    request: Request,
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    """Interrupt a pending or in-progress export (``"_interrupt": true``)."""
    if document.data.id is not None and document.data.id != export_id:
        raise ValidationFailed(
            "data.id does not match the export of the URL.",
            details=[{"field": "id", "message": "data.id does not match the URL."}],
        )
    export = service.interrupt_export(session, export_id=export_id, user=user)
    return JsonApiResponse({"data": _resource(export, request)})


@router.delete("/exports/{export_id}", status_code=204, response_model=None)
def delete_export(export_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """Delete an export and its file (a running export is interrupted first)."""
    service.delete_export(session, export_id=export_id, user=user)
    return Response(status_code=204)


@router.get("/exports/{export_id}/events", response_model=EventsDocument)
def export_events(export_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """What happened to the export (create, start, complete, fail, interrupt), oldest first."""
    export = service.get_export(session, export_id=export_id, user=user)
    return JsonApiResponse(
        {
            "data": [
                {
                    "id": f"{export.id}-{name}",
                    "type": "events",
                    "attributes": {"name": name, "created_at": iso_z(when)},
                    "links": {"self": f"{_base(request)}/exports/{export.id}/events"},
                }
                for name, when in _events(export)
            ]
        }
    )


@router.get("/exports/{export_id}/relationships/events", response_model=LinkageDocument)
def export_event_links(export_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """The export's events as resource identifiers."""
    export = service.get_export(session, export_id=export_id, user=user)
    return JsonApiResponse(
        {"data": [{"type": "events", "id": f"{export.id}-{name}"} for name, _when in _events(export)]}
    )
