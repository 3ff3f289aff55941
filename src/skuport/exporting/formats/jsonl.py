"""JSON Lines: one JSON object per record and line, keys are the column headers, native JSON types."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from skuport.exporting.conventions import number_text
from skuport.exporting.formats.base import ColumnValues, FileWriter, FormatBase, frame_lines
from skuport.exporting.plan import Column, Kind

if TYPE_CHECKING:
    import polars as pl

_JSON_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_JSON_ESCAPES |= {chr(c): f"\\u{c:04x}" for c in range(0x20) if chr(c) not in _JSON_ESCAPES}
"""What orjson escapes in a string, and how."""


def objects(columns: Sequence[Column], rows: list[list[Any]]) -> Iterator[dict[str, Any]]:
    """Rows as dicts keyed by header (missing values are null), one at a time.

    Fractional numbers are written in plain decimal notation, as every export writes numbers
    (:func:`skuport.exporting.conventions.number_text`), not in orjson's exponent form.
    """
    headers = [c.header for c in columns]
    numbers = [i for i, c in enumerate(columns) if c.kind == Kind.NUMBER]
    for row in rows:
        for i in numbers:
            if type(row[i]) is float:
                row[i] = orjson.Fragment(number_text(row[i]))
        yield dict(zip(headers, row, strict=True))


def json_string(text: pl.Expr) -> pl.Expr:
    """A JSON string literal of ``text``, escaped exactly as orjson escapes it; null stays null."""
    import polars as pl

    escaped = text.str.replace_many(list(_JSON_ESCAPES), list(_JSON_ESCAPES.values()))
    return pl.concat_str(pl.lit('"'), escaped, pl.lit('"'))


def object_lines(values: ColumnValues) -> list[pl.Expr]:
    """One text column: each row as the JSON object orjson writes for it (keys the headers)."""
    import polars as pl

    parts: list[pl.Expr] = []
    for i, (column, value) in enumerate(values):
        key = orjson.dumps(column.header).decode()
        parts.append(pl.lit(("{" if i == 0 else ",") + key + ":"))
        if column.kind == Kind.LIST:
            items = value.list.eval(json_string(pl.element())).list.join(",")
            rendered = pl.concat_str(pl.lit("["), items, pl.lit("]"))
        elif column.kind in (Kind.TEXT, Kind.DATE):
            rendered = json_string(value)
        else:  # numbers and booleans: their JSON text as stored
            rendered = value
        parts.append(rendered.fill_null("null"))
    parts.append(pl.lit("}"))
    return [pl.concat_str(parts).alias("line")]


class JsonlWriter(FileWriter):
    """One object per line, nothing before or after."""

    def encode(self, rows: list[list[Any]]) -> bytes:
        """One line per row."""
        dumps = orjson.dumps
        option = orjson.OPT_APPEND_NEWLINE
        return b"".join(dumps(obj, option=option) for obj in objects(self.columns, rows))

    def encode_frame(self, frame: pl.DataFrame) -> bytes:
        """The rendered lines."""
        return frame_lines(frame, separator="\n")


class JsonlFormat(FormatBase):
    """Newline-delimited JSON."""

    name = "jsonl"
    content_type = "application/x-ndjson"
    extension = "jsonl"
    renders_frames = True
    unique_headers = True
    writer_class: ClassVar[type[FileWriter]] = JsonlWriter

    def frame_exprs(self, values: ColumnValues) -> list[pl.Expr]:
        """Each row as its JSON object."""
        return object_lines(values)
