"""Records: create, update, delete, list; completeness, transitions, audit and categories."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from skuport.auth.deps import Principal
from skuport.catalog.models import Category, Dimension, LifecycleState, Schema, Transition, Workflow
from skuport.config import get_settings
from skuport.db import utcnow
from skuport.errors import Conflict, Forbidden, ValidationFailed, not_found
from skuport.ids import new_id
from skuport.records.cells import store_cells
from skuport.records.filters import filter_clauses
from skuport.records.models import AuditEntry, Record, RecordCategory, RecordTombstone, RecordValue
from skuport.records.scopes import parse_scope_key, scope_key
from skuport.records.values import (
    AttributeSpec,
    cells_of,
    index_rows,
    index_text,
    is_empty,
    validate_values,
)

Values = dict[str, list[dict[str, Any]]]


class AuditAction:
    """The kinds of audit entries."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    TRANSITION = "transition"


@dataclass
class SchemaContext:
    """What validation and completeness need of a schema, loaded once per call."""

    schema: Schema
    specs: dict[str, AttributeSpec]
    segments: dict[str, list[str]]
    workflow: Workflow | None

    @property
    def segment_sets(self) -> dict[str, set[str]]:
        """Dimension id -> its segment ids."""
        return {dim: set(segs) for dim, segs in self.segments.items()}


def schema_context(session: Session, *, schema_id: str, field: str = "schemaId") -> SchemaContext:
    """Load a schema with its attributes, the dimensions' segments and its workflow."""
    schema = session.get(Schema, schema_id)
    if schema is None:
        raise ValidationFailed(
            f"Schema '{schema_id}' does not exist.",
            code="unknown_schema",
            details=[{"field": field, "value": schema_id}],
        )
    specs = {
        a.alias: AttributeSpec(
            alias=a.alias,
            data_type=a.data_type,
            dimension_ids=tuple(a.dimension_ids or ()),
            validation=a.validation or {},
        )
        for a in schema.attributes
    }
    segments = {d.id: [s.id for s in d.segments] for d in session.scalars(select(Dimension))}
    workflow = session.get(Workflow, schema.workflow_id) if schema.workflow_id else None
    return SchemaContext(schema=schema, specs=specs, segments=segments, workflow=workflow)


def loads_values(record: Record) -> Values:
    """The record's values map."""
    values: Values = orjson.loads(record.values_json or "{}")
    return values


def _dumps(values: Values) -> str:
    return orjson.dumps(values).decode()


def _store(session: Session, record: Record, values: Values) -> None:
    """Write the stored forms of the values: the API's list form, the export's cells and their positional
    text."""
    cells = cells_of(values)
    # The text first: finding its slots queries, and an autoflush of a changed cells_json alone would let
    # the stale-text trigger (migration 0016) drop the text this update then leaves equal.
    text = store_cells(session, record.schema_id, cells)
    record.values_json = _dumps(values)
    record.cells_json = orjson.dumps(cells).decode()
    record.cells_text = text


def _write_index(session: Session, record_pk: int, values: Mapping[str, list[dict[str, Any]]]) -> None:
    rows = index_rows(values)
    if rows:
        session.execute(
            insert(RecordValue),
            [
                {"record_pk": record_pk, "attribute": a, "scope_key": k, "value_text": t, "value_num": n}
                for a, k, t, n in rows
            ],
        )


def _audit(
    session: Session,
    *,
    entity_id: str,
    user_id: str | None,
    action: str,
    changes: list[dict[str, Any]],
    at: dt.datetime | None = None,
) -> None:
    session.add(
        AuditEntry(
            id=new_id("audit"),
            entity_id=entity_id,
            user_id=user_id,
            action=action,
            changes=changes,
            timestamp=at or utcnow(),
        )
    )


