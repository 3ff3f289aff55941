"""exports: notifications; run_notifications: also the notifications of one-off exports

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exports") as batch:
        batch.add_column(sa.Column("notifications", sa.JSON(), nullable=True))
    with op.batch_alter_table("run_notifications") as batch:
        batch.alter_column("run_id", existing_type=sa.String(80), nullable=True)
        batch.alter_column("job_id", existing_type=sa.String(80), nullable=True)
        batch.add_column(sa.Column("export_id", sa.String(80), nullable=True))
        batch.create_foreign_key(
            "fk_run_notifications_export_id", "exports", ["export_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_run_notifications_export_id", ["export_id"])


def downgrade() -> None:
    op.execute("DELETE FROM run_notifications WHERE export_id IS NOT NULL")
    with op.batch_alter_table("run_notifications") as batch:
        batch.drop_index("ix_run_notifications_export_id")
        batch.drop_constraint("fk_run_notifications_export_id", type_="foreignkey")
        batch.drop_column("export_id")
        batch.alter_column("job_id", existing_type=sa.String(80), nullable=False)
        batch.alter_column("run_id", existing_type=sa.String(80), nullable=False)
    with op.batch_alter_table("exports") as batch:
        batch.drop_column("notifications")
