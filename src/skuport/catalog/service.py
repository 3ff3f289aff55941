"""Catalogue model logic: dimensions, workflows, schemas and attributes, catalogs and categories.

Every change is checked against what records already hold: a segment, dimension, attribute, state or
schema that data uses cannot be removed, and an attribute's type cannot change under existing values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, distinct, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skuport.auth.models import Role
from skuport.catalog.models import (
    Attribute,
    Catalog,
    Category,
    Dimension,
    LifecycleState,
    Schema,
    Segment,
    Transition,
    Workflow,
)
from skuport.catalog.schemas import (
    AttributeCreate,
    AttributeUpdate,
    CatalogCreate,
    CatalogUpdate,
    CategoryCreate,
    CategoryUpdate,
    DimensionCreate,
    DimensionUpdate,
    SchemaCreate,
    SchemaUpdate,
    SegmentIn,
    StateIn,
    TransitionIn,
    WorkflowCreate,
    WorkflowUpdate,
)
from skuport.db import utcnow
from skuport.errors import Conflict, ValidationFailed, not_found
from skuport.ids import new_id
from skuport.records.codecs import DataType
from skuport.records.models import Record, RecordValue
from skuport.records.values import AttributeSpec, validate_values


class ErrorCode(StrEnum):
    """Error codes of the catalogue model endpoints."""

    ALREADY_EXISTS = "already_exists"
    IN_USE = "in_use"
    CONFLICT = "conflict"
    DUPLICATE_ID = "duplicate_id"
    UNKNOWN_DIMENSION = "unknown_dimension"
    UNKNOWN_SEGMENT = "unknown_segment"
    UNKNOWN_WORKFLOW = "unknown_workflow"
    UNKNOWN_STATE = "unknown_state"
    UNKNOWN_ROLE = "unknown_role"
    MULTIPLE_INITIAL_STATES = "multiple_initial_states"
    INVALID_RULE = "invalid_rule"
    INVALID_PATTERN = "invalid_pattern"
    OPTIONS_REQUIRED = "options_required"
    INVALID_GUARD = "invalid_guard"
    INVALID_PARENT = "invalid_parent"
    CATEGORY_CYCLE = "category_cycle"


# Which validation rules each data type accepts (the rules records/values.py enforces).
RULES_BY_TYPE: dict[str, frozenset[str]] = {
    DataType.TEXT: frozenset({"minLength", "maxLength", "pattern", "unique"}),
    DataType.TEXTAREA: frozenset({"minLength", "maxLength", "pattern"}),
    DataType.URL: frozenset({"maxLength", "unique"}),
    DataType.NUMBER: frozenset({"min", "max", "unique"}),
    DataType.INTEGER: frozenset({"min", "max", "unique"}),
    DataType.BOOLEAN: frozenset(),
    DataType.DATE: frozenset({"unique"}),
    DataType.SELECT: frozenset({"options"}),
    DataType.MULTISELECT: frozenset({"options"}),
}
OPTION_TYPES = frozenset({DataType.SELECT, DataType.MULTISELECT})
_USAGE_SAMPLE = 20
_M = TypeVar("_M")


def _invalid(code: ErrorCode, message: str, **detail: Any) -> ValidationFailed:
    return ValidationFailed(message, code=code, details=[detail] if detail else [])


def _exists(kind: str, ident: str) -> Conflict:
    return Conflict(
        f"{kind} '{ident}' already exists.", code=ErrorCode.ALREADY_EXISTS, details=[{"id": ident}]
    )


def _in_use(message: str, details: list[Any]) -> Conflict:
    return Conflict(message, code=ErrorCode.IN_USE, details=details)


def _flush(session: Session) -> None:
    """Flush; a race with a concurrent writer (same id created meanwhile) becomes a 409, not a 500."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "The change conflicts with a concurrent change; retry.", code=ErrorCode.CONFLICT
        ) from exc