def _diff(alias: str, old: Iterable[dict[str, Any]], new: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One change per scope whose value differs, in a stable order."""
    before = {scope_key(v["scope"]): v["value"] for v in old}
    after = {scope_key(v["scope"]): v["value"] for v in new}
    changes = []
    for key in sorted(before.keys() | after.keys(), key=lambda k: (k != "", k)):
        if before.get(key) != after.get(key) or (key in before) != (key in after):
            changes.append(
                {
                    "attributeAlias": alias,
                    "scope": parse_scope_key(key),
                    "oldValue": before.get(key),
                    "newValue": after.get(key),
                }
            )
    return changes


def _order(values: Values, ctx: SchemaContext) -> Values:
    """Values in the schema's attribute order, attributes without values left out."""
    return {alias: values[alias] for alias in ctx.specs if values.get(alias)}


def find_record(session: Session, *, record_id: str) -> Record | None:
    """A record by id, or None."""
    return session.scalars(select(Record).where(Record.id == record_id)).first()


def get_record(session: Session, *, record_id: str) -> Record:
    """A record by id, or 404."""
    record = find_record(session, record_id=record_id)
    if record is None:
        raise not_found("Record", record_id)
    return record


def _check_plan_limit(session: Session) -> None:
    limit = get_settings().plan_sku_limit
    if limit > 0:
        count = session.scalar(select(func.count()).select_from(Record)) or 0
        if count >= limit:
            raise Conflict(
                f"Your plan allows {limit} records (SKUs) and all are used; delete records or "
                "raise SKUPORT_PLAN_SKU_LIMIT.",
                code="plan_limit_reached",
                details=[{"limit": limit, "count": count}],
            )


def _check_unique(
    session: Session, ctx: SchemaContext, values: Mapping[str, list[dict[str, Any]]], *, record_pk: int | None
) -> None:
    """Attributes with the ``unique`` rule: no other record of the schema holds the same value.

    On PostgreSQL a transaction-scoped advisory lock per (schema, attribute, value) makes two concurrent
    writers of the same value queue up, so the second sees the first's committed row; SQLite writers are
    serialised already (BEGIN IMMEDIATE).
    """
    problems: list[dict[str, Any]] = []
    postgres = session.get_bind().dialect.name == "postgresql"
    for alias, scoped in values.items():
        spec = ctx.specs.get(alias)
        if spec is None or not (spec.validation or {}).get("unique"):
            continue
        for item in scoped:
            if item["scope"]:
                continue  # unique attributes have no dimensions; nothing else to compare
            text = index_text(item["value"])
            if postgres:
                session.execute(
                    select(
                        func.pg_advisory_xact_lock(
                            func.hashtextextended(
                                f"skuport-unique\x1f{ctx.schema.id}\x1f{alias}\x1f{text}", 0
                            )
                        )
                    )
                )
            query = (
                select(Record.id)
                .join(RecordValue, RecordValue.record_pk == Record.pk)
                .where(
                    Record.schema_id == ctx.schema.id,
                    RecordValue.attribute == alias,
                    RecordValue.scope_key == "",
                    RecordValue.value_text == text,
                )
            )
            if record_pk is not None:
                query = query.where(Record.pk != record_pk)
            holder = session.scalars(query.limit(1)).first()
            if holder is not None:
                problems.append(
                    {
                        "attribute": alias,
                        "scope": {},
                        "value": item["value"],
                        "recordId": holder,
                        "message": f"must be unique: record '{holder}' already has {text!r}",
                    }
                )
    if problems:
        first = problems[0]
        raise ValidationFailed(
            f"Invalid value for '{first['attribute']}': {first['message']}.",
            details=problems,
            code="duplicate_value",
        )


def create_record(
    session: Session,
    *,
    schema_id: str,
    values: Mapping[str, Iterable[Mapping[str, Any]]],
    user_id: str | None,
    parent_id: str | None = None,
    record_id: str | None = None,
    enforce_plan_limit: bool = True,
) -> Record:
    """Create a record (or a variant of ``parent_id``) with validated values; audited."""
    ctx = schema_context(session, schema_id=schema_id)
    if enforce_plan_limit:
        _check_plan_limit(session)
    if parent_id is not None:
        parent = find_record(session, record_id=parent_id)
        if parent is None:
            raise ValidationFailed(
                f"Parent record '{parent_id}' does not exist.",
                code="unknown_parent",
                details=[{"field": "parentId", "value": parent_id}],
            )
        if parent.parent_id is not None:
            raise ValidationFailed(
                f"'{parent_id}' is itself a variant; variants cannot have variants.",
                code="invalid_parent",
                details=[{"field": "parentId"}],
            )
        if parent.schema_id != schema_id:
            raise ValidationFailed(
                f"A variant must have its parent's schema '{parent.schema_id}'.",
                code="invalid_parent",
                details=[{"field": "parentId"}],
            )
    clean = _order(validate_values(values, attributes=ctx.specs, segments=ctx.segment_sets), ctx)
    _check_unique(session, ctx, clean, record_pk=None)
    initial = None
    if ctx.workflow is not None and ctx.workflow.states:
        initial = next((s.id for s in ctx.workflow.states if s.is_initial), ctx.workflow.states[0].id)
    now = utcnow()
    record = Record(
        id=record_id or new_id("ent"),
        schema_id=schema_id,
        parent_id=parent_id,
        lifecycle_state_id=initial,
        created_at=now,
        updated_at=now,
        created_by=user_id,
        updated_by=user_id,
    )
    _store(session, record, clean)
    session.add(record)
    session.flush()
    _write_index(session, record.pk, clean)
    changes = [c for alias, scoped in clean.items() for c in _diff(alias, [], scoped)]
    _audit(session, entity_id=record.id, user_id=user_id, action=AuditAction.CREATE, changes=changes, at=now)
    session.flush()
    return record


def update_values(
    session: Session,
    *,
    record_id: str,
    values: Mapping[str, Iterable[Mapping[str, Any]]],
    user_id: str | None,
) -> Record:
    """Replace the scoped values of the attributes named; the others stay unchanged. Audited."""
    record = get_record(session, record_id=record_id)
    ctx = schema_context(session, schema_id=record.schema_id)
    clean = validate_values(values, attributes=ctx.specs, segments=ctx.segment_sets)
    current = loads_values(record)
    changes = [c for alias, scoped in clean.items() for c in _diff(alias, current.get(alias, []), scoped)]
    if not changes:
        return record
    _check_unique(session, ctx, clean, record_pk=record.pk)
    merged = _order({**current, **clean}, ctx)
    now = utcnow()
    _store(session, record, merged)
    record.updated_at = now
    record.updated_by = user_id
    touched = [c["attributeAlias"] for c in changes]
    session.execute(
        delete(RecordValue).where(RecordValue.record_pk == record.pk, RecordValue.attribute.in_(set(touched)))
    )
    _write_index(session, record.pk, {a: merged.get(a, []) for a in set(touched)})
    _audit(session, entity_id=record.id, user_id=user_id, action=AuditAction.UPDATE, changes=changes, at=now)
    session.flush()
    return record


def delete_record(session: Session, *, record_id: str, user_id: str | None) -> None:
    """Delete a record and its variants; each deletion is audited and leaves a tombstone."""
    record = get_record(session, record_id=record_id)
    variants = session.scalars(select(Record).where(Record.parent_id == record.id)).all()
    now = utcnow()
    for doomed in [*variants, record]:
        old = loads_values(doomed)
        changes = [c for alias, scoped in old.items() for c in _diff(alias, scoped, [])]
        _audit(
            session, entity_id=doomed.id, user_id=user_id, action=AuditAction.DELETE, changes=changes, at=now
        )
        session.merge(
            RecordTombstone(
                record_id=doomed.id,
                schema_id=doomed.schema_id,
                parent_id=doomed.parent_id,
                deleted_at=now,
                deleted_by=user_id,
            )
        )
    pks = [r.pk for r in (*variants, record)]
    session.execute(delete(RecordValue).where(RecordValue.record_pk.in_(pks)))
    session.execute(delete(RecordCategory).where(RecordCategory.record_pk.in_(pks)))
    session.execute(delete(Record).where(Record.pk.in_(pks)))
    session.flush()
    session.expunge_all()


def list_records(
    session: Session,
    *,
    schema_id: str | None = None,
    lifecycle_state_id: str | None = None,
    parent_id: str | None = None,
    include_variants: bool = True,
    updated_since: dt.datetime | None = None,
    filters: Mapping[str, Any] | None = None,
    dimension_scope: Mapping[str, str] | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Record], int]:
    """A page of records in creation order, and the total matching; a 422 for an unknown scope."""
    from skuport.catalog.service import dimension_scope_problems

    problems = dimension_scope_problems(session, dimension_scope)
    if problems:
        raise ValidationFailed(problems[0][0], code="invalid_filter", details=[d for _, d in problems])
    clauses = []
    if schema_id:
        clauses.append(Record.schema_id == schema_id)
    if lifecycle_state_id:
        clauses.append(Record.lifecycle_state_id == lifecycle_state_id)
    if parent_id:
        clauses.append(Record.parent_id == parent_id)
    if not include_variants:
        clauses.append(Record.parent_id.is_(None))
    if updated_since is not None:
        clauses.append(Record.updated_at >= updated_since)
    clauses.extend(filter_clauses(session, filters, schema_id=schema_id, dimension_scope=dimension_scope))
    if search:
        clauses.append(_search_clause(search))
    total = session.scalar(select(func.count()).select_from(Record).where(*clauses)) or 0
    items = session.scalars(
        select(Record).where(*clauses).order_by(Record.pk).offset(offset).limit(limit)
    ).all()
    return items, total


