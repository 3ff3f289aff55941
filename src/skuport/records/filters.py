"""The one filter syntax of DESIGN.md, compiled to SQL for ``GET /records`` and the export pipeline.

``{"brand": "Ma Marque"}`` is equality; ``{"price": {"gte": 100, "lt": 500}}`` names operators;
``{"sku_eq": "CW-001"}`` is the suffixed form. Keys are attribute aliases or record fields
(``id``, ``schemaId``, ``parentId``, ``lifecycleStateId``, ``createdAt``, ``updatedAt``,
``createdBy``, ``updatedBy``). A scoped attribute matches on any scope unless a dimension scope
is given; then it matches on the value that scope resolves to (most specific, else global).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select
from sqlalchemy.orm import Session

from skuport.catalog.models import Attribute
from skuport.errors import ValidationFailed
from skuport.records.codecs import DataType
from skuport.records.models import Record, RecordValue
from skuport.records.values import NUMERIC_TYPES, index_text, scope_candidates


class Op(StrEnum):
    """Filter operators."""

    EQ = "eq"
    NE = "ne"
    IN = "in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    CONTAINS = "contains"
    EXISTS = "exists"


OPS = {op.value for op in Op}
_SUFFIXES = sorted(OPS, key=len, reverse=True)

RECORD_FIELDS: dict[str, Any] = {
    "id": Record.id,
    "schemaId": Record.schema_id,
    "parentId": Record.parent_id,
    "lifecycleStateId": Record.lifecycle_state_id,
    "createdAt": Record.created_at,
    "updatedAt": Record.updated_at,
    "createdBy": Record.created_by,
    "updatedBy": Record.updated_by,
}
_TIME_FIELDS = {"createdAt", "updatedAt"}


@dataclass(frozen=True)
class Condition:
    """One (field, operator, value) test."""

    field: str
    op: Op
    value: Any


def parse_query_filters(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn ``filter[brand]=x`` and ``filter[price][gte]=1`` query items into a filter object."""
    result: dict[str, Any] = {}
    for key, value in items:
        if not key.startswith("filter["):
            continue
        parts = key[len("filter") :]
        names: list[str] = []
        while parts.startswith("["):
            end = parts.find("]")
            if end < 0:
                raise ValidationFailed(
                    f"Malformed filter parameter '{key}'.", code="invalid_filter", details=[{"field": key}]
                )
            names.append(parts[1:end])
            parts = parts[end + 1 :]
        if parts or not names or len(names) > 2 or not names[0]:
            raise ValidationFailed(
                f"Malformed filter parameter '{key}': use filter[field]=value or "
                "filter[field][operator]=value.",
                code="invalid_filter",
                details=[{"field": key}],
            )
        if len(names) == 1:
            result[names[0]] = value
        else:
            ops = result.setdefault(names[0], {})
            if not isinstance(ops, dict):
                ops = result[names[0]] = {"eq": ops}
            if names[1] == "in":
                ops.setdefault("in", []).extend(v for v in value.split(",") if v != "")
            else:
                ops[names[1]] = value
    return result


def normalize(filters: Mapping[str, Any] | None, *, known_fields: set[str]) -> list[Condition]:
    """Flatten a filter object into conditions; suffixed keys (``price_gte``) are split."""
    conditions: list[Condition] = []
    if not filters:
        return conditions
    if not isinstance(filters, Mapping):
        raise ValidationFailed("filters must be an object keyed by attribute alias.", code="invalid_filter")
    for key, spec in filters.items():
        field, suffix_op = _split_key(key, known_fields)
        if suffix_op is not None:
            conditions.append(Condition(field, suffix_op, spec))
        elif isinstance(spec, Mapping):
            conditions.extend(_operator_conditions(key, field, spec))
        else:
            conditions.append(Condition(field, Op.EQ, spec))
    return conditions


