"""Export file formats: one module each, registered here under the name the API accepts.

Adding a format is one new module and one line in :data:`FORMATS`: a :class:`~.base.FormatBase` subclass
(name, media type, extension) naming a :class:`~.base.FileWriter` subclass (its bytes: ``open``,
``encode`` per batch, ``close``). It is written by the row engine from then on; a ``frame_exprs`` and
``encode_frame`` let the frame engine write it too. The API's enum, the OpenAPI document, the CLI's help
and the download media types all read this registry (``tests/exporting/test_format_registry.py``).
"""

from __future__ import annotations

from skuport.exporting.formats.base import LIST_SEPARATOR, Format
from skuport.exporting.formats.csv import CsvFormat
from skuport.exporting.formats.json import JsonFormat
from skuport.exporting.formats.jsonl import JsonlFormat
from skuport.exporting.formats.xlsx import XlsxFormat
from skuport.exporting.formats.xml import XmlFormat

FORMATS: dict[str, Format] = {
    "csv": CsvFormat(),
    "json": JsonFormat(),
    "jsonl": JsonlFormat(),
    "xml": XmlFormat(),
    "xlsx": XlsxFormat(),
}
"""Format name (as the API accepts it) -> format."""

__all__ = ["FORMATS", "LIST_SEPARATOR", "Format"]
