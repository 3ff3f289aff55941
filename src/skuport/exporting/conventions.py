"""The conventions of export files, each beside its inverse: what an import needs to read a file back.

Every format writes values by these rules (the row engine calls these functions; the frame engine's
polars expressions are checked against them byte for byte). docs/export-format.md describes them for
people; the round-trip tests read real export files back with the inverses.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
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
def join_list(value: Any, separator: str = LIST_SEPARATOR) -> Any:
    """A list as one text cell: elements joined by ``|`` (or ``separator``), with ``\\`` and the separator
    inside elements escaped by a ``\\``."""
    if not isinstance(value, list):
        return value
    parts = [str(v) for v in value]
    if any(separator in p or "\\" in p for p in parts):
        parts = [p.replace("\\", "\\\\").replace(separator, "\\" + separator) for p in parts]
    return separator.join(parts)


def split_list(text: str, separator: str = LIST_SEPARATOR) -> list[str]:
    """Inverse of :func:`join_list`: the elements of a text cell ('' is no value: an empty list)."""
    if not text:
        return []
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == separator:
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


DATE_DIRECTIVES = {"%Y": (0, 4), "%y": (2, 2), "%m": (5, 2), "%d": (8, 2)}
"""The strftime directives a ``dateFormat`` may use, as (start, length) in a stored ``YYYY-MM-DD`` date;
no locale-dependent names, so every reader (and polars) gives the same text."""
DATE_LITERALS = frozenset("-./ ")
"""The characters a ``dateFormat`` may hold between its directives."""


def date_format_parts(date_format: str) -> list[tuple[int, int] | str]:
    """A ``dateFormat`` as slices of the stored date and literal text (ValueError for anything else)."""
    parts: list[tuple[int, int] | str] = []
    found = re.findall(r"%.|.", date_format, flags=re.DOTALL)
    for token in found:
        if token in DATE_DIRECTIVES:
            parts.append(DATE_DIRECTIVES[token])
        elif token in DATE_LITERALS:
            parts.append(token)
        else:
            allowed = " ".join(DATE_DIRECTIVES)
            raise ValueError(f"dateFormat may use {allowed} and the characters -./ and space, not {token!r}")
    if not any(isinstance(part, tuple) for part in parts):
        raise ValueError("dateFormat names no part of the date (%Y, %y, %m or %d)")
    return parts


@dataclass(frozen=True)
class TextForm:
    """How a text file (csv) writes values that are not text: numbers, lists and dates, each with its
    inverse. The default is the file conventions above (``.`` decimals, ``|`` lists, ISO dates)."""

    decimal_separator: str = "."
    list_separator: str = LIST_SEPARATOR
    date_format: str | None = None
    """A strftime pattern of :data:`DATE_DIRECTIVES` (``%d.%m.%Y``); None: ``YYYY-MM-DD`` as stored."""

    def number(self, value: Any) -> Any:
        """:func:`number_text`, with the decimal separator."""
        text = number_text(value)
        return text.replace(".", self.decimal_separator) if isinstance(text, str) else text

    def parse_number(self, text: str, *, integer: bool = False) -> int | float:
        """Inverse of :meth:`number`."""
        return parse_number(text.replace(self.decimal_separator, "."), integer=integer)

    def join(self, value: Any) -> Any:
        """:func:`join_list` with the list separator."""
        return join_list(value, self.list_separator)

    def split(self, text: str) -> list[str]:
        """Inverse of :meth:`join`."""
        return split_list(text, self.list_separator)

    def date(self, stored: str | None) -> str | None:
        """A stored ``YYYY-MM-DD`` date in the date format."""
        if stored is None or self.date_format is None:
            return stored
        return "".join(
            p if isinstance(p, str) else stored[p[0] : p[0] + p[1]]
            for p in date_format_parts(self.date_format)
        )

    def parse_date(self, text: str) -> dt.date:
        """Inverse of :meth:`date` (a two-digit year is read as 19xx or 20xx, as strptime reads it)."""
        if self.date_format is None:
            return parse_date(text)
        return dt.datetime.strptime(text, self.date_format).date()


DEFAULT_TEXT = TextForm()
"""The text form of every csv file without a ``csv`` dialect."""


# -- column names ----------------------------------------------------------------------------------------
def column_key(alias: str, key: str) -> str:
    """The canonical column name for an attribute in one scope: ``alias`` or ``alias[scope key]``
    (``price[dim-market=seg-dk]``, ``title[dim-language=seg-da&dim-market=seg-dk]``)."""
    return f"{alias}[{key}]" if key else alias


def segment_column(base: str, segments: Sequence[str]) -> str:
    """The column of an attribute in one of several segments a dimensionScope lists: ``base-segment``
    (``product-name-seg-da``; with two listed dimensions ``price-seg-da-seg-dk``, in the dimensionScope's
    order)."""
    return "-".join((base, *segments))


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
