"""One-off export API shapes (seeds 003 and 004, in skuport's camelCase)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from skuport.api import CamelModel, Flag, StrictCamelModel, Timestamp
from skuport.exports.models import ExportStatus


class ExportFormat(StrEnum):
    """File formats a one-off export can produce."""

    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"
    XML = "xml"
    XLSX = "xlsx"


class ResourceType(StrEnum):
    """What is exported (seed 004's ``resource_type``): records, also named skus or products there."""

    RECORDS = "records"
    SKUS = "skus"
    PRODUCTS = "products"


class Include(StrEnum):
    """Related data an export can carry along with each record (seed 004's ``includes``)."""

    CATEGORIES = "categories"
    VARIANTS = "variants"
    COMPLETENESS = "completeness"
    LIFECYCLE_STATE = "lifecycleState"


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class ExportCreate(StrictCamelModel):
    """Body of ``POST /exports``: what to export and how."""

    resource_type: ResourceType = Field(default=ResourceType.RECORDS,
                                        description="What to export: records (skus and products "
                                        "name them too, as seed 004 does).")
    format: ExportFormat = Field(default=ExportFormat.CSV, description="Output format.")
    filters: dict[str, Any] | None = Field(
        default=None, description="The GET /records filter syntax: {\"brand\": \"Ma Marque\"}, "
        "{\"price\": {\"gte\": 100}}, {\"sku_eq\": \"CW-001\"}.",
        examples=[{"brand": "Ma Marque"}])
    fields: list[Name] | None = Field(
        default=None, min_length=1, max_length=500,
        description="Attribute aliases (or record fields) to include; all when omitted.",
        examples=[["ean", "product-name", "price"]])
    includes: list[Include] = Field(
        default_factory=list, description="Related data to add to each record: categories (a column of "
        "category ids), completeness (percentage for the record's state); lifecycleState and variants are "
        "always there (lifecycleStateId column, variant rows).")
    schema_id: Name | None = Field(default=None, description="Only records of this schema.")
    catalog_id: Name | None = Field(default=None,
                                    description="Only records assigned to a category of this catalog.")
    include_variants: Flag = Field(default=True, description="Export variants as rows of their own.")
    lifecycle_state_ids: list[Name] = Field(default_factory=list,
                                            description="Only records in one of these states.")
    dimension_scope: dict[Name, Name] | None = Field(
        default=None, description="Resolve scoped values for this scope: one column per attribute.",
        examples=[{"dim-language": "seg-da", "dim-market": "seg-dk"}])
    header_language: Name | None = Field(default=None,
                                         description="Segment whose attribute labels head the columns.")
    compress: Flag = Field(default=False, description="Gzip the file.")
    dry_data: Flag = Field(default=False,
                           description="Leave out redundant data (ids, timestamps, blanks).")
    reference: Reference | None = Field(default=None, description="Your own reference for this export.")
    reference_origin: Reference | None = Field(default=None, description="Where the reference comes from.")
    metadata: dict[str, Any] = Field(default_factory=dict, examples=[{"foo": "bar"}],
                                     description="Free JSON object kept with the export.")


    @model_validator(mode="after")
    def _storable(self) -> ExportCreate:
        # PostgreSQL text cannot hold NUL, and JSON columns keep integers as 64-bit numbers: refuse
        # both up front instead of failing in the database or the JSON encoder.
        def walk(value: Any, where: str) -> None:
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{where} must not contain NUL characters")
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise ValueError(f"{where} holds an integer beyond 64 bits")
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(key, where)
                    walk(item, f"{where}.{key}")
            elif isinstance(value, list):
                for item in value:
                    walk(item, where)

        for name in ("filters", "fields", "schema_id", "catalog_id", "lifecycle_state_ids", "dimension_scope",
                     "header_language", "reference", "reference_origin", "metadata"):
            walk(getattr(self, name), to_camel(name))
        return self


class ExportProgress(CamelModel):
    """How far a running export got."""

    done: int = 0
    total: int = 0


class ExportRead(CamelModel):
    """An export, its status and its file."""

    id: str = Field(examples=["exp-xK9mP2vLq3"])
    status: ExportStatus
    resource_type: ResourceType
    format: ExportFormat
    filters: dict[str, Any] | None
    fields: list[str] | None
    includes: list[str]
    schema_id: str | None
    catalog_id: str | None
    include_variants: bool
    lifecycle_state_ids: list[str]
    dimension_scope: dict[str, str] | None
    header_language: str | None
    compress: bool
    dry_data: bool
    reference: str | None
    reference_origin: str | None
    metadata: dict[str, Any]
    progress: ExportProgress
    record_count: int | None = Field(description="Records in the file, once completed.")
    file_size: int | None = Field(description="Size of the file in bytes, once completed.")
    sha256: str | None = Field(description="SHA-256 of the file as stored.")
    content_type: str | None
    filename: str | None
    download_url: str | None = Field(
        description="Signed URL that downloads the file without a token, until expiresAt.")
    expires_at: Timestamp | None = Field(description="When the file is removed.")
    file_expired: bool = Field(description="The file was removed after expiresAt; create a new export.")
    errors_log: dict[str, str] | None = Field(
        description="What went wrong, by error kind.", examples=[{"RuntimeError": "query timeout"}])
    created_by: str
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    failed_at: Timestamp | None
    interrupted_at: Timestamp | None


class ExportList(CamelModel):
    """A page of exports, newest first."""

    items: list[ExportRead]
    total: int
    offset: int
    limit: int
