"""export_jobs and exports: maxRecordsPerFile, manifest; export_runs: the files a run delivered

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("export_jobs", "exports"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("max_records_per_file", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("manifest", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("export_runs") as batch:
        batch.add_column(sa.Column("files", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("export_runs") as batch:
        batch.drop_column("files")
    for table in ("export_jobs", "exports"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("manifest")
            batch.drop_column("max_records_per_file")
