"""The column plan on its own: naming and scope resolution, both the generated and the generic loop."""

from __future__ import annotations

import orjson

from skuport.exporting.conventions import column_key
from skuport.exporting.plan import AttributeInfo, ColumnPlan, Kind, attribute_scopes
from skuport.records.values import cells_of

SEGMENTS = {"dim-language": ["seg-en", "seg-da"], "dim-market": ["seg-dk", "seg-de"]}
ATTRS = [
    AttributeInfo(alias="name", data_type="text", dimension_ids=("dim-language",), labels={"seg-da": "Navn"}),
    AttributeInfo(alias="price", data_type="number", dimension_ids=("dim-market",)),
    AttributeInfo(alias="promo", data_type="text", dimension_ids=("dim-language", "dim-market")),
    AttributeInfo(alias="tags", data_type="multiselect", dimension_ids=()),
    AttributeInfo(alias="ok", data_type="boolean", dimension_ids=()),
]


def raw(
    values: dict[str, list[dict[str, object]]], pk: int = 1, *, cells: bool = False
) -> tuple[object, ...]:
    """A raw row as the selection yields it: the cells form for scoped plans, else the list form."""
    stored = cells_of(values) if cells else values
    return (
        pk,
        f"ent-{pk}",
        None,
        "schema-x",
        "state-draft",
        orjson.dumps(stored).decode(),
        "2026-01-01T00:00:00.000Z",
        "2026-01-02T00:00:00.000Z",
    )


VALUES = {
    "name": [{"scope": {"dim-language": "seg-da"}, "value": "Navn"}, {"scope": {}, "value": "Name"}],
    "price": [{"scope": {"dim-market": "seg-dk"}, "value": 7}, {"scope": {}, "value": 1}],
    "promo": [
        {"scope": {"dim-market": "seg-dk"}, "value": "dk"},
        {"scope": {"dim-language": "seg-en", "dim-market": "seg-dk"}, "value": "en-dk"},
        {"scope": {"dim-language": "seg-en"}, "value": "en"},
        {"scope": {"dim-channel": "web"}, "value": "stray"},
    ],
    "tags": [{"scope": {}, "value": ["a", "b"]}],
    "ok": [{"scope": {"dim-market": "seg-dk"}, "value": True}],  # not a dimension of 'ok': ignored
}


def resolved(scope: dict[str, str]) -> dict[str, object]:
    plan = ColumnPlan(attributes=ATTRS, segments=SEGMENTS, dimension_scope=scope)
    assert plan.uses_cells
    (row,) = plan.flatten([raw(VALUES, cells=True)])
    return dict(zip(plan.headers, row, strict=True))


def test_resolution_order() -> None:
    row = resolved({"dim-language": "seg-en", "dim-market": "seg-dk"})
    assert row["promo"] == "en-dk" and row["name"] == "Name" and row["price"] == 7
    assert row["tags"] == ["a", "b"] and row["ok"] is None
    assert resolved({"dim-market": "seg-dk", "dim-language": "seg-da"})["promo"] == "dk"
    # equally specific candidates: the dimension named first in the request wins
    assert resolved({"dim-language": "seg-en", "dim-market": "seg-de"})["promo"] == "en"
    assert resolved({"dim-language": "seg-da"})["name"] == "Navn"
    assert resolved({"dim-language": "seg-da"})["promo"] is None
    assert resolved({})["price"] == 1 and resolved({})["promo"] is None


def test_unscoped_columns_and_values() -> None:
    plan = ColumnPlan(attributes=ATTRS, segments=SEGMENTS, header_language="seg-da", dry_data=True)
    keys = [c.key for c in plan.columns]
    assert keys[:2] == ["schemaId", "lifecycleStateId"]
    assert keys[2:5] == ["name", "name[dim-language=seg-en]", "name[dim-language=seg-da]"]
    assert "promo[dim-language=seg-da&dim-market=seg-de]" in keys
    assert plan.headers[2:5] == ["Navn", "Navn[dim-language=seg-en]", "Navn[dim-language=seg-da]"]
    (row,) = plan.flatten([raw(VALUES, cells=True)])
    got = dict(zip(keys, row, strict=True))
    assert got["name"] == "Name" and got["name[dim-language=seg-da]"] == "Navn"
    assert got["name[dim-language=seg-en]"] is None
    assert got["promo[dim-language=seg-en&dim-market=seg-dk]"] == "en-dk" and got["promo"] is None
    assert got["ok"] is None and plan.columns[keys.index("tags")].kind == Kind.LIST


def test_tombstone_and_extra_columns() -> None:
    plan = ColumnPlan(
        attributes=ATTRS[:1],
        segments=SEGMENTS,
        dimension_scope={"dim-language": "seg-en"},
        deleted_column=True,
        categories_column=True,
    )
    assert plan.headers == [
        "id",
        "parentId",
        "schemaId",
        "lifecycleStateId",
        "createdAt",
        "updatedAt",
        "_deleted",
        "name",
        "categories",
    ]
    (row,) = plan.flatten([raw(VALUES, pk=5, cells=True)], {5: ["cat-a"]})
    assert row[6] is False and row[7] == "Name" and row[8] == ["cat-a"]
    assert plan.tombstone_row(record_id="ent-9", parent_id=None, schema_id="schema-x") == [
        "ent-9",
        None,
        "schema-x",
        None,
        None,
        None,
        True,
        None,
        None,
    ]


def test_attribute_scopes_and_keys() -> None:
    scopes = attribute_scopes(ATTRS[2], SEGMENTS)
    assert scopes[0] == {} and len(scopes) == 1 + 2 + 2 + 4
    assert column_key("price", "dim-market=seg-dk") == "price[dim-market=seg-dk]"
    assert column_key("price", "") == "price"
