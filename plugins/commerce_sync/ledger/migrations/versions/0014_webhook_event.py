"""webhook_event: verified webhook events (a wake-up's record, not its body)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pairing", sa.String(length=100), nullable=False),
        sa.Column("system", sa.String(length=50), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("wakes", sa.JSON(), nullable=False),
        sa.Column("asset_event_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_event_time", "webhook_event", ["pairing", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_event_time", table_name="webhook_event")
    op.drop_table("webhook_event")
