"""Scoped values: scope keys, ranking for fallback, validation against attributes, index rows."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from skuport.errors import ValidationFailed
from skuport.records.codecs import DataType, codec
from skuport.records.scopes import scope_key

NUMERIC_TYPES = frozenset({DataType.NUMBER, DataType.INTEGER})
TEXT_TYPES = frozenset({DataType.TEXT, DataType.TEXTAREA, DataType.URL})


def scope_candidates(dimension_scope: Mapping[str, str]) -> list[str]:
    """Scope keys that apply under ``dimension_scope``, most specific first.

    A value applies when its scope is a subset of the requested scope. More keys win; between
    scopes with as many keys, the one naming earlier dimensions of the request wins; the global
    scope comes last. The pipeline's flattening and the filters both resolve by this order.
    """
    dims = list(dimension_scope)
    ranked: list[tuple[int, list[int], str]] = []
    for size in range(len(dims), -1, -1):
        for combo in itertools.combinations(range(len(dims)), size):
            sub = {dims[i]: dimension_scope[dims[i]] for i in combo}
            ranked.append((-size, list(combo), scope_key(sub)))
    ranked.sort()
    return [key for _size, _order, key in ranked]


@dataclass(frozen=True)
class AttributeSpec:
    """What validation needs to know of an attribute."""

    alias: str
    data_type: str
    dimension_ids: tuple[str, ...]
    validation: Mapping[str, Any]


def is_empty(value: Any) -> bool:
    """Whether a value counts as 'no value' (an empty string or list)."""
    return value is None or value == "" or value == []


def validate_values(
    values: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    attributes: Mapping[str, AttributeSpec],
    segments: Mapping[str, set[str]] | Mapping[str, frozenset[str]],
) -> dict[str, list[dict[str, Any]]]:
    """Check every scoped value; return them normalised (empty values dropped, scopes sorted).

    ``segments`` maps each dimension id to its segment ids. Every problem is collected and reported at
    once, each detail naming the attribute and the scope.
    """
    problems: list[dict[str, Any]] = []
    result: dict[str, list[dict[str, Any]]] = {}
    for alias, scoped_values in values.items():
        spec = attributes.get(alias)
        if spec is None:
            problems.append(_problem(alias, None, f"'{alias}' is not an attribute of this schema"))
            continue
        result[alias] = _validate_attribute(alias, spec, scoped_values, segments, problems)
    if problems:
        first = problems[0]
        where = f" in scope {first['scope']}" if first.get("scope") else ""
        raise ValidationFailed(
            f"Invalid value for '{first['attribute']}'{where}: {first['message']}.",
            details=problems,
            code="invalid_values",
        )
    return result


def _problem(alias: str, scope: dict[str, Any] | None, message: str) -> dict[str, Any]:
    """One detail of the validation error."""
    return {"attribute": alias, "scope": scope, "message": message}


def _validate_attribute(
    alias: str,
    spec: AttributeSpec,
    scoped_values: Iterable[Mapping[str, Any]],
    segments: Mapping[str, set[str]] | Mapping[str, frozenset[str]],
    problems: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The valid, non-empty scoped values of one attribute; problems are appended to ``problems``."""
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    for item in scoped_values:
        scope = dict(item.get("scope") or {})
        value = item.get("value")
        scope_messages = _scope_problems(alias, spec, scope, segments)
        if scope_messages:
            problems.extend(_problem(alias, scope, message) for message in scope_messages)
            continue
        key = scope_key(scope)
        if key in seen:
            problems.append(_problem(alias, scope, f"attribute '{alias}' has two values for the same scope"))
            continue
        seen.add(key)
        message = _value_problem(alias, spec, value)
        if message:
            problems.append(_problem(alias, scope, message))
            continue
        if not is_empty(value):
            kept.append({"scope": {k: scope[k] for k in sorted(scope)}, "value": value})
    return kept


def _scope_problems(
    alias: str,
    spec: AttributeSpec,
    scope: Mapping[str, Any],
    segments: Mapping[str, set[str]] | Mapping[str, frozenset[str]],
) -> list[str]:
    """What is wrong with a value's scope: dimensions the attribute lacks, unknown segments."""
    messages: list[str] = []
    for dim, seg in scope.items():
        if dim not in spec.dimension_ids:
            messages.append(
                f"attribute '{alias}' is not scoped by dimension '{dim}'"
                + (
                    f" (it accepts: {', '.join(spec.dimension_ids)})"
                    if spec.dimension_ids
                    else " (it only accepts the global scope {})"
                )
            )
        elif not isinstance(seg, str) or seg not in segments.get(dim, ()):
            messages.append(f"'{seg}' is not a segment of dimension '{dim}'")
    return messages


def _value_problem(alias: str, spec: AttributeSpec, value: Any) -> str | None:
    """What is wrong with a value for its data type and rules, if anything (empty values pass)."""
    if value is None:
        return "value is missing (null); send an empty list for the attribute to clear it"
    if is_empty(value):
        return None
    message = codec(spec.data_type).check(value, spec.validation or {})
    return f"'{alias}' {message}" if message else None


GLOBAL_CELL = "@"
"""Key of the global scope in the cells form (a scope key is never '@')."""


def cells_of(values: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The values map keyed by scope: ``{"price": {"@": 129.99, "dim-market=seg-dk": 969}}``.

    Stored beside the seed's list form so an export resolves a scope with a few dictionary look-ups
    instead of scanning every scoped value (and parses about half as many JSON objects).
    """
    return {
        alias: {scope_key(v["scope"]) or GLOBAL_CELL: v["value"] for v in scoped}
        for alias, scoped in values.items()
    }


def index_text(value: Any) -> str:
    """The text form of a scalar used for filtering (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def index_rows(values: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, str, str, float | None]]:
    """(attribute, scope key, text, number) rows for the value index; one per list element."""
    rows: list[tuple[str, str, str, float | None]] = []
    for alias, scoped_values in values.items():
        for item in scoped_values:
            key = scope_key(item["scope"])
            value = item["value"]
            for element in value if isinstance(value, list) else (value,):
                number = (
                    float(element)
                    if isinstance(element, int | float) and not isinstance(element, bool)
                    else None
                )
                rows.append((alias, key, index_text(element), number))
    return rows


_UNSET = object()


def resolve_cell(cells: Mapping[str, Any], dimension_scope: Mapping[str, str]) -> Any:
    """The value an attribute's cells resolve to under ``dimension_scope`` (None when no scope applies),
    by the same :func:`scope_candidates` order as exports and filters."""
    for key in scope_candidates(dimension_scope):
        value = cells.get(key or GLOBAL_CELL, _UNSET)
        if value is not _UNSET:
            return value
    return None
