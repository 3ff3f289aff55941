"""exports tables

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import skuport.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("schema_id", sa.String(length=80), nullable=True),
        sa.Column("catalog_id", sa.String(length=80), nullable=True),
        sa.Column("include_variants", sa.Boolean(), nullable=False),
        sa.Column("lifecycle_state_ids", sa.JSON(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("includes", sa.JSON(), nullable=False),
        sa.Column("dimension_scope", sa.JSON(), nullable=True),
        sa.Column("header_language", sa.String(length=80), nullable=True),
        sa.Column("compress", sa.Boolean(), nullable=False),
        sa.Column("dry_data", sa.Boolean(), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("reference_origin", sa.String(length=255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("progress_done", sa.BigInteger(), nullable=False),
        sa.Column("progress_total", sa.BigInteger(), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("content_type", sa.String(length=120), nullable=True),
        sa.Column("content_encoding", sa.String(length=40), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("storage_backend", sa.String(length=40), nullable=True),
        sa.Column("storage_key", sa.Text(), nullable=True),
        sa.Column("file_expired", sa.Boolean(), nullable=False),
        sa.Column("errors_log", sa.JSON(), nullable=True),
        sa.Column("created_at", skuport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", skuport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("interrupted_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", skuport.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.create_index("ix_exports_user_created", ["user_id", "created_at"], unique=False)
        batch_op.create_index("ix_exports_status", ["status"], unique=False)
        batch_op.create_index("ix_exports_reference", ["reference"], unique=False)
        batch_op.create_index("ix_exports_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_index("ix_exports_expires_at")
        batch_op.drop_index("ix_exports_reference")
        batch_op.drop_index("ix_exports_status")
        batch_op.drop_index("ix_exports_user_created")
    op.drop_table("exports")
