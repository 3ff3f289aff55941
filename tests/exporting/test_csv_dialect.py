"""CSV dialects (the selection's ``csv``): both engines write the same bytes, and independent readers
(pandas, the csv module) read the file back with the dialect's own settings."""

# ruff: noqa: F811 (the fixtures imported from test_columnar are parameters here)
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from skuport.exporting.conventions import TextForm
from skuport.exporting.formats.csv import BOM, CsvDialect
from tests.exporting.test_columnar import (  # noqa: F401 (fixtures)
    DATES,
    LISTS,
    SPECS,
    encoded,
    engine,
    run,
    tricky,
)

EUROPEAN = CsvDialect(delimiter=";", decimal_separator=",", date_format="%d.%m.%Y", bom=True)
DIALECTS = {
    "european": EUROPEAN,
    "tab-lf-quote-semicolon-lists": CsvDialect(
        delimiter="\t", quote="'", line_terminator="\n", list_separator=";", date_format="%y/%m/%d"
    ),
    "comma-decimal-pipe-lists": CsvDialect(delimiter=";", decimal_separator=",", list_separator="|"),
}
SCOPE = {"dim-language": "seg-en", "dim-market": "seg-dk"}


@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("name", ["scope-en-dk", "unscoped", "categories", "delta", "filtered-compressed"])
def test_both_engines_write_the_same_bytes_in_every_dialect(
    tricky: None, engine: Any, encoded: list[int], tmp_path: Path, dialect: str, name: str
) -> None:
    options = {**SPECS[name], "csv": DIALECTS[dialect]}
    engine("rows")
    expected = run(tmp_path, "csv", options)
    engine("auto")
    got = run(tmp_path, "csv", options)
    assert encoded, "the frame engine wrote it"
    assert got == expected
    assert got.startswith(BOM) == DIALECTS[dialect].bom


def test_pandas_reads_numbers_and_dates_of_a_european_file(tricky: None, engine: Any, tmp_path: Path) -> None:
    engine("auto")
    plain = pd.read_csv(io.BytesIO(run(tmp_path, "csv", {"dimension_scope": SCOPE})), dtype={"sku": str})
    data = run(tmp_path, "csv", {"dimension_scope": SCOPE, "csv": EUROPEAN})
    assert data.startswith(BOM)
    european = pd.read_csv(io.BytesIO(data), sep=";", decimal=",", encoding="utf-8-sig", dtype={"sku": str})
    assert list(european.columns) == list(plain.columns)
    assert european["ratio"].dtype == "float64" and european["weight"].dtype == "float64"  # NaN: variants
    pd.testing.assert_series_equal(european["ratio"], plain["ratio"])
    pd.testing.assert_series_equal(european["weight"], plain["weight"])
    released = pd.to_datetime(european["released"], format="%d.%m.%Y")
    pd.testing.assert_series_equal(released, pd.to_datetime(plain["released"], format="%Y-%m-%d"))
    assert set(european["released"].dropna()) == {f"{d[8:]}.{d[5:7]}.{d[:4]}" for d in DATES}
    assert european["createdAt"].str.endswith("Z").all()  # timestamps stay ISO 8601


def test_lists_join_and_split_by_the_dialects_separator(tricky: None, engine: Any, tmp_path: Path) -> None:
    engine("auto")
    dialect = DIALECTS["tab-lf-quote-semicolon-lists"]
    data = run(tmp_path, "csv", {"dimension_scope": SCOPE, "csv": dialect}).decode()
    assert data.startswith("id\tparentId\t") and not data.split("\n", 1)[0].endswith("\r")  # \n ends lines
    reader = csv.DictReader(io.StringIO(data, newline=""), delimiter="\t", quotechar="'")
    tags = [dialect.text.split(row["tags"]) for row in reader if row["tags"]]
    assert tags and all(items in LISTS for items in tags)
    assert LISTS[3] in tags  # "s;c" came back whole, its separator escaped


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimiter": ",", "decimalSeparator": ","}, "decimalSeparator and delimiter"),
        ({"delimiter": ";", "listSeparator": ";"}, "listSeparator and delimiter"),
        ({"listSeparator": "\\"}, "backslash"),
        ({"dateFormat": "%A %d"}, "not '%A'"),
        ({"dateFormat": "today"}, "not 't'"),
        ({"dateFormat": "--"}, "names no part"),
        ({"delimiter": "|"}, "delimiter"),
        ({"bom": "yes"}, "bom"),
    ],
)
def test_a_dialect_that_could_not_be_read_back_is_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CsvDialect.model_validate(options)
    assert message in str(caught.value)


def test_text_forms_read_back_what_they_write() -> None:
    form = TextForm(decimal_separator=",", list_separator=";", date_format="%d.%m.%Y")
    for number in (0, -3, 12.5, 1e20, 0.00001, 2**63 - 1):
        assert form.parse_number(form.number(number), integer=isinstance(number, int)) == number
    assert form.number(12.5) == "12,5" and form.number(1991) == "1991"
    items = ["a;b", "c\\d", "e"]
    assert form.join(items) == "a\\;b;c\\\\d;e" and form.split(form.join(items)) == items
    assert form.date("2024-02-29") == "29.02.2024"
    assert form.parse_date("29.02.2024").isoformat() == "2024-02-29"
