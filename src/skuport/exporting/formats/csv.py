"""CSV: RFC 4180 (CRLF, quotes doubled), UTF-8, one header row; lists joined by '|', booleans true/false."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from skuport.exporting.formats.base import TextFormat
from skuport.exporting.plan import Column


class CsvFormat(TextFormat):
    """Comma-separated values."""

    name = "csv"
    content_type = "text/csv; charset=utf-8"
    extension = "csv"
    text_cells = True

    def start(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """The header row."""
        return self._dump([[c.header for c in columns]])

    def encode(self, columns: Sequence[Column], rows: list[list[Any]], *, first_row: int) -> bytes:
        """Rows (in text form: the plan already wrote booleans and lists as text) as CSV lines."""
        return self._dump(rows)

    def end(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """Nothing follows the last row."""
        return b""

    @staticmethod
    def _dump(rows: list[list[Any]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        return buffer.getvalue().encode("utf-8", "surrogatepass")
