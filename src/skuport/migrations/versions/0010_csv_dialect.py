"""export_jobs and exports: the csv dialect of the one selection

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("export_jobs", "exports"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("csv", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("export_jobs", "exports"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("csv")
