"""The frame engine's encoder: a batch of records rendered by polars (compiled code) instead of row by row.

The row engine (:meth:`ColumnPlan.flatten` then the format's :meth:`FileWriter.write`) can write every
export. This engine writes the large, common case up to twice as fast (figures in ``bench/README.md``)
and must write the very same bytes (before gzip): tests run both engines on the same tricky data and
compare the files.

Per batch of raw rows it

1. decodes every record's ``cells_json`` once, into a struct typed by the plan: each leaf read as its
   JSON text (so numbers and booleans keep the exact form they were stored in), lists as lists of text;
2. takes each column's cell: the first present of the plan's cells keys (the most specific scope of the
   ``dimensionScope``, then the global value), or the one cell of an unscoped column;
3. evaluates the format's frame rendering (:meth:`Format.frame_exprs`, in the format's module) over
   them; the format's writer turns the result into bytes (:meth:`FileWriter.write_frame`).

Nothing here knows a format by name. :func:`refusal` says what it does not cover (the row engine runs
instead): formats without a frame rendering (xlsx), the completeness include (computed by the records
service), an attribute alias whose data type differs between schemas, repeated headers in a format
whose headers are keys, and a file of constants only (a frame of literals has one row, not one per
record).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
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
    ) -> Iterator[Sequence[Any]]:
        """The raw rows an encoder renders (see :func:`skuport.exporting.select.record_batches`): cells,
        driver tuples, and timestamps as stored, formatted by polars a whole batch at once (cheaper than
        by the database, row by row)."""
        return selection.record_batches(
            conn,
            clauses,
            limit=limit,
            after=after,
            upto=upto,
            batch_size=selection.COLUMNAR_BATCH_SIZE,
            cells=True,
            tuples=True,
            iso_times=False,
        )

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

    def frame(
        self, rows: Sequence[Sequence[Any]], categories: Mapping[int, list[str]] | None
    ) -> pl.DataFrame:
        """The batch as a frame: the fixed columns, the decoded cells and the categories if asked."""
        import polars as pl

        columns = list(zip(*rows, strict=True)) if rows else [()] * (RAW_VALUES + 3)
        data: dict[str, pl.Series] = {
            name: pl.Series(name, columns[index], dtype=pl.String) for name, index in self.plan.fixed_sources
        }
        cells = columns[RAW_VALUES]
        # Decoding needs ~12 KB per record while it runs (the decoded struct is far smaller): slices
        # keep that transient small; rendering and writing then run once over the whole batch.
        parts = [
            pl.Series("cells", cells[i : i + DECODE_SLICE], dtype=pl.String).str.json_decode(self._dtype)
            for i in range(0, len(cells), DECODE_SLICE)
        ] or [pl.Series("cells", [], dtype=pl.String).str.json_decode(self._dtype)]
        decoded = pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]
        data["cells"] = decoded
        for (alias, key), name in self._numbers.items():
            data[name] = _exact_numbers(decoded.struct.field(alias).struct.field(key)).alias(name)
        if self.plan.categories_column:
            found = categories or {}
            data["categories"] = pl.Series(
                "categories", [found.get(pk, []) for pk in columns[0]], dtype=pl.List(pl.String)
            )
        return pl.DataFrame(data)

    def render(
        self, rows: Sequence[Sequence[Any]], categories: Mapping[int, list[str]] | None = None
    ) -> pl.DataFrame:
        """The batch rendered for the format's writer (:meth:`FileWriter.write_frame`)."""
        return self.frame(rows, categories).select(self._exprs)

    def write(
        self, writer: FileWriter, rows: Sequence[Sequence[Any]], categories: Mapping[int, list[str]] | None
    ) -> bytes:
        """The batch's bytes through ``writer``: rendered by polars, or by the row engine (the same bytes)
        where polars refuses it.

        polars refuses a value whose JSON type the plan did not expect (e.g. an object where text
        belongs); validation never stores one, but a feed must not fail over a record the row engine
        can write.
        """
        try:
            return writer.write_frame(self.render(rows, categories))
        except Exception as exc:
            if not is_engine_error(exc):
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


__all__ = ["ColumnarEncoder", "is_engine_error", "refusal"]
