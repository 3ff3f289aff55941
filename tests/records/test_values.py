"""Unit tests of scoped-value validation, scope keys and ranking (no database)."""

from __future__ import annotations

import pytest

from skuport.errors import ValidationFailed
from skuport.records.scopes import parse_scope_key, scope_key
from skuport.records.values import (
    AttributeSpec,
    index_rows,
    scope_candidates,
    validate_values,
)

SEGMENTS = {"dim-language": {"seg-en", "seg-da", "seg-de"}, "dim-market": {"seg-dk", "seg-de"}}


def spec(alias: str, data_type: str, dims: tuple[str, ...] = (), **rules: object) -> AttributeSpec:
    return AttributeSpec(alias=alias, data_type=data_type, dimension_ids=dims, validation=rules)


def check(attribute: AttributeSpec, value: object, scope: dict[str, str] | None = None) -> list[dict]:
    return validate_values(
        {attribute.alias: [{"scope": scope or {}, "value": value}]},
        attributes={attribute.alias: attribute},
        segments=SEGMENTS,
    )[attribute.alias]


def problem(attribute: AttributeSpec, value: object, scope: dict[str, str] | None = None) -> str:
    with pytest.raises(ValidationFailed) as info:
        check(attribute, value, scope)
    assert info.value.status_code == 422
    assert info.value.code == "invalid_values"
    detail = info.value.details[0]
    assert detail["attribute"] == attribute.alias
    return str(detail["message"])


def test_scope_key_round_trip_is_sorted() -> None:
    scope = {"dim-market": "seg-dk", "dim-language": "seg-da"}
    assert scope_key(scope) == "dim-language=seg-da&dim-market=seg-dk"
    assert parse_scope_key(scope_key(scope)) == scope
    assert scope_key({}) == "" and parse_scope_key("") == {}


def test_candidates_most_specific_first_then_request_order_then_global() -> None:
    assert scope_candidates({"dim-market": "seg-dk", "dim-language": "seg-en"}) == [
        "dim-language=seg-en&dim-market=seg-dk",
        "dim-market=seg-dk",
        "dim-language=seg-en",
        "",
    ]
    assert scope_candidates({}) == [""]


@pytest.mark.parametrize(
    ("data_type", "rules", "good", "bad", "message"),
    [
        ("text", {}, "x", 5, "must be a string"),
        ("text", {"maxLength": 3}, "abc", "abcd", "at most 3 characters"),
        ("text", {"minLength": 2}, "ab", "a", "at least 2 characters"),
        ("text", {"pattern": r"[A-Z]{2}-\d+"}, "CW-001", "cw-001", "must match the pattern"),
        ("number", {}, 1.5, "1.5", "must be a number"),
        ("number", {}, 3, True, "must be a number"),
        ("number", {"min": 0}, 0, -0.01, "at least 0"),
        ("number", {"max": 10}, 10, 10.5, "at most 10"),
        ("integer", {}, 3, 3.5, "must be an integer"),
        ("boolean", {}, False, "false", "true or false"),
        ("date", {}, "2024-02-29", "2023-02-29", "real calendar date"),
        ("date", {}, "2024-01-15", "15/01/2024", "YYYY-MM-DD"),
        ("select", {"options": ["a", "b"]}, "a", "c", "must be one of: a, b"),
        ("multiselect", {"options": ["S", "M"]}, ["S", "M"], ["S", "XL"], "not options: XL"),
        ("multiselect", {"options": ["S", "M"]}, ["S"], ["S", "S"], "lists an option twice"),
        ("multiselect", {"options": ["S"]}, ["S"], "S", "must be a list of options"),
        ("url", {}, "https://example.com/p", "ftp://example.com", "absolute http(s) URL"),
    ],
)
def test_each_data_type_and_rule(
    data_type: str, rules: dict, good: object, bad: object, message: str
) -> None:
    attribute = spec("attr", data_type, **rules)
    assert check(attribute, good) == [{"scope": {}, "value": good}]
    assert message in problem(attribute, bad)


def test_scope_naming_a_dimension_the_attribute_does_not_have_is_refused() -> None:
    sku = spec("sku", "text")
    assert "only accepts the global scope" in problem(sku, "X", {"dim-language": "seg-da"})
    price = spec("price", "number", ("dim-market",))
    assert "not scoped by dimension 'dim-language'" in problem(price, 1, {"dim-language": "seg-da"})


def test_unknown_segment_is_refused_even_when_known_in_another_dimension() -> None:
    name = spec("name", "text", ("dim-language",))
    assert "'seg-dk' is not a segment of dimension 'dim-language'" in problem(
        name, "x", {"dim-language": "seg-dk"}
    )
    # seg-de exists in both dimensions: each accepts it.
    assert check(name, "x", {"dim-language": "seg-de"})[0]["scope"] == {"dim-language": "seg-de"}


def test_unknown_attribute_duplicate_scope_and_null_are_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_values({"nope": [{"scope": {}, "value": 1}]}, attributes={}, segments=SEGMENTS)
    assert "not an attribute of this schema" in info.value.message
    name = spec("name", "text", ("dim-language",))
    with pytest.raises(ValidationFailed) as info:
        validate_values(
            {"name": [{"scope": {}, "value": "a"}, {"scope": {}, "value": "b"}]},
            attributes={"name": name},
            segments=SEGMENTS,
        )
    assert "two values for the same scope" in info.value.details[0]["message"]
    assert "null" in problem(name, None)


def test_all_problems_are_reported_at_once() -> None:
    name = spec("name", "text", ("dim-language",), maxLength=2)
    with pytest.raises(ValidationFailed) as info:
        validate_values(
            {"name": [{"scope": {}, "value": "long"}, {"scope": {"dim-language": "seg-xx"}, "value": "a"}]},
            attributes={"name": name},
            segments=SEGMENTS,
        )
    assert len(info.value.details) == 2


def test_empty_values_are_dropped_and_scopes_sorted() -> None:
    attribute = spec("t", "text", ("dim-language", "dim-market"))
    out = validate_values(
        {
            "t": [
                {"scope": {}, "value": ""},
                {"scope": {"dim-market": "seg-dk", "dim-language": "seg-da"}, "value": "v"},
            ]
        },
        attributes={"t": attribute},
        segments=SEGMENTS,
    )
    assert out == {"t": [{"scope": {"dim-language": "seg-da", "dim-market": "seg-dk"}, "value": "v"}]}
    assert list(out["t"][0]["scope"]) == ["dim-language", "dim-market"]


def test_index_rows_one_per_list_element_with_numbers() -> None:
    rows = index_rows(
        {
            "price": [{"scope": {"dim-market": "seg-dk"}, "value": 969}],
            "sizes": [{"scope": {}, "value": ["S", "M"]}],
            "in-stock": [{"scope": {}, "value": True}],
        }
    )
    assert rows == [
        ("price", "dim-market=seg-dk", "969", 969.0),
        ("sizes", "", "S", None),
        ("sizes", "", "M", None),
        ("in-stock", "", "true", None),
    ]
