"""Export-job and run schemas (seed 000): camelCase on the wire, field order as the seed shows."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from skuport.api import CamelModel, Flag, StrictCamelModel, Timestamp
from skuport.exporting.formats import FORMATS
from skuport.exporting.formats.csv import CsvDialect
from skuport.exporting.selection import ColumnSpec, Include, Name, Selection, storable
from skuport.jobs.models import RunStatus, RunTrigger
from skuport.jobs.notifications import Notification, NotificationRead

_NAME = Field(min_length=1, max_length=200)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp without a zone is taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


InTimestamp = Annotated[Timestamp, AfterValidator(_aware)]


class JobCreate(Selection):
    """Body of ``POST /export-jobs``: where and when, and the one selection every export takes."""

    id: str | None = Field(default=None, description="Optional client-chosen id, e.g. 'expjob-nightly-feed'.")
    name: str = _NAME
    description: str | None = Field(default=None, max_length=5000)
    destination_type: str = Field(description="s3, azure-blob, sftp, webhook or local.")
    destination_config: dict[str, Any] = Field(
        description="Destination-specific settings; secrets are write-only (masked on read)."
    )
    format: str = Field(description=f"Output format: {', '.join(FORMATS)}.")
    schedule: str = Field(description="5-field cron expression, e.g. '0 2 * * *'.", max_length=120)
    timezone: str = Field(default="UTC", description="IANA time zone the schedule and {date} are read in.")
    filename_template: str | None = Field(
        default=None,
        description="Placeholders {date}, {datetime}, {jobId}, {runId}; default "
        "'{jobId}-{datetime}.<format>[.gz]'.",
    )
    fields: list[str] | None = Field(
        default=None, description="Columns to export, in this order; all when omitted."
    )
    delta: Flag = Field(
        default=False,
        description="Export only records changed since the last successful "
        "run's scheduled time (deletions as tombstones).",
    )
    active: Flag = True
    notifications: list[Notification] = Field(
        default_factory=list,
        max_length=20,
        description="Who is told when a run fails, recovers or succeeds: Standard Webhooks-signed JSON "
        "events or emails (SKUPORT_SMTP_URL); one per run and event.",
    )
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=7 * 24 * 3600,
        description="Hard timeout of one run in seconds (at most 7 days); default the server's "
        "SKUPORT_RUN_TIMEOUT.",
    )


class JobUpdate(StrictCamelModel):
    """Body of ``PUT /export-jobs/:id``: the fields it carries replace the stored ones.

    Read-only fields of a job (as ``GET`` returns it) are accepted and ignored, so a client can
    send back the full object.
    """

    id: str | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    destination_type: str | None = None
    destination_config: dict[str, Any] | None = None
    format: str | None = None
    schema_id: str | None = None
    catalog_id: str | None = None
    dimension_scope: dict[str, str | list[str]] | None = None
    schedule: str | None = Field(default=None, max_length=120)
    timezone: str | None = None
    include_variants: Flag | None = None
    compress: Flag | None = None
    filename_template: str | None = None
    filters: dict[str, Any] | None = None
    fields: list[str] | None = None
    columns: list[ColumnSpec] | None = Field(default=None, min_length=1, max_length=500)
    notifications: list[Notification] | None = Field(default=None, max_length=20)
    delta: Flag | None = None
    active: Flag | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    lifecycle_state_ids: list[Name] | None = None
    includes: list[Include] | None = None
    header_language: Name | None = None
    dry_data: Flag | None = None
    value_labels: Flag | None = None
    csv: CsvDialect | None = None
    max_records_per_file: int | None = Field(default=None, ge=1, le=100_000_000)
    manifest: Flag | None = None
    created_at: Any = Field(default=None, exclude=True)
    updated_at: Any = Field(default=None, exclude=True)
    created_by: Any = Field(default=None, exclude=True)
    updated_by: Any = Field(default=None, exclude=True)
    next_run_at: Any = Field(default=None, exclude=True)
    schedule_description: Any = Field(default=None, exclude=True)
    last_run: Any = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _storable(self) -> JobUpdate:
        """What a PUT stores fits the database, as a POST's selection must (NUL, 64-bit integers)."""
        storable(
            self, "filters", "fields", "columns", "dimension_scope", "header_language", "lifecycle_state_ids"
        )
        return self


READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
        "next_run_at",
        "schedule_description",
        "last_run",
    }
)
NULLABLE_FIELDS = frozenset(
    {
        "description",
        "schema_id",
        "catalog_id",
        "dimension_scope",
        "filters",
        "fields",
        "timeout_seconds",
        "header_language",
        "csv",
        "columns",
        "notifications",
        "max_records_per_file",
    }
)


class RunSummary(CamelModel):
    """The latest run of a job, for lists."""

    id: str
    status: RunStatus
    started_at: Timestamp
    completed_at: Timestamp | None = None


class JobRead(CamelModel):
    """An export job as the API shows it (secrets masked)."""

    id: str
    name: str
    description: str | None
    destination_type: str
    destination_config: dict[str, Any]
    format: str
    schema_id: str | None
    dimension_scope: dict[str, str | list[str]] | None
    schedule: str
    include_variants: bool
    compress: bool
    filename_template: str
    active: bool
    created_at: Timestamp
    updated_at: Timestamp
    catalog_id: str | None
    timezone: str
    next_run_at: Timestamp | None
    schedule_description: str
    filters: dict[str, Any] | None
    fields: list[str] | None
    delta: bool
    timeout_seconds: int | None = Field(
        description="Hard timeout of one run, in seconds; null: the server's SKUPORT_RUN_TIMEOUT."
    )
    created_by: str | None
    updated_by: str | None
    last_run: RunSummary | None = None
    lifecycle_state_ids: list[str] = Field(default_factory=list)
    includes: list[str] = Field(default_factory=list)
    header_language: str | None = None
    dry_data: bool = False
    value_labels: bool = False
    csv: CsvDialect | None = None
    columns: list[ColumnSpec] | None = None
    max_records_per_file: int | None = None
    manifest: bool = False
    notifications: list[dict[str, Any]] = Field(
        default_factory=list, description="Who is told about runs (webhook url masked, secret write-only)."
    )


class RunProgress(CamelModel):
    """How far a running export has come."""

    done: int
    total: int | None


class RunFile(CamelModel):
    """One file a run delivered: a part of a split export, or its manifest's listing of one file."""

    name: str = Field(description="The file's name (beside the manifest).")
    path: str = Field(description="Where it landed.")
    record_count: int = Field(description="Rows in the file (records, and tombstones of a delta export).")
    byte_size: int
    sha256: str


class RunRead(CamelModel):
    """One run of an export job."""

    id: str
    job_id: str
    status: RunStatus
    started_at: Timestamp
    completed_at: Timestamp | None
    record_count: int | None
    file_size: int | None
    destination_path: str | None = Field(
        description="Where the file landed: the manifest's path for a run that delivers one, else the "
        "file's (the first part's for a split run without a manifest)."
    )
    error: str | None
    scheduled_for: Timestamp
    trigger: RunTrigger
    attempt: int
    progress: RunProgress | None = None
    notifications: list[NotificationRead] = Field(
        default_factory=list, description="The run's notifications and how each went."
    )
    files: list[RunFile] | None = Field(
        default=None,
        description="Every file delivered, in order, for a run that splits its export or delivers a "
        "manifest (null for one plain file).",
    )


class RunCreate(StrictCamelModel):
    """Body of ``POST /export-jobs/:id/runs``: a run reported by an external runner."""

    id: str | None = Field(default=None, description="Optional client-chosen id ('run-…').")
    status: RunStatus
    started_at: InTimestamp
    completed_at: InTimestamp | None = None
    record_count: int | None = Field(default=None, ge=0)
    file_size: int | None = Field(default=None, ge=0)
    destination_path: str | None = Field(default=None, max_length=4000)
    error: str | None = Field(default=None, max_length=10000)
    scheduled_for: InTimestamp | None = Field(default=None, description="Defaults to startedAt.")


class DestinationTest(CamelModel):
    """Outcome of ``POST /export-jobs/:id/test``: the destination answered, or why not."""

    ok: bool
    destination_type: str
    destination_path: str | None
    error: str | None
    duration_ms: int