def _search_clause(text: str) -> ColumnElement[bool]:
    """Records whose id is ``text`` or one of whose text values contains it (any case, any scope)."""
    matches = select(RecordValue.record_pk).where(
        func.lower(RecordValue.value_text).contains(text.lower(), autoescape=True)
    )
    return or_(Record.id == text, Record.pk.in_(matches))


# Completeness ----------------------------------------------------------------------------------------


def _visible(alias: str, ctx: SchemaContext, values: Values, seen: frozenset[str] = frozenset()) -> bool:
    """Whether an attribute is shown: its guard's attribute holds the guard's value (in any scope)."""
    attribute = next((a for a in ctx.schema.attributes if a.alias == alias), None)
    guard = attribute.guard if attribute is not None else None
    if not guard:
        return True
    target = guard.get("attributeAlias")
    if not target or target in seen or not _visible(target, ctx, values, seen | {alias}):
        return False
    expected = guard.get("value")
    for item in values.get(target, []):
        value = item["value"]
        if value == expected or (isinstance(value, list) and expected in value):
            return True
    return False


def _state(ctx: SchemaContext, state_id: str | None) -> LifecycleState | None:
    if ctx.workflow is None or state_id is None:
        return None
    return next((s for s in ctx.workflow.states if s.id == state_id), None)


