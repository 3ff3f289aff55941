"""Read and encode large exports in worker processes, one pk range ("chunk") per task.

Reading rows, parsing ``values_json`` and flattening are pure Python and hold the GIL, and so does much
of polars' JSON decoding, so threads cannot share them; processes can. The main process cuts the
selection into chunks of exactly ``CHUNK_ROWS`` matching records (by pk), workers read and encode their
chunk on their own connection (with polars where the frame engine can write the export, else with the
row engine: the same bytes either way) and send back the encoded bytes, and the main process writes
them in order (compressing in its writer thread), so the file is the same byte for byte as a
single-process export. On PostgreSQL the workers read the main transaction's
snapshot (``SET TRANSACTION SNAPSHOT``), so the file is one consistent view; SQLite has no shared
snapshots, so a record changed during the export may appear in its newer state.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from skuport.exporting import select as selection
from skuport.exporting.columnar import ColumnarEncoder
from skuport.exporting.plan import ColumnPlan
from skuport.exporting.prepared import PreparedExport, prepare
from skuport.exporting.spec import ExportSpec

CHUNK_ROWS = 10_000
"""Records per worker task: big enough to amortise the hand-over, small enough to keep memory flat."""
MIN_PARALLEL_ROWS = 60_000
"""Smaller exports run in one process: starting workers would cost more than it saves."""

log = logging.getLogger(__name__)

_pool: ProcessPoolExecutor | None = None
_pool_size = 0


@dataclass(frozen=True)
class Chunk:
    """One task: the records with pk in (after, upto], whose first is data row ``first_row`` of the file."""

    database_url: str
    spec_blob: bytes
    after: int
    upto: int
    first_row: int
    row_count: int
    """Records the whole export writes (its writers know the file's size)."""
    snapshot: str | None
    frames: bool
    """Encode with polars (the frame engine's encoder) rather than the row engine."""


def pool(workers: int) -> ProcessPoolExecutor:
    """The shared worker pool (forkserver: safe to start from a threaded server process)."""
    global _pool, _pool_size
    if _pool is None or _pool_size != workers:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["skuport.exporting.prepared", "skuport.exporting.columnar"])
        _pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        _pool_size = workers
    return _pool


def shutdown() -> None:
    """Stop the worker pool (tests, process exit)."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


@lru_cache(maxsize=4)
def _engine(url: str) -> Engine:
    from skuport.db import make_engine

    return make_engine(url)


def _prepared(conn: Connection, spec_blob: bytes) -> PreparedExport:
    cache: dict[bytes, PreparedExport] = _prepared.__dict__.setdefault("cache", {})
    if spec_blob not in cache:
        if len(cache) > 8:
            cache.clear()
        with Session(bind=conn) as session:
            cache[spec_blob] = prepare(session, pickle.loads(spec_blob))
    return cache[spec_blob]


def _encoder(spec_blob: bytes, prepared: PreparedExport) -> ColumnarEncoder:
    cache: dict[bytes, ColumnarEncoder] = _encoder.__dict__.setdefault("cache", {})
    if spec_blob not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[spec_blob] = ColumnarEncoder(prepared.plan, prepared.format)
    return cache[spec_blob]


def _categories(conn: Connection, plan: ColumnPlan, pks: Sequence[int]) -> dict[int, list[str]] | None:
    """The batch's categories by record pk, where the plan writes them."""
    return selection.category_map(conn, pks) if plan.categories_column else None


def render_chunk(chunk: Chunk) -> tuple[bytes, int]:
    """Worker side: read and encode one chunk (polars or the row engine); return (bytes, rows)."""
    import gc

    gc.disable()  # see pipeline._no_gc
    try:
        engine = _engine(chunk.database_url)
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if chunk.snapshot:
                    conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{chunk.snapshot}'")
                prepared = _prepared(conn, chunk.spec_blob)
                plan, fmt = prepared.plan, prepared.format
                writer = fmt.writer(plan.columns, row_count=chunk.row_count, first_row=chunk.first_row)
                encoder = _encoder(chunk.spec_blob, prepared) if chunk.frames else None
                parts: list[bytes] = []
                clauses, after, upto = prepared.record_clauses, chunk.after, chunk.upto
                if encoder is not None:
                    for batch in encoder.batches(conn, clauses, after=after, upto=upto):
                        categories = _categories(conn, plan, batch.pks())
                        parts.append(encoder.write(writer, batch, categories))
                else:
                    for rows in selection.record_batches(
                        conn, clauses, after=after, upto=upto, cells="json" if plan.uses_cells else "values"
                    ):
                        categories = _categories(conn, plan, [r[0] for r in rows])
                        parts.append(writer.write(plan.flatten(rows, categories, text=fmt.text_form)))
                return b"".join(parts), writer.rows_written - chunk.first_row
    finally:
        gc.enable()


def chunks(
    conn: Connection, prepared: PreparedExport, *, database_url: str, total: int, frames: bool = False
) -> Iterator[Chunk]:
    """Cut the selection into chunks of CHUNK_ROWS records (computed lazily, one bound query each)."""
    spec: ExportSpec = prepared.spec
    snapshot = None
    if conn.dialect.name == "postgresql":
        snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
    blob = pickle.dumps(spec)
    last = selection.last_pk(conn, prepared.record_clauses)
    after, first_row = prepared.pk_after, 0
    while first_row < total:
        size = min(CHUNK_ROWS, total - first_row)
        upto = selection.chunk_bounds(conn, prepared.record_clauses, after=after, size=size)
        if upto is None:
            upto = last
        yield Chunk(
            database_url=database_url,
            spec_blob=blob,
            after=after,
            upto=upto,
            first_row=first_row,
            row_count=total,
            snapshot=snapshot,
            frames=frames,
        )
        after, first_row = upto, first_row + size
        if upto >= last:
            return


def encoded_chunks(
    conn: Connection,
    prepared: PreparedExport,
    *,
    database_url: str,
    total: int,
    workers: int,
    frames: bool = False,
) -> Iterator[tuple[bytes, int]]:
    """(encoded bytes, rows) of every chunk, in file order, with a few chunks in flight at a time."""
    executor: ProcessPoolExecutor | None = pool(workers)
    pending: deque[tuple[Chunk, Future[tuple[bytes, int]] | None]] = deque()

    def result(chunk: Chunk, future: Future[tuple[bytes, int]] | None) -> tuple[bytes, int]:
        nonlocal executor
        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool:
                # A worker died (or could not start, e.g. a script without a __main__ guard): finish here.
                log.warning("export worker pool broke; continuing the export in-process", exc_info=True)
                shutdown()
                executor = None
        return render_chunk(chunk)

    try:
        for chunk in chunks(conn, prepared, database_url=database_url, total=total, frames=frames):
            pending.append((chunk, executor.submit(render_chunk, chunk) if executor is not None else None))
            if len(pending) > workers:
                yield result(*pending.popleft())
        while pending:
            yield result(*pending.popleft())
    finally:
        for _chunk, future in pending:
            if future is not None:
                future.cancel()