def _split_key(key: str, known_fields: set[str]) -> tuple[str, Op | None]:
    """The field a filter key names and its operator suffix, if any; unknown fields raise a 422."""
    field, suffix_op = key, None
    if key not in known_fields:
        for suffix in _SUFFIXES:
            if key.endswith("_" + suffix) and key[: -len(suffix) - 1] in known_fields:
                field, suffix_op = key[: -len(suffix) - 1], Op(suffix)
                break
    if field not in known_fields:
        raise ValidationFailed(
            f"Unknown filter field '{key}': not an attribute alias or a record field.",
            code="invalid_filter",
            details=[{"field": key}],
        )
    return field, suffix_op


def _operator_conditions(key: str, field: str, spec: Mapping[str, Any]) -> list[Condition]:
    """The conditions of an operator object such as ``{"gte": 100, "lt": 500}``."""
    if not spec:
        raise ValidationFailed(
            f"Filter '{key}' names no operator.", code="invalid_filter", details=[{"field": key}]
        )
    conditions: list[Condition] = []
    for op, value in spec.items():
        if op not in OPS:
            raise ValidationFailed(
                f"Unknown operator '{op}' in filter '{key}' (use one of: {', '.join(sorted(OPS))}).",
                code="invalid_filter",
                details=[{"field": key, "operator": op}],
            )
        conditions.append(Condition(field, Op(op), value))
    return conditions


def _bad(cond: Condition, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"Filter '{cond.field}' ({cond.op}): {message}.",
        code="invalid_filter",
        details=[{"field": cond.field, "operator": cond.op.value, "message": message}],
    )


def _coerce(cond: Condition, value: Any, types: set[str]) -> tuple[str, Any]:
    """('num', float) or ('text', str) for one filter operand, by the attribute's data type."""
    if isinstance(value, Mapping | list):
        raise _bad(cond, "expected a single value")
    if types and types <= NUMERIC_TYPES:
        if isinstance(value, bool):
            raise _bad(cond, "expected a number")
        try:
            return "num", float(value)
        except (TypeError, ValueError):
            raise _bad(cond, f"'{value}' is not a number") from None
    if types == {DataType.BOOLEAN}:
        text = str(value).lower() if not isinstance(value, bool) else index_text(value)
        if text not in ("true", "false"):
            raise _bad(cond, "expected true or false")
        return "text", text
    if value is None:
        raise _bad(cond, "expected a value")
    return "text", index_text(value)


def _list_operand(cond: Condition) -> list[Any]:
    value = cond.value
    if isinstance(value, str):
        value = [v for v in value.split(",") if v != ""]
    if not isinstance(value, list) or not value:
        raise _bad(cond, "expected a non-empty list")
    return value


def _truthy(cond: Condition) -> bool:
    value = cond.value
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise _bad(cond, "expected true or false")


def _value_test(cond: Condition, types: set[str]) -> ColumnElement[bool]:
    """The test one value-index row must pass."""
    rv = RecordValue
    if cond.op == Op.IN:
        operands = [_coerce(cond, v, types) for v in _list_operand(cond)]
        kind = operands[0][0]
        column = rv.value_num if kind == "num" else rv.value_text
        return column.in_([v for _k, v in operands])
    if cond.op == Op.CONTAINS:
        if cond.value is None or isinstance(cond.value, Mapping | list):
            raise _bad(cond, "expected a text to look for")
        needle = str(cond.value).lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return func.lower(rv.value_text).like(f"%{needle}%", escape="\\")
    kind, operand = _coerce(cond, cond.value, types)
    column = rv.value_num if kind == "num" else rv.value_text
    tests = {
        Op.EQ: column == operand,
        Op.NE: column == operand,
        Op.GT: column > operand,
        Op.GTE: column >= operand,
        Op.LT: column < operand,
        Op.LTE: column <= operand,
    }
    test: ColumnElement[bool] = tests[cond.op]
    return test


def _rows(attribute: str, *extra: ColumnElement[bool]) -> Any:
    return select(RecordValue.id).where(
        RecordValue.record_pk == Record.pk, RecordValue.attribute == attribute, *extra
    )


