"""JSON Lines: one JSON object per record and line, keys are the column headers, native JSON types."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from skuport.exporting.formats.base import TextFormat
from skuport.exporting.plan import Column


def objects(columns: Sequence[Column], rows: list[list[Any]]) -> Iterator[dict[str, Any]]:
    """Rows as dicts keyed by header (missing values are null), one at a time."""
    headers = [c.header for c in columns]
    return (dict(zip(headers, row, strict=True)) for row in rows)


class JsonlFormat(TextFormat):
    """Newline-delimited JSON."""

    name = "jsonl"
    content_type = "application/x-ndjson"
    extension = "jsonl"

    def start(self, columns: Sequence[Column]) -> bytes:
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
