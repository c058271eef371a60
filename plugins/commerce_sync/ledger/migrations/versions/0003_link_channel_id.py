"""order_link.channel_id and a lookup index by master id (dispatch finds the order from the sale)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_link") as batch:
        batch.add_column(sa.Column("channel_id", sa.String(length=250), nullable=True))
    op.create_index("ix_order_link_master", "order_link", ["pairing", "kind", "master_id"])


def downgrade() -> None:
    op.drop_index("ix_order_link_master", table_name="order_link")
    with op.batch_alter_table("order_link") as batch:
        batch.drop_column("channel_id")
