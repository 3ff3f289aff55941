"""Records: a browser with search, filters, paging and a scope switcher; a record's page with every scoped
value, completeness per scope, its transitions, categories and audit trail."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from skuport.api import SessionDep
from skuport.catalog import service as catalog
from skuport.catalog.models import Attribute, Schema
from skuport.console.web import PREFIX, CheckedForm, CurrentViewer, redirect, render
from skuport.errors import SkuportError
from skuport.records import service
from skuport.records.models import Record
from skuport.records.scopes import parse_scope_key
from skuport.records.values import resolve_cell

router = APIRouter()
PAGE = 50
COLUMNS = 6
Scope = Annotated[
    list[str] | None, Query(max_length=20, description="dimension:segment, once per dimension.")
]
Text = Annotated[str | None, Query(max_length=200)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]


def _scope(pairs: list[str], dimensions: list[Any]) -> dict[str, str]:
    """The scope the switcher chose (unknown pairs are dropped: the switcher only offers known ones)."""
    known = {(dim.id, seg.id) for dim in dimensions for seg in dim.segments}
    scope: dict[str, str] = {}
    for pair in pairs:
        dim, _, seg = pair.partition(":")
        if (dim, seg) in known:
            scope[dim] = seg
    return scope


def _label(attribute: Attribute, scope: dict[str, str]) -> str:
    labels = attribute.labels or {}
    for segment in scope.values():
        if labels.get(segment):
            return str(labels[segment])
    return attribute.name


def _columns(schemas: list[Schema], schema_id: str | None, records: list[Record]) -> list[Attribute]:
    wanted = {schema_id} if schema_id else {record.schema_id for record in records}
    columns: dict[str, Attribute] = {}
    for schema in schemas:
        if schema.id in wanted:
            for attribute in sorted(schema.attributes, key=lambda a: a.sort_order):
                columns.setdefault(attribute.alias, attribute)
    return list(columns.values())[:COLUMNS]


@router.get("/records")
def record_list(
    request: Request,
    session: SessionDep,
    viewer: CurrentViewer,
    q: Text = None,
    schema: Text = None,
    state: Text = None,
    scope: Scope = None,
    offset: Offset = 0,
) -> Response:
    """A page of records with their values resolved for the chosen scope."""
    dimensions = list(catalog.list_dimensions(session))
    schemas = list(catalog.list_schemas(session))
    chosen = _scope(scope or [], dimensions)
    problem = None
    try:
        records, total = service.list_records(
            session,
            schema_id=schema or None,
            lifecycle_state_id=state or None,
            search=q or None,
            offset=offset,
            limit=PAGE,
        )
    except SkuportError as exc:
        problem, records, total = exc.message, [], 0
    columns = _columns(schemas, schema, list(records))
    rows = []
    for record in records:
        cells = json.loads(record.cells_json or "{}")
        rows.append((record, [resolve_cell(cells.get(col.alias, {}), chosen) for col in columns]))
    states = catalog.list_states(session)
    query = [("q", q), ("schema", schema), ("state", state)] + [
        ("scope", f"{d}:{s}") for d, s in chosen.items()
    ]
    return render(
        request,
        "records.html",
        {
            "rows": rows,
            "total": total,
            "offset": offset,
            "page": PAGE,
            "columns": columns,
            "headers": [_label(col, chosen) for col in columns],
            "dimensions": dimensions,
            "schemas": schemas,
            "states": states,
            "chosen": chosen,
            "chosen_name": _scope_text(chosen, _segment_names(dimensions)),
            "q": q or "",
            "schema": schema or "",
            "state": state or "",
            "problem": problem,
            "query": urlencode([(k, v) for k, v in query if v]),  # the pager's links keep the filters
        },
        viewer=viewer,
    )


def _segment_names(dimensions: list[Any]) -> dict[tuple[str, str], str]:
    return {(dim.id, seg.id): seg.name for dim in dimensions for seg in dim.segments}


def _scope_text(scope: dict[str, str], names: dict[tuple[str, str], str]) -> str:
    """'Danish, Denmark' (segment ids are unique only within their dimension: seg-de is German and
    Germany)."""
    return ", ".join(names.get((dim, seg), seg) for dim, seg in scope.items()) or "global"


def _record_context(session: Session, record_id: str, chosen: dict[str, str]) -> dict[str, Any]:
    record = service.get_record(session, record_id=record_id)
    ctx = service.schema_context(session, schema_id=record.schema_id)
    values = service.loads_values(record)
    cells = json.loads(record.cells_json or "{}")
    names = _segment_names(list(catalog.list_dimensions(session)))
    attributes = []
    for attribute in sorted(ctx.schema.attributes, key=lambda a: a.sort_order):
        scoped = [(_scope_text(v["scope"], names), v["value"]) for v in values.get(attribute.alias, [])]
        attributes.append(
            {
                "attribute": attribute,
                "label": _label(attribute, chosen),
                "resolved": resolve_cell(cells.get(attribute.alias, {}), chosen),
                "scoped": scoped,
            }
        )
    by_scope = service.completeness_by_scope(ctx, values, record.lifecycle_state_id)
    for group in by_scope:
        group["name"] = _scope_text(group["scope"], names)
    return {
        "record": record,
        "attributes": attributes,
        "completeness": service.compute_completeness(ctx, values, record.lifecycle_state_id),
        "by_scope": by_scope,
        "transitions": service.available_transitions(session, record_id=record_id),
        "categories": service.record_categories(session, record_id=record_id),
        "audit": service.audit_trail(session, record_id=record_id, limit=50),
        "state_names": {s.id: s.name for s in (ctx.workflow.states if ctx.workflow else [])},
        "parse_scope_key": parse_scope_key,
    }


@router.get("/records/{record_id}")
def record_page(
    record_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, scope: Scope = None
) -> Response:
    """One record: values in every scope, the resolved ones for the chosen scope, completeness, workflow."""
    dimensions = list(catalog.list_dimensions(session))
    chosen = _scope(scope or [], dimensions)
    context = _record_context(session, record_id, chosen)
    context.update(
        dimensions=dimensions, chosen=chosen, chosen_name=_scope_text(chosen, _segment_names(dimensions))
    )
    return render(request, "record.html", context, viewer=viewer)


@router.post("/records/{record_id}/transition")
def transition(
    record_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, form: CheckedForm
) -> Response:
    """Move the record along a transition (the service checks its roles and completeness)."""
    record = service.execute_transition(
        session, record_id=record_id, transition_id=form.text("transitionId"), principal=viewer.principal
    )
    return redirect(
        request,
        f"{PREFIX}/records/{record_id}",
        f"Record {record_id} is now in state '{record.lifecycle_state_id}'.",
    )
