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
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from skuport.db import get_engine
from skuport.errors import ValidationFailed
from skuport.exporting import select as selection
from skuport.exporting import workdir
from skuport.exporting.engines import EngineRun, Meter, choose_engine
from skuport.exporting.prepared import PreparedExport, prepare, problem
from skuport.exporting.sink import Sink
from skuport.exporting.spec import ExportCancelled, ExportControl, ExportResult, ExportSpec

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


def validate_spec(session: Session, spec: ExportSpec) -> None:
    """Refuse a bad spec (422 naming every problem), including an xlsx export over the sheet's row limit."""
    prepared = prepare(session, spec)
    if prepared.format.max_rows is not None:
        _check_size(prepared, sum(_counts(session.connection(), prepared)))


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


def run_export(
    spec: ExportSpec,
    *,
    out_dir: Path | None = None,
    control: ExportControl | None = None,
    engine: Engine | None = None,
) -> ExportResult:
    """Write the export described by ``spec`` to a temporary file in ``out_dir`` and describe the file."""
    control = control or ExportControl()
    engine = engine or get_engine()
    with _read_snapshot(engine) as conn:
        with Session(bind=conn) as session:
            prepared = prepare(session, spec)
        records_total, tombstones_total = _counts(conn, prepared)
        total = records_total + tombstones_total
        _check_size(prepared, total)
        fmt, plan = prepared.format, prepared.plan
        extension = fmt.extension + (".gz" if spec.compress else "")
        folder = out_dir or workdir.work_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="skuport-export-", suffix="." + extension, dir=folder)
            os.close(fd)
        except OSError as exc:
            raise workdir.local_resource_error(exc, folder, setting="SKUPORT_TMP_DIR") from exc
        path = Path(name)
        meter = Meter(control, total)
        try:
            with Sink(path, compress=spec.compress, container=fmt.container) as sink, _no_gc():
                writer = fmt.writer(plan.columns, row_count=total)  # the snapshot's exact count
                sink.put(writer.open())
                meter.add(0)
                chosen = choose_engine(
                    prepared,
                    records=records_total,
                    database_url=engine.url.render_as_string(hide_password=False),
                )
                chosen.write(EngineRun(conn, prepared, writer, sink, meter), records=records_total)
                tombstones = 0
                if prepared.tombstone_clauses is not None and tombstones_total:
                    for dead in selection.tombstone_batches(
                        conn,
                        prepared.tombstone_clauses,
                        limit=tombstones_total,
                        batch_size=selection.BATCH_SIZE,
                    ):
                        meter.check()
                        rows = [
                            plan.tombstone_row(
                                record_id=r[0], parent_id=r[1], schema_id=r[2], text=fmt.text_form
                            )
                            for r in dead
                        ]
                        sink.put(writer.write(rows))
                        tombstones += len(rows)
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
    return ExportResult(
        path=path,
        record_count=meter.done,
        file_size=size,
        sha256=digest,
        content_type=fmt.content_type,
        extension=extension,
        content_encoding="gzip" if spec.compress else None,
        tombstone_count=tombstones,
    )


def headers_for(session: Session, spec: ExportSpec) -> Sequence[str]:
    """The column headers an export would have (for previews and documentation)."""
    return prepare(session, spec).plan.headers


__all__ = ["ExportCancelled", "count_matching", "headers_for", "prepare", "run_export", "validate_spec"]
