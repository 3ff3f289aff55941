"""What a file format is to the pipeline: a prologue, encoded batches of rows, an epilogue."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO, Protocol

from skuport.exporting.conventions import LIST_SEPARATOR, join_list, xml_name
from skuport.exporting.plan import Column

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_SPECIAL = re.compile('[&<>"\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


class Format(Protocol):
    """One output format; registered in :data:`skuport.exporting.formats.FORMATS`."""

    name: str
    content_type: str
    extension: str
    max_rows: int | None
    """Most data rows a file can hold (None: no limit); larger exports are refused before writing."""
    text_cells: bool
    """Whether rows should arrive in text form (booleans true/false, lists joined), as csv writes them."""

    def start(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """Bytes before the first row (header row, opening bracket or tag); ``row_count`` rows follow."""
        ...

    def encode(self, columns: Sequence[Column], rows: list[list[Any]], *, first_row: int) -> bytes:
        """Encode a batch; ``first_row`` is the 0-based index of the batch's first data row in the file."""
        ...

    def end(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """Bytes after the last row."""
        ...

    def container(self, raw: BinaryIO) -> Any:
        """A context manager yielding the stream the encoded bytes go to (``raw`` itself for text)."""
        ...


class TextFormat:
    """Base of formats whose bytes go straight into the file."""

    max_rows: int | None = None
    text_cells = False

    @contextmanager
    def container(self, raw: BinaryIO) -> Iterator[BinaryIO]:
        """Text formats write straight into the (possibly gzip) stream."""
        yield raw


__all__ = ["LIST_SEPARATOR", "Format", "TextFormat", "join_list", "xml_name", "xml_text"]


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
