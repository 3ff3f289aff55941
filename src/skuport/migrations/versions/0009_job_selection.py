"""export_jobs: the rest of the one selection (lifecycle states, includes, header language, dry data)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_jobs") as batch:
        batch.add_column(sa.Column("lifecycle_state_ids", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("includes", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("header_language", sa.String(200), nullable=True))
        batch.add_column(sa.Column("dry_data", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("export_jobs") as batch:
        for column in ("dry_data", "header_language", "includes", "lifecycle_state_ids"):
            batch.drop_column(column)
