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
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, select
from sqlalchemy.orm import Session

from skuport.catalog.models import Attribute, Catalog, Category, Dimension, LifecycleState, Schema, Segment
from skuport.config import get_settings
from skuport.db import get_engine
from skuport.errors import ValidationFailed
from skuport.exporting import columnar, parallel, workdir
from skuport.exporting import select as selection
from skuport.exporting.formats import FORMATS, Format
from skuport.exporting.plan import SYSTEM_FIELDS, AttributeInfo, ColumnPlan, kind_of
from skuport.exporting.sink import Sink
from skuport.exporting.spec import ExportCancelled, ExportControl, ExportResult, ExportSpec
from skuport.records.filters import filter_clauses

ENCODE_THREADS = 1
"""Batches the columnar engine encodes at once. polars releases the GIL, but on two cores a second
encoding thread measured no faster: reading, encoding and gzip already keep both busy."""
log = logging.getLogger(__name__)

INCLUDES = frozenset({"categories", "completeness"})
"""Extra columns an export can ask for (see docs/export-format.md)."""


@dataclass
class PreparedExport:
    """A validated spec turned into what the run needs: format, column plan and WHERE clauses."""

    spec: ExportSpec
    format: Format
    plan: ColumnPlan
    record_clauses: list[ColumnElement[bool]]
    tombstone_clauses: list[ColumnElement[bool]] | None
    kinds_by_alias: dict[str, set[str]]
    """Attribute alias -> the column kinds of the attributes of that alias across schemas."""


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _refuse(problems: list[dict[str, str]]) -> None:
    if problems:
        raise ValidationFailed(f"Invalid export: {problems[0]['message']}", details=problems,
                               code="invalid_export")


def _attributes(session: Session, schema_id: str | None) -> list[AttributeInfo]:
    query = select(Attribute).order_by(Attribute.schema_id, Attribute.sort_order, Attribute.alias)
    if schema_id:
        query = query.where(Attribute.schema_id == schema_id)
    seen: dict[str, AttributeInfo] = {}
    for attr in session.scalars(query):
        if attr.alias not in seen:
            seen[attr.alias] = AttributeInfo(alias=attr.alias, data_type=attr.data_type,
                                             dimension_ids=tuple(attr.dimension_ids or ()),
                                             labels=dict(attr.labels or {}), name=attr.name)
    return list(seen.values())


def _segments(session: Session) -> dict[str, list[str]]:
    query = (select(Segment.dimension_id, Segment.id).join(Dimension, Dimension.id == Segment.dimension_id)
             .order_by(Dimension.sort_order, Dimension.id, Segment.sort_order, Segment.id))
    segments: dict[str, list[str]] = {}
    for dim, seg in session.execute(query):
        segments.setdefault(dim, []).append(seg)
    return segments


