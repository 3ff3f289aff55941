"""The columnar engine: a batch of records encoded by polars (compiled code) instead of row by row in Python.

The row engine (:meth:`ColumnPlan.flatten` then :meth:`Format.encode`) can write every export. This
engine writes the large, common case up to twice as fast (figures in ``bench/README.md``) and must
write the very same bytes (before gzip): tests run both engines on the same tricky data and compare the files.

Per batch of raw rows it

1. decodes every record's ``cells_json`` once, into a struct typed by the plan: each leaf read as its
   JSON text (so numbers and booleans keep the exact form they were stored in), lists as lists of text;
2. takes each column's cell: the first present of the plan's cells keys (the most specific scope of the
   ``dimensionScope``, then the global value), or the one cell of an unscoped column;
3. renders the cells for the format (CSV by polars' CSV writer, JSON string escaping as orjson does it,
   XML escaping as :func:`skuport.exporting.formats.base.xml_text`) and writes the batch.

:func:`refusal` says what it does not cover (the row engine runs instead):
xlsx (a workbook writer), the completeness include (computed by the records service), an attribute
alias whose data type differs between schemas, and JSON objects whose keys would repeat.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from skuport.exporting.conventions import DELETED_COLUMN, LIST_SEPARATOR, number_text
from skuport.exporting.plan import CATEGORIES_COLUMN, RAW_VALUES, Column, ColumnPlan, Kind

if TYPE_CHECKING:
    import polars as pl

FORMATS = frozenset({"csv", "json", "jsonl", "xml"})
"""Formats this engine writes. (polars is imported when an encoder is made: the ~45 MB it maps stay out of
processes that never use it.)"""

DECODE_SLICE = 250
"""Records decoded from JSON at a time (see :meth:`ColumnarEncoder.frame`)."""

_JSON_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_JSON_ESCAPES |= {chr(c): f"\\u{c:04x}" for c in range(0x20) if chr(c) not in _JSON_ESCAPES}
_XML_DROPPED = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
"""Characters XML 1.0 cannot carry (surrogates cannot occur in UTF-8 text)."""
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;"}
_LIST_ESCAPES = {"\\": "\\\\", LIST_SEPARATOR: "\\" + LIST_SEPARATOR}


def _json_string(text: pl.Expr) -> pl.Expr:
    """A JSON string literal of ``text``, escaped exactly as orjson escapes it; null stays null."""
    import polars as pl

    escaped = text.str.replace_many(list(_JSON_ESCAPES), list(_JSON_ESCAPES.values()))
    return pl.concat_str(pl.lit('"'), escaped, pl.lit('"'))


def _xml_text(text: pl.Expr) -> pl.Expr:
    """``text`` escaped for XML content, forbidden characters dropped; null stays null."""
    cleaned = text.str.replace_all(_XML_DROPPED, "")
    return cleaned.str.replace_many(list(_XML_ESCAPES), list(_XML_ESCAPES.values()))


def _present(text: pl.Expr) -> pl.Expr:
    """Null for the empty string: Python's csv module writes both as an empty field, polars quotes ''."""
    import polars as pl

    return pl.when(text != "").then(text)


