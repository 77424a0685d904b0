"""workers (identity + heartbeat), calls.worker_id, turns.playing: what crash recovery needs

A worker that dies (kill -9, OOM, power) leaves its calls `active`. Each worker now registers
itself and beats; a live worker closes a dead one's calls as `server_lost`. `turns.playing` says a
reply was still going out, with `heard` holding what the caller's marks confirmed so far.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False, server_default="running"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
    )
    with op.batch_alter_table("calls") as batch:  # batch mode: SQLite cannot ALTER freely
        batch.add_column(sa.Column("worker_id", sa.String(128)))
        batch.create_index("ix_calls_worker_id", ["worker_id"])
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("playing", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("playing")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_worker_id")
        batch.drop_column("worker_id")
    op.drop_table("workers")
