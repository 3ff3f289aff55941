"""Selection: which records (and tombstones) an export holds, read as raw rows in keyset batches.

Rows are read with SQLAlchemy Core, not the ORM: (pk, id, parent_id, schema_id, lifecycle_state_id,
values_json, created_at, updated_at), timestamps already formatted by the database as
``2026-03-08T10:30:00.000Z`` (or, for a reader that formats a batch of them at once, as
:data:`PLAIN_TIME` text). Batches follow ``pk`` (stable order, each batch an index range scan).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Text,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.sql import Select

from skuport.records.cells import RECORD_SEPARATOR
from skuport.records.models import Record, RecordCategory, RecordTombstone

if TYPE_CHECKING:
    import polars as pl

BATCH_SIZE = 5000
"""Records per batch: large enough to amortise a query, small enough to keep memory flat."""
COLUMNAR_BATCH_SIZE = 1500
"""Records per batch of the columnar engine. Polars has a fixed cost per batch (about 1 ms to plan and
write), so larger batches are faster, while memory grows with the batch; 1,500 keeps every format under
150 MB peak RSS (bench/README.md)."""

_records = Record.__table__.c
_tombstones = RecordTombstone.__table__.c
_assignments = RecordCategory.__table__.c


PLAIN_TIME = "YYYY-MM-DD HH:MM:SS.ffffff"
"""A UTC timestamp as read with ``iso_times=False``: how SQLite stores it. Its ISO 8601 form, as files
and the API write it, is its date, ``T``, its time to the millisecond (cut, not rounded) and ``Z``: the
slices below, written once for SQL, Python and polars."""
_DATE = (0, 10)
_TIME = (11, 12)
"""(start, length) of the date and of the time to the millisecond in a PLAIN_TIME text."""


def time_text(column: Any, dialect: str, *, iso: bool = True) -> Any:
    """SQL giving a UTC timestamp column as text: ISO 8601 with milliseconds and Z, or as PLAIN_TIME.

    SQLite spends about 0.65 µs a row making the ISO form (bench/README.md): a reader formatting a whole
    batch at once (the frame engine, :func:`iso_time_expr`) reads the plain form, as stored, instead.
    """
    if dialect == "sqlite":
        # Stored as PLAIN_TIME; substr() cuts, where strftime's %f would round (and costs 0.8 µs more).
        stored = type_coerce(column, String)
        if not iso:
            return stored
        return (
            func.substr(stored, _DATE[0] + 1, _DATE[1])
            .op("||")(literal_column("'T'"))
            .op("||")(func.substr(stored, _TIME[0] + 1, _TIME[1]))
            .op("||")(literal_column("'Z'"))
        )
    if dialect == "postgresql":
        shape = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"' if iso else "YYYY-MM-DD HH24:MI:SS.US"
        return func.to_char(func.timezone("UTC", column), shape)
    return column


def iso_time(plain: str | None) -> str | None:
    """A PLAIN_TIME text in its ISO 8601 form (None stays None)."""
    if plain is None:
        return None
    return f"{plain[_DATE[0] : _DATE[0] + _DATE[1]]}T{plain[_TIME[0] : _TIME[0] + _TIME[1]]}Z"


def iso_time_expr(plain: pl.Expr) -> pl.Expr:
    """A polars expression of PLAIN_TIME texts in their ISO 8601 form."""
    import polars as pl

    return pl.concat_str(
        [plain.str.slice(*_DATE), pl.lit("T"), plain.str.slice(*_TIME), pl.lit("Z")], ignore_nulls=False
    )


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


_VALUES_COLUMNS = {"values": _records.values_json, "json": _records.cells_json, "text": _records.cells_text}
Values = Literal["values", "json", "text"]
"""Which stored form of the values raw rows carry: the list form, the cells or their positional text."""


def _raw_select(
    dialect: str, clauses: Sequence[ColumnElement[bool]], *, cells: Values = "values", iso_times: bool = True
) -> Select[Any]:
    return (
        select(
            _records.pk,
            _records.id,
            _records.parent_id,
            _records.schema_id,
            _records.lifecycle_state_id,
            _VALUES_COLUMNS[cells],
            time_text(_records.created_at, dialect, iso=iso_times).label("created_at"),
            time_text(_records.updated_at, dialect, iso=iso_times).label("updated_at"),
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
    cells: Values = "values",
    tuples: bool = False,
    iso_times: bool = True,
) -> Iterator[Sequence[Any]]:
    """Matching records (pk in (after, upto]) as raw rows, in batches ordered by pk (keyset pagination).

    ``cells`` says which stored form of the values each row carries (see :data:`Values`). Without
    ``iso_times`` the timestamps are PLAIN_TIME text, for the reader to format. With
    ``tuples`` the rows are the driver's own tuples, not SQLAlchemy rows (a few microseconds less per
    row; every selected column is already plain text or an integer, so there is nothing to convert).
    """
    if upto is not None:
        clauses = [*clauses, _records.pk <= upto]
    statement = _raw_select(conn.dialect.name, clauses, cells=cells, iso_times=iso_times)
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


def pk_range(after: int, upto: int | None) -> list[ColumnElement[bool]]:
    """WHERE clauses for the records with pk in (after, upto] (no upper bound when ``upto`` is None)."""
    clauses: list[ColumnElement[bool]] = [_records.pk > after]
    if upto is not None:
        clauses.append(_records.pk <= upto)
    return clauses


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
    after: str = "",
) -> Iterator[Sequence[Any]]:
    """Matching tombstones (record id > ``after``) as (record_id, parent_id, schema_id) rows, in batches by
    record id."""
    query = (
        select(_tombstones.record_id, _tombstones.parent_id, _tombstones.schema_id)
        .where(*clauses, _tombstones.record_id > bindparam("after"))
        .order_by(_tombstones.record_id)
        .limit(bindparam("size"))
    )
    yield from _keyset(conn, query, after=after, limit=limit, batch_size=batch_size)


BLOCK_COLUMNS = ("pk", "id", "parent_id", "schema_id", "lifecycle_state_id", "created_at", "updated_at")
"""The fixed columns of a :class:`Block`, each one JSON array (timestamps as stored, see PLAIN_TIME)."""


@dataclass(frozen=True)
class Block:
    """A batch of matching records read as one row of aggregates: a handful of driver objects per batch
    instead of eight per record, and the database's work done while the GIL is free.

    ``arrays`` holds each of :data:`BLOCK_COLUMNS` as one JSON array text in pk order; ``cells`` the
    records' positional ``cells_text`` joined by :data:`~skuport.records.cells.RECORD_SEPARATOR`.
    ``complete`` is False when a record has no positional text (its batch must be read again as rows).
    """

    count: int
    first_pk: int
    last_pk: int
    arrays: dict[str, str]
    cells: str
    complete: bool


def _block_select(dialect: str, clauses: Sequence[ColumnElement[bool]]) -> Select[Any]:
    page = _raw_select(dialect, clauses, cells="text", iso_times=False).subquery()
    c = page.c
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        arrays: list[Any] = [
            cast(func.json_agg(aggregate_order_by(c[name], c.pk)), Text) for name in BLOCK_COLUMNS
        ]
        cells = func.string_agg(c.cells_text, aggregate_order_by(func.chr(ord(RECORD_SEPARATOR)), c.pk))
    else:
        # SQLite aggregates a subquery's rows in its order (the arrays' pk order is checked by the reader).
        arrays = [func.json_group_array(c[name]) for name in BLOCK_COLUMNS]
        cells = func.group_concat(c.cells_text, func.char(ord(RECORD_SEPARATOR)))
    aggregates = [func.count(), func.count(c.cells_text), func.min(c.pk), func.max(c.pk), cells, *arrays]
    return select(*aggregates).select_from(page)


def record_blocks(
    conn: Connection,
    clauses: Sequence[ColumnElement[bool]],
    *,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    after: int = -1,
    upto: int | None = None,
) -> Iterator[Block]:
    """Matching records (pk in (after, upto]) as :class:`Block` batches ordered by pk (keyset)."""
    if upto is not None:
        clauses = [*clauses, _records.pk <= upto]
    statement = _block_select(conn.dialect.name, clauses)
    remaining = limit
    while remaining is None or remaining > 0:
        size = batch_size if remaining is None else min(batch_size, remaining)
        count, texts, first, last, cells, *arrays = conn.execute(
            statement, {"after": after, "size": size}
        ).one()
        if not count:
            return
        yield Block(
            count=count,
            first_pk=int(first),
            last_pk=int(last),
            arrays=dict(zip(BLOCK_COLUMNS, arrays, strict=True)),
            cells=cells or "",
            complete=texts == count,
        )
        after = int(last)
        if remaining is not None:
            remaining -= count
        if count < size:
            return
