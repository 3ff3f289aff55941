"""Synthetic demo records are stored exactly as the records service would store them."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from skuport.catalog.models import Attribute, Dimension
from skuport.db import session_scope
from skuport.demo_synthetic import generate
from skuport.records.models import Record, RecordCategory, RecordValue
from skuport.records.values import AttributeSpec, cells_of, index_rows, validate_values


def test_generate_realistic_normalised_records(world: None) -> None:
    made = generate(count=300, seed=7, echo=lambda line: None)
    assert made == 300
    with session_scope() as s:
        records = s.scalars(select(Record).order_by(Record.pk)).all()
        specs = {
            a.alias: AttributeSpec(
                alias=a.alias,
                data_type=a.data_type,
                dimension_ids=tuple(a.dimension_ids),
                validation=a.validation,
            )
            for a in s.scalars(select(Attribute).where(Attribute.schema_id == "schema-apparel"))
        }
        segments = {d.id: {x.id for x in d.segments} for d in s.scalars(select(Dimension))}
        index_count = s.scalar(select(func.count()).select_from(RecordValue))
        assigned = s.scalar(select(func.count(func.distinct(RecordCategory.record_pk))))
    assert len(records) == 300 and len({r.id for r in records}) == 300
    assert all(r.id.startswith("ent-") and len(r.id) == 14 for r in records)
    products = [r for r in records if r.parent_id is None]
    variants = [r for r in records if r.parent_id is not None]
    assert 0.2 < len(variants) / len(records) < 0.6
    assert {v.parent_id for v in variants} <= {p.id for p in products}
    assert {r.lifecycle_state_id for r in records} == {"state-draft", "state-review", "state-published"}
    assert assigned == len(products)
    expected_index = 0
    for record in records:
        values = orjson.loads(record.values_json)
        assert orjson.loads(record.cells_json) == cells_of(values)
        assert validate_values(values, attributes=specs, segments=segments) == values  # already normalised
        expected_index += len(index_rows(values))
    assert index_count == expected_index
    full = orjson.loads(products[0].values_json)
    assert {"product-name", "description", "price", "in-stock", "product-url"} <= set(full)
    assert len(full["product-name"]) == 3 and len(full["price"]) == 3