def _required_cells(
    ctx: SchemaContext, values: Values, state_id: str | None
) -> Iterator[tuple[str, dict[str, str], bool]]:
    """Every (attribute, scope) a record must fill for ``state_id``, and whether it is filled.

    Required attributes are those marked required plus the state's required attributes, minus those
    hidden by a guard. Each counts once per combination of its dimensions' segments, and a
    combination is filled only by a non-empty value of exactly that scope.
    """
    state = _state(ctx, state_id)
    extra = set(state.required_attributes or []) if state is not None else set()
    for attribute in ctx.schema.attributes:
        if not (attribute.required or attribute.alias in extra):
            continue
        if not _visible(attribute.alias, ctx, values):
            continue
        dims = [d for d in (attribute.dimension_ids or []) if d in ctx.segments]
        present = {scope_key(v["scope"]) for v in values.get(attribute.alias, []) if not is_empty(v["value"])}
        for combo in itertools.product(*(ctx.segments[d] for d in dims)):
            scope = dict(zip(dims, combo, strict=True))
            yield attribute.alias, scope, scope_key(scope) in present


def compute_completeness(ctx: SchemaContext, values: Values, state_id: str | None) -> dict[str, Any]:
    """Filled/total/percentage/missing for ``state_id`` (see :func:`_required_cells`)."""
    filled = total = 0
    missing: list[dict[str, Any]] = []
    for alias, scope, done in _required_cells(ctx, values, state_id):
        total += 1
        if done:
            filled += 1
        else:
            missing.append({"attributeAlias": alias, "scope": scope})
    percentage = (filled * 100) // total if total else 100
    return {
        "lifecycleStateId": state_id,
        "filled": filled,
        "total": total,
        "percentage": percentage,
        "missing": missing,
    }


