"""An export spec checked against the catalogue and turned into what a run needs: its format, its
column plan and the WHERE clauses of its records (and tombstones)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from skuport.catalog.models import Attribute, Catalog, Category, Dimension, LifecycleState, Schema, Segment
from skuport.errors import ValidationFailed
from skuport.exporting import select as selection
from skuport.exporting.conventions import DELETED_COLUMN
from skuport.exporting.formats import FORMATS, Format
from skuport.exporting.plan import (
    CATEGORIES_COLUMN,
    COMPLETENESS_COLUMN,
    SYSTEM_FIELDS,
    AttributeInfo,
    ColumnPlan,
    Kind,
    Wanted,
    kind_of,
)
from skuport.exporting.spec import ExportSpec
from skuport.records.filters import filter_clauses

if TYPE_CHECKING:
    from skuport.exporting.selection import ColumnSpec

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
"""A date default as dates are stored (fromisoformat alone also takes 20240105 and 2024-W01-1)."""
LIFECYCLE_COLUMN = "lifecycleStateId"
"""The column ``includes: ["lifecycleState"]`` adds (skuport.exporting.selection.ALWAYS_INCLUDED)."""
INCLUDES = frozenset({"categories", "completeness"})
"""Extra columns an export can ask for (see docs/export-format.md)."""


@dataclass
class PreparedExport:
    """A validated spec turned into what the run needs: format, column plan and WHERE clauses."""

    spec: ExportSpec
    format: Format
    plan: ColumnPlan
    record_clauses: list[ColumnElement[bool]]
    tombstone_clauses: list[ColumnElement[bool]] | None
    kinds_by_alias: dict[str, set[str]]
    """Attribute alias -> the column kinds of the attributes of that alias across schemas."""
    pk_after: int = -1
    """The records start after this pk (a part of a split export; its ``record_clauses`` hold the range,
    which engines that rebuild the clauses from the spec start from)."""


def problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _refuse(problems: list[dict[str, str]]) -> None:
    if problems:
        raise ValidationFailed(
            f"Invalid export: {problems[0]['message']}", details=problems, code="invalid_export"
        )


def _attributes(session: Session, schema_id: str | None) -> list[AttributeInfo]:
    query = select(Attribute).order_by(Attribute.schema_id, Attribute.sort_order, Attribute.alias)
    if schema_id:
        query = query.where(Attribute.schema_id == schema_id)
    seen: dict[str, AttributeInfo] = {}
    for attr in session.scalars(query):
        if attr.alias not in seen:
            seen[attr.alias] = AttributeInfo(
                alias=attr.alias,
                data_type=attr.data_type,
                dimension_ids=tuple(attr.dimension_ids or ()),
                labels=dict(attr.labels or {}),
                name=attr.name,
                option_labels=dict(attr.option_labels or {}),
            )
    return list(seen.values())


def _segments(session: Session) -> dict[str, list[str]]:
    query = (
        select(Segment.dimension_id, Segment.id)
        .join(Dimension, Dimension.id == Segment.dimension_id)
        .order_by(Dimension.sort_order, Dimension.id, Segment.sort_order, Segment.id)
    )
    segments: dict[str, list[str]] = {}
    for dim, seg in session.execute(query):
        segments.setdefault(dim, []).append(seg)
    return segments


Problems = list[dict[str, str]]


def _check_fields(spec: ExportSpec, by_alias: Mapping[str, AttributeInfo], problems: Problems) -> None:
    assert spec.fields is not None
    where = f"schema '{spec.schema_id}'" if spec.schema_id else "any schema"
    for alias in [f for f in spec.fields if f not in by_alias and f not in SYSTEM_FIELDS]:
        problems.append(
            problem(
                "fields",
                f"'{alias}' is neither an attribute of {where} nor a record "
                f"field ({', '.join(SYSTEM_FIELDS)}).",
            )
        )
    doubles = sorted({f for f in spec.fields if list(spec.fields).count(f) > 1})
    if doubles:
        problems.append(problem("fields", f"fields name {', '.join(doubles)} more than once."))
    if not spec.fields:
        problems.append(problem("fields", "fields is empty; leave it out to export every attribute."))


def _check_scope(spec: ExportSpec, segments: Mapping[str, list[str]], problems: Problems) -> None:
    if spec.dimension_scope is not None:
        if not isinstance(spec.dimension_scope, Mapping):
            problems.append(
                problem("dimensionScope", "dimensionScope must map dimension ids to segment ids.")
            )
            return
        for dim, chosen in spec.dimension_scope.items():
            _check_dimension(dim, chosen, segments, problems, with_columns=spec.columns is not None)
    if spec.header_language and not any(spec.header_language in segs for segs in segments.values()):
        problems.append(problem("headerLanguage", f"'{spec.header_language}' is not a segment."))


def _check_dimension(
    dim: str,
    chosen: str | Sequence[str],
    segments: Mapping[str, list[str]],
    problems: Problems,
    *,
    with_columns: bool,
) -> None:
    """One dimension of a dimensionScope: a segment of it, or a list of them (not with ``columns``)."""
    listed = [chosen] if isinstance(chosen, str) else list(chosen)
    if dim not in segments:
        problems.append(problem("dimensionScope", f"dimension '{dim}' does not exist."))
        return
    if not listed:
        problems.append(problem("dimensionScope", f"dimension '{dim}' lists no segment."))
    if len(set(listed)) != len(listed):
        problems.append(problem("dimensionScope", f"dimension '{dim}' lists a segment twice."))
    for seg in listed:
        if seg not in segments[dim]:
            problems.append(problem("dimensionScope", f"'{seg}' is not a segment of dimension '{dim}'."))
    if with_columns and not isinstance(chosen, str):
        problems.append(
            problem(
                "dimensionScope",
                f"with columns, dimension '{dim}' maps to one segment; give each column its own scope.",
            )
        )


def _single_scope(spec: ExportSpec) -> dict[str, str]:
    """The dimensionScope with each listed dimension at its first segment (filters resolve in it)."""
    return {d: s if isinstance(s, str) else s[0] for d, s in (spec.dimension_scope or {}).items() if s}


def _default(column: ColumnSpec, kind: Kind) -> tuple[Any, str | None]:
    """A column's default as the plan holds it, or why it does not fit the attribute's kind."""
    value = column.default
    if value is None:
        return None, None
    if kind == Kind.NUMBER:
        fits = isinstance(value, int | float) and not isinstance(value, bool)
        return value, None if fits else "a number"
    if kind == Kind.BOOLEAN:
        return value, None if isinstance(value, bool) else "true or false"
    if not isinstance(value, str):
        return value, "text"
    if kind == Kind.LIST:
        return [value], None
    if kind == Kind.DATE:
        try:
            if not ISO_DATE.fullmatch(value):
                raise ValueError(value)
            dt.date.fromisoformat(value)
        except ValueError:
            return value, "a date as YYYY-MM-DD"
    return value, None


def _check_columns(
    spec: ExportSpec,
    by_alias: Mapping[str, AttributeInfo],
    segments: Mapping[str, list[str]],
    problems: Problems,
) -> list[Wanted]:
    """The columns an export names, each checked (a problem names its index), as the plan takes them."""
    assert spec.columns is not None
    wanted: list[Wanted] = []
    headers: dict[str, int] = {}
    fields: dict[str, int] = {}
    base = _single_scope(spec)
    added = _added_columns(spec)
    for i, column in enumerate(spec.columns):
        at = f"columns[{i}]"
        if column.header in headers:
            if column.header == LIFECYCLE_COLUMN and i == len(spec.columns) - 1 and column.field:
                at, message = "includes", f"lifecycleState adds a {LIFECYCLE_COLUMN} column, and "
                problems.append(problem(at, message + f"columns[{headers[column.header]}] has that header."))
            else:
                problems.append(
                    problem(at, f"header '{column.header}' is columns[{headers[column.header]}]'s.")
                )
        elif column.header in added and column.field != column.header:
            problems.append(
                problem(at, f"header '{column.header}' is the column {added[column.header]} adds.")
            )
        headers.setdefault(column.header, i)
        if column.field is not None:
            if column.field not in SYSTEM_FIELDS:
                fields_list = ", ".join(SYSTEM_FIELDS)
                problems.append(problem(at, f"'{column.field}' is not a record field ({fields_list})."))
            elif column.field in fields:
                problems.append(problem(at, f"field '{column.field}' is columns[{fields[column.field]}]."))
            fields.setdefault(column.field, i)
            wanted.append(Wanted(header=column.header, field=column.field))
        elif column.attribute is None:
            wanted.append(Wanted(header=column.header, value=column.value))
        elif (found := _attribute_column(spec, at, column, by_alias, segments, problems)) is not None:
            attribute, default = found
            scope = base | dict(column.scope or {})
            wanted.append(Wanted(header=column.header, attribute=attribute, scope=scope, default=default))
    return wanted


def _added_columns(spec: ExportSpec) -> dict[str, str]:
    """The columns an export adds after its ``columns`` (header -> what adds it)."""
    added: dict[str, str] = {}
    if spec.changed_since is not None:
        added[DELETED_COLUMN] = "a delta export"
    if "categories" in spec.includes:
        added[CATEGORIES_COLUMN] = "includes categories"
    if "completeness" in spec.includes:
        added[COMPLETENESS_COLUMN] = "includes completeness"
    return added


def _attribute_column(
    spec: ExportSpec,
    at: str,
    column: ColumnSpec,
    by_alias: Mapping[str, AttributeInfo],
    segments: Mapping[str, list[str]],
    problems: Problems,
) -> tuple[AttributeInfo, Any] | None:
    """An attribute column's attribute and default, its scope checked (None: no such attribute)."""
    attribute = by_alias.get(column.attribute or "")
    if attribute is None:
        where = f"schema '{spec.schema_id}'" if spec.schema_id else "any schema"
        problems.append(problem(at, f"'{column.attribute}' is not an attribute of {where}."))
        return None
    for dim, seg in (column.scope or {}).items():
        if dim not in segments:
            problems.append(problem(at, f"scope: dimension '{dim}' does not exist."))
        elif seg not in segments[dim]:
            problems.append(problem(at, f"scope: '{seg}' is not a segment of dimension '{dim}'."))
    default, expected = _default(column, kind_of(attribute.data_type))
    if expected is not None:
        problems.append(
            problem(at, f"default must be {expected}: '{column.attribute}' is a {attribute.data_type}.")
        )
    return attribute, default


