"""The columnar engine writes byte for byte what the row engine writes, on data made to break encoders."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import update

from skuport.catalog.models import Schema
from skuport.config import get_settings
from skuport.db import session_scope
from skuport.exporting import columnar, engines
from skuport.exporting import select as selection
from skuport.exporting.pipeline import run_export
from skuport.exporting.prepared import prepare
from skuport.exporting.selection import ColumnSpec
from skuport.exporting.spec import ExportSpec
from skuport.records.cells import load_slots
from skuport.records.models import Record
from tests.exporting.factories import add_attribute, g, make_record, make_tombstone

TEXTS = [
    "plain",
    'comma, "quoted"',
    "line\nbreak",
    "cr\ronly and crlf\r\n",
    "tab\there",
    "",
    "Æblegrød ✓ 日本 🧥",
    "ctrl \x01\x08\x0b\x0c\x1f end",
    '<tag attr="x"> & &amp; </tag>',
    "back\\slash | pipe",
    " lead and trail ",
    "ends with backslash\\",
    "\u2028 line sep \u2029",
    "noncharacter \ufffe\uffff",
    "]]> cdata end",
    "'single'",
]
NUMBERS = [
    0,
    -3,
    12.5,
    1991,
    0.00001,
    1e20,
    1.5e-07,
    123456789.125,
    -0.5,
    2**53 + 1,
    1e23,
    7e22,
    2.0**60,
    83050364053.078125,
    21346066203752.562,
    12.0,
    -0.0,
    5e-324,
    2**63 - 1,
]
LISTS: list[list[str]] = [[], ["a"], ["a|b", "c\\d", 'q"uote', "x,y"], ["é", "line\nbreak", "<&>", "s;c"]]
DATES = ["2025-09-19", "1999-12-31", "2024-02-29", "2000-01-01"]
FORMATS = ["csv", "json", "jsonl", "xml"]
COLOURS = ["red", "navy", "sand\\|x", 'plain, "odd"']
COLOUR_LABELS = {
    "red": {"seg-da": "Rød", "seg-de": "Rot", "seg-en": "Red"},
    "navy": {"seg-da": "Marineblå"},
    "sand\\|x": {"seg-da": 'Sand | "x"', "seg-dk": "sand (dk)"},
}
"""Labels of a select's options: one in every language, one in Danish only, one with characters to escape and
one in a market segment; the last option has none (its code stays)."""
TAG_LABELS = {"a": {"seg-da": "a på dansk", "seg-en": "A"}, "a|b": {"seg-da": "a|b da"}, "é": {"seg-de": "E"}}
SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def scoped(*pairs: tuple[dict[str, str], Any]) -> list[dict[str, Any]]:
    return [{"scope": scope, "value": value} for scope, value in pairs]


@pytest.fixture
def tricky(world: None) -> None:
    """Records whose values exercise quoting, escaping, numbers, lists, scopes, variants and categories."""
    with session_scope() as s:
        add_attribute(s, "notes", "text", ["dim-language", "dim-market"], labels={"seg-da": "Noter"})
        add_attribute(
            s,
            "tags",
            "multiselect",
            [],
            validation={"options": sorted({item for items in LISTS for item in items})},
            option_labels=TAG_LABELS,
        )
        add_attribute(s, "colour", "select", [], validation={"options": COLOURS}, option_labels=COLOUR_LABELS)
        add_attribute(s, "ratio", "number", ["dim-market"])
        add_attribute(s, "flag", "boolean", ["dim-market"])
        add_attribute(s, "released", "date", [])
        for i, text in enumerate(TEXTS):
            values: dict[str, list[dict[str, Any]]] = {
                "sku": g(f"SKU-{i}"),
                "product-name": scoped(({}, text), ({"dim-language": "seg-en"}, f"en {text}"))
                if i % 3
                else g(text),
                "notes": scoped(
                    ({"dim-language": "seg-en", "dim-market": "seg-dk"}, text),
                    ({"dim-market": "seg-dk"}, f"dk {i}"),
                    ({}, f"global {i}"),
                )
                if i % 2
                else scoped(({"dim-language": "seg-da"}, text)),
                "ratio": scoped(
                    ({}, NUMBERS[i % len(NUMBERS)]),
                    ({"dim-market": "seg-dk"}, NUMBERS[(i + 3) % len(NUMBERS)]),
                )
                if i % 4
                else g(NUMBERS[i % len(NUMBERS)]),
                "flag": scoped(({"dim-market": "seg-dk"}, bool(i % 2))) if i % 5 else [],
                "tags": g(LISTS[i % len(LISTS)]),
                "weight": g(i * 7),
                "released": g(DATES[i % len(DATES)]) if i % 3 else [],
                "in-stock": scoped(({"dim-market": "seg-de"}, True)),
                "colour": g(COLOURS[i % len(COLOURS)]) if i % 5 != 4 else [],
            }
            parent = make_record(
                s,
                {k: v for k, v in values.items() if v},
                record_id=f"ent-t{i:02d}",
                categories=["cat-jackets", "cat-knitwear"][: i % 3],
                updated_at=SINCE + dt.timedelta(hours=i - 3),
            )
            if i % 4 == 1:
                make_record(
                    s,
                    {"sku": g(f"SKU-{i}-V"), "sizes": g(["S", "M"])},
                    record_id=f"ent-t{i:02d}-v",
                    parent_id=parent.id,
                    updated_at=SINCE + dt.timedelta(hours=i),
                )
        make_record(s, {}, record_id="ent-empty")
        make_tombstone(s, "ent-gone", deleted_at=SINCE + dt.timedelta(hours=2))


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Switch the export engine (auto: columnar where possible; rows: the row engine)."""

    def use(name: str) -> None:
        monkeypatch.setenv("SKUPORT_EXPORT_ENGINE", name)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


