"""JSON Lines: one JSON object per record and line, keys are the column headers, native JSON types."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from skuport.exporting.conventions import number_text
from skuport.exporting.formats.base import TextFormat
from skuport.exporting.plan import Column, Kind


def objects(columns: Sequence[Column], rows: list[list[Any]]) -> Iterator[dict[str, Any]]:
    """Rows as dicts keyed by header (missing values are null), one at a time.

    Fractional numbers are written in plain decimal notation, as every export writes numbers
    (:func:`skuport.exporting.plan.number_text`), not in orjson's exponent form.
    """
    headers = [c.header for c in columns]
    numbers = [i for i, c in enumerate(columns) if c.kind == Kind.NUMBER]
    for row in rows:
        for i in numbers:
            if type(row[i]) is float:
                row[i] = orjson.Fragment(number_text(row[i]))
        yield dict(zip(headers, row, strict=True))


class JsonlFormat(TextFormat):
    """Newline-delimited JSON."""

    name = "jsonl"
    content_type = "application/x-ndjson"
    extension = "jsonl"

    def start(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """No prologue."""
        return b""

    def encode(self, columns: Sequence[Column], rows: list[list[Any]], *, first_row: int) -> bytes:
        """One line per row."""
        dumps = orjson.dumps
        option = orjson.OPT_APPEND_NEWLINE
        return b"".join(dumps(obj, option=option) for obj in objects(columns, rows))

    def end(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """No epilogue."""
        return b""
