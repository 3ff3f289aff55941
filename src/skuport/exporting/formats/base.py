"""What a file format is to the pipeline: a stateful writer per file, and optionally a frame rendering.

A format module holds everything about its files: the extension and media type, the row rendering (the
row engine's Python, which writes every export), the frame rendering where it has one (polars
expressions the frame engine evaluates over a batch, which must give the very same bytes), its escaping,
and its packaging (:meth:`Format.container`, e.g. the zip of a workbook).

A file is written by one :class:`FileWriter`: ``open()``, then ``write(rows)`` or ``write_frame(frame)``
per batch, in file order, then ``close()``. Each returns the bytes to append. The writer counts the rows it
has written, so a format whose bytes depend on a row's position (the comma between JSON objects, a
spreadsheet's row numbers, a footer with the count) needs nothing from its caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol

from skuport.exporting.conventions import LIST_SEPARATOR, TextForm, join_list, xml_name
from skuport.exporting.plan import Column

if TYPE_CHECKING:
    import polars as pl

    from skuport.exporting.spec import ExportSpec

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_SPECIAL = re.compile('[&<>"\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')

ColumnValues = Sequence[tuple[Column, "pl.Expr"]]
"""Each output column with the polars expression of its cells (text, list of text, or null)."""


class FileWriter:
    """One file of a format being written; subclasses give the bytes (:meth:`encode` at least).

    ``first_row`` is the data row the writer starts at: 0 for a whole file, more for a worker process
    that writes a later range of it (:mod:`skuport.exporting.parallel`).
    """

    def __init__(self, columns: Sequence[Column], *, row_count: int, first_row: int = 0) -> None:
        self.columns = columns
        self.row_count = row_count
        """Data rows the whole file holds (the snapshot's exact count, known before the first row)."""
        self.rows_written = first_row

    def open(self) -> bytes:
        """Bytes before the first row (a header row, an opening bracket or tag)."""
        return b""

    def write(self, rows: list[list[Any]]) -> bytes:
        """A batch of rows (as :meth:`skuport.exporting.plan.ColumnPlan.flatten` makes them)."""
        data = self.encode(rows)
        self.rows_written += len(rows)
        return data

    def write_frame(self, frame: pl.DataFrame) -> bytes:
        """A batch rendered by the format's :meth:`Format.frame_exprs` (frame engine)."""
        data = self.encode_frame(frame)
        self.rows_written += frame.height
        return data

    def written_elsewhere(self, rows: int) -> None:
        """``rows`` were written into this file by other writers (worker processes): count them."""
        self.rows_written += rows

    def close(self) -> bytes:
        """Bytes after the last row."""
        return b""

    def encode(self, rows: list[list[Any]]) -> bytes:
        """The bytes of a batch of rows; :attr:`rows_written` rows precede it."""
        raise NotImplementedError

    def encode_frame(self, frame: pl.DataFrame) -> bytes:
        """The bytes of a rendered batch; formats without a frame rendering never get one."""
        raise NotImplementedError(f"{type(self).__name__} has no frame rendering")


class Format(Protocol):
    """One output format; registered in :data:`skuport.exporting.formats.FORMATS`."""

    name: str
    content_type: str
    extension: str
    max_rows: int | None
    """Most data rows a file can hold (None: no limit); larger exports are refused before writing."""
    text_form: TextForm | None
    """The text form rows arrive in (numbers, booleans, lists and dates as text, as csv writes them), or
    None: typed values."""
    renders_frames: bool
    """Whether the format has a frame rendering (:meth:`frame_exprs`), so the frame engine can write it."""
    unique_headers: bool
    """Whether headers are keys that must not repeat (JSON objects); the row engine writes the others."""

    def writer(self, columns: Sequence[Column], *, row_count: int, first_row: int = 0) -> FileWriter:
        """A writer for one file (or, from ``first_row`` on, a range of one)."""
        ...

    def configured(self, spec: ExportSpec) -> Format:
        """This format with the export's options for it (the csv dialect); itself when it has none."""
        ...

    def frame_exprs(self, values: ColumnValues) -> list[pl.Expr]:
        """Expressions rendering a batch for :meth:`FileWriter.write_frame` (formats that render frames)."""
        ...

    def container(self, raw: BinaryIO) -> Any:
        """A context manager yielding the stream the encoded bytes go to (``raw`` itself for text)."""
        ...


class FormatBase:
    """Base of the formats: a subclass names its writer class and, if it has them, its frame rendering
    and its packaging (by default the bytes go straight into the possibly gzip stream)."""

    max_rows: int | None = None
    text_form: TextForm | None = None
    renders_frames = False
    unique_headers = False
    writer_class: ClassVar[type[FileWriter]]

    def writer(self, columns: Sequence[Column], *, row_count: int, first_row: int = 0) -> FileWriter:
        """A new writer of this format."""
        return self.writer_class(columns, row_count=row_count, first_row=first_row)

    def configured(self, spec: ExportSpec) -> Format:
        """No options: the registered format itself."""
        return self  # type: ignore[return-value]

    def frame_exprs(self, values: ColumnValues) -> list[pl.Expr]:
        """No frame rendering unless the format has one."""
        raise NotImplementedError(f"{type(self).__name__} has no frame rendering")

    @contextmanager
    def container(self, raw: BinaryIO) -> Iterator[BinaryIO]:
        """Text formats write straight into the (possibly gzip) stream."""
        yield raw


def frame_lines(frame: pl.DataFrame, *, separator: str) -> bytes:
    """A rendered frame of one text column, its values joined by ``separator`` (which ends the last too)."""
    import io

    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, line_terminator=separator, quote_style="never")
    return buffer.getvalue()


def xml_text(value: str) -> str:
    """Escape text for XML content or a double-quoted attribute; drop characters XML 1.0 forbids.

    A carriage return is written as ``&#13;``: a raw one would be read back as a line feed (XML
    end-of-line handling applies to raw characters only).
    """
    if not _XML_SPECIAL.search(value):
        return value
    value = _INVALID_XML.sub("", value)
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
    )


__all__ = [
    "LIST_SEPARATOR",
    "ColumnValues",
    "FileWriter",
    "Format",
    "FormatBase",
    "frame_lines",
    "join_list",
    "xml_name",
    "xml_text",
]
