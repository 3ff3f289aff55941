"""The catalogue model records stand on: dimensions, schemas, workflows, catalogs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from skuport.db import Base, UTCDateTime, utcnow


class Dimension(Base):
    """An axis values can be scoped by: language, market, channel."""

    __tablename__ = "dimensions"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    segments: Mapped[list[Segment]] = relationship(
        back_populates="dimension",
        cascade="all, delete-orphan",
        order_by="Segment.sort_order",
        lazy="selectin",
    )


class Segment(Base):
    """One value of a dimension, e.g. seg-da of dim-language; ids are unique within a dimension."""

    __tablename__ = "segments"

    dimension_id: Mapped[str] = mapped_column(
        ForeignKey("dimensions.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    dimension: Mapped[Dimension] = relationship(back_populates="segments")


class Workflow(Base):
    """A lifecycle: states and the transitions between them."""

    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    states: Mapped[list[LifecycleState]] = relationship(
        cascade="all, delete-orphan", order_by="LifecycleState.sort_order", lazy="selectin"
    )
    transitions: Mapped[list[Transition]] = relationship(
        cascade="all, delete-orphan", order_by="Transition.sort_order", lazy="selectin"
    )


class LifecycleState(Base):
    """A state such as Draft; its required attributes feed completeness."""

    __tablename__ = "lifecycle_states"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    is_initial: Mapped[bool] = mapped_column(Boolean, default=False)
    required_attributes: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Transition(Base):
    """A permitted move between two states, gated by roles and completeness."""

    __tablename__ = "transitions"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    from_state_id: Mapped[str] = mapped_column(String(80))
    to_state_id: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    allowed_role_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    requires_completeness: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Schema(Base):
    """A product family: the attributes its records may hold and its workflow."""

    __tablename__ = "schemas"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    workflow_id: Mapped[str | None] = mapped_column(
        ForeignKey("workflows.id", ondelete="RESTRICT"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attributes: Mapped[list[Attribute]] = relationship(
        cascade="all, delete-orphan", order_by="Attribute.sort_order", lazy="selectin"
    )


class Attribute(Base):
    """One attribute of a schema, addressed by its alias."""

    __tablename__ = "attributes"
    __table_args__ = (UniqueConstraint("schema_id", "alias", name="uq_attributes_schema_alias"),)

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    schema_id: Mapped[str] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(200))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_type: Mapped[str] = mapped_column(String(20))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    dimension_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    validation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    guard: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    option_labels: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    """A select's or multiselect's option -> segment id -> label (exports with valueLabels write them)."""


class Catalog(Base):
    """A tree of categories records are assigned to (webshop navigation, channel)."""

    __tablename__ = "catalogs"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Category(Base):
    """A node of a catalog's tree."""

    __tablename__ = "categories"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"), default=None, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