def _check_unique(ids: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise _invalid(
                ErrorCode.DUPLICATE_ID, f"{what} '{ident}' appears twice in the request.", id=ident
            )
        seen.add(ident)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _scope_uses(dimension_id: str, segment_id: str | None = None) -> ColumnElement[bool]:
    """Scope keys (``dim-a=seg-x&dim-b=seg-y``) naming the dimension, or one segment of it."""
    column = RecordValue.scope_key
    if segment_id is None:
        token = _escape_like(f"{dimension_id}=")
        return or_(column.like(token + "%", escape="\\"), column.like("%&" + token + "%", escape="\\"))
    pair = f"{dimension_id}={segment_id}"
    token = _escape_like(pair)
    return or_(
        column == pair,
        column.like(token + "&%", escape="\\"),
        column.like("%&" + token, escape="\\"),
        column.like("%&" + token + "&%", escape="\\"),
    )


def _value_usage(session: Session, *where: ColumnElement[bool]) -> list[dict[str, Any]]:
    """Which (schema, attribute) pairs hold matching values, with how many records each."""
    rows = session.execute(
        select(Record.schema_id, RecordValue.attribute, func.count(distinct(RecordValue.record_pk)))
        .join(Record, Record.pk == RecordValue.record_pk)
        .where(*where)
        .group_by(Record.schema_id, RecordValue.attribute)
        .order_by(Record.schema_id, RecordValue.attribute)
        .limit(_USAGE_SAMPLE)
    ).all()
    return [{"schemaId": schema_id, "attribute": alias, "records": count} for schema_id, alias, count in rows]


def _describe(usage: list[dict[str, Any]]) -> str:
    return ", ".join(f"{u['schemaId']}.{u['attribute']} ({u['records']} records)" for u in usage)


def _lookup(session: Session, model: type[_M], ident: str) -> _M | None:
    """``session.get`` for an id from a URL; an id no row can have (NUL, too long) finds nothing."""
    if "\x00" in ident or len(ident) > 200:
        return None
    return session.get(model, ident)


def _next_order(session: Session, column: Any, *where: ColumnElement[bool]) -> int:
    current = session.scalar(select(func.max(column)).where(*where))
    return 0 if current is None else int(current) + 1


# Dimensions


def list_dimensions(session: Session) -> Sequence[Dimension]:
    """Every dimension, by sort order then id."""
    return session.scalars(select(Dimension).order_by(Dimension.sort_order, Dimension.id)).all()


def get_dimension(session: Session, *, dimension_id: str) -> Dimension:
    """One dimension, or 404."""
    dimension = _lookup(session, Dimension, dimension_id)
    if dimension is None:
        raise not_found("Dimension", dimension_id)
    return dimension


def segments_by_dimension(session: Session) -> dict[str, set[str]]:
    """Each dimension id mapped to its segment ids (what value scopes may name)."""
    result: dict[str, set[str]] = {dim_id: set() for dim_id in session.scalars(select(Dimension.id))}
    for dim_id, seg_id in session.execute(select(Segment.dimension_id, Segment.id)):
        result.setdefault(dim_id, set()).add(seg_id)
    return result


def _segments(dimension_id: str, segments: list[SegmentIn], existing: dict[str, Segment]) -> list[Segment]:
    _check_unique((s.id for s in segments), "Segment")
    result = []
    for index, data in enumerate(segments):
        segment = existing.get(data.id) or Segment(id=data.id, dimension_id=dimension_id)
        segment.name = data.name
        segment.sort_order = index if data.sort_order is None else data.sort_order
        result.append(segment)
    return result


def create_dimension(session: Session, *, data: DimensionCreate) -> Dimension:
    """Create a dimension with its segments."""
    dimension_id = data.id or new_id("dim")
    if session.get(Dimension, dimension_id) is not None:
        raise _exists("Dimension", dimension_id)
    order = data.sort_order if data.sort_order is not None else _next_order(session, Dimension.sort_order)
    dimension = Dimension(
        id=dimension_id, name=data.name, sort_order=order, segments=_segments(dimension_id, data.segments, {})
    )
    session.add(dimension)
    _flush(session)
    return dimension


def update_dimension(session: Session, *, dimension_id: str, data: DimensionUpdate) -> Dimension:
    """Change a dimension; a given segment list replaces the old one (removed segments must be unused)."""
    dimension = get_dimension(session, dimension_id=dimension_id)
    if data.segments is not None:
        existing = {s.id: s for s in dimension.segments}
        kept = {s.id for s in data.segments}
        for segment_id in sorted(set(existing) - kept):
            usage = _value_usage(session, _scope_uses(dimension_id, segment_id))
            if usage:
                raise _in_use(
                    f"Segment '{segment_id}' of dimension '{dimension_id}' cannot be removed: "
                    f"values are scoped to it in {_describe(usage)}.",
                    [{"segmentId": segment_id, **u} for u in usage],
                )
        dimension.segments = _segments(dimension_id, data.segments, existing)
    if data.name is not None:
        dimension.name = data.name
    if data.sort_order is not None:
        dimension.sort_order = data.sort_order
    _flush(session)
    return dimension


def delete_dimension(session: Session, *, dimension_id: str) -> None:
    """Delete a dimension no attribute and no value uses."""
    dimension = get_dimension(session, dimension_id=dimension_id)
    users = [
        {"schemaId": schema_id, "attribute": alias}
        for schema_id, alias, dims in session.execute(
            select(Attribute.schema_id, Attribute.alias, Attribute.dimension_ids).order_by(
                Attribute.schema_id, Attribute.alias
            )
        )
        if dimension_id in (dims or [])
    ]
    if users:
        names = ", ".join(f"{u['schemaId']}.{u['attribute']}" for u in users[:_USAGE_SAMPLE])
        raise _in_use(f"Dimension '{dimension_id}' is used by the attributes {names}.", users[:_USAGE_SAMPLE])
    usage = _value_usage(session, _scope_uses(dimension_id))
    if usage:
        raise _in_use(f"Dimension '{dimension_id}' scopes values in {_describe(usage)}.", usage)
    session.delete(dimension)
    _flush(session)


# Workflows


def list_workflows(session: Session) -> Sequence[Workflow]:
    """Every workflow, by id."""
    return session.scalars(select(Workflow).order_by(Workflow.id)).all()


def list_states(session: Session) -> list[LifecycleState]:
    """Every lifecycle state of every workflow, by workflow and order."""
    return list(
        session.scalars(
            select(LifecycleState).order_by(LifecycleState.workflow_id, LifecycleState.sort_order)
        )
    )


def get_workflow(session: Session, *, workflow_id: str) -> Workflow:
    """One workflow, or 404."""
    workflow = _lookup(session, Workflow, workflow_id)
    if workflow is None:
        raise not_found("Workflow", workflow_id)
    return workflow


def _state_inputs(workflow: Workflow) -> list[StateIn]:
    # model_construct: stored rows are trusted as they are, even if written by other means.
    return [
        StateIn.model_construct(
            id=s.id,
            name=s.name,
            is_initial=s.is_initial,
            required_attributes=list(s.required_attributes or []),
        )
        for s in workflow.states
    ]


def _transition_inputs(workflow: Workflow) -> list[TransitionIn]:
    return [
        TransitionIn.model_construct(
            id=t.id,
            from_state_id=t.from_state_id,
            to_state_id=t.to_state_id,
            name=t.name,
            allowed_role_ids=list(t.allowed_role_ids or []),
            requires_completeness=t.requires_completeness,
        )
        for t in workflow.transitions
    ]


def _check_workflow(
    session: Session, *, workflow_id: str, states: list[StateIn], transitions: list[TransitionIn]
) -> None:
    """States unique with one initial; transitions between its states, by known roles; ids not taken."""
    _check_unique((s.id for s in states), "State")
    _check_unique((t.id for t in transitions if t.id), "Transition")
    initial = [s.id for s in states if s.is_initial]
    if len(initial) > 1:
        raise _invalid(
            ErrorCode.MULTIPLE_INITIAL_STATES,
            f"Exactly one state may be initial; {', '.join(initial)} are flagged.",
            states=initial,
        )
    state_ids = {s.id for s in states}
    for transition in transitions:
        for end in (transition.from_state_id, transition.to_state_id):
            if end not in state_ids:
                raise _invalid(
                    ErrorCode.UNKNOWN_STATE,
                    f"Transition '{transition.name}' names '{end}', which is not a state of this workflow.",
                    transition=transition.id,
                    stateId=end,
                )
    known_roles = set(session.scalars(select(Role.id)))
    unknown = sorted({r for t in transitions for r in t.allowed_role_ids} - known_roles)
    if unknown:
        raise _invalid(ErrorCode.UNKNOWN_ROLE, f"Unknown role(s): {', '.join(unknown)}.", roleIds=unknown)
    taken = session.scalars(
        select(LifecycleState.id).where(
            LifecycleState.id.in_(state_ids), LifecycleState.workflow_id != workflow_id
        )
    ).first()
    if taken:
        raise _exists("State", taken)
    transition_ids = [t.id for t in transitions if t.id]
    taken = session.scalars(
        select(Transition.id).where(Transition.id.in_(transition_ids), Transition.workflow_id != workflow_id)
    ).first()
    if taken:
        raise _exists("Transition", taken)


def _apply_states(workflow: Workflow, states: list[StateIn]) -> None:
    existing = {s.id: s for s in workflow.states}
    has_initial = any(s.is_initial for s in states)
    result = []
    for index, data in enumerate(states):
        state = existing.get(data.id) or LifecycleState(id=data.id, workflow_id=workflow.id)
        state.name = data.name
        state.sort_order = index
        state.is_initial = data.is_initial if has_initial else index == 0
        state.required_attributes = list(dict.fromkeys(data.required_attributes))
        result.append(state)
    workflow.states = result


def _apply_transitions(workflow: Workflow, transitions: list[TransitionIn]) -> None:
    existing = {t.id: t for t in workflow.transitions}
    result = []
    for index, data in enumerate(transitions):
        transition_id = data.id or new_id("trans")
        transition = existing.get(transition_id) or Transition(id=transition_id, workflow_id=workflow.id)
        transition.from_state_id = data.from_state_id
        transition.to_state_id = data.to_state_id
        transition.name = data.name
        transition.allowed_role_ids = list(dict.fromkeys(data.allowed_role_ids))
        transition.requires_completeness = data.requires_completeness
        transition.sort_order = index
        result.append(transition)
    workflow.transitions = result


def create_workflow(session: Session, *, data: WorkflowCreate) -> Workflow:
    """Create a workflow with its states and transitions."""
    workflow_id = data.id or new_id("wf")
    if session.get(Workflow, workflow_id) is not None:
        raise _exists("Workflow", workflow_id)
    _check_workflow(session, workflow_id=workflow_id, states=data.states, transitions=data.transitions)
    workflow = Workflow(id=workflow_id, name=data.name)
    session.add(workflow)
    _apply_states(workflow, data.states)
    _apply_transitions(workflow, data.transitions)
    _flush(session)
    return workflow


def update_workflow(session: Session, *, workflow_id: str, data: WorkflowUpdate) -> Workflow:
    """Change a workflow; given lists replace the old ones (states records sit in must stay)."""
    workflow = get_workflow(session, workflow_id=workflow_id)
    states = data.states if data.states is not None else _state_inputs(workflow)
    transitions = data.transitions if data.transitions is not None else _transition_inputs(workflow)
    _check_workflow(session, workflow_id=workflow_id, states=states, transitions=transitions)
    removed = sorted({s.id for s in workflow.states} - {s.id for s in states})
    if removed:
        rows = session.execute(
            select(Record.lifecycle_state_id, func.count())
            .where(Record.lifecycle_state_id.in_(removed))
            .group_by(Record.lifecycle_state_id)
            .order_by(Record.lifecycle_state_id)
        ).all()
        if rows:
            usage = [{"stateId": state_id, "records": count} for state_id, count in rows]
            raise _in_use(
                "States cannot be removed while records are in them: "
                + ", ".join(f"{u['stateId']} ({u['records']} records)" for u in usage)
                + ".",
                usage,
            )
    if data.name is not None:
        workflow.name = data.name
    if data.states is not None:
        _apply_states(workflow, states)
    if data.transitions is not None:
        _apply_transitions(workflow, transitions)
    _flush(session)
    return workflow


def delete_workflow(session: Session, *, workflow_id: str) -> None:
    """Delete a workflow no schema uses."""
    workflow = get_workflow(session, workflow_id=workflow_id)
    users = list(
        session.scalars(
            select(Schema.id)
            .where(Schema.workflow_id == workflow_id)
            .order_by(Schema.id)
            .limit(_USAGE_SAMPLE)
        )
    )
    if users:
        raise _in_use(
            f"Workflow '{workflow_id}' is used by the schemas {', '.join(users)}.",
            [{"schemaId": s} for s in users],
        )
    session.delete(workflow)
    _flush(session)


# Schemas and attributes


@dataclass
class _Draft:
    """An attribute as it will be once the change is applied."""

    alias: str
    name: str
    labels: dict[str, str]
    data_type: str
    required: bool
    dimension_ids: list[str]
    validation: dict[str, Any]
    guard: dict[str, Any] | None
    sort_order: int
    option_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    original: Attribute | None = field(default=None, compare=False)

    @classmethod
    def of(cls, attribute: Attribute) -> _Draft:
        """The draft of an existing attribute."""
        return cls(
            alias=attribute.alias,
            name=attribute.name,
            labels=dict(attribute.labels or {}),
            data_type=attribute.data_type,
            required=attribute.required,
            dimension_ids=list(attribute.dimension_ids or []),
            validation=dict(attribute.validation or {}),
            guard=attribute.guard,
            sort_order=attribute.sort_order,
            option_labels=dict(attribute.option_labels or {}),
            original=attribute,
        )

    @classmethod
    def new(cls, data: AttributeCreate, *, sort_order: int, original: Attribute | None = None) -> _Draft:
        """The draft of an attribute as sent."""
        return cls(
            alias=data.alias,
            name=data.name,
            labels=dict(data.labels),
            data_type=data.data_type,
            required=data.required,
            dimension_ids=list(dict.fromkeys(data.dimension_ids)),
            validation=data.validation.as_dict(),
            guard=data.guard.as_dict() if data.guard else None,
            sort_order=sort_order if data.sort_order is None else data.sort_order,
            option_labels={option: dict(labels) for option, labels in data.option_labels.items()},
            original=original,
        )


def list_schemas(session: Session) -> Sequence[Schema]:
    """Every schema, by id."""
    return session.scalars(select(Schema).order_by(Schema.id)).all()


def get_schema(session: Session, *, schema_id: str) -> Schema:
    """One schema with its attributes, or 404."""
    schema = _lookup(session, Schema, schema_id)
    if schema is None:
        raise not_found("Schema", schema_id)
    return schema


def _check_rules(draft: _Draft) -> None:
    """The validation rules fit the data type and make sense together."""
    _check_rule_names(draft)
    if draft.validation.get("unique") and draft.dimension_ids:
        raise _invalid(
            ErrorCode.INVALID_RULE,
            f"Attribute '{draft.alias}': a unique attribute holds one value per record, so it cannot have "
            "dimensions.",
            attribute=draft.alias,
            rule="unique",
        )
    _check_rule_bounds(draft)
    _check_pattern(draft)
    if draft.data_type in OPTION_TYPES:
        _check_options(draft)


def _check_rule_names(draft: _Draft) -> None:
    """Every rule is one the attribute's data type accepts."""
    allowed = RULES_BY_TYPE[draft.data_type]
    for name in draft.validation:
        if name not in allowed:
            fits = ", ".join(sorted(allowed)) or "none"
            raise _invalid(
                ErrorCode.INVALID_RULE,
                f"Attribute '{draft.alias}': rule '{name}' does not apply to data type "
                f"'{draft.data_type}' (it accepts: {fits}).",
                attribute=draft.alias,
                rule=name,
            )


def _check_rule_bounds(draft: _Draft) -> None:
    """No lower bound (``min``, ``minLength``) is above its upper bound."""
    rules = draft.validation
    for low, high in (("min", "max"), ("minLength", "maxLength")):
        if low in rules and high in rules and rules[low] > rules[high]:
            raise _invalid(
                ErrorCode.INVALID_RULE,
                f"Attribute '{draft.alias}': {low} ({rules[low]}) is above {high} ({rules[high]}).",
                attribute=draft.alias,
                rule=low,
            )


def _check_pattern(draft: _Draft) -> None:
    """The ``pattern`` rule, when given, is a regular expression that compiles."""
    if "pattern" not in draft.validation:
        return
    try:
        re.compile(draft.validation["pattern"])
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise _invalid(
            ErrorCode.INVALID_PATTERN,
            f"Attribute '{draft.alias}': pattern does not compile: {exc}.",
            attribute=draft.alias,
            rule="pattern",
        ) from None


def _check_options(draft: _Draft) -> None:
    """A select or multiselect lists its options, each once."""
    options = draft.validation.get("options") or []
    if not options:
        raise _invalid(
            ErrorCode.OPTIONS_REQUIRED,
            f"Attribute '{draft.alias}': a {draft.data_type} needs a non-empty validation.options list.",
            attribute=draft.alias,
            rule="options",
        )
    if len(set(options)) != len(options):
        raise _invalid(
            ErrorCode.INVALID_RULE,
            f"Attribute '{draft.alias}': an option is listed twice.",
            attribute=draft.alias,
            rule="options",
        )


def _check_option_labels(draft: _Draft, segments: AbstractSet[str]) -> None:
    """Option labels name the attribute's own options, in known segments."""
    if not draft.option_labels:
        return
    options = set(draft.validation.get("options") or [])
    unknown = sorted(o for o in draft.option_labels if o not in options)
    if unknown:
        raise _invalid(
            ErrorCode.INVALID_RULE,
            f"Attribute '{draft.alias}': optionLabels name {', '.join(unknown)}, not among its options"
            + ("" if options else f" (a {draft.data_type} has none; only select and multiselect do)")
            + ".",
            attribute=draft.alias,
            rule="optionLabels",
        )
    segs = sorted({s for labels in draft.option_labels.values() for s in labels if s not in segments})
    if segs:
        raise _invalid(
            ErrorCode.UNKNOWN_SEGMENT,
            f"Attribute '{draft.alias}': optionLabels are keyed by segment id; unknown: {', '.join(segs)}.",
            attribute=draft.alias,
            segmentIds=segs,
        )


def _check_guard(draft: _Draft, by_alias: dict[str, _Draft]) -> None:
    guard = draft.guard
    if guard is None:
        return
    target_alias = guard["attributeAlias"]
    target = by_alias.get(target_alias)
    if target is None or target_alias == draft.alias:
        raise _invalid(
            ErrorCode.INVALID_GUARD,
            f"Attribute '{draft.alias}': guard must name another attribute of this schema, "
            f"not '{target_alias}'.",
            attribute=draft.alias,
            guard=guard,
        )
    value = guard["value"]
    if target.data_type == DataType.MULTISELECT and isinstance(value, str):
        value = [value]  # "the multiselect holds this option"
    spec = AttributeSpec(
        alias=target.alias, data_type=target.data_type, dimension_ids=(), validation=target.validation
    )
    try:
        validate_values(
            {target.alias: [{"scope": {}, "value": value}]}, attributes={target.alias: spec}, segments={}
        )
    except ValidationFailed as exc:
        raise _invalid(
            ErrorCode.INVALID_GUARD,
            f"Attribute '{draft.alias}': guard value does not fit '{target.alias}' "
            f"({target.data_type}): {exc.details[0]['message'] if exc.details else exc.message}",
            attribute=draft.alias,
            guard=guard,
        ) from None
    seen = {draft.alias}
    current: _Draft | None = target
    while current is not None and current.guard is not None:
        if current.alias in seen:
            raise _invalid(
                ErrorCode.INVALID_GUARD,
                f"Attribute '{draft.alias}': guards form a cycle through '{current.alias}'.",
                attribute=draft.alias,
                guard=guard,
            )
        seen.add(current.alias)
        current = by_alias.get(current.guard["attributeAlias"])


def _check_attributes(session: Session, drafts: list[_Draft]) -> None:
    """The attributes are valid together: unique aliases, known dimensions and segments, sound rules."""
    _check_unique((d.alias for d in drafts), "Attribute")
    segments = segments_by_dimension(session)
    all_segments = set().union(*segments.values()) if segments else set()
    by_alias = {d.alias: d for d in drafts}
    for draft in drafts:
        unknown = [d for d in draft.dimension_ids if d not in segments]
        if unknown:
            raise _invalid(
                ErrorCode.UNKNOWN_DIMENSION,
                f"Attribute '{draft.alias}': unknown dimension(s) {', '.join(unknown)}.",
                attribute=draft.alias,
                dimensionIds=unknown,
            )
        unknown = sorted(k for k in draft.labels if k not in all_segments)
        if unknown:
            raise _invalid(
                ErrorCode.UNKNOWN_SEGMENT,
                f"Attribute '{draft.alias}': labels are keyed by segment id; unknown: {', '.join(unknown)}.",
                attribute=draft.alias,
                segmentIds=unknown,
            )
        _check_option_labels(draft, all_segments)
        _check_rules(draft)
    for draft in drafts:
        _check_guard(draft, by_alias)


def _attribute_values(schema_id: str, alias: str) -> tuple[ColumnElement[bool], ...]:
    return (Record.schema_id == schema_id, RecordValue.attribute == alias)


def _check_against_values(session: Session, schema: Schema, drafts: list[_Draft]) -> None:
    """Removed attributes hold no values; changed ones still fit the values records hold."""
    _check_removed_attributes(session, schema, {d.alias for d in drafts})
    for draft in drafts:
        if draft.original is not None:
            _check_changed_attribute(session, schema.id, draft, draft.original)


def _check_removed_attributes(session: Session, schema: Schema, kept: set[str]) -> None:
    """The schema's attributes not in ``kept`` hold no values."""
    for attribute in schema.attributes:
        if attribute.alias in kept:
            continue
        if _value_usage(session, *_attribute_values(schema.id, attribute.alias)):
            raise _attribute_in_use(session, schema.id, attribute.alias, "cannot be removed")


def _check_changed_attribute(session: Session, schema_id: str, draft: _Draft, old: Attribute) -> None:
    """The values records hold for ``old`` still fit its new form ``draft``."""
    if draft.validation.get("unique") and not (old.validation or {}).get("unique"):
        _check_no_duplicates(session, schema_id, old.alias)
    holds = _attribute_values(schema_id, old.alias)
    if draft.data_type != old.data_type and _value_usage(session, *holds):
        raise _attribute_in_use(
            session,
            schema_id,
            old.alias,
            f"cannot change its data type from '{old.data_type}' to '{draft.data_type}'",
        )
    _check_dropped_dimensions(session, schema_id, draft, old)
    if draft.data_type in OPTION_TYPES and old.data_type == draft.data_type:
        _check_dropped_options(session, schema_id, draft, old)


def _check_dropped_dimensions(session: Session, schema_id: str, draft: _Draft, old: Attribute) -> None:
    """No value of ``old`` is scoped by a dimension ``draft`` drops."""
    for dimension_id in sorted(set(old.dimension_ids or []) - set(draft.dimension_ids)):
        usage = _value_usage(session, *_attribute_values(schema_id, old.alias), _scope_uses(dimension_id))
        if usage:
            raise _in_use(
                f"Attribute '{old.alias}' cannot drop dimension '{dimension_id}': "
                f"{usage[0]['records']} records hold values scoped by it.",
                usage,
            )


def _check_dropped_options(session: Session, schema_id: str, draft: _Draft, old: Attribute) -> None:
    """No value of ``old`` is an option ``draft`` drops."""
    dropped = sorted(
        set((old.validation or {}).get("options") or []) - set(draft.validation.get("options") or [])
    )
    if not dropped:
        return
    usage = _value_usage(
        session, *_attribute_values(schema_id, old.alias), RecordValue.value_text.in_(dropped)
    )
    if usage:
        raise _in_use(
            f"Attribute '{old.alias}' cannot drop options records still hold "
            f"({usage[0]['records']} records).",
            [{"options": dropped, **usage[0]}],
        )


def _check_no_duplicates(session: Session, schema_id: str, alias: str) -> None:
    """An attribute can become unique only when no two records of the schema share a value."""
    shared = session.execute(
        select(RecordValue.value_text, func.count(func.distinct(RecordValue.record_pk)))
        .join(Record, Record.pk == RecordValue.record_pk)
        .where(Record.schema_id == schema_id, RecordValue.attribute == alias, RecordValue.scope_key == "")
        .group_by(RecordValue.value_text)
        .having(func.count(func.distinct(RecordValue.record_pk)) > 1)
        .order_by(RecordValue.value_text)
        .limit(_USAGE_SAMPLE)
    ).all()
    if shared:
        raise _in_use(
            f"Attribute '{alias}' cannot become unique: records of '{schema_id}' share values "
            f"(e.g. {shared[0][0]!r} in {shared[0][1]} records); make them unique first.",
            [{"value": value, "records": count} for value, count in shared],
        )


def _attribute_in_use(session: Session, schema_id: str, alias: str, what: str) -> Conflict:
    usage = _value_usage(session, *_attribute_values(schema_id, alias))
    count = usage[0]["records"] if usage else 0
    return _in_use(f"Attribute '{alias}' {what}: {count} records of '{schema_id}' hold values for it.", usage)


def _apply_attributes(schema: Schema, drafts: list[_Draft]) -> None:
    result = []
    for draft in drafts:
        attribute = draft.original or Attribute(id=new_id("attr"), schema_id=schema.id, alias=draft.alias)
        attribute.name = draft.name
        attribute.labels = draft.labels
        attribute.data_type = draft.data_type
        attribute.required = draft.required
        attribute.dimension_ids = draft.dimension_ids
        attribute.validation = draft.validation
        attribute.guard = draft.guard
        attribute.sort_order = draft.sort_order
        attribute.option_labels = draft.option_labels
        result.append(attribute)
    schema.attributes = result
    schema.updated_at = utcnow()


def _check_workflow_ref(session: Session, workflow_id: str | None) -> None:
    if workflow_id is not None and session.get(Workflow, workflow_id) is None:
        raise _invalid(
            ErrorCode.UNKNOWN_WORKFLOW, f"Workflow '{workflow_id}' does not exist.", workflowId=workflow_id
        )


def _record_count(session: Session, schema_id: str) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Record).where(Record.schema_id == schema_id)) or 0
    )


