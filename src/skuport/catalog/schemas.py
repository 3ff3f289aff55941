"""API schemas of the catalogue model: dimensions, workflows, schemas and attributes, catalogs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
)

from skuport.api import CamelModel, StrictCamelModel, Timestamp
from skuport.ids import check_client_id
from skuport.records.codecs import DataType

ALIAS_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it up front instead of failing in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
Description = Annotated[str, StringConstraints(max_length=5000), NoNul]
Alias = Annotated[str, StringConstraints(pattern=ALIAS_PATTERN, min_length=1, max_length=120)]
RefId = Annotated[str, StringConstraints(min_length=1, max_length=80), NoNul]
SortOrder = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]
# JSON numbers that survive storage as JSON (64-bit safe integers or finite floats).
SafeInt = Annotated[StrictInt, Field(ge=-(2**53), le=2**53)]
Number = SafeInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]
Length = Annotated[StrictInt, Field(ge=0, le=10_000_000)]
Option = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
Label = Annotated[str, StringConstraints(max_length=200), NoNul]
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=1000), NoNul]
GuardValue = (
    StrictBool | Number | Annotated[StrictStr, StringConstraints(max_length=1000), NoNul] | list[Option]
)


def _client_id(value: str | None, prefix: str) -> str | None:
    return None if value is None else check_client_id(value, prefix)


# Dimensions and segments


class SegmentIn(StrictCamelModel):
    """A segment of a dimension, as sent."""

    id: str = Field(description="Segment id such as 'seg-da'; unique within the dimension.")
    name: Name
    sort_order: SortOrder | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_client_id(value, "seg")


class SegmentRead(CamelModel):
    """A segment of a dimension."""

    id: str
    name: str
    sort_order: int


class DimensionCreate(StrictCamelModel):
    """A new dimension with its segments."""

    id: str | None = Field(default=None, description="Optional id such as 'dim-language'.")
    name: Name
    sort_order: SortOrder | None = None
    segments: list[SegmentIn] = Field(default_factory=list, max_length=1000)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return _client_id(value, "dim")


class DimensionUpdate(StrictCamelModel):
    """Changes to a dimension; absent fields stay, a given segment list replaces the old one."""

    name: Name | None = None
    sort_order: SortOrder | None = None
    segments: list[SegmentIn] | None = Field(default=None, max_length=1000)


class DimensionRead(CamelModel):
    """A dimension and its segments."""

    id: str
    name: str
    sort_order: int
    segments: list[SegmentRead]

    @field_validator("segments")
    @classmethod
    def _ordered(cls, value: list[SegmentRead]) -> list[SegmentRead]:
        return sorted(value, key=lambda s: (s.sort_order, s.id))


# Workflows


class StateIn(StrictCamelModel):
    """A lifecycle state, as sent."""

    id: str = Field(description="State id such as 'state-draft'.")
    name: Name
    is_initial: StrictBool = False
    required_attributes: list[Alias] = Field(default_factory=list, max_length=1000)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_client_id(value, "state")


class TransitionIn(StrictCamelModel):
    """A transition between two states of the workflow, as sent."""

    id: str | None = Field(default=None, description="Optional id such as 'trans-draft-to-review'.")
    from_state_id: RefId
    to_state_id: RefId
    name: Name
    allowed_role_ids: list[RefId] = Field(default_factory=list, max_length=100)
    requires_completeness: StrictBool = False

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return _client_id(value, "trans")


class WorkflowCreate(StrictCamelModel):
    """A new workflow: its states (one initial) and transitions."""

    id: str | None = Field(default=None, description="Optional id such as 'wf-apparel'.")
    name: Name
    states: list[StateIn] = Field(min_length=1, max_length=200)
    transitions: list[TransitionIn] = Field(default_factory=list, max_length=1000)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return _client_id(value, "wf")


class WorkflowUpdate(StrictCamelModel):
    """Changes to a workflow; given state or transition lists replace the old ones."""

    name: Name | None = None
    states: list[StateIn] | None = Field(default=None, min_length=1, max_length=200)
    transitions: list[TransitionIn] | None = Field(default=None, max_length=1000)


class StateRead(CamelModel):
    """A lifecycle state."""

    id: str
    name: str
    is_initial: bool
    required_attributes: list[str]


class TransitionRead(CamelModel):
    """A transition, in seed 002's shape."""

    id: str
    from_state_id: str
    to_state_id: str
    name: str
    allowed_role_ids: list[str]
    requires_completeness: bool


class WorkflowRead(CamelModel):
    """A workflow with its states and transitions."""

    id: str
    name: str
    states: list[StateRead]
    transitions: list[TransitionRead]


# Schemas and attributes


class ValidationRules(StrictCamelModel):
    """Validation rules of an attribute; which ones apply depends on the data type."""

    min: Number | None = None
    max: Number | None = None
    min_length: Length | None = None
    max_length: Length | None = None
    pattern: Pattern | None = None
    options: list[Option] | None = Field(default=None, max_length=1000)
    unique: StrictBool | None = Field(
        default=None,
        description="No two records of the schema may hold the same value (e.g. a SKU); "
        "only for attributes without dimensions.",
    )

    def as_dict(self) -> dict[str, Any]:
        """The rules as stored: camelCase keys, only those that are set."""
        return self.model_dump(by_alias=True, exclude_none=True)


