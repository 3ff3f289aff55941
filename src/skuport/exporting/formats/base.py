"""What a file format is to the pipeline: a prologue, encoded batches of rows, an epilogue."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO, Protocol

from skuport.exporting.plan import LIST_SEPARATOR, Column, join_list

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_SPECIAL = re.compile("[&<>\"\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


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
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\r", "&#13;"))


def xml_name(name: str) -> str:
    """A valid XML element name for a header: other characters become '_', a bad start gets '_' before it."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"
    if not (cleaned[0].isalpha() or cleaned[0] == "_") or cleaned.lower().startswith("xml"):
        cleaned = "_" + cleaned
    return cleaned