COLUMNS = tuple(
    ColumnSpec.model_validate(c)
    for c in [
        {"header": "ID", "field": "id"},
        {"header": "title_da", "attribute": "product-name", "scope": {"dim-language": "seg-da"}},
        {"header": "title_en", "attribute": "product-name", "scope": {"dim-language": "seg-en"}},
        {"header": "id", "attribute": "sku"},  # an attribute column may take a field's name
        {"header": "ratio_de", "attribute": "ratio", "scope": {"dim-market": "seg-de"}, "default": 0},
        {"header": "ratio", "attribute": "ratio", "default": -1.5},
        {"header": "notes", "attribute": "notes", "default": 'none, "really"'},
        {"header": "flag", "attribute": "flag", "default": False},
        {"header": "tags", "attribute": "tags", "default": "a|b"},
        {"header": "released", "attribute": "released", "default": "1970-01-01"},
        {"header": "channel", "value": "webshop"},
        {"header": "rate", "value": 7.5},
        {"header": "live", "value": True},
        {"header": "changed", "field": "updatedAt"},
        {"header": "title again", "attribute": "product-name"},
    ]
)
"""A file's columns by name: two languages side by side, defaults of every kind, constants, fields renamed."""

SPECS: dict[str, dict[str, Any]] = {
    "scope-en-dk": {"dimension_scope": {"dim-language": "seg-en", "dim-market": "seg-dk"}},
    "scope-da": {"dimension_scope": {"dim-language": "seg-da"}},
    "unscoped": {},
    "fields-labels-dry": {
        "dimension_scope": {"dim-market": "seg-dk"},
        "fields": ("ratio", "notes", "tags"),
        "header_language": "seg-da",
        "dry_data": True,
    },
    "fields-system-interleaved": {
        "fields": ("sku", "id", "notes", "categories", "updatedAt", "ratio"),
        "catalog_id": "catalog-webshop",
    },
    "fields-scoped-delta": {
        "dimension_scope": {"dim-language": "seg-en"},
        "changed_since": SINCE,
        "fields": ("ratio", "parentId", "sku"),
    },
    "categories": {
        "dimension_scope": {"dim-language": "seg-en"},
        "catalog_id": "catalog-webshop",
        "includes": ("categories",),
    },
    "delta": {"dimension_scope": {"dim-language": "seg-en"}, "changed_since": SINCE},
    "no-variants-all-schemas": {
        "schema_id": None,
        "include_variants": False,
        "dimension_scope": {"dim-market": "seg-de"},
    },
    "filtered-compressed": {
        "dimension_scope": {"dim-language": "seg-en"},
        "compress": True,
        "filters": {"sku": {"in": ["SKU-1", "SKU-2", "SKU-5", "SKU-9"]}},
    },
    "segments-listed": {"dimension_scope": {"dim-language": ["seg-da", "seg-en"], "dim-market": "seg-dk"}},
    "segments-two-lists-labels": {
        "dimension_scope": {"dim-market": ["seg-de", "seg-dk"], "dim-language": ["seg-en", "seg-da"]},
        "header_language": "seg-da",
        "fields": ("notes", "sku", "ratio", "id"),
    },
    "columns": {"dimension_scope": {"dim-market": "seg-dk"}, "columns": COLUMNS},
    "labels-da-dk": {
        "dimension_scope": {"dim-language": "seg-da", "dim-market": "seg-dk"},
        "value_labels": True,
    },
    "labels-unscoped-header-de": {"value_labels": True, "header_language": "seg-de"},
    "labels-segments-listed": {
        "dimension_scope": {"dim-language": ["seg-en", "seg-da"]},
        "value_labels": True,
        "fields": ("colour", "tags", "sku"),
    },
    "labels-columns-default": {
        "value_labels": True,
        "columns": tuple(
            ColumnSpec.model_validate(c)
            for c in [
                {"header": "id", "field": "id"},
                {
                    "header": "colour_da",
                    "attribute": "colour",
                    "scope": {"dim-language": "seg-da"},
                    "default": "-",
                },
                {"header": "colour", "attribute": "colour"},
                {"header": "tags_en", "attribute": "tags", "scope": {"dim-language": "seg-en"}},
            ]
        ),
    },
    "columns-delta-catalog": {
        "columns": COLUMNS,
        "changed_since": SINCE,
        "catalog_id": "catalog-webshop",
        "includes": ("categories",),
    },
}


