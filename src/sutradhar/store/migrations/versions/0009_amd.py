"""calls.answered_by, calls.amd: who answered an outbound call, and every detector's evidence

`amd` maps each source (our detector, the carrier's AMD such as Twilio's) to its verdict;
`answered_by` is the latest decisive one: human, machine or unknown.

Chained on 0007 so this branch migrates on its own; 0008 (campaigns) lands beside it and the
merge re-chains this onto it.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("answered_by", sa.String(16)))
        batch.add_column(sa.Column("amd", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("amd")
        batch.drop_column("answered_by")
