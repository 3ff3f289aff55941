"""procrastinate 3.10's schema (PostgreSQL only): the queue of the scale-out executor

Applied once, idempotently: a database that already has ``procrastinate_jobs`` is left alone. A
later procrastinate version ships its own migration files; each upgrade becomes a new revision.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar() is not None:
        return
    from procrastinate.schema import SchemaManager

    # psycopg reads a bare % as a placeholder: the schema's own are escaped.
    bind.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.exec_driver_sql(
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, "
        "procrastinate_workers CASCADE"
    )
