"""What an export asks for and what it produced: the contract between the pipeline and its callers."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skuport.errors import SkuportError

if TYPE_CHECKING:
    from skuport.exporting.formats.csv import CsvDialect
    from skuport.exporting.selection import ColumnSpec

ProgressCallback = Callable[[int, int], None]
"""Called now and then with (records done, records total)."""


@dataclass(frozen=True)
class ExportSpec:
    """Everything that decides the content of an export file.

    Export jobs, one-off exports and ``skuport export`` all build one of these and hand it to
    :func:`skuport.exporting.pipeline.run_export`; nothing else writes an export file.
    """

    format: str = "csv"
    schema_id: str | None = None
    catalog_id: str | None = None
    include_variants: bool = True
    lifecycle_state_ids: tuple[str, ...] = ()
    filters: Mapping[str, Any] | None = None
    fields: tuple[str, ...] | None = None
    columns: tuple[ColumnSpec, ...] | None = None
    """The file's columns by name (replaces ``fields``)."""
    dimension_scope: Mapping[str, str | Sequence[str]] | None = None
    compress: bool = False
    header_language: str | None = None
    dry_data: bool = False
    value_labels: bool = False
    """Select and multiselect values as their option labels (in the column's scope), else the code."""
    includes: tuple[str, ...] = ()
    csv: CsvDialect | None = None
    """The csv file's dialect (None: RFC 4180 with the default text form)."""
    max_records_per_file: int | None = None
    """Split into parts of at most this many rows (records and tombstones)."""
    changed_since: dt.datetime | None = None
    max_records: int | None = None


@dataclass(frozen=True)
class ExportFile:
    """One file an export wrote (a temporary file the caller moves, delivers or deletes)."""

    path: Path
    row_count: int
    """Rows in this file: records, and tombstones in a delta export."""
    file_size: int
    sha256: str


@dataclass
class ExportResult:
    """The file an export produced, or its parts when it was split (``split``: named ``-001``, ...)."""

    files: tuple[ExportFile, ...]
    record_count: int
    content_type: str
    extension: str
    content_encoding: str | None = None
    tombstone_count: int = 0
    split: bool = False

    @property
    def only(self) -> ExportFile:
        """The one file of an export that was not split."""
        if self.split or len(self.files) != 1:
            raise ValueError(f"the export was split into {len(self.files)} parts")
        return self.files[0]

    @property
    def path(self) -> Path:
        """The one file's path (an export that was not split)."""
        return self.only.path

    @property
    def file_size(self) -> int:
        """The size of all files together."""
        return sum(f.file_size for f in self.files)

    @property
    def sha256(self) -> str:
        """The one file's SHA-256 (an export that was not split)."""
        return self.only.sha256

    def discard(self) -> None:
        """Delete the temporary files."""
        for file in self.files:
            file.path.unlink(missing_ok=True)

    @property
    def media_type(self) -> str:
        """The file's media type as stored and delivered: ``application/gzip`` once compressed."""
        return "application/gzip" if self.content_encoding == "gzip" else self.content_type


@dataclass
class ExportControl:
    """Progress reporting and cancellation for a running export."""

    progress: ProgressCallback | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


class ExportCancelled(SkuportError):
    """The export was cancelled before it finished; its temporary file was removed."""

    status_code = 409
    code = "export_cancelled"