def create_schema(session: Session, *, data: SchemaCreate) -> Schema:
    """Create a schema with its attributes."""
    schema_id = data.id or new_id("schema")
    if session.get(Schema, schema_id) is not None:
        raise _exists("Schema", schema_id)
    _check_workflow_ref(session, data.workflow_id)
    drafts = [_Draft.new(a, sort_order=i) for i, a in enumerate(data.attributes)]
    _check_attributes(session, drafts)
    schema = Schema(id=schema_id, name=data.name, description=data.description, workflow_id=data.workflow_id)
    session.add(schema)
    _apply_attributes(schema, drafts)
    schema.created_at = schema.updated_at
    _flush(session)
    return schema


def update_schema(session: Session, *, schema_id: str, data: SchemaUpdate) -> Schema:
    """Change a schema; a given attribute list replaces the old one, matched by alias."""
    schema = get_schema(session, schema_id=schema_id)
    given = data.model_fields_set
    if "workflow_id" in given and data.workflow_id != schema.workflow_id:
        _check_workflow_ref(session, data.workflow_id)
        records = _record_count(session, schema_id)
        if records:
            raise _in_use(
                f"Schema '{schema_id}' has {records} records in the states of its workflow; "
                "its workflow cannot change.",
                [{"schemaId": schema_id, "records": records}],
            )
    if data.attributes is not None:
        existing = {a.alias: a for a in schema.attributes}
        drafts = [
            _Draft.new(a, sort_order=i, original=existing.get(a.alias)) for i, a in enumerate(data.attributes)
        ]
        _check_attributes(session, drafts)
        _check_against_values(session, schema, drafts)
        _apply_attributes(schema, drafts)
    if data.name is not None:
        schema.name = data.name
    if "description" in given:
        schema.description = data.description
    if "workflow_id" in given:
        schema.workflow_id = data.workflow_id
    schema.updated_at = utcnow()
    _flush(session)
    return schema