def prepare(session: Session, spec: ExportSpec) -> PreparedExport:
    """Check every option of ``spec`` against the catalogue model; raise a 422 listing the problems."""
    problems: list[dict[str, str]] = []
    fmt = FORMATS.get(spec.format)
    if fmt is None:
        problems.append(_problem("format", f"unknown format '{spec.format}' (use one of: "
                                           f"{', '.join(FORMATS)})."))
    if spec.schema_id and session.get(Schema, spec.schema_id) is None:
        problems.append(_problem("schemaId", f"schema '{spec.schema_id}' does not exist."))
    attributes = _attributes(session, spec.schema_id)
    by_alias = {a.alias: a for a in attributes}
    if spec.fields is not None:
        unknown = [f for f in spec.fields if f not in by_alias and f not in SYSTEM_FIELDS]
        where = f"schema '{spec.schema_id}'" if spec.schema_id else "any schema"
        for alias in unknown:
            problems.append(_problem("fields", f"'{alias}' is neither an attribute of {where} nor a record "
                                               f"field ({', '.join(SYSTEM_FIELDS)})."))
        doubles = sorted({f for f in spec.fields if list(spec.fields).count(f) > 1})
        if doubles:
            problems.append(_problem("fields", f"fields name {', '.join(doubles)} more than once."))
        if not spec.fields:
            problems.append(_problem("fields", "fields is empty; leave it out to export every attribute."))
        attributes = [by_alias[f] for f in spec.fields if f in by_alias]
    segments = _segments(session)
    if spec.dimension_scope is not None:
        if not isinstance(spec.dimension_scope, Mapping):
            problems.append(_problem("dimensionScope",
                                     "dimensionScope must map dimension ids to segment ids."))
        else:
            for dim, seg in spec.dimension_scope.items():
                if dim not in segments:
                    problems.append(_problem("dimensionScope", f"dimension '{dim}' does not exist."))
                elif seg not in segments[dim]:
                    problems.append(_problem("dimensionScope",
                                             f"'{seg}' is not a segment of dimension '{dim}'."))
    if spec.header_language and not any(spec.header_language in segs for segs in segments.values()):
        problems.append(_problem("headerLanguage", f"'{spec.header_language}' is not a segment."))
    category_ids: list[str] | None = None
    if spec.catalog_id:
        if session.get(Catalog, spec.catalog_id) is None:
            problems.append(_problem("catalogId", f"catalog '{spec.catalog_id}' does not exist."))
        category_ids = list(session.scalars(
            select(Category.id).where(Category.catalog_id == spec.catalog_id)))
    if spec.lifecycle_state_ids:
        known = set(session.scalars(select(LifecycleState.id).where(
            LifecycleState.id.in_(list(spec.lifecycle_state_ids)))))
        for state in spec.lifecycle_state_ids:
            if state not in known:
                problems.append(_problem("lifecycleStateIds", f"lifecycle state '{state}' does not exist."))
    for include in spec.includes:
        if include not in INCLUDES:
            problems.append(_problem("includes", f"cannot include '{include}'; "
                                                 f"use one of: {', '.join(sorted(INCLUDES))}."))
    if spec.max_records is not None and spec.max_records < 0:
        problems.append(_problem("maxRecords", "maxRecords must not be negative."))
    if spec.changed_since is not None and spec.changed_since.tzinfo is None:
        problems.append(_problem("changedSince", "changedSince needs a time zone (e.g. ...Z)."))
    _refuse(problems)
    assert fmt is not None
    scope = dict(spec.dimension_scope) if spec.dimension_scope is not None else None
    filters = filter_clauses(session, spec.filters, schema_id=spec.schema_id, dimension_scope=scope or None)
    plan = ColumnPlan(attributes=attributes, segments=segments, dimension_scope=scope,
                      header_language=spec.header_language, dry_data=spec.dry_data,
                      deleted_column=spec.changed_since is not None,
                      categories_column="categories" in spec.includes,
                      completeness=_completeness(session) if "completeness" in spec.includes else None,
                      fields=spec.fields)
    clauses = selection.record_clauses(
        schema_id=spec.schema_id, include_variants=spec.include_variants,
        lifecycle_state_ids=spec.lifecycle_state_ids, category_ids=category_ids,
        changed_since=spec.changed_since, filter_clauses=filters)
    tombstones = (selection.tombstone_clauses(schema_id=spec.schema_id,
                                              include_variants=spec.include_variants,
                                              changed_since=spec.changed_since)
                  if spec.changed_since is not None else None)
    kinds: dict[str, set[str]] = {}
    by_schema = select(Attribute.alias, Attribute.data_type)
    if spec.schema_id:
        by_schema = by_schema.where(Attribute.schema_id == spec.schema_id)
    for alias, data_type in session.execute(by_schema):
        kinds.setdefault(alias, set()).add(kind_of(data_type))
    return PreparedExport(spec=spec, format=fmt, plan=plan, record_clauses=clauses,
                          tombstone_clauses=tombstones, kinds_by_alias=kinds)


def columnar_encoder(prepared: PreparedExport) -> columnar.ColumnarEncoder | None:
    """The columnar engine for this export, unless the settings or the export rule it out."""
    if get_settings().export_engine != "auto":
        return None
    return columnar.encoder_for(prepared.plan, prepared.spec.format, kinds_by_alias=prepared.kinds_by_alias)


def _completeness(session: Session) -> Callable[[str, str | None, Mapping[str, Any]], int]:
    """Completeness percentage of a record's values for its current state, as the records API computes it."""
    from skuport.records.service import compute_completeness, schema_context

    contexts = {schema_id: schema_context(session, schema_id=schema_id)
                for schema_id in session.scalars(select(Schema.id))}

    def percentage(schema_id: str, state_id: str | None, values: Mapping[str, Any]) -> int:
        return int(compute_completeness(contexts[schema_id], dict(values), state_id)["percentage"])

    return percentage


def _counts(conn: Connection, prepared: PreparedExport) -> tuple[int, int]:
    records = selection.count_records(conn, prepared.record_clauses)
    tombstones = (selection.count_tombstones(conn, prepared.tombstone_clauses)
                  if prepared.tombstone_clauses is not None else 0)
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
            details=[_problem("format", f"{prepared.spec.format} holds at most {max_rows} rows")],
            code="too_many_rows")


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


