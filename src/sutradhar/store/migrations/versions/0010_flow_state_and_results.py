"""turns.state and call_results: the agent flow's state per turn, and post-call results with their
webhook delivery (pending rows are retried until sent).

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:  # batch mode: SQLite cannot ALTER freely
        batch.add_column(sa.Column("state", sa.String(64)))
    op.create_table(
        "call_results",
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("extracted", sa.JSON),
        sa.Column("source", sa.String(16)),
        sa.Column("payload", sa.JSON),
        sa.Column("webhook_url", sa.String(1000)),
        sa.Column("delivery", sa.String(16), nullable=False, server_default="none"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.String(300)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_call_results_delivery", "call_results", ["delivery"])
    op.create_index("ix_call_results_next_attempt_at", "call_results", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_call_results_next_attempt_at", table_name="call_results")
    op.drop_index("ix_call_results_delivery", table_name="call_results")
    op.drop_table("call_results")
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("state")