def _check_references(session: Session, spec: ExportSpec, problems: Problems) -> list[str] | None:
    """Schema, catalog and lifecycle states exist; returns the catalog's category ids."""
    if spec.schema_id and session.get(Schema, spec.schema_id) is None:
        problems.append(problem("schemaId", f"schema '{spec.schema_id}' does not exist."))
    category_ids: list[str] | None = None
    if spec.catalog_id:
        if session.get(Catalog, spec.catalog_id) is None:
            problems.append(problem("catalogId", f"catalog '{spec.catalog_id}' does not exist."))
        category_ids = list(
            session.scalars(select(Category.id).where(Category.catalog_id == spec.catalog_id))
        )
    if spec.lifecycle_state_ids:
        known = set(
            session.scalars(
                select(LifecycleState.id).where(LifecycleState.id.in_(list(spec.lifecycle_state_ids)))
            )
        )
        for state in spec.lifecycle_state_ids:
            if state not in known:
                problems.append(problem("lifecycleStateIds", f"lifecycle state '{state}' does not exist."))
    return category_ids


def _check_options(spec: ExportSpec, problems: Problems) -> None:
    for include in spec.includes:
        if include not in INCLUDES:
            problems.append(
                problem("includes", f"cannot include '{include}'; use one of: {', '.join(sorted(INCLUDES))}.")
            )
    if spec.max_records is not None and spec.max_records < 0:
        problems.append(problem("maxRecords", "maxRecords must not be negative."))
    if spec.changed_since is not None and spec.changed_since.tzinfo is None:
        problems.append(problem("changedSince", "changedSince needs a time zone (e.g. ...Z)."))
    if spec.columns is not None and spec.fields is not None:
        problems.append(
            problem("columns", "give columns or fields, not both (set fields to null to use columns).")
        )
    if spec.csv is not None and spec.format != "csv":
        problems.append(problem("csv", f"csv sets a csv file's dialect, but the format is {spec.format}."))


