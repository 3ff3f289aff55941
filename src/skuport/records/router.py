"""Records endpoints (seed 002)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from skuport.api import FILTER_PARAMETER, SessionDep, api_router, query_objects
from skuport.auth.deps import CurrentUser, Principal, require_roles
from skuport.auth.roles import RECORD_WRITE
from skuport.errors import ValidationFailed
from skuport.records import service
from skuport.records.filters import parse_query_filters
from skuport.records.models import AuditEntry, Record
from skuport.records.schemas import (
    AuditEntryRead,
    AvailableTransition,
    CategoryAssign,
    CategoryAssignment,
    Completeness,
    RecordCreate,
    RecordList,
    RecordRead,
    RecordUpdate,
    SortOrder,
    TransitionRequest,
    ValuesPatch,
)

router = api_router(tags=["records"])
Editor = Annotated[Principal, Depends(require_roles(*RECORD_WRITE))]

_FILTER_DOC = query_objects(
    FILTER_PARAMETER,
    {
        "name": "dimensionScope",
        "in": "query",
        "required": False,
        "style": "deepObject",
        "explode": True,
        "description": "Match filters on the value this scope resolves to: "
        "dimensionScope[dim-language]=seg-da.",
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
    },
)


def _read(record: Record) -> RecordRead:
    return RecordRead(
        id=record.id,
        schema_id=record.schema_id,
        parent_id=record.parent_id,
        lifecycle_state_id=record.lifecycle_state_id,
        created_at=record.created_at,
        updated_at=record.updated_at,
        created_by=record.created_by,
        updated_by=record.updated_by,
        values=service.loads_values(record),
    )


def _dump_values(values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {alias: [v.model_dump() for v in scoped] for alias, scoped in values.items()}


def _iso_time(value: str | None, *, field: str) -> dt.datetime | None:
    """An ISO 8601 time (UTC when it has no offset); a number such as a Unix time is refused."""
    if value is None:
        return None
    try:
        if not value[:4].isdigit() or not value[4:5] == "-":
            raise ValueError(value)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"{field} must be an ISO 8601 time such as 2026-03-08T02:00:00Z, not '{value[:40]}'.",
            code="invalid_filter",
            details=[{"field": field, "value": value[:40]}],
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _dimension_scope(request: Request) -> dict[str, str] | None:
    scope: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key.startswith("dimensionScope["):
            if not key.endswith("]") or key.count("[") != 1:
                raise ValidationFailed(
                    f"Malformed parameter '{key}': use dimensionScope[dim-id]=seg-id.",
                    code="invalid_filter",
                    details=[{"field": key}],
                )
            scope[key[len("dimensionScope[") : -1]] = value
    return scope or None


@router.get("/records", response_model=RecordList, openapi_extra=_FILTER_DOC)
def list_records(
    request: Request,
    session: SessionDep,
    _user: CurrentUser,
    schema_id: Annotated[str | None, Query(alias="schemaId", max_length=80)] = None,
    lifecycle_state_id: Annotated[str | None, Query(alias="lifecycleStateId", max_length=80)] = None,
    parent_id: Annotated[
        str | None, Query(alias="parentId", max_length=80, description="Only the variants of this record.")
    ] = None,
    include_variants: Annotated[bool, Query(alias="includeVariants")] = True,
    updated_since: Annotated[
        str | None,
        Query(
            alias="updatedSince",
            max_length=40,
            description="ISO 8601 time, e.g. 2026-03-08T02:00:00Z (UTC when no offset).",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> RecordList:
    """List records, filtered, in creation order, with the total for pagination."""
    items, total = service.list_records(
        session,
        schema_id=schema_id,
        lifecycle_state_id=lifecycle_state_id,
        parent_id=parent_id,
        include_variants=include_variants,
        updated_since=_iso_time(updated_since, field="updatedSince"),
        filters=parse_query_filters(request.query_params.multi_items()),
        dimension_scope=_dimension_scope(request),
        offset=offset,
        limit=limit,
    )
    return RecordList(items=[_read(r) for r in items], total=total, offset=offset, limit=limit)


@router.post("/records", response_model=RecordRead, status_code=201)
def create_record(data: RecordCreate, session: SessionDep, user: Editor) -> RecordRead:
    """Create a record with its initial scoped values."""
    record = service.create_record(
        session,
        schema_id=data.schema_id,
        values=_dump_values(data.values),
        user_id=user.id,
        parent_id=data.parent_id,
    )
    return _read(record)


@router.get("/records/{record_id}", response_model=RecordRead)
def get_record(record_id: str, session: SessionDep, _user: CurrentUser) -> RecordRead:
    """Get a record with all its scoped values."""
    return _read(service.get_record(session, record_id=record_id))


@router.put("/records/{record_id}", response_model=RecordRead)
def update_record(record_id: str, data: RecordUpdate, session: SessionDep, user: Editor) -> RecordRead:
    """Replace the values of the attributes named; the others stay unchanged."""
    record = service.update_values(
        session, record_id=record_id, values=_dump_values(data.values), user_id=user.id
    )
    return _read(record)


@router.delete("/records/{record_id}", status_code=204, response_class=Response)
def delete_record(record_id: str, session: SessionDep, user: Editor) -> Response:
    """Delete a record and all its variants (audited)."""
    service.delete_record(session, record_id=record_id, user_id=user.id)
    return Response(status_code=204)


@router.patch("/records/{record_id}/values/{attr}", response_model=RecordRead)
def patch_attribute(
    record_id: str, attr: str, data: ValuesPatch, session: SessionDep, user: Editor
) -> RecordRead:
    """Replace the scoped values of one attribute."""
    values = {attr: [v.model_dump() for v in data.scoped_values]}
    return _read(service.update_values(session, record_id=record_id, values=values, user_id=user.id))


@router.get("/records/{record_id}/completeness", response_model=Completeness)
def get_completeness(
    record_id: str,
    session: SessionDep,
    _user: CurrentUser,
    lifecycle_state_id: Annotated[
        str | None, Query(alias="lifecycleStateId", max_length=80, description="Another state to score for.")
    ] = None,
) -> Completeness:
    """Completeness of the record for its current (or the given) lifecycle state."""
    return Completeness.model_validate(
        service.completeness(session, record_id=record_id, state_id=lifecycle_state_id)
    )


@router.post("/records/{record_id}/transition", response_model=RecordRead)
def transition(record_id: str, data: TransitionRequest, session: SessionDep, user: CurrentUser) -> RecordRead:
    """Execute a lifecycle transition (roles and completeness are enforced)."""
    record = service.execute_transition(
        session, record_id=record_id, transition_id=data.transition_id, principal=user
    )
    return _read(record)


@router.get("/records/{record_id}/transitions", response_model=list[AvailableTransition])
def transitions(record_id: str, session: SessionDep, _user: CurrentUser) -> list[AvailableTransition]:
    """Transitions available from the record's current state."""
    return [
        AvailableTransition.model_validate(t)
        for t in service.available_transitions(session, record_id=record_id)
    ]


