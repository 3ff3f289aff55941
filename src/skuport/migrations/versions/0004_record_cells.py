"""records.cells_json: the values keyed by scope, for fast exports

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 5000


def _cells(values_json: str) -> str:
    # Frozen copy of skuport.records.values.cells_of at this revision.
    values = orjson.loads(values_json or "{}")
    cells = {
        alias: {
            "&".join(f"{k}={v['scope'][k]}" for k in sorted(v["scope"])) or "@": v["value"] for v in scoped
        }
        for alias, scoped in values.items()
    }
    return orjson.dumps(cells).decode()


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("cells_json", sa.Text(), nullable=False, server_default="{}"))
    conn = op.get_bind()
    records = sa.table(
        "records",
        sa.column("pk", sa.Integer),
        sa.column("values_json", sa.Text),
        sa.column("cells_json", sa.Text),
    )
    last = -1
    while True:
        rows = conn.execute(
            sa.select(records.c.pk, records.c.values_json)
            .where(records.c.pk > last)
            .order_by(records.c.pk)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(
            records.update()
            .where(records.c.pk == sa.bindparam("b_pk"))
            .values(cells_json=sa.bindparam("b_cells")),
            [{"b_pk": pk, "b_cells": _cells(values)} for pk, values in rows],
        )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.drop_column("cells_json")
