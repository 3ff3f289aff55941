"""The export pipeline: select -> flatten -> write -> compress, streaming, in flat memory.

Export jobs, one-off exports and ``skuport export`` all call :func:`run_export`; nothing else writes an
export file. Bad specs are refused (422) by :func:`validate_spec` before anything is written.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from skuport.db import get_engine
from skuport.errors import ValidationFailed
from skuport.exporting import select as selection
from skuport.exporting import workdir
from skuport.exporting.engines import Engine as ExportEngine
from skuport.exporting.engines import EngineRun, Meter, choose_engine
from skuport.exporting.prepared import PreparedExport, prepare, problem
from skuport.exporting.sink import Sink
from skuport.exporting.spec import ExportCancelled, ExportControl, ExportFile, ExportResult, ExportSpec

log = logging.getLogger(__name__)


def _counts(conn: Connection, prepared: PreparedExport) -> tuple[int, int]:
    records = selection.count_records(conn, prepared.record_clauses)
    tombstones = (
        selection.count_tombstones(conn, prepared.tombstone_clauses)
        if prepared.tombstone_clauses is not None
        else 0
    )
    limit = prepared.spec.max_records
    if limit is not None:
        records = min(records, limit)
        tombstones = min(tombstones, limit - records)
    return records, tombstones


def _check_size(prepared: PreparedExport, total: int) -> None:
    max_rows = prepared.format.max_rows
    if max_rows is not None and total > max_rows:
        raise ValidationFailed(
            f"Invalid export: {total:,} rows do not fit in one {prepared.spec.format} sheet (at most "
            f"{max_rows:,}); narrow the selection or use csv, jsonl or xml.",
            details=[problem("format", f"{prepared.spec.format} holds at most {max_rows} rows")],
            code="too_many_rows",
        )


def validate_spec(session: Session, spec: ExportSpec, *, may_split: bool = False) -> None:
    """Refuse a bad spec (422 naming every problem), including an xlsx export over the sheet's row limit
    unless its files ``may_split``."""
    prepared = prepare(session, spec)
    if (prepared.format.max_rows is not None and not may_split) or spec.max_records_per_file is not None:
        _per_file(prepared, sum(_counts(session.connection(), prepared)), may_split=may_split)


def count_matching(session: Session, spec: ExportSpec) -> int:
    """How many rows (records, plus tombstones in a delta export) the export would write."""
    return sum(_counts(session.connection(), prepare(session, spec)))


@contextlib.contextmanager
def _read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection holding one consistent snapshot for the count and every batch."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    # The flattening creates millions of short-lived containers; the cyclic collector would rescan
    # them over and over for nothing (they hold no cycles).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class _Part:
    """How many records and tombstones one file of an export holds."""

    records: int
    tombstones: int


def _parts(records: int, tombstones: int, per_file: int | None) -> list[_Part]:
    """How the rows fall into files: records first, then tombstones, ``per_file`` rows a file."""
    if per_file is None:
        return [_Part(records=records, tombstones=tombstones)]
    parts: list[_Part] = []
    left_records, left_tombstones = records, tombstones
    while left_records or left_tombstones or not parts:
        take = min(per_file, left_records)
        dead = min(per_file - take, left_tombstones)
        parts.append(_Part(records=take, tombstones=dead))
        left_records, left_tombstones = left_records - take, left_tombstones - dead
    return parts


MAX_PARTS = 10_000
"""Most files one export splits into (each is a delivery of its own)."""


def _per_file(prepared: PreparedExport, total: int, *, may_split: bool) -> int | None:
    """Rows per file: the spec's maxRecordsPerFile, capped by the format's sheet (None: one file)."""
    per_file, max_rows = prepared.spec.max_records_per_file, prepared.format.max_rows
    if not may_split:
        _check_size(prepared, total)
        return None
    if max_rows is not None and (per_file is not None or total > max_rows):
        per_file = min(per_file or max_rows, max_rows)
    if per_file is not None and -(-total // per_file) > MAX_PARTS:
        raise ValidationFailed(
            f"Invalid export: {total:,} rows at {per_file:,} per file make {-(-total // per_file):,} files; "
            f"at most {MAX_PARTS:,}. Raise maxRecordsPerFile (to at least {-(-total // MAX_PARTS):,}).",
            details=[problem("maxRecordsPerFile", f"at most {MAX_PARTS} files")],
            code="too_many_parts",
        )
    return per_file


class _Tombstones:
    """The delta export's tombstones as one stream, handed out to the files in the counts they hold."""

    def __init__(self, conn: Connection, prepared: PreparedExport, total: int) -> None:
        clauses = prepared.tombstone_clauses
        self._batches = (
            iter(selection.tombstone_batches(conn, clauses, limit=total, batch_size=selection.BATCH_SIZE))
            if clauses is not None and total
            else iter(())
        )
        self._left: Sequence[Any] = ()

    def take(self, count: int) -> Iterator[Sequence[Any]]:
        """The next ``count`` tombstones, in batches."""
        while count > 0:
            if not self._left:
                self._left = next(self._batches, ())
                if not self._left:
                    return
            batch, self._left = self._left[:count], self._left[count:]
            count -= len(batch)
            yield batch


