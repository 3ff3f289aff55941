"""The frame engine's encoder: a batch of records rendered by polars (compiled code) instead of row by row.

The row engine (:meth:`ColumnPlan.flatten` then the format's :meth:`FileWriter.write`) can write every
export. This engine writes the large, common case up to twice as fast (figures in ``bench/README.md``)
and must write the very same bytes (before gzip): tests run both engines on the same tricky data and
compare the files.

Per batch it

1. reads the records as one block of aggregates (:func:`skuport.exporting.select.record_blocks`: the
   fixed columns as JSON arrays, the positional ``cells_text`` of every record joined), so that the
   database works while the GIL is free and Python handles a few objects per batch, not per record;
2. splits each record's positional text (``skuport.records.cells``) into a struct typed by the plan, by
   its schema's slots: every leaf as text (numbers already in the form exports write), lists as lists of
   text. A batch holding a record without a positional text is read again as rows and its ``cells_json``
   decoded instead (numbers made exact by :func:`_exact_numbers`);
3. takes each column's cell: the first present of the plan's cells keys (the most specific scope of the
   ``dimensionScope``, then the global value), or the one cell of an unscoped column;
4. evaluates the format's frame rendering (:meth:`Format.frame_exprs`, in the format's module) over
   them; the format's writer turns the result into bytes (:meth:`FileWriter.write_frame`).

Nothing here knows a format by name. :func:`refusal` says what it does not cover (the row engine runs
instead): formats without a frame rendering (xlsx), the completeness include (computed by the records
service), an attribute alias whose data type differs between schemas, repeated headers in a format
whose headers are keys, and a file of constants only (a frame of literals has one row, not one per
record).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skuport.exporting import select as selection
from skuport.exporting.conventions import DEFAULT_TEXT, DELETED_COLUMN, number_text
from skuport.exporting.formats import Format
from skuport.exporting.formats.base import FileWriter
from skuport.exporting.plan import (
    CATEGORIES_COLUMN,
    RAW_INDEX,
    RAW_TIMES,
    RAW_VALUES,
    Column,
    ColumnPlan,
    Kind,
    value_text,
)
from skuport.exporting.select import iso_time, iso_time_expr
from skuport.records.cells import (
    ELEMENT_SEPARATOR,
    EMPTY,
    RECORD_SEPARATOR,
    SLOT_SEPARATOR,
    Slots,
    load_slots,
)

if TYPE_CHECKING:
    import polars as pl
    from sqlalchemy import ColumnElement, Connection

log = logging.getLogger(__name__)

# polars is imported when an encoder is made: the ~45 MB it maps stay out of processes that never use it.

DECODE_SLICE = 250
"""Records decoded from JSON at a time (see :meth:`ColumnarEncoder.frame`)."""


def _exact_numbers(texts: pl.Series) -> pl.Series:
    """Number texts as :func:`skuport.exporting.conventions.number_text` writes them.

    polars writes a decoded number as the shortest digits that read back, as Python does, but where two
    such forms exist (some 16-17 digit fractions, e.g. 83050364053.078125) it may pick the other one. Such
    texts are long and rare: they are rewritten by the row engine's function.
    """
    import polars as pl

    risky = texts.str.contains(".", literal=True) & (texts.str.len_bytes() >= 17)
    if not risky.any():
        return texts
    at = risky.arg_true()
    exact = [number_text(float(text)) for text in texts.gather(at).to_list()]
    return texts.scatter(at, pl.Series(exact, dtype=pl.String))


@dataclass(frozen=True)
class Batch:
    """Records to encode: a block of positional ``cells_text`` with the slots (schema id -> slots) to read
    it by, or raw rows carrying ``cells_json`` (no slots)."""

    rows: Sequence[Sequence[Any]] = ()
    block: selection.Block | None = None
    slots: Mapping[str, Slots] | None = None

    def __len__(self) -> int:
        return self.block.count if self.block is not None else len(self.rows)

    def pks(self) -> list[int]:
        """The records' pks, in order."""
        if self.block is not None:
            return [int(pk) for pk in json.loads(self.block.arrays["pk"])]
        return [row[0] for row in self.rows]


_BLOCK_NAMES = {
    "pk": "pk",
    "id": "id",
    "parent_id": "parentId",
    "schema_id": "schemaId",
    "lifecycle_state_id": "lifecycleStateId",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
}
"""A block's columns (:data:`~skuport.exporting.select.BLOCK_COLUMNS`) by the plan's names of them."""

_CellSource = tuple[Column, str, tuple[str, ...]]
"""An attribute column, its alias and its cells keys, as :meth:`ColumnPlan.cell_sources` lists them."""