class Guard(StrictCamelModel):
    """The attribute is shown (and required) only while another attribute holds ``value``."""

    attribute_alias: Alias
    value: GuardValue

    def as_dict(self) -> dict[str, Any]:
        """The guard as stored."""
        return self.model_dump(by_alias=True)


class AttributeCreate(StrictCamelModel):
    """A new attribute of a schema."""

    alias: Alias = Field(description="Lowercase key such as 'product-name'; unique within the schema.")
    name: Name
    labels: dict[RefId, Label] = Field(
        default_factory=dict, max_length=500, description="Display labels keyed by language segment id."
    )
    data_type: DataType
    required: StrictBool = False
    dimension_ids: list[RefId] = Field(default_factory=list, max_length=20)
    validation: ValidationRules = Field(default_factory=ValidationRules)
    guard: Guard | None = None
    sort_order: SortOrder | None = None
    option_labels: dict[Option, dict[RefId, Label]] = Field(
        default_factory=dict,
        max_length=1000,
        description="Labels of a select's or multiselect's options, by option and segment id "
        '(exports with valueLabels write them), e.g. {"Red": {"seg-da": "Rød", "seg-de": "Rot"}}.',
    )


class AttributeUpdate(StrictCamelModel):
    """Changes to an attribute; absent fields stay as they are (``guard: null`` removes the guard)."""

    name: Name | None = None
    labels: dict[RefId, Label] | None = Field(default=None, max_length=500)
    data_type: DataType | None = None
    required: StrictBool | None = None
    dimension_ids: list[RefId] | None = Field(default=None, max_length=20)
    validation: ValidationRules | None = None
    guard: Guard | None = None
    sort_order: SortOrder | None = None
    option_labels: dict[Option, dict[RefId, Label]] | None = Field(default=None, max_length=1000)


class AttributeRead(CamelModel):
    """An attribute of a schema."""

    alias: str
    name: str
    labels: dict[str, str]
    data_type: str
    required: bool
    dimension_ids: list[str]
    validation: dict[str, Any]
    guard: dict[str, Any] | None
    sort_order: int
    option_labels: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("option_labels", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return value or {}


class SchemaCreate(StrictCamelModel):
    """A new schema with its attributes."""

    id: str | None = Field(default=None, description="Optional id such as 'schema-apparel'.")
    name: Name
    description: Description | None = None
    workflow_id: RefId | None = None
    attributes: list[AttributeCreate] = Field(default_factory=list, max_length=1000)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return _client_id(value, "schema")


class SchemaUpdate(StrictCamelModel):
    """Changes to a schema; a given attribute list replaces the old one (matched by alias)."""

    name: Name | None = None
    description: Description | None = None
    workflow_id: RefId | None = None
    attributes: list[AttributeCreate] | None = Field(default=None, max_length=1000)


class SchemaRead(CamelModel):
    """A schema with its attributes."""

    id: str
    name: str
    description: str | None
    workflow_id: str | None
    attributes: list[AttributeRead]
    created_at: Timestamp
    updated_at: Timestamp

    @field_validator("attributes")
    @classmethod
    def _ordered(cls, value: list[AttributeRead]) -> list[AttributeRead]:
        return sorted(value, key=lambda a: (a.sort_order, a.alias))


# Catalogs and categories


class CatalogCreate(StrictCamelModel):
    """A new catalog."""

    id: str | None = Field(default=None, description="Optional id such as 'catalog-webshop'.")
    name: Name
    description: Description | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return _client_id(value, "catalog")


class CatalogUpdate(StrictCamelModel):
    """Changes to a catalog; absent fields stay as they are."""

    name: Name | None = None
    description: Description | None = None


class CatalogRead(CamelModel):
    """A catalog."""

    id: str
    name: str
    description: str | None
    created_at: Timestamp


class CategoryCreate(StrictCamelModel):
    """A new category of a catalog."""

    id: str | None = Field(default=None, description="Optional id such as 'cat-outerwear'.")
    name: Name
    parent_id: RefId | None = None
    sort_order: SortOrder | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return _client_id(value, "cat")


class CategoryUpdate(StrictCamelModel):
    """Changes to a category; ``parentId: null`` moves it to the top level."""

    name: Name | None = None
    parent_id: RefId | None = None
    sort_order: SortOrder | None = None


class CategoryRead(CamelModel):
    """A category; ``parentId`` is null at the top level."""

    id: str
    catalog_id: str
    parent_id: str | None
    name: str
    sort_order: int


class CategoryNode(CategoryRead):
    """A category with its children (``?tree=true``)."""

    children: list[CategoryNode]


def category_tree(categories: Iterable[object]) -> list[CategoryNode]:
    """Nest categories listed parents first; a category whose parent is not listed becomes a root."""
    nodes: dict[str, CategoryNode] = {}
    roots: list[CategoryNode] = []
    for category in categories:
        node = CategoryNode(**CategoryRead.model_validate(category).model_dump(), children=[])
        nodes[node.id] = node
        parent = nodes.get(node.parent_id) if node.parent_id else None
        (parent.children if parent is not None else roots).append(node)
    return roots
