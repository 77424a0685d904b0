"""calls and turns

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("transport", sa.String(32)),
        sa.Column("from_number", sa.String(64)),
        sa.Column("to_number", sa.String(64)),
        sa.Column("carrier_call_id", sa.String(128)),
        sa.Column("language", sa.String(16)),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("end_reason", sa.String(64)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("turn_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("summary", sa.JSON),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_status", "calls", ["status"])
    op.create_index("ix_calls_language", "calls", ["language"])
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("turn_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("reply", sa.Text),
        sa.Column("heard", sa.Text),
        sa.Column("interrupted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("language", sa.String(16)),
        sa.Column("detected_language", sa.String(16)),
        sa.Column("switched_to", sa.String(16)),
        sa.Column("intent", sa.String(64)),
        sa.Column("stt_ms", sa.Float),
        sa.Column("llm_ttft_ms", sa.Float),
        sa.Column("llm_ms", sa.Float),
        sa.Column("tts_ttfb_ms", sa.Float),
        sa.Column("tts_ms", sa.Float),
        sa.Column("v2v_ms", sa.Float),
        sa.Column("stt_provider", sa.String(64)),
        sa.Column("llm_provider", sa.String(64)),
        sa.Column("tts_provider", sa.String(64)),
        sa.Column("errors", sa.JSON),
    )
    op.create_index("ix_turns_call_id", "turns", ["call_id"])


def downgrade() -> None:
    op.drop_table("turns")
    op.drop_table("calls")
