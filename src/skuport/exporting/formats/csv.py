"""CSV: RFC 4180 (CRLF, quotes doubled), UTF-8, one header row; lists joined by '|', booleans true/false."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from skuport.exporting.conventions import LIST_SEPARATOR
from skuport.exporting.formats.base import ColumnValues, FileWriter, FormatBase
from skuport.exporting.plan import Kind

if TYPE_CHECKING:
    import polars as pl

_LIST_ESCAPES = {"\\": "\\\\", LIST_SEPARATOR: "\\" + LIST_SEPARATOR}
"""What :func:`skuport.exporting.conventions.join_list` escapes inside list elements."""


def _dump(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8", "surrogatepass")


class CsvWriter(FileWriter):
    """Writes the header row, then the rows."""

    def open(self) -> bytes:
        """The header row."""
        return _dump([[c.header for c in self.columns]])

    def encode(self, rows: list[list[Any]]) -> bytes:
        """Rows (in text form: the plan already wrote booleans and lists as text) as CSV lines."""
        return _dump(rows)

    def encode_frame(self, frame: pl.DataFrame) -> bytes:
        """The cells, quoted where needed, as the csv module quotes them."""
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, line_terminator="\r\n", quote_style="necessary")
        return buffer.getvalue()


class CsvFormat(FormatBase):
    """Comma-separated values."""

    name = "csv"
    content_type = "text/csv; charset=utf-8"
    extension = "csv"
    text_cells = True
    renders_frames = True
    writer_class = CsvWriter

    def frame_exprs(self, values: ColumnValues) -> list[pl.Expr]:
        """One text column per cell; lists joined as :func:`~skuport.exporting.conventions.join_list`."""
        import polars as pl

        exprs = []
        for i, (column, value) in enumerate(values):
            if column.kind == Kind.LIST:
                joined = value.list.eval(
                    pl.element().str.replace_many(list(_LIST_ESCAPES), list(_LIST_ESCAPES.values()))
                ).list.join(LIST_SEPARATOR)
                # An empty list is no value: null, which polars writes as an empty field as Python's csv
                # writes ''. Only a joined list can be empty text: ids and timestamps never are, and
                # validation drops empty values (skuport.records.values.is_empty). Checking every column
                # costs 8 % more.
                value = pl.when(joined != "").then(joined)
            exprs.append(value.alias(f"c{i}"))
        return exprs