def run(tmp_path: Path, fmt: str, options: dict[str, Any]) -> bytes:
    options = {"schema_id": "schema-apparel", **options}
    result = run_export(ExportSpec(format=fmt, **options), out_dir=tmp_path)
    data = result.path.read_bytes()
    result.path.unlink()
    return gzip.decompress(data) if options.get("compress") else data


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch the frame engine renders, in batches of at most 4 (exercises the joins)."""
    sizes: list[int] = []
    original = columnar.ColumnarEncoder.render

    def counting(self: columnar.ColumnarEncoder, rows: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(rows))
        return original(self, rows, *args, **kwargs)

    monkeypatch.setattr(columnar.ColumnarEncoder, "render", counting)
    monkeypatch.setattr(selection, "COLUMNAR_BATCH_SIZE", 4)
    return sizes


@pytest.fixture
def read_from(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Per batch the frame engine renders, what it read: "text" (positional cells_text) or "json"."""
    forms: list[str] = []
    original = columnar.ColumnarEncoder.frame

    def noting(self: columnar.ColumnarEncoder, batch: columnar.Batch, categories: Any) -> Any:
        forms.append("json" if batch.block is None else "text")
        return original(self, batch, categories)

    monkeypatch.setattr(columnar.ColumnarEncoder, "frame", noting)
    return forms


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(SPECS))
def test_same_bytes_as_the_row_engine(
    tricky: None, engine: Any, encoded: list[int], read_from: list[str], tmp_path: Path, fmt: str, name: str
) -> None:
    engine("rows")
    expected = run(tmp_path, fmt, SPECS[name])
    assert encoded == []
    engine("auto")
    got = run(tmp_path, fmt, SPECS[name])
    assert encoded and max(encoded) <= 4  # the columnar engine did write it
    assert "text" in read_from  # from the positional cells text
    assert got == expected
    _readable(fmt, got)


def _forget_positional_text() -> None:
    with session_scope() as s:
        s.execute(update(Record).values(cells_text=None))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["scope-en-dk", "no-variants-all-schemas", "columns", "segments-listed"])
def test_the_positional_text_and_the_cells_json_write_the_same_bytes(
    tricky: None, encoded: list[int], read_from: list[str], tmp_path: Path, fmt: str, name: str
) -> None:
    # given records whose positional text holds their cells, but for one (a value holds U+001F)
    mixed = run(tmp_path, fmt, SPECS[name])
    assert "text" in read_from and "json" in read_from
    assert read_from.count("json") == 1  # only the batch of that record read cells_json
    # when no record has a positional text, every batch reads cells_json: the same file
    read_from.clear()
    _forget_positional_text()
    assert run(tmp_path, fmt, SPECS[name]) == mixed
    assert set(read_from) == {"json"}


def _readable(fmt: str, data: bytes) -> None:
    """An independent reader accepts the file."""
    if fmt == "json":
        assert isinstance(json.loads(data), list)
    elif fmt == "jsonl":
        assert all(isinstance(json.loads(line), dict) for line in data.splitlines())
    elif fmt == "xml":
        assert etree.fromstring(data).tag == "records"
    else:
        assert data.decode("utf-8")


