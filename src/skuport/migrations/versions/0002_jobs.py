"""jobs tables

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import skuport.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("destination_type", sa.String(length=20), nullable=False),
        sa.Column("destination_config", sa.JSON(), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("schema_id", sa.String(length=80), nullable=True),
        sa.Column("catalog_id", sa.String(length=80), nullable=True),
        sa.Column("dimension_scope", sa.JSON(), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("delta", sa.Boolean(), nullable=False),
        sa.Column("schedule", sa.String(length=120), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("include_variants", sa.Boolean(), nullable=False),
        sa.Column("compress", sa.Boolean(), nullable=False),
        sa.Column("filename_template", sa.String(length=300), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", skuport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", skuport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.Column("updated_by", sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_export_jobs_due", "export_jobs", ["active", "next_run_at"])

    op.create_table(
        "export_runs",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("job_id", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("scheduled_for", skuport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", skuport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("record_count", sa.BigInteger(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("destination_path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("heartbeat_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("progress_done", sa.BigInteger(), nullable=True),
        sa.Column("progress_total", sa.BigInteger(), nullable=True),
        sa.Column("retry_of", sa.String(length=80), nullable=True),
        sa.Column("retry_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["export_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "scheduled_for", "attempt", name="uq_export_runs_tick"),
    )
    op.create_index("ix_export_runs_job_started", "export_runs", ["job_id", "started_at"])
    op.create_index("ix_export_runs_started", "export_runs", ["started_at"])
    op.create_index("ix_export_runs_status", "export_runs", ["status"])
    op.create_index("ix_export_runs_retry_at", "export_runs", ["retry_at"])
    # At most one running run per job, enforced by the database (no overlap, promise 4).
    op.create_index(
        "uq_export_runs_one_running",
        "export_runs",
        ["job_id"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("uq_export_runs_one_running", table_name="export_runs")
    op.drop_index("ix_export_runs_retry_at", table_name="export_runs")
    op.drop_index("ix_export_runs_status", table_name="export_runs")
    op.drop_index("ix_export_runs_started", table_name="export_runs")
    op.drop_index("ix_export_runs_job_started", table_name="export_runs")
    op.drop_table("export_runs")
    op.drop_index("ix_export_jobs_due", table_name="export_jobs")
    op.drop_table("export_jobs")