def _exact_numbers(texts: pl.Series) -> pl.Series:
    """Number texts as :func:`skuport.exporting.plan.number_text` writes them.

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


class ColumnarEncoder:
    """Encodes batches of raw rows (as :mod:`skuport.exporting.select` reads them) into one format."""

    def __init__(self, plan: ColumnPlan, format_name: str) -> None:
        import polars as pl

        if format_name not in FORMATS:
            raise ValueError(f"the columnar engine does not write {format_name}")
        self.plan = plan
        self.format_name = format_name
        sources = plan.cell_sources()
        struct: dict[str, dict[str, pl.DataType]] = {}
        for column, alias, keys in sources:
            leaf: pl.DataType = pl.List(pl.String()) if column.kind == Kind.LIST else pl.String()
            fields = struct.setdefault(alias, {})
            for key in keys:
                fields[key] = leaf
        self._dtype = pl.Struct({alias: pl.Struct(fields) for alias, fields in struct.items()})
        cells = pl.col("cells")
        # Every output column as (column, expression of its value: text, list of text or null).
        values: list[tuple[Column, pl.Expr]] = []
        by_key = {c.key: c for c in plan.columns}
        for name, _index in plan.fixed_sources:
            values.append((by_key[name], pl.col(name)))
        if plan.deleted_column:
            values.append((by_key[DELETED_COLUMN], pl.lit("false")))
        self._numbers: dict[tuple[str, str], str] = {}
        # Number leaves (alias, cells key) -> frame column holding them, made exact by _exact_numbers.
        for column, alias, keys in sources:
            candidates = []
            for key in keys:
                if column.kind == Kind.NUMBER:
                    name = self._numbers.setdefault((alias, key), f"number{len(self._numbers)}")
                    candidates.append(pl.col(name))
                else:
                    candidates.append(cells.struct.field(alias).struct.field(key))
            values.append((column, candidates[0] if len(candidates) == 1 else pl.coalesce(candidates)))
        if plan.categories_column:
            values.append((by_key[CATEGORIES_COLUMN], pl.col("categories")))
        if plan.permutation is not None:
            values = [values[i] for i in plan.permutation]
        if len(values) != len(plan.columns):
            raise ValueError("the columnar engine cannot write this column plan")
        render: Callable[[Sequence[tuple[Column, pl.Expr]]], list[pl.Expr]] = {
            "csv": self._csv,
            "json": self._json_lines,
            "jsonl": self._json_lines,
            "xml": self._xml,
        }[format_name]
        self._exprs = render(values)

    # -- rendering, one method per format -------------------------------------------------------------

    @staticmethod
    def _csv(values: Sequence[tuple[Column, pl.Expr]]) -> list[pl.Expr]:
        import polars as pl

        exprs = []
        for i, (column, value) in enumerate(values):
            if column.kind == Kind.LIST:
                value = value.list.eval(
                    pl.element().str.replace_many(list(_LIST_ESCAPES), list(_LIST_ESCAPES.values()))
                ).list.join(LIST_SEPARATOR)
            # Only a joined list can be empty text: ids and timestamps never are, and validation drops
            # empty values (skuport.records.values.is_empty). Checking every column costs 8 % more.
            exprs.append((_present(value) if column.kind == Kind.LIST else value).alias(f"c{i}"))
        return exprs

    @staticmethod
    def _json_lines(values: Sequence[tuple[Column, pl.Expr]]) -> list[pl.Expr]:
        import polars as pl

        parts: list[pl.Expr] = []
        for i, (column, value) in enumerate(values):
            key = orjson.dumps(column.header).decode()
            parts.append(pl.lit(("{" if i == 0 else ",") + key + ":"))
            if column.kind == Kind.LIST:
                items = value.list.eval(_json_string(pl.element())).list.join(",")
                rendered = pl.concat_str(pl.lit("["), items, pl.lit("]"))
            elif column.kind == Kind.TEXT:
                rendered = _json_string(value)
            else:  # numbers and booleans: their JSON text as stored
                rendered = value
            parts.append(rendered.fill_null("null"))
        parts.append(pl.lit("}"))
        return [pl.concat_str(parts).alias("line")]

    @staticmethod
    def _xml(values: Sequence[tuple[Column, pl.Expr]]) -> list[pl.Expr]:
        import polars as pl

        from skuport.exporting.formats.xml import _tags

        parts: list[pl.Expr] = [pl.lit("<record>")]
        for column, value in values:
            open_tag, close_tag = _tags(column)
            if column.kind == Kind.LIST:
                body = value.list.eval(
                    pl.concat_str(pl.lit("<value>"), _xml_text(pl.element()), pl.lit("</value>"))
                ).list.join("")
            elif column.kind == Kind.TEXT:
                body = _xml_text(value)
            else:
                body = value
            parts.append(pl.concat_str(pl.lit(open_tag), body, pl.lit(close_tag)))
        parts.append(pl.lit("</record>"))
        return [pl.concat_str(parts, ignore_nulls=True).alias("line")]

    # -- encoding -------------------------------------------------------------------------------------

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

    def encode(
        self,
        rows: Sequence[Sequence[Any]],
        categories: Mapping[int, list[str]] | None = None,
        *,
        first_row: int = 0,
    ) -> bytes:
        """The batch's bytes, exactly as the row engine writes them for this format."""
        if not rows:
            return b""
        out = self.frame(rows, categories).select(self._exprs)
        buffer = io.BytesIO()
        if self.format_name == "csv":
            out.write_csv(buffer, include_header=False, line_terminator="\r\n", quote_style="necessary")
            return buffer.getvalue()
        separator = ",\n" if self.format_name == "json" else "\n"
        out.write_csv(buffer, include_header=False, line_terminator=separator, quote_style="never")
        data = buffer.getvalue()
        if self.format_name == "json":
            return (b"\n" if first_row == 0 else b",\n") + data[: -len(separator)]
        return data


def is_engine_error(exc: BaseException) -> bool:
    """Whether ``exc`` is polars refusing the data (the batch can go to the row engine instead)."""
    if "polars" not in sys.modules:
        return False
    import polars.exceptions

    return isinstance(exc, polars.exceptions.PolarsError)


def refusal(plan: ColumnPlan, format_name: str, *, kinds_by_alias: Mapping[str, set[str]]) -> str | None:
    """Why the frame engine cannot write this export (None: it can; see the module doc).

    ``kinds_by_alias`` maps each attribute alias to the column kinds its attributes have across schemas.
    """
    if format_name not in FORMATS:
        return f"polars does not write {format_name}"
    if plan.completeness is not None:
        return "the completeness column needs each record's values as a list"
    mixed = [c.alias for c in plan.attribute_columns if len(kinds_by_alias.get(c.alias or "", ())) > 1]
    if mixed:
        return f"attribute {mixed[0]} has different types in different schemas"
    if format_name in ("json", "jsonl") and len(set(plan.headers)) != len(plan.headers):
        return "two columns have the same header, which JSON keys cannot"
    return None


__all__ = ["FORMATS", "ColumnarEncoder", "is_engine_error", "refusal"]