def _temporary_file(folder: Path, extension: str) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="skuport-export-", suffix="." + extension, dir=folder)
        os.close(fd)
    except OSError as exc:
        raise workdir.local_resource_error(exc, folder, setting="SKUPORT_TMP_DIR") from exc
    return Path(name)


def run_export(
    spec: ExportSpec,
    *,
    out_dir: Path | None = None,
    control: ExportControl | None = None,
    engine: Engine | None = None,
    may_split: bool = True,
) -> ExportResult:
    """Write the export described by ``spec`` to temporary files in ``out_dir`` and describe them: one
    file, or its parts when the spec asks for parts (or an xlsx sheet overflows and ``may_split``)."""
    control = control or ExportControl()
    engine = engine or get_engine()
    with _read_snapshot(engine) as conn:
        with Session(bind=conn) as session:
            prepared = prepare(session, spec)
        records_total, tombstones_total = _counts(conn, prepared)
        total = records_total + tombstones_total
        per_file = _per_file(prepared, total, may_split=may_split)
        fmt = prepared.format
        extension = fmt.extension + (".gz" if spec.compress else "")
        folder = out_dir or workdir.work_dir()
        meter = Meter(control, total)
        chosen = choose_engine(
            prepared, records=records_total, database_url=engine.url.render_as_string(hide_password=False)
        )
        dead = _Tombstones(conn, prepared, tombstones_total)
        files: list[ExportFile] = []
        after = -1
        try:
            for part in _parts(records_total, tombstones_total, per_file):
                if per_file is not None and part.records:
                    upto = selection.chunk_bounds(
                        conn, prepared.record_clauses, after=after, size=part.records
                    )
                    scope = replace(
                        prepared,
                        record_clauses=[*prepared.record_clauses, *selection.pk_range(after, upto)],
                        pk_after=after,
                    )
                    after = upto if upto is not None else after
                else:
                    scope = prepared
                files.append(_write_file(conn, scope, chosen, part, dead, meter, folder, extension))
        except BaseException:
            for file in files:
                file.path.unlink(missing_ok=True)
            raise
    return ExportResult(
        files=tuple(files),
        record_count=meter.done,
        content_type=fmt.content_type,
        extension=extension,
        content_encoding="gzip" if spec.compress else None,
        tombstone_count=tombstones_total,
        split=per_file is not None,
    )


def _write_file(
    conn: Connection,
    prepared: PreparedExport,
    chosen: ExportEngine,
    part: _Part,
    dead: _Tombstones,
    meter: Meter,
    folder: Path,
    extension: str,
) -> ExportFile:
    """Write one file (the whole export, or one part): header, records, tombstones, footer."""
    fmt, plan = prepared.format, prepared.plan
    path = _temporary_file(folder, extension)
    try:
        with Sink(path, compress=prepared.spec.compress, container=fmt.container) as sink, _no_gc():
            writer = fmt.writer(plan.columns, row_count=part.records + part.tombstones)
            sink.put(writer.open())
            meter.add(0)
            chosen.write(EngineRun(conn, prepared, writer, sink, meter), records=part.records)
            for batch in dead.take(part.tombstones):
                meter.check()
                rows = [
                    plan.tombstone_row(record_id=r[0], parent_id=r[1], schema_id=r[2], text=fmt.text_form)
                    for r in batch
                ]
                sink.put(writer.write(rows))
                meter.add(len(rows))
            meter.check()
            sink.put(writer.close())
            size, digest = sink.close()
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise workdir.local_resource_error(exc, folder, setting="SKUPORT_TMP_DIR") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ExportFile(path=path, row_count=part.records + part.tombstones, file_size=size, sha256=digest)


def headers_for(session: Session, spec: ExportSpec) -> Sequence[str]:
    """The column headers an export would have (for previews and documentation)."""
    return prepare(session, spec).plan.headers


__all__ = ["ExportCancelled", "count_matching", "headers_for", "prepare", "run_export", "validate_spec"]
