"""One-off exports: what was asked, how far it got, and where its file is kept."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from skuport.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from skuport.jobs.models import RunNotification


class ExportStatus(StrEnum):
    """Where an export is in its life."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


ACTIVE_STATUSES = (ExportStatus.PENDING, ExportStatus.IN_PROGRESS)


class Export(Base):
    """One on-demand export (seeds 003 and 004) and the file it produced."""

    __tablename__ = "exports"
    __table_args__ = (
        Index("ix_exports_user_created", "user_id", "created_at"),
        Index("ix_exports_status", "status"),
        Index("ix_exports_reference", "reference"),
        Index("ix_exports_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default=ExportStatus.PENDING)
    resource_type: Mapped[str] = mapped_column(String(40), default="records")
    format: Mapped[str] = mapped_column(String(20), default="csv")
    schema_id: Mapped[str | None] = mapped_column(String(80), default=None)
    catalog_id: Mapped[str | None] = mapped_column(String(80), default=None)
    include_variants: Mapped[bool] = mapped_column(Boolean, default=True)
    lifecycle_state_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    filters: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    fields: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    includes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dimension_scope: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    header_language: Mapped[str | None] = mapped_column(String(80), default=None)
    compress: Mapped[bool] = mapped_column(Boolean, default=False)
    dry_data: Mapped[bool] = mapped_column(Boolean, default=False)
    value_labels: Mapped[bool] = mapped_column(Boolean, default=False)
    csv: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The csv dialect (CsvDialect fields by their Python names); null: the default."""
    columns: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    """The file's columns (ColumnSpec fields by their Python names); null: fields or every attribute."""
    max_records_per_file: Mapped[int | None] = mapped_column(Integer, nullable=True)
    manifest: Mapped[bool] = mapped_column(Boolean, default=False)
    notifications: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    """Who is told when the export completes or fails (skuport.jobs.notifications); secrets encrypted."""
    notified: Mapped[list[RunNotification]] = relationship(
        "RunNotification",
        primaryjoin="Export.id == foreign(RunNotification.export_id)",
        order_by="RunNotification.created_at",
        lazy="selectin",
        viewonly=True,
    )
    """The notifications the export's end sent, and how each went."""
    reference: Mapped[str | None] = mapped_column(String(255), default=None)
    reference_origin: Mapped[str | None] = mapped_column(String(255), default=None)
    metadata_json: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)

    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(BigInteger, default=0)
    record_count: Mapped[int | None] = mapped_column(BigInteger, default=None)
    file_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    content_type: Mapped[str | None] = mapped_column(String(120), default=None)
    content_encoding: Mapped[str | None] = mapped_column(String(40), default=None)
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    storage_backend: Mapped[str | None] = mapped_column(String(40), default=None)
    storage_key: Mapped[str | None] = mapped_column(Text, default=None)
    file_expired: Mapped[bool] = mapped_column(Boolean, default=False)
    errors_log: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    # The lease of the work lifecycle (skuport.scheduling.lifecycle): who runs it, which attempt.
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    interrupted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


# Export.notified names RunNotification: its mapper must be known wherever exports are queried.
from skuport.jobs import models as _jobs_models  # noqa: E402, F401
