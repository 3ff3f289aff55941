"""Records, their value index, category assignments, audit trail and tombstones."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skuport.db import Base, UTCDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
PK = BigInteger().with_variant(Integer(), "sqlite")


class Record(Base):
    """A product (or a variant of one). ``values_json`` is the seed's ``values`` map, as JSON."""

    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_schema_pk", "schema_id", "pk"),
        Index("ix_records_updated_at", "updated_at"),
        Index("ix_records_parent_id", "parent_id"),
        Index("ix_records_state", "lifecycle_state_id"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(80), unique=True)
    schema_id: Mapped[str] = mapped_column(ForeignKey("schemas.id", ondelete="RESTRICT"))
    parent_id: Mapped[str | None] = mapped_column(String(80), default=None)
    lifecycle_state_id: Mapped[str | None] = mapped_column(String(80), default=None)
    values_json: Mapped[str] = mapped_column(Text, default="{}")
    cells_json: Mapped[str] = mapped_column(Text, default="{}")
    """The same values keyed by scope (see ``values.cells_of``), read by the export pipeline."""
    cells_text: Mapped[str | None] = mapped_column(Text, default=None)
    """The cells in the schema's slot order (see ``records.cells``), read by the frame engine; None where
    the positional text cannot hold them."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80), default=None)
    updated_by: Mapped[str | None] = mapped_column(String(80), default=None)


class RecordValue(Base):
    """Index of scalar values for filtering; one row per (record, attribute, scope, element)."""

    __tablename__ = "record_values"
    __table_args__ = (
        Index("ix_record_values_num", "attribute", "value_num"),
        Index("ix_record_values_text", "attribute", "value_text"),
        Index("ix_record_values_record", "record_pk"),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.pk", ondelete="CASCADE"))
    attribute: Mapped[str] = mapped_column(String(120))
    scope_key: Mapped[str] = mapped_column(String(400))
    value_text: Mapped[str | None] = mapped_column(Text, default=None)
    value_num: Mapped[float | None] = mapped_column(Float, default=None)


class RecordCategory(Base):
    """Assignment of a record to a catalog category."""

    __tablename__ = "record_categories"
    __table_args__ = (Index("ix_record_categories_category", "category_id"),)

    record_pk: Mapped[int] = mapped_column(ForeignKey("records.pk", ondelete="CASCADE"), primary_key=True)
    category_id: Mapped[str] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True
    )
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """One append-only entry of a record's audit trail."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entity_seq", "entity_id", "seq"),)

    seq: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(80), unique=True)
    entity_id: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[str | None] = mapped_column(String(80), default=None)
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(20))
    changes: Mapped[list[Any]] = mapped_column(JSON, default=list)


class RecordTombstone(Base):
    """A deleted record, kept so delta exports can announce the deletion."""

    __tablename__ = "record_tombstones"
    __table_args__ = (Index("ix_record_tombstones_deleted_at", "deleted_at"),)

    record_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    schema_id: Mapped[str] = mapped_column(String(80))
    parent_id: Mapped[str | None] = mapped_column(String(80), default=None)
    deleted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_by: Mapped[str | None] = mapped_column(String(80), default=None)


class CellSlot(Base):
    """The number of one (attribute alias, scope key) pair in a schema's positional cells text.

    Append-only: a slot never changes meaning, so a record's ``cells_text`` reads the same forever (see
    ``records.cells``). No foreign key: slots are added on a connection of their own on PostgreSQL.
    """

    __tablename__ = "cell_slots"
    __table_args__ = (UniqueConstraint("schema_id", "alias", "scope_key", name="uq_cell_slots_key"),)

    schema_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    alias: Mapped[str] = mapped_column(String(120))
    scope_key: Mapped[str] = mapped_column(String(400))
