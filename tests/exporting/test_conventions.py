"""Each file convention and its inverse: what is written reads back as what it was."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from skuport.exporting.conventions import (
    column_key,
    date_text,
    join_list,
    number_text,
    parse_boolean,
    parse_column_key,
    parse_date,
    parse_number,
    split_list,
    xml_name,
)
from skuport.records.scopes import scope_key

ID = st.text(st.characters(categories=("Ll", "Nd"), include_characters="-"), min_size=1, max_size=12)


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6))
def test_lists_split_back(items: list[str]) -> None:
    assert split_list(join_list(items)) == items


def test_list_escapes() -> None:
    assert join_list(["a|b", "c\\d", "e"]) == "a\\|b|c\\\\d|e"
    assert split_list("a\\|b|c\\\\d|e") == ["a|b", "c\\d", "e"]
    assert split_list("") == [] and split_list("x") == ["x"]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_read_back_as_the_same_number(value: float) -> None:
    text = number_text(value)
    assert "e" not in text.lower()
    assert parse_number(text) == value


@given(st.integers(-(2**63), 2**63 - 1))
def test_integers_read_back_exactly(value: int) -> None:
    assert parse_number(number_text(value), integer=True) == value
    if abs(value) <= 2**53:  # a number attribute's integers too
        assert parse_number(number_text(value)) == value


def test_number_text_examples() -> None:
    assert [number_text(v) for v in (12, 12.5, 1e-05, 1e20, -0.0)] == [
        "12",
        "12.5",
        "0.00001",
        "100000000000000000000",
        "-0",
    ]
    assert parse_number("12") == 12 and isinstance(parse_number("12"), int)
    assert parse_number("0.00001") == 1e-05


@given(st.booleans())
def test_booleans(value: bool) -> None:
    assert parse_boolean("true" if value else "false") is value


@given(st.dates())
def test_dates(value: dt.date) -> None:
    assert parse_date(date_text(value)) == value


@given(ID, st.dictionaries(ID, ID, max_size=3))
def test_scoped_column_names_parse_back(alias: str, scope: dict[str, str]) -> None:
    assert parse_column_key(column_key(alias, scope_key(scope))) == (alias, scope)


def test_xml_names() -> None:
    assert xml_name("product-name") == "product-name"
    assert xml_name("price[dim-market=seg-dk]") == "price_dim-market_seg-dk_"
    assert xml_name("1st") == "_1st" and xml_name("xmlish") == "_xmlish"


def test_every_data_type_has_a_codec_whose_text_reads_back() -> None:
    from skuport.records.codecs import CODECS, DataType, codec

    assert set(CODECS) == set(DataType)
    samples = {
        DataType.TEXT: "Ma Marque",
        DataType.TEXTAREA: "two\nlines",
        DataType.NUMBER: 129.99,
        DataType.INTEGER: 2**62,
        DataType.BOOLEAN: False,
        DataType.DATE: "2026-03-08",
        DataType.SELECT: "Navy",
        DataType.MULTISELECT: ["S", "M|L"],
        DataType.URL: "https://example.com/p/1",
    }
    rules = {"options": ["Navy", "S", "M|L"]}
    for data_type, value in samples.items():
        found = codec(data_type)
        assert found.check(value, rules) is None, data_type
        assert found.from_text(found.to_text(value)) == value, data_type
    assert codec(DataType.INTEGER).check(1.5, {}) == "must be an integer"
    assert codec(DataType.DATE).check("2026-02-30", {}) == "must be a real calendar date"
    assert codec(DataType.TEXT).check("a\x00b", {}) == "must not contain NUL characters"