def delete_schema(session: Session, *, schema_id: str) -> None:
    """Delete a schema that has no records."""
    schema = get_schema(session, schema_id=schema_id)
    records = _record_count(session, schema_id)
    if records:
        raise _in_use(
            f"Schema '{schema_id}' has {records} records; delete them first.",
            [{"schemaId": schema_id, "records": records}],
        )
    session.delete(schema)
    _flush(session)


def _find_attribute(schema: Schema, alias: str) -> Attribute:
    for attribute in schema.attributes:
        if attribute.alias == alias:
            return attribute
    raise not_found("Attribute", f"{schema.id}/{alias}")


def get_attribute(session: Session, *, schema_id: str, alias: str) -> Attribute:
    """One attribute of a schema, or 404."""
    return _find_attribute(get_schema(session, schema_id=schema_id), alias)


def add_attribute(session: Session, *, schema_id: str, data: AttributeCreate) -> Attribute:
    """Add an attribute to a schema (after the others unless a sortOrder is given)."""
    schema = get_schema(session, schema_id=schema_id)
    if any(a.alias == data.alias for a in schema.attributes):
        raise _exists("Attribute", f"{schema_id}/{data.alias}")
    order = max((a.sort_order for a in schema.attributes), default=-1) + 1
    drafts = [*map(_Draft.of, schema.attributes), _Draft.new(data, sort_order=order)]
    _check_attributes(session, drafts)
    _apply_attributes(schema, drafts)
    _flush(session)
    return _find_attribute(schema, data.alias)


