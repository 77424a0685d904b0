"""turns.v2v_wire_ms: end of caller speech to the first agent frame sent on the wire

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:  # batch mode: SQLite cannot ALTER freely
        batch.add_column(sa.Column("v2v_wire_ms", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("v2v_wire_ms")
