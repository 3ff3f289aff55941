"""The cells' positional text (records.cells): what a cell becomes, and the slots that number them."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select, update

from skuport.db import get_engine, session_scope
from skuport.records.cells import (
    ELEMENT_SEPARATOR,
    EMPTY,
    SLOT_SEPARATOR,
    cell_text,
    ensure_slots,
    load_slots,
    positional_text,
    store_cells,
)
from skuport.records.models import CellSlot, Record


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("Urban parka", "Urban parka"),
        ("", EMPTY),
        (True, "true"),
        (False, "false"),
        (12, "12"),
        (12.0, "12"),  # as exports write numbers: no exponent, no '.0'
        (1e20, "100000000000000000000"),
        (0.00001, "0.00001"),
        (["S", "M"], f"S{ELEMENT_SEPARATOR}M"),
        ([], EMPTY),
        ([3, 4.5], f"3{ELEMENT_SEPARATOR}4.5"),
        ("ctrl \x01 and line\nbreak", "ctrl \x01 and line\nbreak"),
    ],
)
def test_a_cell_as_the_text_holds_it(value: Any, text: str) -> None:
    assert cell_text(value) == text


@pytest.mark.parametrize(
    "value",
    [
        f"holds {SLOT_SEPARATOR}",
        f"holds {ELEMENT_SEPARATOR}",
        f"holds {EMPTY}",
        ["a", ""],  # an empty element would read back as no element
        [f"a{ELEMENT_SEPARATOR}b"],
        None,
        {"an": "object"},
    ],
)
def test_what_the_text_cannot_hold_stores_no_text(value: Any) -> None:
    assert cell_text(value) is None
    slots = {("sku", "@"): 0, ("notes", "@"): 1}
    assert positional_text({"sku": {"@": "x"}, "notes": {"@": value}}, slots) is None


def test_cells_in_slot_order_absent_ones_empty_and_none_after_the_last() -> None:
    slots = {("sku", "@"): 0, ("price", "@"): 1, ("price", "dim-market=seg-dk"): 2, ("notes", "@"): 3}
    cells = {"price": {"dim-market=seg-dk": 969, "@": 129.5}, "sku": {"@": "SP-1"}}
    assert positional_text(cells, slots) == SLOT_SEPARATOR.join(["SP-1", "129.5", "969"])
    only_dk = {"price": {"dim-market=seg-dk": 969}}
    assert positional_text(only_dk, slots) == SLOT_SEPARATOR.join(["", "", "969"])
    assert positional_text({}, slots) == ""


def test_slots_are_numbered_per_schema_once_and_never_renumbered(db: str) -> None:
    with session_scope() as s:
        first = ensure_slots(s, "schema-a", [("sku", "@"), ("price", "@")], {})
        assert sorted(first.values()) == [0, 1]
        again = ensure_slots(s, "schema-a", [("price", "@"), ("price", "dim-market=seg-dk")], dict(first))
        assert again[("price", "@")] == first[("price", "@")] and again[("price", "dim-market=seg-dk")] == 2
        other = ensure_slots(s, "schema-b", [("price", "dim-market=seg-dk")], {})
        assert other == {("price", "dim-market=seg-dk"): 0}
        # a caller that knew only some of them finds the others' numbers instead of adding them twice
        partial = ensure_slots(s, "schema-a", [("sku", "@"), ("ean", "@")], {})
        assert partial[("sku", "@")] == first[("sku", "@")]
    with session_scope() as s:
        found = load_slots(s)
        assert found["schema-a"] == {**again, ("ean", "@"): 3}
        assert found["schema-b"] == other
        text = store_cells(s, "schema-b", {"price": {"@": 5, "dim-market=seg-dk": 6}})
        assert text == SLOT_SEPARATOR.join(["6", "5"])


def test_writers_adding_slots_at_once_each_get_their_own_number(db: str) -> None:
    # given 4 writers, each adding 25 cells of one schema, 10 of them shared by all
    shared = [("shared", f"k{i}") for i in range(10)]
    keys = {n: shared + [(f"own-{n}", f"k{i}") for i in range(15)] for n in range(4)}
    found: dict[int, dict[tuple[str, str], int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(n: int) -> None:
        try:
            start.wait()
            with session_scope() as s:
                found[n] = ensure_slots(s, "schema-a", keys[n], {})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # then no writer failed, every cell has one number, and the numbers are 0..69 without a gap
    assert not errors
    with get_engine().connect() as conn:
        rows = conn.execute(select(CellSlot.alias, CellSlot.scope_key, CellSlot.slot)).all()
    stored = {(alias, key): slot for alias, key, slot in rows}
    assert len(rows) == len(stored) == 70
    assert sorted(stored.values()) == list(range(70))
    for n in range(4):
        assert all(found[n][key] == stored[key] for key in keys[n])


def test_the_migration_writes_the_text_the_records_service_writes(world: None, database_url: str) -> None:
    from alembic import command

    from skuport.migrate import alembic_config, upgrade
    from tests.exporting.factories import g, make_record

    # given records of every kind of value, written with their positional text
    with session_scope() as s:
        make_record(s, {"sku": g("SP-1"), "price": [{"scope": {"dim-market": "seg-dk"}, "value": 969}]})
        make_record(s, {"sku": g("SP-2"), "sizes": g(["S", "M"]), "in-stock": g(True)})
        make_record(s, {"product-name": g(f"odd {SLOT_SEPARATOR}"), "description": g("")})
        make_record(s, {})
    with get_engine().connect() as conn:
        written = conn.execute(select(Record.pk, Record.cells_text).order_by(Record.pk)).all()
        slots = load_slots(conn)
    assert [text is None for _pk, text in written] == [False, False, True, False]
    # when the database goes back to before the text and up again
    command.downgrade(alembic_config(database_url), "0015")
    upgrade(database_url)
    # then the migration wrote the same texts, by the same slots
    with get_engine().connect() as conn:
        assert conn.execute(select(Record.pk, Record.cells_text).order_by(Record.pk)).all() == written
        assert load_slots(conn) == slots


def test_a_writer_that_knows_only_cells_json_makes_the_export_read_it(world: None, tmp_path: Any) -> None:
    from skuport.exporting.pipeline import run_export
    from skuport.exporting.spec import ExportSpec
    from tests.exporting.factories import g, make_record

    # given a record written with its positional text
    with session_scope() as s:
        make_record(s, {"sku": g("SP-1"), "product-name": g("Old name")}, record_id="ent-1")
    # when a process of an earlier version (a rolling upgrade) changes its cells_json alone
    with get_engine().begin() as conn:
        conn.execute(
            update(Record)
            .where(Record.id == "ent-1")
            .values(cells_json='{"sku": {"@": "SP-1"}, "product-name": {"@": "New name"}}')
        )
        assert conn.execute(select(Record.cells_text).where(Record.id == "ent-1")).scalar() is None
    # then the export writes the new value, not the stale text's
    spec = ExportSpec(format="jsonl", schema_id="schema-apparel", fields=("product-name",))
    assert b'"product-name":"New name"' in run_export(spec, out_dir=tmp_path).path.read_bytes()
    # and a writer of this version keeps the text it writes
    with session_scope() as s:
        record = s.scalars(select(Record).where(Record.id == "ent-1")).one()
        record.cells_json, record.cells_text = '{"sku": {"@": "SP-2"}}', "SP-2"
    with get_engine().connect() as conn:
        assert conn.execute(select(Record.cells_text).where(Record.id == "ent-1")).scalar() == "SP-2"