def run_export(spec: ExportSpec, *, out_dir: Path | None = None, control: ExportControl | None = None,
               engine: Engine | None = None) -> ExportResult:
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
        columns = plan.columns
        done = 0
        try:
            with Sink(path, compress=spec.compress, container=fmt.container) as sink, _no_gc():
                sink.put(fmt.start(columns, row_count=total))  # the snapshot's exact count
                _report(control, done, total)
                workers = get_settings().export_workers
                encoder = columnar_encoder(prepared)
                if encoder is not None:
                    done = _encode_columnar(conn, prepared, encoder, sink, control, records_total, total)
                elif workers > 1 and records_total >= parallel.MIN_PARALLEL_ROWS:
                    url = engine.url.render_as_string(hide_password=False)
                    for data, rows_done in parallel.encoded_chunks(conn, prepared, database_url=url,
                                                                   total=records_total, workers=workers):
                        _check_cancel(control, done, total)
                        sink.put(data)
                        done += rows_done
                        _report(control, done, total)
                else:
                    for rows in selection.record_batches(conn, prepared.record_clauses, limit=records_total,
                                                          cells=prepared.plan.uses_cells,
                                                          batch_size=selection.BATCH_SIZE):
                        _check_cancel(control, done, total)
                        categories = (selection.category_map(conn, [r[0] for r in rows])
                                      if plan.categories_column else None)
                        flat = plan.flatten(rows, categories, text=fmt.text_cells)
                        sink.put(fmt.encode(columns, flat, first_row=done))
                        done += len(rows)
                        _report(control, done, total)
                tombstones = 0
                if prepared.tombstone_clauses is not None and tombstones_total:
                    for dead in selection.tombstone_batches(conn, prepared.tombstone_clauses,
                                                            limit=tombstones_total,
                                                            batch_size=selection.BATCH_SIZE):
                        _check_cancel(control, done, total)
                        rows = [plan.tombstone_row(record_id=r[0], parent_id=r[1], schema_id=r[2],
                                                   text=fmt.text_cells) for r in dead]
                        sink.put(fmt.encode(columns, rows, first_row=done))
                        done += len(rows)
                        tombstones += len(rows)
                        _report(control, done, total)
                _check_cancel(control, done, total)
                sink.put(fmt.end(columns, row_count=done))
                size, digest = sink.close()
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise workdir.local_resource_error(exc, folder, setting="SKUPORT_TMP_DIR") from exc
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return ExportResult(path=path, record_count=done, file_size=size, sha256=digest,
                        content_type=fmt.content_type, extension=extension,
                        content_encoding="gzip" if spec.compress else None, tombstone_count=tombstones)


def _encode_columnar(conn: Connection, prepared: PreparedExport, encoder: columnar.ColumnarEncoder,
                     sink: Sink, control: ExportControl, records_total: int, total: int) -> int:
    """Write the records with the columnar engine; return how many.

    Reading a batch (Python, holding the GIL) overlaps with encoding the previous one (polars, which
    releases it) and with compressing the one before (the sink's thread): three stages on two cores.
    At most two batches are in flight, so memory stays flat.
    """
    done = submitted = 0
    in_flight: deque[tuple[Future[bytes], int]] = deque()

    def write_oldest() -> None:
        nonlocal done
        future, count = in_flight.popleft()
        sink.put(future.result())
        done += count
        _report(control, done, total)
        _check_cancel(control, done, total)

    with ThreadPoolExecutor(max_workers=ENCODE_THREADS, thread_name_prefix="skuport-encode") as pool:
        try:
            for rows in selection.record_batches(conn, prepared.record_clauses, limit=records_total,
                                                  cells=True, tuples=True,
                                                  batch_size=selection.COLUMNAR_BATCH_SIZE):
                _check_cancel(control, done, total)
                categories = (selection.category_map(conn, [r[0] for r in rows])
                              if prepared.plan.categories_column else None)
                in_flight.append((pool.submit(_encode_batch, prepared, encoder, rows, categories, submitted),
                                  len(rows)))
                submitted += len(rows)
                while len(in_flight) > ENCODE_THREADS or (in_flight and in_flight[0][0].done()):
                    write_oldest()
            while in_flight:
                write_oldest()
        finally:
            for future, _count in in_flight:
                future.cancel()
    return done


def _encode_batch(prepared: PreparedExport, encoder: columnar.ColumnarEncoder, rows: Sequence[Any],
                  categories: Mapping[int, list[str]] | None, first_row: int) -> bytes:
    """One batch by the columnar engine, or by the row engine (same bytes) when polars refuses it.

    polars refuses a value whose JSON type the plan did not expect (e.g. an object where text belongs);
    validation never stores one, but a feed must not fail over a record the row engine can write.
    """
    try:
        return encoder.encode(rows, categories, first_row=first_row)
    except Exception as exc:
        if not columnar.is_engine_error(exc):
            raise
        log.warning("the columnar engine could not encode records %s..%s (%s); the row engine writes them",
                    rows[0][1], rows[-1][1], str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        plan, fmt = prepared.plan, prepared.format
        flat = plan.flatten(rows, categories, text=fmt.text_cells)
        return fmt.encode(plan.columns, flat, first_row=first_row)


def _report(control: ExportControl, done: int, total: int) -> None:
    if control.progress is not None:
        control.progress(done, total)


def _check_cancel(control: ExportControl, done: int, total: int) -> None:
    if control.cancel.is_set():
        raise ExportCancelled(f"Export cancelled after {done:,} of {total:,} records.")


def headers_for(session: Session, spec: ExportSpec) -> Sequence[str]:
    """The column headers an export would have (for previews and documentation)."""
    return prepare(session, spec).plan.headers


__all__ = ["ExportCancelled", "count_matching", "headers_for", "prepare", "run_export", "validate_spec"]