def _cells_dtype(sources: Sequence[_CellSource]) -> pl.Struct:
    """The type ``cells_json`` decodes to: per alias, each cells key as text (a list of text for lists)."""
    import polars as pl

    struct: dict[str, dict[str, pl.DataType]] = {}
    for column, alias, keys in sources:
        leaf: pl.DataType = pl.List(pl.String()) if column.kind == Kind.LIST else pl.String()
        fields = struct.setdefault(alias, {})
        for key in keys:
            fields[key] = leaf
    return pl.Struct({alias: pl.Struct(fields) for alias, fields in struct.items()})


class ColumnarEncoder:
    """Renders batches of raw rows (as :meth:`batches` reads them) for one format."""

    def __init__(self, plan: ColumnPlan, fmt: Format) -> None:
        import polars as pl

        if not fmt.renders_frames:
            raise ValueError(f"{fmt.name} has no frame rendering")
        self.plan = plan
        self.format = fmt
        sources = plan.cell_sources()
        self._dtype = _cells_dtype(sources)
        # Every output column as (column, expression of its value: text, list of text or null).
        values: list[tuple[Column, pl.Expr]] = []
        for name, _index in plan.fixed_sources:
            value = iso_time_expr(pl.col(name)) if name in RAW_TIMES else pl.col(name)
            values.append((plan.column_named(name), value))
        if plan.deleted_column:
            values.append((plan.column_named(DELETED_COLUMN), pl.lit("false")))
        # Number leaves (alias, cells key) -> frame column holding them, made exact by _exact_numbers.
        self._numbers: dict[tuple[str, str], str] = {}
        # The cells struct's expression per set of slots (see _split_one).
        self._cells_exprs: dict[tuple[frozenset[tuple[tuple[str, str], int]], bool], pl.Expr] = {}
        values += self._attribute_values(sources)
        # Constants as the JSON text the cells hold (the format renders them by their kind).
        values += [(c, pl.lit(value_text(c.value, DEFAULT_TEXT), dtype=pl.String)) for c in plan.constants]
        if plan.categories_column:
            values.append((plan.column_named(CATEGORIES_COLUMN), pl.col("categories")))
        if plan.permutation is not None:
            values = [values[i] for i in plan.permutation]
        if len(values) != len(plan.columns):
            raise ValueError("the columnar engine cannot write this column plan")
        self._exprs = fmt.frame_exprs(values)

    @staticmethod
    def batches(
        conn: Connection,
        clauses: Sequence[ColumnElement[bool]],
        *,
        limit: int | None = None,
        after: int = -1,
        upto: int | None = None,
    ) -> Iterator[Batch]:
        """The batches an encoder renders: blocks of positional ``cells_text``
        (:func:`skuport.exporting.select.record_blocks`, timestamps as stored: polars formats a whole batch
        at once) with the slots to read them by; a block holding a record without a positional text is
        read again as raw rows with ``cells_json``."""
        slots = load_slots(conn)
        for block in selection.record_blocks(
            conn, clauses, limit=limit, after=after, upto=upto, batch_size=selection.COLUMNAR_BATCH_SIZE
        ):
            if block.complete:
                yield Batch(block=block, slots=slots)
                continue
            again = selection.record_batches(
                conn,
                clauses,
                after=block.first_pk - 1,
                upto=block.last_pk,
                batch_size=block.count,
                cells="json",
                tuples=True,
                iso_times=False,
            )
            yield Batch(rows=next(again))

    def _attribute_values(self, sources: Sequence[_CellSource]) -> list[tuple[Column, pl.Expr]]:
        """Each attribute column's value: the first present of its cells (numbers from their exact column)."""
        import polars as pl

        cells = pl.col("cells")
        values: list[tuple[Column, pl.Expr]] = []
        for column, alias, keys in sources:
            candidates = []
            for key in keys:
                if column.kind == Kind.NUMBER:
                    name = self._numbers.setdefault((alias, key), f"number{len(self._numbers)}")
                    candidates.append(pl.col(name))
                else:
                    candidates.append(cells.struct.field(alias).struct.field(key))
            value = candidates[0] if len(candidates) == 1 else pl.coalesce(candidates)
            if column.labels:  # valueLabels: an option's label instead of its code
                old, new = list(column.labels), list(column.labels.values())
                value = (
                    value.list.eval(pl.element().replace(old, new))
                    if column.kind == Kind.LIST
                    else value.replace(old, new)
                )
            if column.default is not None:
                value = pl.coalesce([value, _literal(column)])
            values.append((column, value))
        return values

    def frame(self, batch: Batch, categories: Mapping[int, list[str]] | None) -> pl.DataFrame:
        """The batch as a frame: the fixed columns, the cells and the categories if asked."""
        import polars as pl

        if batch.block is not None:
            fixed, schema_ids, order = self._block_columns(batch.block)
            texts = pl.Series(batch.block.cells.split(RECORD_SEPARATOR), dtype=pl.String)
            if order is not None:
                texts = texts.gather(order)
            cells = self._split(texts, schema_ids, batch.slots or {})
            numbers = {name: self._leaf(cells, key) for key, name in self._numbers.items()}
            pks: Sequence[int] = fixed.pop("pk").to_list()
        else:
            columns = list(zip(*batch.rows, strict=True)) if batch.rows else [()] * (RAW_VALUES + 3)
            fixed = {
                name: pl.Series(name, columns[index], dtype=pl.String)
                for name, index in self.plan.fixed_sources
            }
            cells = self._decoded(columns[RAW_VALUES])
            numbers = {name: _exact_numbers(self._leaf(cells, key)) for key, name in self._numbers.items()}
            pks = columns[0]
        data: dict[str, pl.Series] = {**fixed, "cells": cells}
        data |= {name: series.alias(name) for name, series in numbers.items()}
        if self.plan.categories_column:
            found = categories or {}
            data["categories"] = pl.Series(
                "categories", [found.get(pk, []) for pk in pks], dtype=pl.List(pl.String)
            )
        return pl.DataFrame(data)

    def _block_columns(
        self, block: selection.Block
    ) -> tuple[dict[str, pl.Series], pl.Series, pl.Series | None]:
        """The fixed columns the plan writes (and ``pk``) of a block in pk order, its records' schema ids,
        and the order that sorts the block's records by pk (None: they are)."""
        import polars as pl

        wanted = {name for name, _index in self.plan.fixed_sources}
        names = {column: _BLOCK_NAMES[column] for column in selection.BLOCK_COLUMNS}
        read = [c for c, name in names.items() if name in wanted or c in ("pk", "schema_id")]
        arrays = pl.DataFrame({c: [block.arrays[c]] for c in read}).select(
            pl.col(c).str.json_decode(pl.List(pl.Int64 if c == "pk" else pl.String)) for c in read
        )
        frame = arrays.explode(read).rename({c: names[c] for c in read})
        # SQLite aggregates in the subquery's order without promising it; every aggregate of the block
        # follows the same order, so sorting by pk puts the cells texts in order too.
        order = None if frame["pk"].is_sorted() else frame["pk"].arg_sort()
        if order is not None:
            frame = frame[order]
        fixed = {name: frame[name] for name in ["pk", *(n for n, _i in self.plan.fixed_sources)]}
        return fixed, frame["schemaId"], order

    @staticmethod
    def _leaf(cells: pl.Series, key: tuple[str, str]) -> pl.Series:
        return cells.struct.field(key[0]).struct.field(key[1])

    def _decoded(self, texts: Sequence[str]) -> pl.Series:
        """``cells_json`` texts decoded into the plan's struct."""
        import polars as pl

        # Decoding needs ~12 KB per record while it runs (the decoded struct is far smaller): slices
        # keep that transient small; rendering and writing then run once over the whole batch.
        parts = [
            pl.Series("cells", texts[i : i + DECODE_SLICE], dtype=pl.String).str.json_decode(self._dtype)
            for i in range(0, len(texts), DECODE_SLICE)
        ] or [pl.Series("cells", [], dtype=pl.String).str.json_decode(self._dtype)]
        return pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]

    def _split(self, texts: pl.Series, schema_ids: pl.Series, slots: Mapping[str, Slots]) -> pl.Series:
        """Positional ``cells_text`` texts as the plan's struct; each schema's records by its own slots."""
        import polars as pl

        schemas = schema_ids.unique(maintain_order=True).to_list()
        if len(schemas) <= 1:
            return self._split_one(texts, slots.get(schemas[0] if schemas else "", {}))
        positions, parts = [], []
        for schema_id in schemas:
            where = (schema_ids == schema_id).arg_true()
            positions.append(where)
            parts.append(self._split_one(texts.gather(where), slots.get(schema_id, {})))
        return pl.concat(parts).gather(pl.concat(positions).arg_sort())

    def _split_one(self, texts: pl.Series, slots: Slots) -> pl.Series:
        """Positional texts of one schema's records as the plan's struct."""

        count = max(slots.values(), default=0) + 1
        # Present empty cells are rare: a batch without one skips their test.
        empties = bool(texts.str.contains(EMPTY, literal=True).any())
        key = (frozenset(slots.items()), empties)
        if key not in self._cells_exprs:
            self._cells_exprs[key] = self._cells_expr(slots, empties=empties).alias("cells")
        # Split eagerly, once (a lazy query would split once per field), then build the struct outside
        # the GIL.
        fields = texts.str.split_exact(SLOT_SEPARATOR, count - 1).struct.unnest()
        return fields.select(self._cells_exprs[key])["cells"]

    def _cells_expr(self, slots: Slots, *, empties: bool) -> pl.Expr:
        """The plan's struct of cells, from the unnested fields of a split positional text (``empties``:
        some cells may be present but empty)."""
        import polars as pl

        aliases = []
        for alias in self._dtype.fields:
            leaves = []
            for leaf in alias.dtype.fields:  # type: ignore[union-attr]
                slot = slots.get((alias.name, leaf.name))
                text = pl.lit(None, dtype=pl.String) if slot is None else pl.col(f"field_{slot}")
                empty = pl.lit([], dtype=leaf.dtype) if leaf.dtype == pl.List(pl.String) else pl.lit("")
                value = text.str.split(ELEMENT_SEPARATOR) if leaf.dtype == pl.List(pl.String) else text
                absent = pl.when(text == "").then(None)
                cell = (absent.when(text == EMPTY).then(empty) if empties else absent).otherwise(value)
                leaves.append(cell.alias(leaf.name))
            aliases.append(pl.struct(leaves).alias(alias.name))
        return pl.struct(aliases)

    def render(self, batch: Batch, categories: Mapping[int, list[str]] | None = None) -> pl.DataFrame:
        """The batch rendered for the format's writer (:meth:`FileWriter.write_frame`)."""
        return self.frame(batch, categories).select(self._exprs)

    def write(self, writer: FileWriter, batch: Batch, categories: Mapping[int, list[str]] | None) -> bytes:
        """The batch's bytes through ``writer``: rendered by polars, or by the row engine (the same bytes)
        where polars refuses it.

        polars refuses a ``cells_json`` value whose JSON type the plan did not expect (e.g. an object
        where text belongs); validation never stores one, but a feed must not fail over a record the row
        engine can write. A positional text holds text only: an error there is not the data's, and
        stops the export.
        """
        rows = batch.rows
        try:
            return writer.write_frame(self.render(batch, categories))
        except Exception as exc:
            if not is_engine_error(exc) or batch.block is not None:
                raise
            log.warning(
                "the frame engine could not encode records %s..%s (%s); the row engine writes them",
                rows[0][1],
                rows[-1][1],
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
            times = [RAW_INDEX[name] for name in RAW_TIMES]
            iso_rows = [tuple(iso_time(v) if i in times else v for i, v in enumerate(r)) for r in rows]
            return writer.write(self.plan.flatten(iso_rows, categories, text=self.format.text_form))


def _literal(column: Column) -> pl.Expr:
    """A column's default as the cells hold it: JSON text, or a list of text."""
    import polars as pl

    if column.kind == Kind.LIST:
        return pl.lit(pl.Series([list(column.default)], dtype=pl.List(pl.String)))
    return pl.lit(value_text(column.default, DEFAULT_TEXT), dtype=pl.String)


def is_engine_error(exc: BaseException) -> bool:
    """Whether ``exc`` is polars refusing the data (the batch can go to the row engine instead)."""
    if "polars" not in sys.modules:
        return False
    import polars.exceptions

    return isinstance(exc, polars.exceptions.PolarsError)


def refusal(plan: ColumnPlan, fmt: Format, *, kinds_by_alias: Mapping[str, set[str]]) -> str | None:
    """Why the frame engine cannot write this export (None: it can; see the module doc).

    ``kinds_by_alias`` maps each attribute alias to the column kinds its attributes have across schemas.
    """
    if not fmt.renders_frames:
        return f"{fmt.name} has no frame rendering"
    if plan.completeness is not None:
        return "the completeness column needs each record's values as a list"
    if not (plan.fixed or plan.attribute_columns or plan.categories_column):
        return "no column reads the records (constants only)"
    mixed = [c.alias for c in plan.attribute_columns if len(kinds_by_alias.get(c.alias or "", ())) > 1]
    if mixed:
        return f"attribute {mixed[0]} has different types in different schemas"
    if fmt.unique_headers and len(set(plan.headers)) != len(plan.headers):
        return f"two columns have the same header, which {fmt.name} keys cannot"
    return None


__all__ = ["Batch", "ColumnarEncoder", "is_engine_error", "refusal"]