def update_attribute(session: Session, *, schema_id: str, alias: str, data: AttributeUpdate) -> Attribute:
    """Change the given fields of an attribute (``guard: null`` removes the guard)."""
    schema = get_schema(session, schema_id=schema_id)
    _find_attribute(schema, alias)
    changes: dict[str, Any] = {}
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is None and name != "guard":
            continue
        if name == "validation":
            value = value.as_dict()
        elif name == "guard":
            value = value.as_dict() if value is not None else None
        elif name == "dimension_ids":
            value = list(dict.fromkeys(value))
        elif name in ("labels", "option_labels"):
            value = dict(value)
        changes[name] = value
    drafts = [replace(d, **changes) if d.alias == alias else d for d in map(_Draft.of, schema.attributes)]
    _check_attributes(session, drafts)
    _check_against_values(session, schema, drafts)
    _apply_attributes(schema, drafts)
    _flush(session)
    return _find_attribute(schema, alias)


def delete_attribute(session: Session, *, schema_id: str, alias: str) -> None:
    """Remove an attribute no record holds values for and no guard names."""
    schema = get_schema(session, schema_id=schema_id)
    _find_attribute(schema, alias)
    guarded = [a.alias for a in schema.attributes if a.guard and a.guard.get("attributeAlias") == alias]
    if guarded:
        raise _in_use(
            f"Attribute '{alias}' guards {', '.join(guarded)}; change their guards first.",
            [{"attribute": a} for a in guarded],
        )
    drafts = [_Draft.of(a) for a in schema.attributes if a.alias != alias]
    _check_against_values(session, schema, drafts)
    _apply_attributes(schema, drafts)
    _flush(session)