def test_values_survive_the_round_trip(tricky: None, engine: Any, tmp_path: Path) -> None:
    engine("auto")
    scope = {"dim-language": "seg-en", "dim-market": "seg-dk"}
    lines = run(tmp_path, "jsonl", {"dimension_scope": scope}).splitlines()
    by_id = {row["id"]: row for row in map(json.loads, lines)}
    assert by_id["ent-t01"]["notes"] == TEXTS[1] and by_id["ent-t02"]["notes"] is None
    assert by_id["ent-t06"]["product-name"] == TEXTS[6]
    assert by_id["ent-t04"]["product-name"] == f"en {TEXTS[4]}"
    assert by_id["ent-t02"]["tags"] == LISTS[2] and by_id["ent-t03"]["tags"] == LISTS[3]
    assert by_id["ent-t05"]["ratio"] == NUMBERS[8] and by_id["ent-t04"]["ratio"] == NUMBERS[4]
    assert by_id["ent-t01"]["flag"] is True and by_id["ent-t00"]["flag"] is None
    assert by_id["ent-t09"]["weight"] == 63 and by_id["ent-t01-v"]["parentId"] == "ent-t01"


def test_declines_what_it_does_not_cover(tricky: None) -> None:
    def encoder(**options: Any) -> object | None:
        """The frame engine's encoder, when it is the engine chosen."""
        options.setdefault("schema_id", "schema-apparel")
        with session_scope() as s:
            chosen = engines.choose_engine(prepare(s, ExportSpec(**options)), records=10, database_url="")
            return getattr(chosen, "encoder", None)

    assert encoder(format="csv") is not None
    assert encoder(format="xlsx") is None
    assert encoder(format="csv", includes=("completeness",)) is None
    with session_scope() as s:  # the same alias as text in another schema
        s.add(Schema(id="schema-other", name="Other"))
        s.flush()
        add_attribute(s, "ratio", "text", [], schema_id="schema-other")
    assert encoder(format="csv", schema_id=None) is None
    assert encoder(format="csv") is not None  # only schema-apparel's records: its ratio is a number
    assert encoder(format="csv", fields=("sku", "notes")) is not None
    with session_scope() as s:  # two headers the same in one language: JSON keys would repeat
        add_attribute(s, "notes-2", "text", [], labels={"seg-da": "Noter"})
    assert encoder(format="jsonl", header_language="seg-da") is None
    assert encoder(format="csv", header_language="seg-da") is not None


def test_csv_reads_back_with_the_csv_module(tricky: None, engine: Any, tmp_path: Path) -> None:
    import csv

    engine("auto")
    data = run(tmp_path, "csv", {"dimension_scope": {"dim-language": "seg-en", "dim-market": "seg-dk"}})
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    notes = {r["id"]: r["notes"] for r in rows}
    odd = [i for i in range(1, len(TEXTS), 2) if TEXTS[i]]  # an empty text is no value: falls back
    assert {i: notes[f"ent-t{i:02d}"] for i in odd} == {i: TEXTS[i] for i in odd}


def test_a_batch_polars_refuses_is_written_by_the_row_engine(
    tricky: None, engine: Any, tmp_path: Path
) -> None:
    with session_scope() as s:  # a value of a type validation never stores: an object in a text leaf
        s.execute(
            update(Record)
            .where(Record.id == "ent-t03")
            .values(cells_json='{"sku": {"@": "SKU-3"}, "product-name": {"@": {"odd": 1}}}', cells_text=None)
        )
    scope = {"dimension_scope": {"dim-market": "seg-dk"}}
    engine("rows")
    expected = run(tmp_path, "csv", scope)
    engine("auto")
    assert run(tmp_path, "csv", scope) == expected
    assert b"SKU-3" in expected


