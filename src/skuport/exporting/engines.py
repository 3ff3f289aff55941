"""The engines that write an export's records, and the one place that chooses between them.

- **frame**: polars encodes a batch of records at a time (csv, json, jsonl, xml), reading the next
  batch while it encodes this one; the fastest where it applies.
- **processes**: worker processes (``SKUPORT_EXPORT_WORKERS`` > 1, large exports), each encoding its
  range with polars where the frame engine could, else with the row engine; it pays only with idle
  cores.
- **rows**: the row-by-row Python engine; it writes every format and option, and is the reference the
  others are checked against byte for byte.

:func:`choose_engine` picks one per export and logs why; the pipeline only calls ``write``.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection

from skuport.config import get_settings
from skuport.exporting import columnar, parallel
from skuport.exporting import select as selection
from skuport.exporting.formats.base import FileWriter
from skuport.exporting.prepared import PreparedExport
from skuport.exporting.sink import Sink
from skuport.exporting.spec import ExportCancelled, ExportControl

log = logging.getLogger(__name__)


@dataclass
class Meter:
    """How far the export is (reported to the caller) and whether it was cancelled."""

    control: ExportControl
    total: int
    done: int = 0

    def add(self, rows: int) -> None:
        """``rows`` more are written: report it."""
        self.done += rows
        if self.control.progress is not None:
            self.control.progress(self.done, self.total)

    def check(self) -> None:
        """Stop here when the export was cancelled (its file is removed by the pipeline)."""
        if self.control.cancel.is_set():
            raise ExportCancelled(f"Export cancelled after {self.done:,} of {self.total:,} records.")


@dataclass(frozen=True)
class EngineRun:
    """What an engine writes with: the snapshot's connection, the prepared export, the file's writer, the
    sink its bytes go to and the meter counting them."""

    conn: Connection
    prepared: PreparedExport
    writer: FileWriter
    sink: Sink
    meter: Meter


class Engine(Protocol):
    """Writes an export's records (not its tombstones, header or footer) through the file's writer."""

    name: str

    def write(self, run: EngineRun, *, records: int) -> None:
        """Write the first ``records`` matching records, in order, counting them on ``meter``."""


class RowEngine:
    """Python, one record at a time: every format and option."""

    name = "rows"

    def write(self, run: EngineRun, *, records: int) -> None:
        plan, text = run.prepared.plan, run.prepared.format.text_form
        for rows in selection.record_batches(
            run.conn,
            run.prepared.record_clauses,
            limit=records,
            cells="json" if plan.uses_cells else "values",
            batch_size=selection.BATCH_SIZE,
        ):
            run.meter.check()
            categories = (
                selection.category_map(run.conn, [r[0] for r in rows]) if plan.categories_column else None
            )
            run.sink.put(run.writer.write(plan.flatten(rows, categories, text=text)))
            run.meter.add(len(rows))


@dataclass
class ProcessesEngine:
    """``workers`` processes, each reading and encoding its own range of the same snapshot: with polars
    (``frames``) or with the row engine. Each process has its own GIL, so reading and encoding use
    every core, where the frame engine's threads mostly take turns."""

    database_url: str
    workers: int
    frames: bool
    name: str = "processes"

    def write(self, run: EngineRun, *, records: int) -> None:
        for data, rows in parallel.encoded_chunks(
            run.conn,
            run.prepared,
            database_url=self.database_url,
            total=records,
            workers=self.workers,
            frames=self.frames,
        ):
            run.meter.check()
            run.sink.put(data)
            run.writer.written_elsewhere(rows)
            run.meter.add(rows)


@dataclass
class FrameEngine:
    """polars, a batch at a time: reading a batch overlaps with encoding the previous one (on a thread)
    and with compressing the one before (the sink's thread). At most two batches are in flight, so
    memory stays flat.

    One encoding thread, so batches reach the (stateful) writer in file order. A second measured no
    faster on two cores, nor did decoding in a polars query, which releases the GIL where
    ``Series.str.json_decode`` does not (bench/README.md)."""

    encoder: columnar.ColumnarEncoder
    name: str = "frame"

    def write(self, run: EngineRun, *, records: int) -> None:
        in_flight: deque[tuple[Future[bytes], int]] = deque()

        def write_oldest() -> None:
            future, count = in_flight.popleft()
            run.sink.put(future.result())
            run.meter.add(count)
            run.meter.check()

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="skuport-encode") as pool:
            try:
                for batch in self.encoder.batches(run.conn, run.prepared.record_clauses, limit=records):
                    run.meter.check()
                    categories = (
                        selection.category_map(run.conn, batch.pks())
                        if run.prepared.plan.categories_column
                        else None
                    )
                    in_flight.append(
                        (pool.submit(self.encoder.write, run.writer, batch, categories), len(batch))
                    )
                    while len(in_flight) > 1 or (in_flight and in_flight[0][0].done()):
                        write_oldest()
                while in_flight:
                    write_oldest()
            finally:
                for future, _count in in_flight:
                    future.cancel()


def choose_engine(prepared: PreparedExport, *, records: int, database_url: str) -> Engine:
    """The engine for this export, and a log line saying which and why."""
    settings = get_settings()
    engine: Engine
    refusal = (
        "SKUPORT_EXPORT_ENGINE=rows"
        if settings.export_engine != "auto"
        else columnar.refusal(prepared.plan, prepared.format, kinds_by_alias=prepared.kinds_by_alias)
    )
    if settings.export_workers > 1 and records >= parallel.MIN_PARALLEL_ROWS:
        frames = refusal is None
        engine = ProcessesEngine(database_url=database_url, workers=settings.export_workers, frames=frames)
        what = f"polars encodes {prepared.spec.format}" if frames else refusal
        why = f"{what}; {settings.export_workers} processes for {records:,} records"
    elif refusal is None:
        encoder = columnar.ColumnarEncoder(prepared.plan, prepared.format)
        engine, why = FrameEngine(encoder), f"polars encodes {prepared.spec.format}"
    else:
        engine, why = RowEngine(), refusal
    log.info(
        "export of %s records as %s: %s engine (%s)", f"{records:,}", prepared.spec.format, engine.name, why
    )
    return engine