# Catalogs and categories


def list_catalogs(session: Session) -> Sequence[Catalog]:
    """Every catalog, by id."""
    return session.scalars(select(Catalog).order_by(Catalog.id)).all()


def get_catalog(session: Session, *, catalog_id: str) -> Catalog:
    """One catalog, or 404."""
    catalog = _lookup(session, Catalog, catalog_id)
    if catalog is None:
        raise not_found("Catalog", catalog_id)
    return catalog


def create_catalog(session: Session, *, data: CatalogCreate) -> Catalog:
    """Create an (empty) catalog."""
    catalog_id = data.id or new_id("catalog")
    if session.get(Catalog, catalog_id) is not None:
        raise _exists("Catalog", catalog_id)
    catalog = Catalog(id=catalog_id, name=data.name, description=data.description)
    session.add(catalog)
    _flush(session)
    return catalog


def update_catalog(session: Session, *, catalog_id: str, data: CatalogUpdate) -> Catalog:
    """Change a catalog's name or description."""
    catalog = get_catalog(session, catalog_id=catalog_id)
    if data.name is not None:
        catalog.name = data.name
    if "description" in data.model_fields_set:
        catalog.description = data.description
    _flush(session)
    return catalog


def delete_catalog(session: Session, *, catalog_id: str) -> None:
    """Delete a catalog with its categories and their record assignments."""
    session.delete(get_catalog(session, catalog_id=catalog_id))
    _flush(session)


