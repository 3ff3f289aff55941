"""JSON: a single array of objects, one per record, keys are the column headers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from skuport.exporting.formats.base import ColumnValues, FileWriter, FormatBase, frame_lines
from skuport.exporting.formats.jsonl import object_lines, objects

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


class JsonFormat(FormatBase):
    """One JSON array, one object per line."""

    name = "json"
    content_type = "application/json"
    extension = "json"
    renders_frames = True
    unique_headers = True
    writer_class = JsonWriter

    def frame_exprs(self, values: ColumnValues) -> list[pl.Expr]:
        """Each row as its JSON object."""
        return object_lines(values)