def completeness_by_scope(ctx: SchemaContext, values: Values, state_id: str | None) -> list[dict[str, Any]]:
    """Completeness per scope (global first): ``{scope, filled, total, percentage, missing: [alias…]}``."""
    groups: dict[str, dict[str, Any]] = {}
    for alias, scope, done in _required_cells(ctx, values, state_id):
        group = groups.setdefault(scope_key(scope), {"scope": scope, "filled": 0, "total": 0, "missing": []})
        group["total"] += 1
        group["filled"] += done
        if not done:
            group["missing"].append(alias)
    result = [groups[key] for key in sorted(groups)]
    for group in result:
        group["percentage"] = (group["filled"] * 100) // group["total"]
    return result


def completeness(session: Session, *, record_id: str, state_id: str | None = None) -> dict[str, Any]:
    """Completeness of a record for its current state (or ``state_id``)."""
    record = get_record(session, record_id=record_id)
    ctx = schema_context(session, schema_id=record.schema_id)
    target = state_id or record.lifecycle_state_id
    if state_id is not None and _state(ctx, state_id) is None:
        raise ValidationFailed(
            f"'{state_id}' is not a state of this record's workflow.",
            code="unknown_state",
            details=[{"field": "lifecycleStateId"}],
        )
    result = compute_completeness(ctx, loads_values(record), target)
    return {"entityId": record.id, **result}


# Transitions -----------------------------------------------------------------------------------------


def available_transitions(session: Session, *, record_id: str) -> list[Transition]:
    """Transitions that start from the record's current state."""
    record = get_record(session, record_id=record_id)
    ctx = schema_context(session, schema_id=record.schema_id)
    if ctx.workflow is None:
        return []
    return [t for t in ctx.workflow.transitions if t.from_state_id == record.lifecycle_state_id]


def execute_transition(
    session: Session, *, record_id: str, transition_id: str, principal: Principal
) -> Record:
    """Move the record along a transition, enforcing roles and completeness; audited."""
    record = get_record(session, record_id=record_id)
    ctx = schema_context(session, schema_id=record.schema_id)
    transition = None
    if ctx.workflow is not None:
        transition = next((t for t in ctx.workflow.transitions if t.id == transition_id), None)
    if transition is None:
        raise ValidationFailed(
            f"Transition '{transition_id}' is not part of this record's workflow.",
            code="unknown_transition",
            details=[{"field": "transitionId"}],
        )
    if transition.from_state_id != record.lifecycle_state_id:
        raise Conflict(
            f"Transition '{transition_id}' starts from '{transition.from_state_id}', but the "
            f"record is in '{record.lifecycle_state_id}'.",
            code="invalid_transition",
            details=[
                {"fromStateId": transition.from_state_id, "lifecycleStateId": record.lifecycle_state_id}
            ],
        )
    if not principal.has_any(transition.allowed_role_ids or []):
        raise Forbidden(
            f"Transition '{transition_id}' needs one of the roles: "
            f"{', '.join(transition.allowed_role_ids or []) or '(none)'}."
        )
    if transition.requires_completeness:
        result = compute_completeness(ctx, loads_values(record), transition.to_state_id)
        if result["percentage"] < 100:
            raise Conflict(
                f"The record is {result['percentage']}% complete for '{transition.to_state_id}'; "
                "this transition requires 100%.",
                code="incomplete",
                details=result["missing"],
            )
    old = record.lifecycle_state_id
    now = utcnow()
    record.lifecycle_state_id = transition.to_state_id
    record.updated_at = now
    record.updated_by = principal.id
    _audit(
        session,
        entity_id=record.id,
        user_id=principal.id,
        action=AuditAction.TRANSITION,
        at=now,
        changes=[
            {
                "attributeAlias": "lifecycleState",
                "scope": {},
                "oldValue": old,
                "newValue": transition.to_state_id,
            }
        ],
    )
    session.flush()
    return record


