"""Test records written straight to the tables (Record + RecordValue rows consistent with index_rows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from skuport.catalog.models import Attribute, Dimension
from skuport.db import utcnow
from skuport.ids import new_id
from skuport.records.cells import store_cells
from skuport.records.models import Record, RecordCategory, RecordTombstone, RecordValue
from skuport.records.values import AttributeSpec, cells_of, index_rows, validate_values


def g(value: Any) -> list[dict[str, Any]]:
    """A global value."""
    return [{"scope": {}, "value": value}]


def make_record(
    session: Session,
    values: Mapping[str, list[dict[str, Any]]],
    *,
    schema_id: str = "schema-apparel",
    record_id: str | None = None,
    parent_id: str | None = None,
    state: str | None = "state-draft",
    categories: Sequence[str] = (),
    updated_at: dt.datetime | None = None,
) -> Record:
    """Insert a record with validated, normalised values, its value-index rows and category assignments."""
    specs = {
        a.alias: AttributeSpec(
            alias=a.alias,
            data_type=a.data_type,
            dimension_ids=tuple(a.dimension_ids or ()),
            validation=a.validation or {},
        )
        for a in session.scalars(select(Attribute).where(Attribute.schema_id == schema_id))
    }
    segments = {d.id: {s.id for s in d.segments} for d in session.scalars(select(Dimension))}
    clean = validate_values(values, attributes=specs, segments=segments)
    clean = {alias: scoped for alias, scoped in clean.items() if scoped}
    now = updated_at or utcnow()
    record = Record(
        id=record_id or new_id("ent"),
        schema_id=schema_id,
        parent_id=parent_id,
        lifecycle_state_id=state,
        values_json=orjson.dumps(clean).decode(),
        cells_json=orjson.dumps(cells_of(clean)).decode(),
        cells_text=store_cells(session, schema_id, cells_of(clean)),
        created_at=now,
        updated_at=now,
        created_by="user-admin",
        updated_by="user-admin",
    )
    session.add(record)
    session.flush()
    for alias, key, text, number in index_rows(clean):
        session.add(
            RecordValue(
                record_pk=record.pk, attribute=alias, scope_key=key, value_text=text, value_num=number
            )
        )
    for order, category_id in enumerate(categories):
        session.add(RecordCategory(record_pk=record.pk, category_id=category_id, sort_order=order))
    session.flush()
    return record


def make_tombstone(
    session: Session,
    record_id: str,
    *,
    deleted_at: dt.datetime,
    schema_id: str = "schema-apparel",
    parent_id: str | None = None,
) -> None:
    """Record that a record was deleted at ``deleted_at``."""
    session.add(
        RecordTombstone(
            record_id=record_id,
            schema_id=schema_id,
            parent_id=parent_id,
            deleted_at=deleted_at,
            deleted_by="user-admin",
        )
    )
    session.flush()


def add_attribute(
    session: Session,
    alias: str,
    data_type: str,
    dimension_ids: list[str],
    *,
    schema_id: str = "schema-apparel",
    labels: dict[str, str] | None = None,
    validation: dict[str, Any] | None = None,
    option_labels: dict[str, dict[str, str]] | None = None,
) -> None:
    """Add an attribute to a schema (e.g. one scoped by two dimensions)."""
    session.add(
        Attribute(
            id=new_id("attr"),
            schema_id=schema_id,
            alias=alias,
            name=alias,
            labels=labels or {},
            data_type=data_type,
            required=False,
            dimension_ids=dimension_ids,
            validation=validation or {},
            option_labels=option_labels or {},
            sort_order=100,
        )
    )
    session.flush()
