"""The one selection: what an export reads and how it writes its file, for every caller.

Export jobs, one-off exports, ``skuport export`` and the console all describe an export with these
options and turn them into the pipeline's :class:`~skuport.exporting.spec.ExportSpec` here, in one
place. The pipeline checks them against the catalogue (unknown format, scope, field, filter, header
language, include: a 422 naming the option by its API name).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from skuport.api import Flag, StrictCamelModel
from skuport.exporting.formats import FORMATS
from skuport.exporting.formats.csv import CsvDialect
from skuport.exporting.spec import ExportSpec

ExportFormat = StrEnum("ExportFormat", {name.upper(): name for name in FORMATS})  # type: ignore[misc]
"""The file formats, from the format registry (a new format needs no second list)."""
ExportFormat.__doc__ = "File formats an export can produce."


class Include(StrEnum):
    """Related data an export can carry along with each record (seed 004's ``includes``)."""

    CATEGORIES = "categories"
    VARIANTS = "variants"
    COMPLETENESS = "completeness"
    LIFECYCLE_STATE = "lifecycleState"


ALWAYS_INCLUDED = {
    "lifecycleState": "lifecycleStateId is a column of every export (added to fields)",
    "variants": "variants are rows of their own unless includeVariants is false",
}
"""Includes every export file already carries; the rest go to the pipeline, which decides."""

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Scalar = (
    Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
    | bool
    | int
    | Annotated[float, Field(allow_inf_nan=False)]
)
"""A constant or default of a column: text (not empty: an empty cell is no value), a finite number or a
boolean."""


class ColumnSpec(StrictCamelModel):
    """One column of an export that names its columns: an attribute (in the export's scope, or its own),
    a record field or a constant, under the header the file needs."""

    header: Name = Field(description="The column's header (unique in the file).")
    attribute: Name | None = Field(default=None, description="Attribute alias whose value the column holds.")
    scope: dict[Name, Name] | None = Field(
        default=None,
        description="Scope of this column over the export's dimensionScope, "
        'e.g. {"dim-language": "seg-en"}.',
    )
    field: Name | None = Field(
        default=None,
        description="A record field: id, parentId, schemaId, lifecycleStateId, createdAt, updatedAt, "
        "categories.",
    )
    value: Scalar | None = Field(default=None, description="A constant every row holds.")
    default: Scalar | None = Field(
        default=None, description="What an attribute column holds where the record has no value."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ColumnSpec:
        given = [name for name in ("attribute", "field", "value") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"column '{self.header}' needs exactly one of attribute, field or value"
                + (f" (it has {' and '.join(given)})" if given else "")
            )
        if self.attribute is None and (self.scope is not None or self.default is not None):
            raise ValueError(f"column '{self.header}': scope and default belong to an attribute column")
        return self


class Selection(StrictCamelModel):
    """Which records an export reads, which columns it writes, in which scope and format."""

    format: str = Field(default="csv", description=f"Output format: {', '.join(FORMATS)}.")
    schema_id: Name | None = Field(default=None, description="Only records of this schema.")
    catalog_id: Name | None = Field(
        default=None, description="Only records assigned to a category of this catalog."
    )
    include_variants: Flag = Field(default=True, description="Export variants as rows of their own.")
    lifecycle_state_ids: list[Name] = Field(
        default_factory=list, description="Only records in one of these states."
    )
    filters: dict[str, Any] | None = Field(
        default=None,
        description='The GET /records filter syntax: {"brand": "Ma Marque"}, '
        '{"price": {"gte": 100}}, {"sku_eq": "CW-001"}.',
        examples=[{"brand": "Ma Marque"}],
    )
    fields: list[Name] | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Attribute aliases (or record fields) to include, in this order; all when omitted.",
        examples=[["ean", "product-name", "price"]],
    )
    includes: list[Include] = Field(
        default_factory=list,
        description="Related data to add to each record: categories (a column of "
        "category ids), completeness (percentage for the record's state); lifecycleState and variants are "
        "always there (lifecycleStateId column, variant rows).",
    )
    columns: list[ColumnSpec] | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="The file's columns, in this order, instead of fields: attributes under your headers "
        "(each in the export's dimensionScope or its own scope), record fields, constants.",
        examples=[
            [
                {"header": "ID", "field": "id"},
                {"header": "title_da", "attribute": "product-name", "scope": {"dim-language": "seg-da"}},
                {"header": "title_en", "attribute": "product-name", "scope": {"dim-language": "seg-en"}},
                {"header": "channel", "value": "webshop"},
            ]
        ],
    )
    dimension_scope: dict[Name, Name | list[Name]] | None = Field(
        default=None,
        description="Resolve scoped values for this scope: one column per attribute; {} for "
        "global values only; a list of segments: one column per attribute and segment "
        "(product-name-seg-da); omitted: one column per attribute and scope.",
        examples=[{"dim-language": "seg-da", "dim-market": "seg-dk"}],
    )
    header_language: Name | None = Field(
        default=None, description="Segment whose attribute labels head the columns."
    )
    csv: CsvDialect | None = Field(
        default=None,
        description="The csv file's dialect: delimiter, quote, decimal and list separators, date format, "
        "byte order mark, line end (format csv only; omitted: comma-separated, RFC 4180).",
        examples=[{"delimiter": ";", "decimalSeparator": ",", "dateFormat": "%d.%m.%Y", "bom": True}],
    )
    compress: Flag = Field(default=False, description="Gzip the file.")
    dry_data: Flag = Field(default=False, description="Leave out redundant data (ids, timestamps, blanks).")
    value_labels: Flag = Field(
        default=False,
        description="Write select and multiselect values as their option labels in the column's scope "
        "(e.g. its language segment; then headerLanguage), falling back to the option code.",
    )
    max_records_per_file: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        description="Split the export into parts of at most this many rows, named by the file name plus "
        "-001, -002, ... (an xlsx export past its sheet's limit splits at the limit).",
        examples=[50_000],
    )
    manifest: Flag = Field(
        default=False,
        description="Deliver a <name>.manifest.json last: every part's name, row count, byte size and "
        "SHA-256, the run and its scheduled time, and this selection.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Selection:
        if Include.VARIANTS in self.includes and not self.include_variants:
            raise ValueError("includes names 'variants' but includeVariants is false; drop one of them")
        if self.columns is not None and self.fields is not None:
            raise ValueError("give columns or fields, not both (columns names every column of the file)")
        storable(
            self,
            "filters",
            "fields",
            "schema_id",
            "catalog_id",
            "lifecycle_state_ids",
            "dimension_scope",
            "header_language",
            "columns",
        )
        return self

    def to_spec(
        self, *, changed_since: dt.datetime | None = None, max_records: int | None = None
    ) -> ExportSpec:
        """The pipeline's view of this selection (``changed_since``: a delta export's start)."""
        includes = [str(getattr(i, "value", i)) for i in self.includes]
        fields = tuple(self.fields) if self.fields else None
        if fields is not None and "lifecycleState" in includes and "lifecycleStateId" not in fields:
            fields += ("lifecycleStateId",)
        columns = tuple(self.columns) if self.columns else None
        if columns and "lifecycleState" in includes and all(c.field != "lifecycleStateId" for c in columns):
            columns += (ColumnSpec(header="lifecycleStateId", field="lifecycleStateId"),)
        return ExportSpec(
            format=str(getattr(self.format, "value", self.format)),
            schema_id=self.schema_id,
            catalog_id=self.catalog_id,
            include_variants=self.include_variants,
            lifecycle_state_ids=tuple(self.lifecycle_state_ids),
            filters=self.filters or None,
            fields=fields,
            columns=columns,
            dimension_scope=self.dimension_scope,  # {}: one column per attribute, global values
            compress=self.compress,
            header_language=self.header_language,
            dry_data=self.dry_data,
            value_labels=self.value_labels,
            includes=tuple(i for i in includes if i not in ALWAYS_INCLUDED),
            csv=self.csv,
            max_records_per_file=self.max_records_per_file,
            changed_since=changed_since,
            max_records=max_records,
        )


def stored_selection(source: Mapping[str, Any] | object) -> Selection:
    """The selection an export or an export job stores (a row, or a job's values by name): its values under
    the Selection's own field names, already validated by the API's schema; a null one takes the default."""
    read: Callable[[str], Any] = (
        source.get if isinstance(source, Mapping) else lambda name: getattr(source, name, None)
    )
    chosen = {name: value for name in Selection.model_fields if (value := read(name)) is not None}
    if isinstance(chosen.get("csv"), Mapping):  # nested models, stored as their JSON
        chosen["csv"] = CsvDialect.model_validate(chosen["csv"])
    if chosen.get("columns"):
        chosen["columns"] = [ColumnSpec.model_validate(c) for c in chosen["columns"]]
    construct: Any = Selection.model_construct
    selection: Selection = construct(**chosen)
    return selection


def stored_columns(selection: Selection) -> dict[str, Any]:
    """The selection as the columns a row stores it in (the field names; enums as their values)."""
    return selection.model_dump(mode="json", include=set(Selection.model_fields))


def storable(model: StrictCamelModel, *names: str) -> None:
    """The fields ``names`` of ``model`` fit the database: PostgreSQL text cannot hold NUL, and JSON
    columns keep integers as 64-bit numbers; both are refused up front instead of failing in the database
    or the JSON encoder."""

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError(f"{where} must not contain NUL characters")
        if isinstance(value, bool):
            return
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValueError(f"{where} holds an integer beyond 64 bits")
        if isinstance(value, dict):
            for key, item in value.items():
                walk(key, where)
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, where)

    for name in names:
        walk(model.model_dump(include={name}).get(name), to_camel(name))  # nested models as dicts