# Audit -----------------------------------------------------------------------------------------------


def audit_trail(session: Session, *, record_id: str, limit: int = 50) -> Sequence[AuditEntry]:
    """The record's audit entries, newest first (kept after the record is deleted)."""
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity_id == record_id)
        .order_by(AuditEntry.seq.desc())
        .limit(limit)
    ).all()
    if not entries and find_record(session, record_id=record_id) is None:
        raise not_found("Record", record_id)
    return entries


# Categories ------------------------------------------------------------------------------------------


def record_categories(session: Session, *, record_id: str) -> list[dict[str, Any]]:
    """The categories the record is assigned to, by sort order."""
    record = get_record(session, record_id=record_id)
    rows = session.execute(
        select(RecordCategory.category_id, RecordCategory.sort_order)
        .where(RecordCategory.record_pk == record.pk)
        .order_by(RecordCategory.sort_order, RecordCategory.category_id)
    ).all()
    return [{"entityId": record.id, "categoryId": c, "sortOrder": s} for c, s in rows]


def _touch_categories(session: Session, record: Record, before: list[str], user_id: str | None) -> None:
    after = [a["categoryId"] for a in record_categories(session, record_id=record.id)]
    if sorted(before) == sorted(after):
        return
    now = utcnow()
    record.updated_at = now
    record.updated_by = user_id
    _audit(
        session,
        entity_id=record.id,
        user_id=user_id,
        action=AuditAction.UPDATE,
        at=now,
        changes=[{"attributeAlias": "categories", "scope": {}, "oldValue": before, "newValue": after}],
    )


def assign_category(
    session: Session, *, record_id: str, category_id: str, sort_order: int, user_id: str | None
) -> dict[str, Any]:
    """Assign the record to a category, or change its sort order there."""
    record = get_record(session, record_id=record_id)
    if session.get(Category, category_id) is None:
        raise ValidationFailed(
            f"Category '{category_id}' does not exist.",
            code="unknown_category",
            details=[{"field": "categoryId", "value": category_id}],
        )
    before = [a["categoryId"] for a in record_categories(session, record_id=record_id)]
    existing = session.get(RecordCategory, (record.pk, category_id))
    if existing is None:
        session.add(RecordCategory(record_pk=record.pk, category_id=category_id, sort_order=sort_order))
    else:
        existing.sort_order = sort_order
    session.flush()
    _touch_categories(session, record, before, user_id)
    session.flush()
    return {"entityId": record.id, "categoryId": category_id, "sortOrder": sort_order}


def unassign_category(session: Session, *, record_id: str, category_id: str, user_id: str | None) -> None:
    """Remove the record from a category."""
    record = get_record(session, record_id=record_id)
    existing = session.get(RecordCategory, (record.pk, category_id))
    if existing is None:
        raise not_found("Category assignment", f"{record_id}/{category_id}")
    before = [a["categoryId"] for a in record_categories(session, record_id=record_id)]
    session.delete(existing)
    session.flush()
    _touch_categories(session, record, before, user_id)
    session.flush()
