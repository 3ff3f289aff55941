"""Selection: which records (and tombstones) an export holds, read as raw rows in keyset batches.

Rows are read with SQLAlchemy Core, not the ORM: (pk, id, parent_id, schema_id, lifecycle_state_id,
values_json, created_at, updated_at), timestamps already formatted by the database as
``2026-03-08T10:30:00.000Z``. Batches follow ``pk`` (stable order, each batch an index range scan).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.sql import Select

from skuport.records.models import Record, RecordCategory, RecordTombstone

BATCH_SIZE = 5000
"""Records per batch: large enough to amortise a query, small enough to keep memory flat."""
COLUMNAR_BATCH_SIZE = 1500
"""Records per batch of the columnar engine. Polars has a fixed cost per batch (about 1 ms to plan and
write), so larger batches are faster, while memory grows with the batch; 1,500 keeps every format under
150 MB peak RSS (bench/README.md)."""

_records = Record.__table__.c
_tombstones = RecordTombstone.__table__.c
_assignments = RecordCategory.__table__.c


def formatted_time(column: Any, dialect: str) -> Any:
    """SQL formatting a UTC timestamp column as ISO 8601 with milliseconds and Z."""
    if dialect == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff'. Cut to milliseconds, as the API writes timestamps
        # (strftime's %f would round them) and 0.8 µs a row cheaper than strftime.
        stored = type_coerce(column, String)
        return (
            func.substr(stored, 1, 10)
            .op("||")(literal_column("'T'"))
            .op("||")(func.substr(stored, 12, 12))
            .op("||")(literal_column("'Z'"))
        )
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    return column


def record_clauses(
    *,
    schema_id: str | None,
    include_variants: bool,
    lifecycle_state_ids: Sequence[str],
    category_ids: Sequence[str] | None,
    changed_since: dt.datetime | None,
    filter_clauses: Sequence[ColumnElement[bool]],
) -> list[ColumnElement[bool]]:
    """WHERE clauses on ``records`` for an export's selection."""
    clauses: list[ColumnElement[bool]] = []
    if schema_id:
        clauses.append(_records.schema_id == schema_id)
    if not include_variants:
        clauses.append(_records.parent_id.is_(None))
    if lifecycle_state_ids:
        clauses.append(_records.lifecycle_state_id.in_(list(lifecycle_state_ids)))
    if category_ids is not None:
        clauses.append(
            exists(
                select(_assignments.record_pk).where(
                    _assignments.record_pk == _records.pk, _assignments.category_id.in_(list(category_ids))
                )
            )
        )
    if changed_since is not None:
        clauses.append(Record.updated_at > changed_since)
    clauses.extend(filter_clauses)
    return clauses


def tombstone_clauses(
    *, schema_id: str | None, include_variants: bool, changed_since: dt.datetime
) -> list[ColumnElement[bool]]:
    """WHERE clauses on ``record_tombstones`` for a delta export."""
    clauses: list[ColumnElement[bool]] = [RecordTombstone.deleted_at > changed_since]
    if schema_id:
        clauses.append(_tombstones.schema_id == schema_id)
    if not include_variants:
        clauses.append(_tombstones.parent_id.is_(None))
    return clauses


def count_records(conn: Connection, clauses: Sequence[ColumnElement[bool]]) -> int:
    """How many records match."""
    return int(conn.execute(select(func.count()).select_from(Record.__table__).where(*clauses)).scalar_one())


def count_tombstones(conn: Connection, clauses: Sequence[ColumnElement[bool]]) -> int:
    """How many tombstones match."""
    return int(
        conn.execute(select(func.count()).select_from(RecordTombstone.__table__).where(*clauses)).scalar_one()
    )


def _raw_select(dialect: str, clauses: Sequence[ColumnElement[bool]], *, cells: bool = False) -> Select[Any]:
    return (
        select(
            _records.pk,
            _records.id,
            _records.parent_id,
            _records.schema_id,
            _records.lifecycle_state_id,
            _records.cells_json if cells else _records.values_json,
            formatted_time(_records.created_at, dialect),
            formatted_time(_records.updated_at, dialect),
        )
        .where(*clauses, _records.pk > bindparam("after"))
        .order_by(_records.pk)
        .limit(bindparam("size"))
    )


def record_batches(
    conn: Connection,
    clauses: Sequence[ColumnElement[bool]],
    *,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    after: int = -1,
    upto: int | None = None,
    cells: bool = False,
    tuples: bool = False,
) -> Iterator[Sequence[Any]]:
    """Matching records (pk in (after, upto]) as raw rows, in batches ordered by pk (keyset pagination).

    With ``cells`` the values column of each row is ``cells_json`` instead of ``values_json``. With
    ``tuples`` the rows are the driver's own tuples, not SQLAlchemy rows (a few microseconds less per
    row; every selected column is already plain text or an integer, so there is nothing to convert).
    """
    if upto is not None:
        clauses = [*clauses, _records.pk <= upto]
    statement = _raw_select(conn.dialect.name, clauses, cells=cells)
    yield from _keyset(conn, statement, after=after, limit=limit, batch_size=batch_size, tuples=tuples)


def _keyset(
    conn: Connection, statement: Any, *, after: Any, limit: int | None, batch_size: int, tuples: bool = False
) -> Iterator[Sequence[Any]]:
    """Run a statement with ``after``/``size`` parameters page by page; the first column is the key."""
    remaining = limit
    while remaining is None or remaining > 0:
        size = batch_size if remaining is None else min(batch_size, remaining)
        result = conn.execute(statement, {"after": after, "size": size})
        if tuples:
            rows = result.cursor.fetchall()
            result.close()
        else:
            rows = result.all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]
        if remaining is not None:
            remaining -= len(rows)
        if len(rows) < size:
            return


def chunk_bounds(
    conn: Connection, clauses: Sequence[ColumnElement[bool]], *, after: int, size: int
) -> int | None:
    """The pk of the ``size``-th matching record after ``after`` (None when fewer remain)."""
    query = (
        select(_records.pk)
        .where(*clauses, _records.pk > after)
        .order_by(_records.pk)
        .offset(size - 1)
        .limit(1)
    )
    found = conn.execute(query).scalar()
    return int(found) if found is not None else None


def last_pk(conn: Connection, clauses: Sequence[ColumnElement[bool]]) -> int:
    """The highest matching pk (0 when nothing matches)."""
    return int(conn.execute(select(func.coalesce(func.max(_records.pk), 0)).where(*clauses)).scalar_one())


def category_map(conn: Connection, pks: Sequence[int]) -> dict[int, list[str]]:
    """Record pk -> its category ids in assignment order, for one batch."""
    result: dict[int, list[str]] = {}
    query = (
        select(_assignments.record_pk, _assignments.category_id)
        .where(_assignments.record_pk.in_(bindparam("pks", expanding=True)))
        .order_by(_assignments.record_pk, _assignments.sort_order, _assignments.category_id)
    )
    for pk, category_id in conn.execute(query, {"pks": list(pks)}):
        result.setdefault(pk, []).append(category_id)
    return result


def tombstone_batches(
    conn: Connection,
    clauses: Sequence[ColumnElement[bool]],
    *,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[Sequence[Any]]:
    """Matching tombstones as (record_id, parent_id, schema_id) rows, in batches by record id."""
    query = (
        select(_tombstones.record_id, _tombstones.parent_id, _tombstones.schema_id)
        .where(*clauses, _tombstones.record_id > bindparam("after"))
        .order_by(_tombstones.record_id)
        .limit(bindparam("size"))
    )
    yield from _keyset(conn, query, after="", limit=limit, batch_size=batch_size)
