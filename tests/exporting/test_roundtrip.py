"""Arbitrary text, numbers and lists through every format, plain and gzip, read back by independent readers.

Readers: the csv module, pandas and DuckDB for csv; ``json`` for json and jsonl; lxml for xml; openpyxl
(both modes) and calamine (through pandas) for xlsx. Values must come back equal. Characters XML 1.0
cannot carry (C0 controls other than tab, line feed and carriage return) are dropped by design
(docs/export-format.md) and left out of the generated text.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from lxml import etree
from openpyxl.utils.escape import unescape
from sqlalchemy import delete

from skuport.db import session_scope
from skuport.exporting.conventions import join_list, parse_number, split_list
from skuport.exporting.pipeline import run_export
from skuport.exporting.spec import ExportSpec
from skuport.records.models import Record, RecordCategory, RecordValue
from tests.exporting.factories import add_attribute, g, make_record

OPTIONS = ["a|b", "back\\slash", 'quo"te, comma', "ünï ☂", "line\nbreak", "cr\rhere", "<&>", "_x000D_"]
FIELDS = ("id", "t", "n", "l")
TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters=[chr(c) for c in range(32) if c not in (9, 10, 13)] + ["\ufffe", "\uffff"],
    ),
    min_size=1,
    max_size=40,
)
NUMBER = st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))
RECORD = st.fixed_dictionaries(
    {"t": TEXT, "n": NUMBER, "l": st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=4, unique=True)}
)


@pytest.fixture
def attributes(world: None) -> None:
    with session_scope() as s:
        add_attribute(s, "t", "textarea", [])
        add_attribute(s, "n", "number", [])
        add_attribute(s, "l", "multiselect", [], validation={"options": OPTIONS})


def replace_records(records: list[dict[str, Any]]) -> list[str]:
    with session_scope() as s:
        for table in (RecordValue, RecordCategory, Record):
            s.execute(delete(table))
        return [make_record(s, {k: g(v) for k, v in values.items()}).id for values in records]


def export(tmp_path: Path, fmt: str, compress: bool) -> bytes:
    result = run_export(
        ExportSpec(
            format=fmt, schema_id="schema-apparel", fields=FIELDS, dimension_scope={}, compress=compress
        ),
        out_dir=tmp_path,
    )
    data = result.path.read_bytes()
    result.path.unlink()
    return gzip.decompress(data) if compress else data


def same_number(found: Any, expected: float) -> bool:
    return float(found) == float(expected)


def check_text_rows(
    rows: list[dict[str, Any]], ids: list[str], records: list[dict[str, Any]], *, plain_numbers: bool = True
) -> None:
    """Rows of a reader of cells (csv, xlsx): lists joined; csv numbers in plain decimal notation."""
    assert [r["id"] for r in rows] == ids
    for row, values in zip(rows, records, strict=True):
        assert row["t"] == values["t"]
        assert same_number(row["n"], values["n"])
        assert not plain_numbers or "e" not in row["n"].lower()
        assert row["l"] == join_list(values["l"])
        # what an import does: the conventions' inverses give the values back
        assert split_list(row["l"]) == values["l"]
        if plain_numbers:
            assert parse_number(row["n"]) == values["n"]


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.generate,),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(records=st.lists(RECORD, min_size=1, max_size=3))
def test_every_format_reads_back_what_was_exported(
    attributes: None, tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    ids = replace_records(records)
    for compress in (False, True):
        data = export(tmp_path, "csv", compress)
        check_text_rows(list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))), ids, records)
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        check_text_rows(frame.to_dict("records"), ids, records, plain_numbers=False)
        (tmp_path / "f.csv").write_bytes(data)
        table = duckdb.sql(
            f"SELECT * FROM read_csv('{tmp_path / 'f.csv'}', header=true, all_varchar=true, "
            "quote='\"', escape='\"', delim=',', strict_mode=true)"
        )
        found = [dict(zip(table.columns, row, strict=True)) for row in table.fetchall()]
        check_text_rows(found, ids, records)

        for fmt in ("json", "jsonl"):
            data = export(tmp_path, fmt, compress)
            objects = (
                json.loads(data)
                if fmt == "json"
                else [json.loads(line) for line in data.decode("utf-8").split("\n") if line]
            )
            # JSON has one number type: a float is written in plain decimal digits (which Python's json
            # reads as an int) that read back as the same double
            assert [{**o, "n": float(o["n"])} for o in objects] == [
                {"id": i, **values, "n": float(values["n"])} for i, values in zip(ids, records, strict=True)
            ]

        root = etree.fromstring(export(tmp_path, "xml", compress))
        for element, ident, values in zip(root, ids, records, strict=True):
            assert element.findtext("id") == ident and element.findtext("t") == values["t"]
            assert same_number(element.findtext("n"), values["n"])
            assert [v.text for v in element.find("l")] == values["l"]
        assert len(root) == len(ids)

        data = export(tmp_path, "xlsx", compress)
        for read_only in (False, True):
            sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=read_only).worksheets[0]
            assert (sheet.max_row, sheet.max_column) == (len(ids) + 1, len(FIELDS))
            header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
            # openpyxl leaves the OOXML _xHHHH_ escapes of inline strings as they are; Excel decodes them
            rows = [
                {h: unescape(v) if isinstance(v, str) else v for h, v in zip(header, r, strict=True)}
                for r in body
            ]
            check_text_rows(rows, ids, records, plain_numbers=False)
        frame = pd.read_excel(io.BytesIO(data), engine="calamine", dtype=object)
        check_text_rows(frame.to_dict("records"), ids, records, plain_numbers=False)
