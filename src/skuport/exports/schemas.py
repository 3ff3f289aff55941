"""One-off export API shapes (seeds 003 and 004, in skuport's camelCase)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from skuport.api import CamelModel, Timestamp
from skuport.exporting.formats.csv import CsvDialect
from skuport.exporting.selection import ColumnSpec, ExportFormat, Selection, storable
from skuport.exports.models import ExportStatus
from skuport.jobs.notifications import Notification, NotificationRead


class ResourceType(StrEnum):
    """What is exported (seed 004's ``resource_type``): records, also named skus or products there."""

    RECORDS = "records"
    SKUS = "skus"
    PRODUCTS = "products"


Reference = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class ExportCreate(Selection):
    """Body of ``POST /exports``: what to export and how (the one selection), and your references."""

    resource_type: ResourceType = Field(
        default=ResourceType.RECORDS,
        description="What to export: records (skus and products name them too, as seed 004 does).",
    )
    format: ExportFormat = Field(default=ExportFormat("csv"), description="Output format.")
    reference: Reference | None = Field(default=None, description="Your own reference for this export.")
    reference_origin: Reference | None = Field(default=None, description="Where the reference comes from.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, examples=[{"foo": "bar"}], description="Free JSON object kept with the export."
    )
    notifications: list[Notification] | None = Field(
        default=None,
        max_length=20,
        description="Who is told when the export ends: export.completed, export.failed (a Standard "
        "Webhooks-signed JSON event, or an email through SKUPORT_SMTP_URL).",
        examples=[
            [{"events": ["export.completed", "export.failed"], "type": "email", "to": ["me@example.com"]}]
        ],
    )

    @model_validator(mode="after")
    def _storable_references(self) -> ExportCreate:
        storable(self, "reference", "reference_origin", "metadata")
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
    dimension_scope: dict[str, str | list[str]] | None
    header_language: str | None
    compress: bool
    dry_data: bool
    value_labels: bool = False
    max_records_per_file: int | None = None
    manifest: bool = False
    notifications: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Who is told when the export completes or fails (webhook url masked, secret write-only).",
    )
    notified: list[NotificationRead] = Field(
        default_factory=list, description="The notifications the export's end sent, and how each went."
    )
    csv: CsvDialect | None = None
    columns: list[ColumnSpec] | None = None
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
        description="Signed URL that downloads the file without a token, until expiresAt."
    )
    expires_at: Timestamp | None = Field(description="When the file is removed.")
    file_expired: bool = Field(description="The file was removed after expiresAt; create a new export.")
    errors_log: dict[str, str] | None = Field(
        description="What went wrong, by error kind.", examples=[{"RuntimeError": "query timeout"}]
    )
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
