"""campaigns, campaign_contacts, do_not_call: outbound campaigns whose progress survives a restart

Each contact's status moves by conditional UPDATEs only (claim before dialling), so a campaign
resumed after a crash never dials a number twice (campaigns/store.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False, server_default="running"),
        sa.Column("carrier", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("retry_delay_s", sa.Float, nullable=False),
        sa.Column("retry_backoff", sa.Float, nullable=False),
        sa.Column("calling_hours", sa.String(16), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("prompts", sa.JSON),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_campaigns_status", "campaigns", ["status"])
    op.create_table(
        "campaign_contacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(64), sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("variables", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("call_id", sa.String(128)),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("campaign_id", "number", name="uq_campaign_contacts_number"),
    )
    op.create_index("ix_campaign_contacts_campaign_id", "campaign_contacts", ["campaign_id"])
    op.create_index("ix_campaign_contacts_status", "campaign_contacts", ["status"])
    op.create_index("ix_campaign_contacts_next_attempt_at", "campaign_contacts", ["next_attempt_at"])
    op.create_index("ix_campaign_contacts_call_id", "campaign_contacts", ["call_id"])
    op.create_table(
        "do_not_call",
        sa.Column("number", sa.String(32), primary_key=True),
        sa.Column("reason", sa.String(255)),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("do_not_call")
    op.drop_table("campaign_contacts")
    op.drop_index("ix_campaigns_status", "campaigns")
    op.drop_table("campaigns")
