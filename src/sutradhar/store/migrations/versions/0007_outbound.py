"""calls.direction, calls.carrier_status, calls.carrier_events: outbound calls and their progress

An outbound call has a record from the moment it is placed; the carrier's status callbacks
(initiated, ringing, answered, completed, busy, no-answer, failed) are appended to
`carrier_events` and the latest is `carrier_status`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("direction", sa.String(16), nullable=False, server_default="inbound"))
        batch.add_column(sa.Column("carrier_status", sa.String(32)))
        batch.add_column(sa.Column("carrier_events", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("carrier_events")
        batch.drop_column("carrier_status")
        batch.drop_column("direction")
