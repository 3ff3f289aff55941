"""Export jobs and their runs.

A run row is the unit of scheduling: the scheduler claims a tick by inserting the run under the
unique ``(job_id, scheduled_for, attempt)`` constraint, and the partial unique index on running
runs lets the database, not process memory, refuse a second concurrent run of one job.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from skuport.db import Base, UTCDateTime, utcnow


class RunStatus(StrEnum):
    """Where a run stands."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"


class RunTrigger(StrEnum):
    """What started a run."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"
    EXTERNAL = "external"


class ExportJob(Base):
    """A cron-scheduled export: what to export, where to, and when."""

    __tablename__ = "export_jobs"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    destination_type: Mapped[str] = mapped_column(String(20))
    destination_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Secret fields encrypted at rest (skuport.secrets)."""
    format: Mapped[str] = mapped_column(String(10))
    schema_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    catalog_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    dimension_scope: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    filters: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fields: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    lifecycle_state_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    includes: Mapped[list[str]] = mapped_column(JSON, default=list)
    header_language: Mapped[str | None] = mapped_column(String(200), nullable=True)
    dry_data: Mapped[bool] = mapped_column(Boolean, default=False)
    value_labels: Mapped[bool] = mapped_column(Boolean, default=False)
    csv: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The csv dialect (CsvDialect fields by their Python names); null: the default."""
    columns: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    """The file's columns (ColumnSpec fields by their Python names); null: fields or every attribute."""
    max_records_per_file: Mapped[int | None] = mapped_column(Integer, nullable=True)
    manifest: Mapped[bool] = mapped_column(Boolean, default=False)
    notifications: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    """Who is told about runs (skuport.jobs.notifications); webhook url and secret encrypted at rest."""
    delta: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    include_variants: Mapped[bool] = mapped_column(Boolean, default=True)
    compress: Mapped[bool] = mapped_column(Boolean, default=False)
    filename_template: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Hard timeout of one run; None: the server's SKUPORT_RUN_TIMEOUT."""
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(80), nullable=True)

    __table_args__ = (Index("ix_export_jobs_due", "active", "next_run_at"),)


class ExportRun(Base):
    """One execution (or skipped tick) of an export job."""

    __tablename__ = "export_runs"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("export_jobs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10))
    trigger: Mapped[str] = mapped_column(String(10))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    scheduled_for: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    record_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    file_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    destination_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    files: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    """The files a split or manifested run delivered, in order (name, path, recordCount, byteSize, sha256);
    kept as they are delivered, so a retry can remove the parts it does not deliver again."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    progress_done: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    progress_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    retry_of: Mapped[str | None] = mapped_column(String(80), nullable=True)
    """The first attempt's run id: stable delivery id and file name across retries."""
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When a failed run is due to be retried (cleared once the retry is claimed)."""
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    notifications: Mapped[list[RunNotification]] = relationship(
        "RunNotification", order_by="RunNotification.created_at", lazy="selectin", viewonly=True
    )
    """The notifications this run's end sent (skuport.jobs.notifications)."""

    __table_args__ = (
        UniqueConstraint("job_id", "scheduled_for", "attempt", name="uq_export_runs_tick"),
        Index("ix_export_runs_job_started", "job_id", "started_at"),
        Index("ix_export_runs_started", "started_at"),
        Index("ix_export_runs_status", "status"),
        Index("ix_export_runs_retry_at", "retry_at"),
        Index(
            "uq_export_runs_one_running",
            "job_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )


class RunNotification(Base):
    """One notification of a run's end (the outbox of skuport.jobs.notifications)."""

    __tablename__ = "run_notifications"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("export_runs.id", ondelete="CASCADE"), index=True, nullable=True
    )
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("export_jobs.id", ondelete="CASCADE"), nullable=True
    )
    export_id: Mapped[str | None] = mapped_column(
        ForeignKey("exports.id", ondelete="CASCADE", name="fk_run_notifications_export_id"),
        index=True,
        nullable=True,
    )
    """A one-off export's notification (then run and job are null)."""
    run_key: Mapped[str] = mapped_column(String(80))
    """The first attempt's run id (one notification per scheduled run, however many attempts it took), or
    the one-off export's id."""
    event: Mapped[str] = mapped_column(String(20))
    target: Mapped[int] = mapped_column(Integer)
    """The notification's place in the job's list."""
    type: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(Text)
    """Where it goes, as shown (a webhook URL masked, email addresses)."""
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The notification as the job stored it when the run ended (url and secret encrypted): later edits of
    the job's list never send it elsewhere."""
    status: Mapped[str] = mapped_column(String(10), default="pending")
    """pending, sending, sent or failed."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("run_key", "event", "target", name="uq_run_notifications_once"),
        Index("ix_run_notifications_due", "status", "next_attempt_at"),
    )