def _attribute_clause(
    cond: Condition, types: set[str], dimension_scope: Mapping[str, str] | None
) -> ColumnElement[bool]:
    if cond.op == Op.EXISTS:
        if dimension_scope:
            keys = scope_candidates(dimension_scope)
            found = exists(_rows(cond.field, RecordValue.scope_key.in_(keys)))
        else:
            found = exists(_rows(cond.field))
        return found if _truthy(cond) else not_(found)
    test = _value_test(cond, types)
    if not dimension_scope:
        matched: ColumnElement[bool] = exists(_rows(cond.field, test))
    else:
        # The value a scope resolves to is the one of the most specific candidate present.
        ranked = scope_candidates(dimension_scope)
        options: list[ColumnElement[bool]] = []
        for i, key in enumerate(ranked):
            here: ColumnElement[bool] = exists(_rows(cond.field, RecordValue.scope_key == key, test))
            if i:
                here = and_(here, not_(exists(_rows(cond.field, RecordValue.scope_key.in_(ranked[:i])))))
            options.append(here)
        matched = or_(*options)
    return not_(matched) if cond.op == Op.NE else matched


def _time(cond: Condition, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise _bad(cond, f"'{value}' is not an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _record_field_clause(cond: Condition) -> ColumnElement[bool]:
    column = RECORD_FIELDS[cond.field]
    if cond.op == Op.EXISTS:
        return cast(ColumnElement[bool], column.is_not(None) if _truthy(cond) else column.is_(None))
    is_time = cond.field in _TIME_FIELDS

    def convert(value: Any) -> Any:
        if is_time:
            return _time(cond, value)
        if value is None or isinstance(value, Mapping | list):
            raise _bad(cond, "expected a single value")
        return index_text(value)

    if cond.op == Op.IN:
        return cast(ColumnElement[bool], column.in_([convert(v) for v in _list_operand(cond)]))
    if cond.op == Op.CONTAINS:
        if is_time:
            raise _bad(cond, "contains applies to text fields, not timestamps")
        return func.lower(column).contains(str(convert(cond.value)).lower(), autoescape=True)
    operand = convert(cond.value)
    ops = {
        Op.EQ: column == operand,
        Op.NE: column != operand,
        Op.GT: column > operand,
        Op.GTE: column >= operand,
        Op.LT: column < operand,
        Op.LTE: column <= operand,
    }
    clause: ColumnElement[bool] = ops[cond.op]
    return clause


def attribute_types(session: Session, schema_id: str | None = None) -> dict[str, set[str]]:
    """Alias -> data types it has (across schemas unless one is named)."""
    query = select(Attribute.alias, Attribute.data_type)
    if schema_id:
        query = query.where(Attribute.schema_id == schema_id)
    types: dict[str, set[str]] = {}
    for alias, data_type in session.execute(query):
        types.setdefault(alias, set()).add(data_type)
    return types


def compile_filters(
    filters: Mapping[str, Any] | None,
    *,
    types: Mapping[str, set[str]],
    dimension_scope: Mapping[str, str] | None = None,
) -> list[ColumnElement[bool]]:
    """WHERE clauses (on ``records``) for a filter object; bad filters raise a 422."""
    conditions = normalize(filters, known_fields=set(types) | set(RECORD_FIELDS))
    clauses: list[ColumnElement[bool]] = []
    for cond in conditions:
        if cond.field in RECORD_FIELDS:
            clauses.append(_record_field_clause(cond))
        else:
            clauses.append(_attribute_clause(cond, types.get(cond.field, set()), dimension_scope))
    return clauses


def filter_clauses(
    session: Session,
    filters: Mapping[str, Any] | None,
    *,
    schema_id: str | None = None,
    dimension_scope: Mapping[str, str] | None = None,
) -> list[ColumnElement[bool]]:
    """Compile filters, looking up the attributes' data types in the database."""
    if not filters:
        return []
    return compile_filters(
        filters, types=attribute_types(session, schema_id), dimension_scope=dimension_scope
    )


__all__ = [
    "RECORD_FIELDS",
    "Condition",
    "Op",
    "attribute_types",
    "compile_filters",
    "filter_clauses",
    "normalize",
    "parse_query_filters",
]
