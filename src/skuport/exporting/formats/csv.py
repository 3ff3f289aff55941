"""CSV: RFC 4180 (CRLF, quotes doubled), UTF-8, one header row; lists joined by '|', booleans true/false.

A :class:`CsvDialect` (the selection's ``csv``) changes the delimiter, the quote, the line ends, the byte
order mark and the text form of numbers, lists and dates (``;`` and ``,`` decimals for a European
Excel, ``%d.%m.%Y`` dates). Both engines write every dialect, byte for byte the same.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from skuport.api import Flag, StrictCamelModel
from skuport.exporting.conventions import (
    DEFAULT_TEXT,
    LIST_SEPARATOR,
    TextForm,
    date_format_parts,
)
from skuport.exporting.formats.base import ColumnValues, FileWriter, FormatBase
from skuport.exporting.plan import Column, Kind

if TYPE_CHECKING:
    from collections.abc import Sequence

    import polars as pl

    from skuport.exporting.spec import ExportSpec

BOM = "\ufeff".encode()
_CHOICES = (
    ("delimiter", (",", ";", "\t")),
    ("quote", ('"', "'")),
    ("decimal_separator", (".", ",")),
    ("line_terminator", ("\r\n", "\n")),
)
"""The UTF-8 byte order mark Excel looks for to read a csv file as UTF-8."""


class CsvDialect(StrictCamelModel, frozen=True):
    """How a csv file is written: the selection's ``csv`` (defaults: RFC 4180 as above)."""

    # Plain strings checked below, not enums: OpenAPI client generators choke on enums of quotes and tabs.
    delimiter: str = Field(default=",", description='Field separator: ",", ";" or a tab.')
    quote: str = Field(
        default='"', description="Quote around fields holding the delimiter, a quote or a line end: \" or '."
    )
    decimal_separator: str = Field(default=".", description='Decimal separator of numbers: "." or ",".')
    date_format: str | None = Field(
        default=None,
        max_length=40,
        description="Dates as %Y, %y, %m, %d with - . / or space between (e.g. %d.%m.%Y); "
        "omitted: YYYY-MM-DD. Timestamps stay ISO 8601.",
        examples=["%d.%m.%Y"],
    )
    list_separator: str = Field(
        default=LIST_SEPARATOR, min_length=1, max_length=1, description="Joins the elements of a list."
    )
    bom: Flag = Field(default=False, description="Start the file with a UTF-8 byte order mark (for Excel).")
    line_terminator: str = Field(default="\r\n", description="Line end: CRLF or LF.")

    @model_validator(mode="after")
    def _distinct(self) -> CsvDialect:
        for name, allowed in _CHOICES:
            if getattr(self, name) not in allowed:
                raise ValueError(f"{to_camel(name)} must be one of {', '.join(map(repr, allowed))}")
        roles = {
            "delimiter": self.delimiter,
            "quote": self.quote,
            "decimalSeparator": self.decimal_separator,
            "listSeparator": self.list_separator,
        }
        seen: dict[str, str] = {}
        for name, char in roles.items():
            if char in seen:
                raise ValueError(
                    f"{name} and {seen[char]} are both {char!r}; a reader could not tell them apart"
                )
            seen[char] = name
        if self.list_separator in "\\\r\n":
            raise ValueError("listSeparator cannot be a backslash (the escape) or a line end")
        if self.date_format is not None:
            date_format_parts(self.date_format)
        return self

    @property
    def text(self) -> TextForm:
        """The text form of numbers, lists and dates."""
        return TextForm(
            decimal_separator=self.decimal_separator,
            list_separator=self.list_separator,
            date_format=self.date_format,
        )


DEFAULT_DIALECT = CsvDialect()


class CsvWriter(FileWriter):
    """Writes the header row (after a byte order mark if asked), then the rows."""

    dialect: CsvDialect = DEFAULT_DIALECT

    def _dump(self, rows: list[list[Any]]) -> bytes:
        buffer = io.StringIO()
        d = self.dialect
        csv.writer(
            buffer, delimiter=d.delimiter, quotechar=d.quote, lineterminator=d.line_terminator
        ).writerows(rows)
        return buffer.getvalue().encode("utf-8", "surrogatepass")

    def open(self) -> bytes:
        """The header row."""
        header = self._dump([[c.header for c in self.columns]])
        return BOM + header if self.dialect.bom else header

    def encode(self, rows: list[list[Any]]) -> bytes:
        """Rows (in text form: the plan already wrote numbers, booleans, lists and dates as text) as lines."""
        return self._dump(rows)

    def encode_frame(self, frame: pl.DataFrame) -> bytes:
        """The cells, quoted where needed, as the csv module quotes them."""
        buffer = io.BytesIO()
        d = self.dialect
        frame.write_csv(
            buffer,
            include_header=False,
            separator=d.delimiter,
            quote_char=d.quote,
            line_terminator=d.line_terminator,
            quote_style="necessary",
        )
        return buffer.getvalue()


class CsvFormat(FormatBase):
    """Comma-separated values (or semicolon, or tab: :class:`CsvDialect`)."""

    name = "csv"
    content_type = "text/csv; charset=utf-8"
    extension = "csv"
    renders_frames = True
    writer_class = CsvWriter

    def __init__(self, dialect: CsvDialect = DEFAULT_DIALECT) -> None:
        self.dialect = dialect
        self.text_form = DEFAULT_TEXT if dialect == DEFAULT_DIALECT else dialect.text

    def configured(self, spec: ExportSpec) -> CsvFormat:
        """This format in the export's dialect."""
        return self if spec.csv is None or spec.csv == self.dialect else CsvFormat(spec.csv)

    def writer(self, columns: Sequence[Column], *, row_count: int, first_row: int = 0) -> FileWriter:
        """A writer in this format's dialect."""
        writer = CsvWriter(columns, row_count=row_count, first_row=first_row)
        writer.dialect = self.dialect
        return writer

    def frame_exprs(self, values: ColumnValues) -> list[pl.Expr]:
        """One text column per cell, in the text form (:class:`~skuport.exporting.conventions.TextForm`)."""
        form = self.text_form or DEFAULT_TEXT
        return [_text_expr(column, value, form).alias(f"c{i}") for i, (column, value) in enumerate(values)]


def _text_expr(column: Column, value: pl.Expr, form: TextForm) -> pl.Expr:
    """A cell's text as :meth:`~skuport.exporting.plan.ColumnPlan.flatten` writes it in ``form``."""
    import polars as pl

    if column.kind == Kind.LIST:
        separator = form.list_separator
        escapes = {"\\": "\\\\", separator: "\\" + separator}
        joined = value.list.eval(
            pl.element().str.replace_many(list(escapes), list(escapes.values()))
        ).list.join(separator)
        # An empty list is no value: null, which polars writes as an empty field as Python's csv writes
        # ''. Only a joined list can be empty text: ids and timestamps never are, and validation drops
        # empty values (skuport.records.values.is_empty). Checking every column costs 8 % more.
        return pl.when(joined != "").then(joined)
    if column.kind == Kind.NUMBER and form.decimal_separator != ".":
        return value.str.replace(".", form.decimal_separator, literal=True)
    if column.kind == Kind.DATE and form.date_format is not None:
        parts = [
            pl.lit(p) if isinstance(p, str) else value.str.slice(*p)
            for p in date_format_parts(form.date_format)
        ]
        return pl.concat_str(parts, ignore_nulls=False)
    return value
