"""turns.tool_calls: the tools the LLM called in a turn (name, redacted arguments, size, time, error)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:  # batch mode: SQLite cannot ALTER freely
        batch.add_column(sa.Column("tool_calls", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("tool_calls")
