"""JSON: a single array of objects, one per record, keys are the column headers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from skuport.exporting.formats.base import TextFormat
from skuport.exporting.formats.jsonl import objects
from skuport.exporting.plan import Column


class JsonFormat(TextFormat):
    """One JSON array, one object per line."""

    name = "json"
    content_type = "application/json"
    extension = "json"

    def start(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """The opening bracket."""
        return b"["

    def encode(self, columns: Sequence[Column], rows: list[list[Any]], *, first_row: int) -> bytes:
        """Objects separated by commas (a leading comma unless this batch starts the array)."""
        if not rows:
            return b""
        dumps = orjson.dumps
        body = b",\n".join(dumps(obj) for obj in objects(columns, rows))
        return (b"\n" if first_row == 0 else b",\n") + body

    def end(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """The closing bracket."""
        return b"\n]\n" if row_count else b"]\n"