def list_categories(session: Session, *, catalog_id: str) -> list[Category]:
    """A catalog's categories, depth first: each parent before its children, siblings by sortOrder, id."""
    get_catalog(session, catalog_id=catalog_id)
    rows = session.scalars(
        select(Category).where(Category.catalog_id == catalog_id).order_by(Category.sort_order, Category.id)
    ).all()
    children: dict[str | None, list[Category]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    ordered: list[Category] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        node = stack.pop()
        ordered.append(node)
        stack.extend(reversed(children.get(node.id, [])))
    if len(ordered) < len(rows):
        # Rows not reachable from a top-level category (written by other means) still get listed.
        seen = {c.id for c in ordered}
        ordered.extend(row for row in rows if row.id not in seen)
    return ordered


def get_category(session: Session, *, category_id: str) -> Category:
    """One category, or 404."""
    category = _lookup(session, Category, category_id)
    if category is None:
        raise not_found("Category", category_id)
    return category


def _check_parent(session: Session, *, catalog_id: str, parent_id: str) -> Category:
    parent = session.get(Category, parent_id)
    if parent is None or parent.catalog_id != catalog_id:
        raise _invalid(
            ErrorCode.INVALID_PARENT,
            f"Parent '{parent_id}' is not a category of catalog '{catalog_id}'.",
            parentId=parent_id,
        )
    return parent


def create_category(session: Session, *, catalog_id: str, data: CategoryCreate) -> Category:
    """Add a category to a catalog, under ``parentId`` or at the top level."""
    get_catalog(session, catalog_id=catalog_id)
    category_id = data.id or new_id("cat")
    if session.get(Category, category_id) is not None:
        raise _exists("Category", category_id)
    if data.parent_id is not None:
        _check_parent(session, catalog_id=catalog_id, parent_id=data.parent_id)
    order = data.sort_order
    if order is None:
        order = _next_order(
            session,
            Category.sort_order,
            Category.catalog_id == catalog_id,
            Category.parent_id.is_(None) if data.parent_id is None else Category.parent_id == data.parent_id,
        )
    category = Category(
        id=category_id, catalog_id=catalog_id, parent_id=data.parent_id, name=data.name, sort_order=order
    )
    session.add(category)
    _flush(session)
    return category


def _descendant_ids(session: Session, *, category: Category) -> set[str]:
    pairs = session.execute(
        select(Category.id, Category.parent_id).where(Category.catalog_id == category.catalog_id)
    ).all()
    children: dict[str | None, list[str]] = {}
    for child_id, parent_id in pairs:
        children.setdefault(parent_id, []).append(child_id)
    found: set[str] = set()
    stack = [category.id]
    while stack:
        for child_id in children.get(stack.pop(), []):
            if child_id not in found:
                found.add(child_id)
                stack.append(child_id)
    return found


def update_category(session: Session, *, category_id: str, data: CategoryUpdate) -> Category:
    """Rename, reorder or move a category within its catalog."""
    category = get_category(session, category_id=category_id)
    if "parent_id" in data.model_fields_set and data.parent_id != category.parent_id:
        if data.parent_id is not None:
            if data.parent_id == category.id or data.parent_id in _descendant_ids(session, category=category):
                raise _invalid(
                    ErrorCode.CATEGORY_CYCLE,
                    f"Category '{category_id}' cannot move under itself or its descendant "
                    f"'{data.parent_id}'.",
                    parentId=data.parent_id,
                )
            _check_parent(session, catalog_id=category.catalog_id, parent_id=data.parent_id)
        category.parent_id = data.parent_id
    if data.name is not None:
        category.name = data.name
    if data.sort_order is not None:
        category.sort_order = data.sort_order
    _flush(session)
    return category


def delete_category(session: Session, *, category_id: str) -> None:
    """Delete a category, its subtree and their record assignments (by foreign-key cascade)."""
    category = get_category(session, category_id=category_id)
    doomed = _descendant_ids(session, category=category)
    session.delete(category)
    _flush(session)
    # The database removed the subtree; forget any copies this session still holds.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Category) and obj.id in doomed:
            session.expunge(obj)


def dimension_scope_problems(
    session: Session, scope: Mapping[str, str | Sequence[str]] | None
) -> list[tuple[str, dict[str, Any]]]:
    """What is wrong with a ``dimensionScope`` (unknown dimensions or segments): (message, detail) pairs."""
    problems: list[tuple[str, dict[str, Any]]] = []
    listed: list[tuple[str, str | None]] = []
    for dim_id, chosen in (scope or {}).items():
        segments = [chosen] if isinstance(chosen, str) else list(chosen)
        listed += [(dim_id, seg_id) for seg_id in segments] or [(dim_id, None)]  # []: no segment
    for dim_id, seg_id in listed:
        field = f"dimensionScope.{dim_id}"
        if session.get(Dimension, dim_id) is None:
            problems.append(
                (
                    f"{field}: dimension '{dim_id}' does not exist.",
                    {"field": field, "message": "unknown dimension", "value": dim_id},
                )
            )
        elif seg_id is None or session.get(Segment, (dim_id, seg_id)) is None:
            known = session.scalars(
                select(Segment.id).where(Segment.dimension_id == dim_id).order_by(Segment.sort_order)
            ).all()
            problems.append(
                (
                    f"{field}: "
                    + ("lists no segment" if seg_id is None else f"'{seg_id}' is not a segment of {dim_id}")
                    + f" (known: {', '.join(known)}).",
                    {"field": field, "message": "unknown segment", "value": seg_id},
                )
            )
    return problems
