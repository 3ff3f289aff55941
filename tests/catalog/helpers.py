"""Data the catalogue tests need that the catalogue API does not create: records holding values."""

from __future__ import annotations

from skuport.db import session_scope
from skuport.ids import new_id
from skuport.records.models import Record, RecordCategory, RecordValue


def add_record(
    schema_id: str,
    values: list[tuple[str, str, str]],
    *,
    state: str | None = "state-draft",
    categories: tuple[str, ...] = (),
) -> str:
    """Insert a record with index rows (attribute, scope key, text); return its id."""
    record_id = new_id("ent")
    with session_scope() as session:
        record = Record(id=record_id, schema_id=schema_id, lifecycle_state_id=state, values_json="{}")
        session.add(record)
        session.flush()
        for attribute, key, text in values:
            session.add(RecordValue(record_pk=record.pk, attribute=attribute, scope_key=key, value_text=text))
        for category_id in categories:
            session.add(RecordCategory(record_pk=record.pk, category_id=category_id))
    return record_id


def assignment_count(category_id: str) -> int:
    """How many records are assigned to the category."""
    with session_scope() as session:
        return session.query(RecordCategory).filter(RecordCategory.category_id == category_id).count()
