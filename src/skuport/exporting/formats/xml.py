"""XML: ``<records>`` holding one ``<record>`` per record, one child element per non-empty cell.

Element names are the column headers made valid (see :func:`xml_name`); a scoped column of an export
without a dimensionScope is ``<alias dim-x="seg-y">``; when the name had to change, the original header
is kept in a ``name`` attribute. Text is escaped; characters XML 1.0 cannot carry are dropped; lists are
``<value>`` children; empty cells are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skuport.exporting.conventions import number_text
from skuport.exporting.formats.base import (
    ColumnValues,
    FileWriter,
    FormatBase,
    frame_lines,
    xml_name,
    xml_text,
)
from skuport.exporting.plan import Column, Kind

if TYPE_CHECKING:
    import polars as pl

_XML_DROPPED = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
"""Characters XML 1.0 cannot carry, as a polars (Rust) pattern; surrogates cannot occur in UTF-8 text."""
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;"}
"""What :func:`xml_text` escapes, and how."""


def _tags(column: Column) -> tuple[str, str]:
    base = column.header.split("[", 1)[0] if column.scope else column.header
    name = xml_name(base)
    attrs = "".join(f' {xml_name(dim)}="{xml_text(seg)}"' for dim, seg in column.scope.items())
    if name != base:
        attrs += f' name="{xml_text(base)}"'
    return f"<{name}{attrs}>", f"</{name}>"


def _text_expr(text: pl.Expr) -> pl.Expr:
    """``text`` escaped as :func:`xml_text` escapes it; null stays null."""
    cleaned = text.str.replace_all(_XML_DROPPED, "")
    return cleaned.str.replace_many(list(_XML_ESCAPES), list(_XML_ESCAPES.values()))


class XmlWriter(FileWriter):
    """The declaration and root element, a line per record, the root's end tag."""

    def open(self) -> bytes:
        """Declaration and the root element."""
        return b'<?xml version="1.0" encoding="UTF-8"?>\n<records>\n'

    def encode(self, rows: list[list[Any]]) -> bytes:
        """One ``<record>`` element per row."""
        plan = [(*_tags(c), c.kind) for c in self.columns]
        text, date, number, boolean = Kind.TEXT, Kind.DATE, Kind.NUMBER, Kind.BOOLEAN
        parts: list[str] = []
        add = parts.append
        for row in rows:
            add("<record>")
            for (open_tag, close_tag, kind), value in zip(plan, row, strict=True):
                if value is None:
                    continue
                if kind is text or kind is date:
                    add(open_tag + xml_text(value if type(value) is str else str(value)) + close_tag)
                elif kind is number:
                    add(f"{open_tag}{number_text(value)}{close_tag}")
                elif kind is boolean:
                    add(open_tag + ("true" if value else "false") + close_tag)
                else:
                    items = value if isinstance(value, list) else [value]
                    add(open_tag + "".join(f"<value>{xml_text(str(v))}</value>" for v in items) + close_tag)
            add("</record>\n")
        return "".join(parts).encode("utf-8", "replace")

    def encode_frame(self, frame: pl.DataFrame) -> bytes:
        """The rendered ``<record>`` lines."""
        return frame_lines(frame, separator="\n")

    def close(self) -> bytes:
        """Close the root element."""
        return b"</records>\n"


class XmlFormat(FormatBase):
    """Well-formed UTF-8 XML."""

    name = "xml"
    content_type = "application/xml"
    extension = "xml"
    renders_frames = True
    writer_class = XmlWriter

    def frame_exprs(self, values: ColumnValues) -> list[pl.Expr]:
        """Each row as its ``<record>`` element (a null cell leaves its element out)."""
        import polars as pl

        parts: list[pl.Expr] = [pl.lit("<record>")]
        for column, value in values:
            open_tag, close_tag = _tags(column)
            if column.kind == Kind.LIST:
                body = value.list.eval(
                    pl.concat_str(pl.lit("<value>"), _text_expr(pl.element()), pl.lit("</value>"))
                ).list.join("")
            elif column.kind in (Kind.TEXT, Kind.DATE):
                body = _text_expr(value)
            else:
                body = value
            parts.append(pl.concat_str(pl.lit(open_tag), body, pl.lit(close_tag)))
        parts.append(pl.lit("</record>"))
        return [pl.concat_str(parts, ignore_nulls=True).alias("line")]
