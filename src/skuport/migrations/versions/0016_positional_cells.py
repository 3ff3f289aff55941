"""cell_slots and records.cells_text: the cells in positional text, read by the frame engine

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BATCH = 5000

# A process of an earlier version (a rolling upgrade runs both) writes cells_json and knows nothing of
# cells_text: the trigger forgets a text its update left behind, so that the export reads cells_json
# instead of a stale text. A writer of this version sets both in the same update.
_PG_FUNCTION = """
CREATE FUNCTION records_cells_text_stale() RETURNS trigger AS $$
BEGIN
    IF NEW.cells_json IS DISTINCT FROM OLD.cells_json AND NEW.cells_text IS NOT DISTINCT FROM OLD.cells_text
    THEN
        NEW.cells_text := NULL;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql
"""
_PG_TRIGGER = """
CREATE TRIGGER records_cells_text_stale BEFORE UPDATE ON records
FOR EACH ROW EXECUTE FUNCTION records_cells_text_stale()
"""
_SQLITE_TRIGGER = """
CREATE TRIGGER records_cells_text_stale AFTER UPDATE OF cells_json ON records
WHEN NEW.cells_json IS NOT OLD.cells_json AND NEW.cells_text IS OLD.cells_text AND NEW.cells_text IS NOT NULL
BEGIN
    UPDATE records SET cells_text = NULL WHERE pk = NEW.pk;
END
"""


def upgrade() -> None:
    # The text's form is a storage format, defined once in skuport.records.cells; changing it would need
    # a migration of its own, so this one uses it rather than a frozen copy.
    from skuport.records.cells import cell_keys, positional_text

    op.create_table(
        "cell_slots",
        sa.Column("schema_id", sa.String(80), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("alias", sa.String(120), nullable=False),
        sa.Column("scope_key", sa.String(400), nullable=False),
        sa.UniqueConstraint("schema_id", "alias", "scope_key", name="uq_cell_slots_key"),
    )
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("cells_text", sa.Text(), nullable=True))
    conn = op.get_bind()
    records = sa.table(
        "records",
        sa.column("pk", sa.Integer),
        sa.column("schema_id", sa.String),
        sa.column("cells_json", sa.Text),
        sa.column("cells_text", sa.Text),
    )
    slots: dict[str, dict[tuple[str, str], int]] = {}
    last = -1
    while True:
        rows = conn.execute(
            sa.select(records.c.pk, records.c.schema_id, records.c.cells_json)
            .where(records.c.pk > last)
            .order_by(records.c.pk)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        texts = []
        for pk, schema_id, cells_json in rows:
            cells = orjson.loads(cells_json or "{}")
            known = slots.setdefault(schema_id, {})
            for key in sorted(cell_keys(cells) - known.keys()):
                known[key] = len(known)
            texts.append({"b_pk": pk, "b_text": positional_text(cells, known)})
        conn.execute(
            records.update()
            .where(records.c.pk == sa.bindparam("b_pk"))
            .values(cells_text=sa.bindparam("b_text")),
            texts,
        )
        last = rows[-1][0]
    cell_slots = sa.table(
        "cell_slots",
        sa.column("schema_id", sa.String),
        sa.column("slot", sa.Integer),
        sa.column("alias", sa.String),
        sa.column("scope_key", sa.String),
    )
    rows_out = [
        {"schema_id": schema_id, "slot": slot, "alias": alias, "scope_key": key}
        for schema_id, known in slots.items()
        for (alias, key), slot in known.items()
    ]
    if rows_out:
        conn.execute(cell_slots.insert(), rows_out)
    if conn.dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS records_cells_text_stale" + (" ON records" if _postgres() else ""))
    if _postgres():
        op.execute("DROP FUNCTION IF EXISTS records_cells_text_stale()")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("cells_text")
    op.drop_table("cell_slots")


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")
