"""One codec per attribute data type: what a valid value is, and how it is written as text in a file and
read back (the conventions of :mod:`skuport.exporting.conventions`).

Records are validated with :meth:`Codec.check`; an import reads a text cell with :meth:`Codec.from_text`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import urlsplit

from skuport.exporting import conventions


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


INT64 = 2**63
"""Integers are stored exactly as signed 64-bit numbers."""

Rules = Mapping[str, Any]
"""An attribute's validation rules (minLength, maxLength, pattern, min, max, options)."""


class Codec:
    """Validation and text form of one data type (the base: text)."""

    data_types: ClassVar[tuple[DataType, ...]] = ()

    def check(self, value: Any, rules: Rules) -> str | None:
        """What is wrong with ``value`` for an attribute with these rules, or None when it is valid."""
        if isinstance(value, str) and "\x00" in value:
            return "must not contain NUL characters"
        return self.problem(value, rules)

    def problem(self, value: Any, rules: Rules) -> str | None:  # pragma: no cover - every codec overrides it
        """The type's own rules (after the checks every value gets)."""
        raise NotImplementedError

    def to_text(self, value: Any) -> str:
        """The value as a text cell writes it."""
        return str(value)

    def from_text(self, text: str) -> Any:
        """Inverse of :meth:`to_text`."""
        return text


def _length(value: str, rules: Rules) -> str | None:
    if "minLength" in rules and len(value) < rules["minLength"]:
        return f"must be at least {rules['minLength']} characters"
    if "maxLength" in rules and len(value) > rules["maxLength"]:
        return f"must be at most {rules['maxLength']} characters"
    return None


class TextCodec(Codec):
    """Text and long text: length and pattern rules."""

    data_types = (DataType.TEXT, DataType.TEXTAREA)

    def problem(self, value: Any, rules: Rules) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        if problem := _length(value, rules):
            return problem
        if rules.get("pattern") and not re.fullmatch(rules["pattern"], value):
            return f"must match the pattern {rules['pattern']}"
        return None


class NumberCodec(Codec):
    """Numbers (``integer`` only whole ones): finite, within 64 bits when whole, min and max rules."""

    data_types = (DataType.NUMBER,)
    integer = False

    def problem(self, value: Any, rules: Rules) -> str | None:
        wanted = "must be an integer" if self.integer else "must be a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return wanted
        if self.integer and not isinstance(value, int):
            return wanted
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if isinstance(value, int) and not -INT64 <= value < INT64:
            return "is outside the range kept exactly (a 64-bit integer: ±9223372036854775807)"
        if "min" in rules and value < rules["min"]:
            return f"must be at least {rules['min']}"
        if "max" in rules and value > rules["max"]:
            return f"must be at most {rules['max']}"
        return None

    def to_text(self, value: Any) -> str:
        return str(conventions.number_text(value))

    def from_text(self, text: str) -> Any:
        return conventions.parse_number(text, integer=self.integer)


class IntegerCodec(NumberCodec):
    """Whole numbers."""

    data_types = (DataType.INTEGER,)
    integer = True


class BooleanCodec(Codec):
    """true or false."""

    data_types = (DataType.BOOLEAN,)

    def problem(self, value: Any, rules: Rules) -> str | None:
        return None if isinstance(value, bool) else "must be true or false"

    def to_text(self, value: Any) -> str:
        return conventions.boolean_text(value)

    def from_text(self, text: str) -> Any:
        return conventions.parse_boolean(text)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DateCodec(Codec):
    """Calendar dates as ``YYYY-MM-DD`` (stored, written and read as that text)."""

    data_types = (DataType.DATE,)

    def problem(self, value: Any, rules: Rules) -> str | None:
        if not isinstance(value, str) or not _DATE.match(value):
            return "must be a date as YYYY-MM-DD"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "must be a real calendar date"
        return None

    def from_text(self, text: str) -> Any:
        return conventions.date_text(conventions.parse_date(text))  # checks it, keeps the stored form


class SelectCodec(Codec):
    """One of the attribute's options."""

    data_types = (DataType.SELECT,)

    def problem(self, value: Any, rules: Rules) -> str | None:
        options = rules.get("options") or []
        if not isinstance(value, str):
            return "must be one of the options (a string)"
        if value not in options:
            return f"must be one of: {', '.join(map(str, options))}"
        return None


class MultiselectCodec(Codec):
    """Several options, each once (a list; ``a|b`` in a text cell)."""

    data_types = (DataType.MULTISELECT,)

    def problem(self, value: Any, rules: Rules) -> str | None:
        options = rules.get("options") or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "must be a list of options"
        bad = [v for v in value if v not in options]
        if bad:
            return f"has values that are not options: {', '.join(bad)}"
        if len(set(value)) != len(value):
            return "lists an option twice"
        return None

    def to_text(self, value: Any) -> str:
        return str(conventions.join_list(value))

    def from_text(self, text: str) -> Any:
        return conventions.split_list(text)


class UrlCodec(Codec):
    """An absolute http(s) URL."""

    data_types = (DataType.URL,)

    def problem(self, value: Any, rules: Rules) -> str | None:
        if not isinstance(value, str):
            return "must be a URL string"
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "must be an absolute http(s) URL"
        if "maxLength" in rules and len(value) > rules["maxLength"]:
            return f"must be at most {rules['maxLength']} characters"
        return None


CODECS: dict[str, Codec] = {
    data_type: cls()
    for cls in (
        TextCodec,
        NumberCodec,
        IntegerCodec,
        BooleanCodec,
        DateCodec,
        SelectCodec,
        MultiselectCodec,
        UrlCodec,
    )
    for data_type in cls.data_types
}
"""Data type -> its codec; every data type has one."""


def codec(data_type: str) -> Codec:
    """The codec of ``data_type``."""
    return CODECS[data_type]
