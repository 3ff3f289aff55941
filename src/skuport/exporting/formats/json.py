"""JSON: a single array of objects, one per record, keys are the column headers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from skuport.exporting.formats.base import FileWriter, frame_lines
from skuport.exporting.formats.jsonl import JsonlFormat, objects

if TYPE_CHECKING:
    import polars as pl


class JsonWriter(FileWriter):
    """``[``, the objects one per line with commas between, ``]``."""

    def open(self) -> bytes:
        """The opening bracket."""
        return b"["

    def _lead(self) -> bytes:
        return b"\n" if self.rows_written == 0 else b",\n"

    def encode(self, rows: list[list[Any]]) -> bytes:
        """Objects separated by commas (a leading comma unless this batch starts the array)."""
        if not rows:
            return b""
        dumps = orjson.dumps
        return self._lead() + b",\n".join(dumps(obj) for obj in objects(self.columns, rows))

    def encode_frame(self, frame: pl.DataFrame) -> bytes:
        """The rendered objects, separated as :meth:`encode` separates them."""
        if not frame.height:
            return b""
        return self._lead() + frame_lines(frame, separator=",\n")[: -len(b",\n")]

    def close(self) -> bytes:
        """The closing bracket."""
        return b"\n]\n" if self.rows_written else b"]\n"


class JsonFormat(JsonlFormat):
    """One JSON array, one object per line: JSON Lines' objects, rendered the same way, in brackets."""

    name = "json"
    content_type = "application/json"
    extension = "json"
    writer_class = JsonWriter