def _audit_read(entry: AuditEntry) -> AuditEntryRead:
    return AuditEntryRead.model_validate(entry)


@router.get("/records/{record_id}/audit", response_model=list[AuditEntryRead])
def audit(
    record_id: str, session: SessionDep, _user: CurrentUser, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[AuditEntryRead]:
    """The record's audit trail, newest first."""
    return [_audit_read(e) for e in service.audit_trail(session, record_id=record_id, limit=limit)]


@router.get("/records/{record_id}/categories", response_model=list[CategoryAssignment])
def categories(record_id: str, session: SessionDep, _user: CurrentUser) -> list[CategoryAssignment]:
    """The categories this record is assigned to."""
    return [
        CategoryAssignment.model_validate(a) for a in service.record_categories(session, record_id=record_id)
    ]


@router.post("/records/{record_id}/categories", response_model=CategoryAssignment, status_code=201)
def assign(record_id: str, data: CategoryAssign, session: SessionDep, user: Editor) -> CategoryAssignment:
    """Assign the record to a category (or change its sort order there)."""
    return CategoryAssignment.model_validate(
        service.assign_category(
            session,
            record_id=record_id,
            category_id=data.category_id,
            sort_order=data.sort_order,
            user_id=user.id,
        )
    )


@router.put("/records/{record_id}/categories/{category_id}", response_model=CategoryAssignment)
def reorder(
    record_id: str, category_id: str, data: SortOrder, session: SessionDep, user: Editor
) -> CategoryAssignment:
    """Assign to a category with a sort order (idempotent)."""
    return CategoryAssignment.model_validate(
        service.assign_category(
            session, record_id=record_id, category_id=category_id, sort_order=data.sort_order, user_id=user.id
        )
    )


@router.delete("/records/{record_id}/categories/{category_id}", status_code=204, response_class=Response)
def unassign(record_id: str, category_id: str, session: SessionDep, user: Editor) -> Response:
    """Remove the record from a category."""
    service.unassign_category(session, record_id=record_id, category_id=category_id, user_id=user.id)
    return Response(status_code=204)
