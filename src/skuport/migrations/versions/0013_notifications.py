"""export_jobs: notifications; run_notifications: the outbox of run notifications

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skuport.db import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_jobs") as batch:
        batch.add_column(sa.Column("notifications", sa.JSON(), nullable=True))
    op.create_table(
        "run_notifications",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column(
            "run_id", sa.String(80), sa.ForeignKey("export_runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "job_id", sa.String(80), sa.ForeignKey("export_jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("run_key", sa.String(80), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(10), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("run_key", "event", "target", name="uq_run_notifications_once"),
    )
    op.create_index("ix_run_notifications_run_id", "run_notifications", ["run_id"])
    op.create_index("ix_run_notifications_due", "run_notifications", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("run_notifications")
    with op.batch_alter_table("export_jobs") as batch:
        batch.drop_column("notifications")
