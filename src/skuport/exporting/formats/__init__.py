"""Export file formats: one module each, registered here under the name the API accepts."""

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
