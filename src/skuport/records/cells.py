"""The cells' positional text: what the frame engine reads instead of decoding ``cells_json``.

Every (attribute alias, scope key) pair a schema's records hold is numbered once, in the order they first
appear: a *slot* (table ``cell_slots``, append-only, so a number never changes meaning). A record's
``cells_text`` is its cells in slot order, each as text, separated by U+001F; a list's elements are
separated by U+001E; an absent cell is empty and a present empty text or list is U+001D; U+001C never
appears (a reader joins records with it). Splitting that
text costs a fraction of parsing the JSON (bench/README.md, 2026-12-07).

Each cell is written as the frame engine renders it: text as itself, a number as
:func:`skuport.exporting.conventions.number_text`, a boolean as ``true``/``false``. A record holding what
the text cannot say (a separator inside a value, an empty element of a list, a null) stores no text
(``None``) and is read from ``cells_json``, which stays the source of the other readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, func, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from skuport.exporting.conventions import number_text
from skuport.records.models import CellSlot

SLOT_SEPARATOR = "\x1f"
ELEMENT_SEPARATOR = "\x1e"
EMPTY = "\x1d"
"""A present empty text or empty list (an absent cell is written as nothing)."""
RECORD_SEPARATOR = "\x1c"
"""Never in a text: a reader may join several records' texts with it."""
_RESERVED = frozenset((SLOT_SEPARATOR, ELEMENT_SEPARATOR, EMPTY, RECORD_SEPARATOR))

Cells = Mapping[str, Mapping[str, Any]]
"""A record's cells: alias -> scope key (``@`` global) -> value (``values.cells_of``)."""
Slots = dict[tuple[str, str], int]
"""(alias, scope key) -> slot number, of one schema."""


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(number_text(value))
    if isinstance(value, str) and not _RESERVED.intersection(value):
        return value
    return None


def cell_text(value: Any) -> str | None:
    """One cell as the positional text holds it (None: it cannot, see the module doc)."""
    if isinstance(value, list):
        if not value:
            return EMPTY
        elements = [_scalar_text(element) for element in value]
        if any(not element for element in elements):
            return None
        return ELEMENT_SEPARATOR.join(elements)  # type: ignore[arg-type]
    if value == "":
        return EMPTY
    return _scalar_text(value)


def positional_text(
    cells: Mapping[str, Mapping[str, Any]], slots: Mapping[tuple[str, str], int]
) -> str | None:
    """A record's cells (``values.cells_of``) in slot order; every one of its cells has a slot."""
    texts: dict[int, str] = {}
    for alias, cell in cells.items():
        for key, value in cell.items():
            text = cell_text(value)
            if text is None:
                return None
            texts[slots[(alias, key)]] = text
    if not texts:
        return ""
    return SLOT_SEPARATOR.join(texts.get(slot, "") for slot in range(max(texts) + 1))


def cell_keys(cells: Cells) -> set[tuple[str, str]]:
    """The (alias, scope key) pairs a record's cells hold."""
    return {(alias, key) for alias, cell in cells.items() for key in cell}


def load_slots(conn: Connection | Session, schema_ids: Iterable[str] | None = None) -> dict[str, Slots]:
    """Schema id -> its slots (every schema's, or those of ``schema_ids``)."""
    query = select(CellSlot.schema_id, CellSlot.alias, CellSlot.scope_key, CellSlot.slot)
    if schema_ids is not None:
        query = query.where(CellSlot.schema_id.in_(list(schema_ids)))
    found: dict[str, Slots] = {}
    for schema_id, alias, key, slot in conn.execute(query):
        found.setdefault(schema_id, {})[(alias, key)] = slot
    return found


def ensure_slots(
    conn: Connection | Session, schema_id: str, keys: Iterable[tuple[str, str]], known: Slots
) -> Slots:
    """``known`` with a slot for each of ``keys`` (new ones numbered after the schema's last).

    SQLite has one writer at a time: the slots are added in the caller's transaction. On PostgreSQL they
    are added and committed on a connection of their own, so that concurrent writers never wait for each
    other's transactions: two adding the same number collide on the primary key, and the loser numbers
    again. A slot whose record then rolls back stays, unused.
    """
    missing = sorted(set(keys) - known.keys())
    if not missing:
        return known
    bind = conn.connection() if isinstance(conn, Session) else conn
    if bind.dialect.name == "postgresql":
        with bind.engine.connect() as own:
            for alias, key in missing:
                known[(alias, key)] = _add_slot(own, schema_id, alias, key)
    else:
        for alias, key in missing:
            known[(alias, key)] = _add_slot(bind, schema_id, alias, key)
    return known


def _add_slot(conn: Connection, schema_id: str, alias: str, key: str) -> int:
    """The slot of (alias, key), numbered after the schema's last one when it has none yet."""
    mine = select(CellSlot.slot).where(
        CellSlot.schema_id == schema_id, CellSlot.alias == alias, CellSlot.scope_key == key
    )
    columns = ["schema_id", "alias", "scope_key", "slot"]
    while True:
        found = conn.execute(mine).scalar()
        if found is not None:
            return int(found)
        after = select(func.coalesce(func.max(CellSlot.slot) + 1, 0)).where(CellSlot.schema_id == schema_id)
        row = select(literal(schema_id), literal(alias), literal(key), after.scalar_subquery())
        if conn.dialect.name == "postgresql":
            conn.execute(pg_insert(CellSlot).from_select(columns, row).on_conflict_do_nothing())
            conn.commit()
        else:
            conn.execute(insert(CellSlot).from_select(columns, row))


def store_cells(
    conn: Connection | Session, schema_id: str, cells: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """The positional text of one record's cells, adding the slots it needs."""
    known = load_slots(conn, [schema_id]).get(schema_id, {})
    return positional_text(cells, ensure_slots(conn, schema_id, cell_keys(cells), known))
