"""Scoped values: scope keys, ranking for fallback, validation against attributes, index rows."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from skuport.errors import ValidationFailed


class DataType(StrEnum):
    """The data types an attribute can have."""

    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    SELECT = "select"
    MULTISELECT = "multiselect"
    URL = "url"


NUMERIC_TYPES = frozenset({DataType.NUMBER, DataType.INTEGER})
TEXT_TYPES = frozenset({DataType.TEXT, DataType.TEXTAREA, DataType.URL})


def scope_key(scope: Mapping[str, str]) -> str:
    """Canonical text of a scope: ``dim-a=seg-x&dim-b=seg-y`` sorted by dimension; '' is global."""
    return "&".join(f"{k}={scope[k]}" for k in sorted(scope))


def parse_scope_key(key: str) -> dict[str, str]:
    """Inverse of :func:`scope_key`."""
    if not key:
        return {}
    return dict(part.split("=", 1) for part in key.split("&"))


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


_INT64 = 2**63
"""Integers are stored exactly as signed 64-bit numbers."""


def is_empty(value: Any) -> bool:
    """Whether a value counts as 'no value' (an empty string or list)."""
    return value is None or value == "" or value == []


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_value(spec: AttributeSpec, value: Any) -> str | None:
    """Return a problem with ``value`` for this attribute, or None when it is valid."""
    rules = spec.validation or {}
    kind = spec.data_type
    if isinstance(value, str) and "\x00" in value:
        return "must not contain NUL characters"
    if kind in (DataType.TEXT, DataType.TEXTAREA):
        if not isinstance(value, str):
            return "must be a string"
        if "minLength" in rules and len(value) < rules["minLength"]:
            return f"must be at least {rules['minLength']} characters"
        if "maxLength" in rules and len(value) > rules["maxLength"]:
            return f"must be at most {rules['maxLength']} characters"
        if rules.get("pattern") and not re.fullmatch(rules["pattern"], value):
            return f"must match the pattern {rules['pattern']}"
    elif kind in NUMERIC_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number" if kind == DataType.NUMBER else "must be an integer"
        if kind == DataType.INTEGER and not isinstance(value, int):
            return "must be an integer"
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if isinstance(value, int) and not -_INT64 <= value < _INT64:
            return "is outside the range kept exactly (a 64-bit integer: ±9223372036854775807)"
        if "min" in rules and value < rules["min"]:
            return f"must be at least {rules['min']}"
        if "max" in rules and value > rules["max"]:
            return f"must be at most {rules['max']}"
    elif kind == DataType.BOOLEAN:
        if not isinstance(value, bool):
            return "must be true or false"
    elif kind == DataType.DATE:
        if not isinstance(value, str) or not _DATE.match(value):
            return "must be a date as YYYY-MM-DD"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "must be a real calendar date"
    elif kind == DataType.SELECT:
        options = rules.get("options") or []
        if not isinstance(value, str):
            return "must be one of the options (a string)"
        if value not in options:
            return f"must be one of: {', '.join(map(str, options))}"
    elif kind == DataType.MULTISELECT:
        options = rules.get("options") or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "must be a list of options"
        bad = [v for v in value if v not in options]
        if bad:
            return f"has values that are not options: {', '.join(bad)}"
        if len(set(value)) != len(value):
            return "lists an option twice"
    elif kind == DataType.URL:
        if not isinstance(value, str):
            return "must be a URL string"
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "must be an absolute http(s) URL"
        if "maxLength" in rules and len(value) > rules["maxLength"]:
            return f"must be at most {rules['maxLength']} characters"
    return None


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
            problems.append(
                {
                    "attribute": alias,
                    "scope": None,
                    "message": f"'{alias}' is not an attribute of this schema",
                }
            )
            continue
        seen: set[str] = set()
        kept: list[dict[str, Any]] = []
        for item in scoped_values:
            scope = dict(item.get("scope") or {})
            value = item.get("value")

            def problem(message: str, scope: dict[str, Any] = scope, alias: str = alias) -> None:
                problems.append({"attribute": alias, "scope": scope, "message": message})

            bad_scope = False
            for dim, seg in scope.items():
                if dim not in spec.dimension_ids:
                    problem(
                        f"attribute '{alias}' is not scoped by dimension '{dim}'"
                        + (
                            f" (it accepts: {', '.join(spec.dimension_ids)})"
                            if spec.dimension_ids
                            else " (it only accepts the global scope {})"
                        )
                    )
                    bad_scope = True
                elif not isinstance(seg, str) or seg not in segments.get(dim, ()):
                    problem(f"'{seg}' is not a segment of dimension '{dim}'")
                    bad_scope = True
            if bad_scope:
                continue
            key = scope_key(scope)
            if key in seen:
                problem(f"attribute '{alias}' has two values for the same scope")
                continue
            seen.add(key)
            if value is None:
                problem("value is missing (null); send an empty list for the attribute to clear it")
                continue
            if is_empty(value):
                continue
            message = _check_value(spec, value)
            if message:
                problem(f"'{alias}' {message}")
                continue
            kept.append({"scope": {k: scope[k] for k in sorted(scope)}, "value": value})
        result[alias] = kept
    if problems:
        first = problems[0]
        where = f" in scope {first['scope']}" if first.get("scope") else ""
        raise ValidationFailed(
            f"Invalid value for '{first['attribute']}'{where}: {first['message']}.",
            details=problems,
            code="invalid_values",
        )
    return result


GLOBAL_CELL = "@"
"""Key of the global scope in the cells form (a scope key is never '@')."""


def cells_of(values: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The values map keyed by scope: ``{"price": {"@": 129.99, "dim-market=seg-dk": 969}}``.

    Stored beside the seed's list form so an export resolves a scope with a few dictionary look-ups
    instead of scanning every scoped value (and parses about half as many JSON objects).
    """
    return {alias: {scope_key(v["scope"]) or GLOBAL_CELL: v["value"] for v in scoped}
            for alias, scoped in values.items()}


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
