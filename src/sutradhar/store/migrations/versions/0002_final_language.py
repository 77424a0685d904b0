"""calls.final_language: the language a call ended in, after any switch

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # batch mode: SQLite cannot ALTER freely
        batch.add_column(sa.Column("final_language", sa.String(16)))
        batch.create_index("ix_calls_final_language", ["final_language"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_final_language")
        batch.drop_column("final_language")