def test_value_labels_are_written_in_the_columns_language(tricky: None, engine: Any, tmp_path: Path) -> None:
    engine("auto")
    lines = run(tmp_path, "jsonl", SPECS["labels-columns-default"]).splitlines()
    by_id = {row["id"]: row for row in map(json.loads, lines)}
    danish = [by_id[f"ent-t{i:02d}"]["colour_da"] for i in range(5)]
    assert danish == ["Rød", "Marineblå", 'Sand | "x"', COLOURS[3], "-"]  # no label: code; none: default
    assert [by_id[f"ent-t{i:02d}"]["colour"] for i in range(5)] == [*COLOURS, None]  # no language: codes
    assert by_id["ent-t01"]["tags_en"] == ["A"] and by_id["ent-t02"]["tags_en"] == LISTS[2]  # a|b: no English
    scope = {"dim-language": "seg-da", "dim-market": "seg-dk"}
    text = run(tmp_path, "csv", {"dimension_scope": scope, "value_labels": True}).decode()
    assert "a på dansk" in text and "a\\|b da|c" in text  # a label is a list item like any (escaped)
    assert "sand (dk)" not in text and 'Sand | ""x""' in text  # Danish comes first in the scope


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_of_constants_has_a_row_per_record(
    tricky: None, engine: Any, tmp_path: Path, fmt: str
) -> None:
    constants = tuple(
        ColumnSpec.model_validate(c) for c in [{"header": "a", "value": "x"}, {"header": "b", "value": 3}]
    )
    for options in ({"columns": constants}, {"columns": constants, "changed_since": SINCE}):
        engine("rows")
        expected = run(tmp_path, fmt, options)
        engine("auto")
        assert run(tmp_path, fmt, options) == expected
    engine("auto")
    lines = run(tmp_path, "jsonl", {"columns": constants}).splitlines()
    ids = run(tmp_path, "jsonl", {"columns": (ColumnSpec(header="id", field="id"),)}).splitlines()
    assert len(lines) == len(ids) > 20 and json.loads(lines[0]) == {"a": "x", "b": 3}


@pytest.mark.parametrize("fmt", FORMATS)
def test_records_of_several_schemas_in_one_batch_read_each_by_its_own_slots(
    world: None, engine: Any, encoded: list[int], read_from: list[str], tmp_path: Path, fmt: str
) -> None:
    # given two schemas whose records number the same cells differently, interleaved in pk order
    with session_scope() as s:
        s.add(Schema(id="schema-gear", name="Gear"))
        s.flush()
        add_attribute(s, "weight", "number", ["dim-market"], schema_id="schema-gear")
        add_attribute(s, "sku", "text", [], schema_id="schema-gear")
        add_attribute(s, "ean", "text", [], schema_id="schema-gear")
        for i in range(6):
            if i % 2:
                gear = scoped(({"dim-market": "seg-dk"}, i + 0.5), ({}, i))
                values = {"weight": gear, "sku": g(f"G-{i}"), "ean": g(f"57{i}")}
                make_record(s, values, schema_id="schema-gear")
            else:
                make_record(s, {"sku": g(f"A-{i}"), "weight": g(i * 10)})
    options = {"schema_id": None, "dimension_scope": {"dim-market": "seg-dk"}, "fields": ("sku", "weight")}
    engine("rows")
    expected = run(tmp_path, fmt, options)
    # when the frame engine reads them in batches of 4
    engine("auto")
    got = run(tmp_path, fmt, options)
    # then every record reads its own values
    assert set(read_from) == {"text"} and encoded == [4, 2]
    assert got == expected
    assert b"G-1,1\r\n" in got or fmt != "csv"
    with session_scope() as s:
        slots = load_slots(s)
    assert slots["schema-gear"][("sku", "@")] != slots["schema-apparel"][("sku", "@")]


def test_a_block_aggregated_out_of_pk_order_is_read_in_pk_order(world: None) -> None:
    # given a block whose aggregates came in another order than pk (the database does not promise it)
    with session_scope() as s:
        prepared = prepare(s, ExportSpec(format="csv", schema_id="schema-apparel", fields=("sku",)))
    encoder = columnar.ColumnarEncoder(prepared.plan, prepared.format)
    order = [3, 1, 2]
    block = selection.Block(
        count=3,
        first_pk=1,
        last_pk=3,
        arrays={
            "pk": json.dumps(order),
            "id": json.dumps([f"ent-{pk}" for pk in order]),
            "parent_id": json.dumps([None] * 3),
            "schema_id": json.dumps(["schema-apparel"] * 3),
            "lifecycle_state_id": json.dumps([None] * 3),
            "created_at": json.dumps(["2026-01-01 00:00:00.000000"] * 3),
            "updated_at": json.dumps(["2026-01-01 00:00:00.000000"] * 3),
        },
        cells="\x1c".join(f"SKU-{pk}" for pk in order),
        complete=True,
    )
    # when it is rendered, then each record keeps its own values, in pk order
    frame = encoder.render(columnar.Batch(block=block, slots={"schema-apparel": {("sku", "@"): 0}}))
    assert frame.rows() == [(f"SKU-{pk}",) for pk in (1, 2, 3)]
