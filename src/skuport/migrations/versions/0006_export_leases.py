"""exports: the lease columns of the one work lifecycle (worker, attempt, heartbeat, deadline)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import skuport.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exports") as batch:
        batch.add_column(sa.Column("worker", sa.String(200), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("heartbeat_at", skuport.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deadline_at", skuport.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exports") as batch:
        for column in ("deadline_at", "heartbeat_at", "attempt", "worker"):
            batch.drop_column(column)
