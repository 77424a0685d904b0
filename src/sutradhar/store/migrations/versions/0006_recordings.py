"""calls.recording_path: where the call's stereo WAV is, under DATA_DIR/recordings (RECORD_CALLS)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # batch mode: SQLite cannot ALTER freely
        batch.add_column(sa.Column("recording_path", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("recording_path")
