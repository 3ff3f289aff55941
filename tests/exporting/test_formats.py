"""Every format written by the pipeline and read back by an independent reader."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest
from lxml import etree

from skuport.db import session_scope
from skuport.exporting.conventions import FIXED_COLUMNS
from skuport.exporting.formats import FORMATS
from skuport.exporting.formats.base import join_list, xml_name
from skuport.exporting.formats.xlsx import column_letters
from skuport.exporting.pipeline import run_export
from skuport.exporting.spec import ExportResult, ExportSpec
from tests.exporting.factories import g, make_record

TRICKY = 'Comma, "quotes"\nnew line; ünïcødé ☂ <tag> & ampersand'
EN_DK = {"dim-language": "seg-en", "dim-market": "seg-dk"}
FIELDS = ("product-name", "sku", "price", "weight", "sizes", "in-stock", "description")


@pytest.fixture
def products(world: None) -> None:
    """Two products with awkward text, typed values and a list."""
    with session_scope() as s:
        make_record(
            s,
            {
                "product-name": [
                    {"scope": {"dim-language": "seg-en"}, "value": TRICKY},
                    {"scope": {"dim-language": "seg-da"}, "value": "Æblegrøn jakke"},
                ],
                "sku": g("TR-1"),
                "price": [{"scope": {}, "value": 10.5}, {"scope": {"dim-market": "seg-dk"}, "value": 79}],
                "weight": g(450),
                "sizes": g(["S", "M", "XL"]),
                "in-stock": [{"scope": {"dim-market": "seg-dk"}, "value": False}],
                "description": g("Tab\there, control\x01char, ]]> end"),
            },
            record_id="ent-tricky",
        )
        make_record(
            s,
            {"sku": g("PL-2"), "in-stock": [{"scope": {"dim-market": "seg-dk"}, "value": True}]},
            record_id="ent-plain",
        )


def run(tmp_path: Path, fmt: str, **options: Any) -> ExportResult:
    return run_export(
        ExportSpec(
            format=fmt,
            schema_id="schema-apparel",
            dimension_scope=EN_DK,
            fields=(*FIXED_COLUMNS, *FIELDS),
            **options,
        ),
        out_dir=tmp_path,
    )


def content(result: ExportResult) -> bytes:
    data = result.path.read_bytes()
    return gzip.decompress(data) if result.content_encoding == "gzip" else data


@pytest.mark.parametrize("compress", [False, True])
def test_csv_read_back_by_csv_module_and_duckdb(products: None, tmp_path: Path, compress: bool) -> None:
    result = run(tmp_path, "csv", compress=compress)
    data = content(result)
    assert b"\r\n" in data  # RFC 4180 line breaks
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    assert len(rows) == 2 == result.record_count
    first = rows[0]
    assert first["product-name"] == TRICKY
    assert first["price"] == "79" and first["weight"] == "450" and first["sizes"] == "S|M|XL"
    assert first["in-stock"] == "false" and rows[1]["in-stock"] == "true"
    assert first["description"] == "Tab\there, control\x01char, ]]> end"

    # DuckDB reads the same file (gzip included) on its own.
    table = duckdb.sql(f"SELECT * FROM read_csv('{result.path}', header=true, all_varchar=true)")
    assert table.columns[6:] == list(FIELDS)
    found = table.fetchall()
    assert len(found) == 2
    assert found[0][6] == TRICKY and found[0][7] == "TR-1" and found[1][7] == "PL-2"


def test_json_is_one_array_with_native_types(products: None, tmp_path: Path) -> None:
    result = run(tmp_path, "json")
    assert result.content_type == "application/json" and result.extension == "json"
    records = json.loads(result.path.read_bytes())
    assert [r["id"] for r in records] == ["ent-tricky", "ent-plain"]
    first = records[0]
    assert first["product-name"] == TRICKY
    assert first["price"] == 79 and first["weight"] == 450 and first["in-stock"] is False
    assert first["sizes"] == ["S", "M", "XL"]
    assert records[1]["product-name"] is None


def test_jsonl_one_object_per_line(products: None, tmp_path: Path) -> None:
    result = run(tmp_path, "jsonl", compress=True)
    lines = content(result).decode().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert list(first)[6:] == list(FIELDS)
    assert first["product-name"] == TRICKY and first["sizes"] == ["S", "M", "XL"]
    assert second["in-stock"] is True and second["sku"] == "PL-2"


def test_xml_is_well_formed_and_escaped(products: None, tmp_path: Path) -> None:
    result = run(tmp_path, "xml")
    root = etree.fromstring(result.path.read_bytes())
    assert root.tag == "records"
    first, second = root.findall("record")
    assert first.findtext("product-name") == TRICKY
    assert first.findtext("price") == "79" and first.findtext("in-stock") == "false"
    assert [v.text for v in first.find("sizes")] == ["S", "M", "XL"]
    assert first.findtext("description") == "Tab\there, controlchar, ]]> end"  # \x01 cannot be in XML
    assert second.find("product-name") is None  # empty cells are left out


def test_xml_without_scope_uses_scope_attributes(products: None, tmp_path: Path) -> None:
    result = run_export(
        ExportSpec(
            format="xml", schema_id="schema-apparel", fields=("product-name",), header_language="seg-en"
        ),
        out_dir=tmp_path,
    )
    first = etree.fromstring(result.path.read_bytes()).find("record")
    names = first.findall("Product_name")
    assert {(n.get("dim-language"), n.get("name"), n.text) for n in names} == {
        ("seg-en", "Product name", TRICKY),
        ("seg-da", "Product name", "Æblegrøn jakke"),
    }


def test_xlsx_read_back_by_openpyxl(products: None, tmp_path: Path) -> None:
    result = run(tmp_path, "xlsx")
    assert result.extension == "xlsx" and zipfile.is_zipfile(result.path)
    sheet = openpyxl.load_workbook(result.path, read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0][6:]) == list(FIELDS)
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["product-name"] == TRICKY
    assert first["price"] == 79 and first["weight"] == 450 and first["in-stock"] is False
    assert first["sizes"] == "S|M|XL" and first["id"] == "ent-tricky"
    assert rows[2][0] == "ent-plain" and rows[2][6] is None
    assert len(rows) == 3


def test_xlsx_gzip(products: None, tmp_path: Path) -> None:
    result = run(tmp_path, "xlsx", compress=True)
    assert result.extension == "xlsx.gz"
    sheet = openpyxl.load_workbook(io.BytesIO(content(result)), read_only=True).active
    assert len(list(sheet.iter_rows(values_only=True))) == 3


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_empty_export_is_a_valid_file(world: None, tmp_path: Path, fmt: str) -> None:
    result = run(tmp_path, fmt)
    data = result.path.read_bytes()
    assert result.record_count == 0 and result.file_size == len(data)
    if fmt == "csv":
        assert list(csv.reader(io.StringIO(data.decode()))) == [
            ["id", "parentId", "schemaId", "lifecycleStateId", "createdAt", "updatedAt", *FIELDS]
        ]
    elif fmt == "json":
        assert json.loads(data) == []
    elif fmt == "jsonl":
        assert data == b""
    elif fmt == "xml":
        assert len(etree.fromstring(data)) == 0
    else:
        rows = list(openpyxl.load_workbook(result.path, read_only=True).active.iter_rows(values_only=True))
        assert len(rows) == 1


def test_helpers() -> None:
    assert join_list(["a", "b|c", "d\\e"]) == "a|b\\|c|d\\\\e"
    assert xml_name("product-name") == "product-name"
    assert xml_name("Weight (g)") == "Weight__g_"
    assert xml_name("1st") == "_1st" and xml_name("xmlthing") == "_xmlthing"
    assert [column_letters(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
