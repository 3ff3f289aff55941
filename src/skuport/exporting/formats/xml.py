"""XML: ``<records>`` holding one ``<record>`` per record, one child element per non-empty cell.

Element names are the column headers made valid (see :func:`xml_name`); a scoped column of an export
without a dimensionScope is ``<alias dim-x="seg-y">``; when the name had to change, the original header
is kept in a ``name`` attribute. Text is escaped; characters XML 1.0 cannot carry are dropped; lists are
``<value>`` children; empty cells are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skuport.exporting.conventions import number_text
from skuport.exporting.formats.base import TextFormat, xml_name, xml_text
from skuport.exporting.plan import Column, Kind


def _tags(column: Column) -> tuple[str, str]:
    base = column.header.split("[", 1)[0] if column.scope else column.header
    name = xml_name(base)
    attrs = "".join(f' {xml_name(dim)}="{xml_text(seg)}"' for dim, seg in column.scope.items())
    if name != base:
        attrs += f' name="{xml_text(base)}"'
    return f"<{name}{attrs}>", f"</{name}>"


class XmlFormat(TextFormat):
    """Well-formed UTF-8 XML."""

    name = "xml"
    content_type = "application/xml"
    extension = "xml"

    def start(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """Declaration and the root element."""
        return b'<?xml version="1.0" encoding="UTF-8"?>\n<records>\n'

    def encode(self, columns: Sequence[Column], rows: list[list[Any]], *, first_row: int) -> bytes:
        """One ``<record>`` element per row."""
        plan = [(*_tags(c), c.kind) for c in columns]
        text, number, boolean = Kind.TEXT, Kind.NUMBER, Kind.BOOLEAN
        parts: list[str] = []
        add = parts.append
        for row in rows:
            add("<record>")
            for (open_tag, close_tag, kind), value in zip(plan, row, strict=True):
                if value is None:
                    continue
                if kind is text:
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

    def end(self, columns: Sequence[Column], *, row_count: int) -> bytes:
        """Close the root element."""
        return b"</records>\n"
