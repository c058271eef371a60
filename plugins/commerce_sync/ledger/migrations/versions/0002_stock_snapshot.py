"""stock_snapshot: what stock_out last pushed per channel SKU

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_snapshot",
        sa.Column("pairing", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=250), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pairing", "sku", name="pk_stock_snapshot"),
    )


def downgrade() -> None:
    op.drop_table("stock_snapshot")