def _kinds(session: Session, schema_id: str | None) -> dict[str, set[str]]:
    """Attribute alias -> the column kinds of the attributes of that alias (across schemas unless one)."""
    kinds: dict[str, set[str]] = {}
    by_schema = select(Attribute.alias, Attribute.data_type)
    if schema_id:
        by_schema = by_schema.where(Attribute.schema_id == schema_id)
    for alias, data_type in session.execute(by_schema):
        kinds.setdefault(alias, set()).add(kind_of(data_type))
    return kinds


def prepare(session: Session, spec: ExportSpec) -> PreparedExport:
    """Check every option of ``spec`` against the catalogue model; raise a 422 listing the problems."""
    problems: Problems = []
    fmt = FORMATS.get(spec.format)
    if fmt is None:
        problems.append(
            problem("format", f"unknown format '{spec.format}' (use one of: {', '.join(FORMATS)}).")
        )
    category_ids = _check_references(session, spec, problems)
    attributes = _attributes(session, spec.schema_id)
    by_alias = {a.alias: a for a in attributes}
    if spec.fields is not None:
        _check_fields(spec, by_alias, problems)
        attributes = [by_alias[f] for f in spec.fields if f in by_alias]
    segments = _segments(session)
    _check_scope(spec, segments, problems)
    columns = _check_columns(spec, by_alias, segments, problems) if spec.columns is not None else None
    _check_options(spec, problems)
    _refuse(problems)
    assert fmt is not None
    scope = dict(spec.dimension_scope) if spec.dimension_scope is not None else None
    filters = filter_clauses(
        session, spec.filters, schema_id=spec.schema_id, dimension_scope=_single_scope(spec) or None
    )
    plan = ColumnPlan(
        attributes=attributes,
        segments=segments,
        columns=columns,
        value_labels=spec.value_labels,
        dimension_scope=scope,
        header_language=spec.header_language,
        dry_data=spec.dry_data,
        deleted_column=spec.changed_since is not None,
        categories_column="categories" in spec.includes,
        completeness=_completeness(session) if "completeness" in spec.includes else None,
        fields=spec.fields,
    )
    clauses = selection.record_clauses(
        schema_id=spec.schema_id,
        include_variants=spec.include_variants,
        lifecycle_state_ids=spec.lifecycle_state_ids,
        category_ids=category_ids,
        changed_since=spec.changed_since,
        filter_clauses=filters,
    )
    tombstones = (
        selection.tombstone_clauses(
            schema_id=spec.schema_id, include_variants=spec.include_variants, changed_since=spec.changed_since
        )
        if spec.changed_since is not None
        else None
    )
    return PreparedExport(
        spec=spec,
        format=fmt.configured(spec),
        plan=plan,
        record_clauses=clauses,
        tombstone_clauses=tombstones,
        kinds_by_alias=_kinds(session, spec.schema_id),
    )


def _completeness(session: Session) -> Callable[[str, str | None, Mapping[str, Any]], int]:
    """Completeness percentage of a record's values for its current state, as the records API computes it."""
    from skuport.records.service import compute_completeness, schema_context

    contexts = {
        schema_id: schema_context(session, schema_id=schema_id)
        for schema_id in session.scalars(select(Schema.id))
    }

    def percentage(schema_id: str, state_id: str | None, values: Mapping[str, Any]) -> int:
        return int(compute_completeness(contexts[schema_id], dict(values), state_id)["percentage"])

    return percentage
