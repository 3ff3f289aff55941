"""export_jobs and exports: the columns of the one selection (a file's columns by name)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("export_jobs", "exports"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("columns", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("export_jobs", "exports"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("columns")
