"""attributes: labels of select and multiselect options per segment; export_jobs and exports: valueLabels

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attributes") as batch:
        batch.add_column(sa.Column("option_labels", sa.JSON(), nullable=True))
    for table in ("export_jobs", "exports"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("value_labels", sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    for table in ("export_jobs", "exports"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("value_labels")
    with op.batch_alter_table("attributes") as batch:
        batch.drop_column("option_labels")
