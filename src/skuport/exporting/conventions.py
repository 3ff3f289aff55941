"""The conventions of export files, each beside its inverse: what an import needs to read a file back.

Every format writes values by these rules (the row engine calls these functions; the frame engine's
polars expressions are checked against them byte for byte). docs/export-format.md describes them for
people; the round-trip tests read real export files back with the inverses.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from skuport.records.scopes import parse_scope_key

FIXED_COLUMNS = ("id", "parentId", "schemaId", "lifecycleStateId", "createdAt", "updatedAt")
"""Leading columns of every export, in this order."""
DRY_DATA_DROPS = frozenset({"id", "parentId", "createdAt", "updatedAt"})
"""Columns ``dryData`` leaves out (ids and timestamps) so a file can be imported as a copy."""
LIST_SEPARATOR = "|"
"""Joins the elements of a list value (multiselect, categories) in text cells (csv, xlsx)."""
DELETED_COLUMN = "_deleted"
"""Column of delta exports: true on tombstone rows of deleted records."""
TRUE, FALSE = "true", "false"
"""Booleans in text cells (csv, xlsx text, xml)."""


# -- lists -----------------------------------------------------------------------------------------------
def join_list(value: Any) -> Any:
    """A list as one text cell: elements joined by ``|``, with ``\\`` and ``|`` inside elements escaped."""
    if not isinstance(value, list):
        return value
    parts = [str(v) for v in value]
    if any("|" in p or "\\" in p for p in parts):
        parts = [p.replace("\\", "\\\\").replace("|", "\\|") for p in parts]
    return LIST_SEPARATOR.join(parts)


def split_list(text: str) -> list[str]:
    """Inverse of :func:`join_list`: the elements of a text cell ('' is no value: an empty list)."""
    if not text:
        return []
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == LIST_SEPARATOR:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


# -- numbers ---------------------------------------------------------------------------------------------
def number_text(value: Any) -> Any:
    """A number as exports write it: plain decimal notation, never an exponent, the shortest digits that
    read back as the same number, a whole number without a fraction (``12``, ``12.5``, ``0.00001``,
    ``100000000000000000000``). See docs/export-format.md."""
    if type(value) is float:
        # repr gives the shortest digits that read back (1e+23, not 99999999999999991611392); format
        # spells them out without an exponent, normalize drops a whole number's '.0'.
        decimal = Decimal(repr(value))
        return format(decimal.normalize() if value.is_integer() else decimal, "f")
    if type(value) is int:
        return str(value)
    return value


_INTEGER = re.compile(r"^-?\d+$")


def parse_number(text: str, *, integer: bool = False) -> int | float:
    """Inverse of :func:`number_text`, for an attribute of type integer (``integer``) or number.

    The text does not say whether a number attribute held ``12`` or ``12.0`` (both are written ``12``):
    digits alone read back as an integer while every integer reads back exactly (up to 2**53), else as
    the double they were written from.
    """
    if integer:
        return int(text)
    if _INTEGER.match(text) and abs(value := int(text)) <= _EXACT:
        return value
    return float(text)


_EXACT = 2**53
"""Integers up to this size are exact as doubles too."""


# -- booleans and dates ----------------------------------------------------------------------------------
def boolean_text(value: bool) -> str:
    """``true`` or ``false``."""
    return TRUE if value else FALSE


def parse_boolean(text: str) -> bool:
    """Inverse of :func:`boolean_text` (anything else is a ValueError)."""
    if text not in (TRUE, FALSE):
        raise ValueError(f"{text!r} is not {TRUE} or {FALSE}")
    return text == TRUE


def date_text(value: dt.date) -> str:
    """Dates are ISO 8601 calendar dates, ``YYYY-MM-DD``, as stored."""
    return value.isoformat()


def parse_date(text: str) -> dt.date:
    """Inverse of :func:`date_text`."""
    return dt.date.fromisoformat(text)


# -- column names ----------------------------------------------------------------------------------------
def column_key(alias: str, key: str) -> str:
    """The canonical column name for an attribute in one scope: ``alias`` or ``alias[scope key]``
    (``price[dim-market=seg-dk]``, ``title[dim-language=seg-da&dim-market=seg-dk]``)."""
    return f"{alias}[{key}]" if key else alias


def parse_column_key(name: str) -> tuple[str, dict[str, str]]:
    """Inverse of :func:`column_key`: the attribute alias and the scope of a column."""
    if name.endswith("]") and "[" in name:
        alias, _, key = name[:-1].partition("[")
        return alias, parse_scope_key(key)
    return name, {}


# -- XML names -------------------------------------------------------------------------------------------
def xml_name(name: str) -> str:
    """A valid XML element name for a header: other characters become '_', a bad start gets '_' before it.

    Not invertible (``a b`` and ``a_b`` meet): an XML import reads a record's fields in the order of the
    file's columns, which the csv or json export of the same selection names exactly.
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"
    if not (cleaned[0].isalpha() or cleaned[0] == "_") or cleaned.lower().startswith("xml"):
        cleaned = "_" + cleaned
    return cleaned
