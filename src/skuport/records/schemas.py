"""API schemas of records (seed 002)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from skuport.api import CamelModel, StrictCamelModel, Timestamp


class ScopedValue(StrictCamelModel):
    """A value with the dimension scope it applies to; ``{}`` is global."""

    scope: dict[str, str] = Field(default_factory=dict, description="Dimension id -> segment id.")
    value: Any = Field(description="The value; its type follows the attribute's dataType.")


ValuesMap = dict[str, list[ScopedValue]]


class RecordCreate(StrictCamelModel):
    """A new record."""

    schema_id: str = Field(min_length=1, max_length=80)
    values: ValuesMap
    parent_id: str | None = Field(default=None, description="Parent record id: this record is a variant.")


class RecordUpdate(StrictCamelModel):
    """Replacement values for the attributes named; others stay unchanged."""

    values: ValuesMap


class ValuesPatch(StrictCamelModel):
    """Replacement scoped values for a single attribute."""

    scoped_values: list[ScopedValue]


class RecordRead(CamelModel):
    """A record with all its scoped values."""

    id: str
    schema_id: str
    parent_id: str | None = None
    lifecycle_state_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
    created_by: str | None = None
    updated_by: str | None = None
    values: dict[str, list[ScopedValue]]


class RecordList(CamelModel):
    """A page of records."""

    items: list[RecordRead]
    total: int
    offset: int
    limit: int


class MissingValue(CamelModel):
    """A required attribute with no value in a scope."""

    attribute_alias: str
    scope: dict[str, str]


class Completeness(CamelModel):
    """How complete a record is for a lifecycle state."""

    entity_id: str
    lifecycle_state_id: str | None
    filled: int
    total: int
    percentage: int
    missing: list[MissingValue]


class TransitionRequest(StrictCamelModel):
    """Which transition to execute."""

    transition_id: str = Field(min_length=1, max_length=80)


class AvailableTransition(CamelModel):
    """A transition of the record's workflow."""

    id: str
    from_state_id: str
    to_state_id: str
    name: str
    allowed_role_ids: list[str]
    requires_completeness: bool


class Change(CamelModel):
    """One attribute value change in an audit entry."""

    attribute_alias: str
    scope: dict[str, str]
    old_value: Any = None
    new_value: Any = None


class AuditEntryRead(CamelModel):
    """One entry of a record's audit trail."""

    id: str
    entity_id: str
    user_id: str | None
    timestamp: Timestamp
    action: str
    changes: list[Change]


class CategoryAssignment(CamelModel):
    """A record's membership in a catalog category."""

    entity_id: str
    category_id: str
    sort_order: int


class CategoryAssign(StrictCamelModel):
    """Assign a record to a category (or change its sort order there)."""

    category_id: str = Field(min_length=1, max_length=80)
    sort_order: int = Field(default=0, ge=0, le=1_000_000)


class SortOrder(StrictCamelModel):
    """A new sort order."""

    sort_order: int = Field(ge=0, le=1_000_000)
