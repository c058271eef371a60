"""payout_match (one row per remittance reconciled) and report_file (exception reports per period)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # money as exact decimal text: SQLite has no exact numeric type
    money = [sa.Column(name, sa.String(length=40), nullable=True) for name in ("sale_total", "net", "commission", "commission_tax", "fees", "refunds", "variance")]
    op.create_table(
        "payout_match",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pairing", sa.String(length=100), nullable=False),
        sa.Column("payout_ref", sa.String(length=250), nullable=False),
        sa.Column("advice_ref", sa.String(length=250), nullable=True),
        sa.Column("order_channel_ref", sa.String(length=250), nullable=True),
        sa.Column("master_id", sa.String(length=250), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        *money,
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pairing", "payout_ref", name="uq_payout_match"),
    )
    op.create_table(
        "report_file",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pairing", sa.String(length=100), nullable=False),
        sa.Column("flow", sa.String(length=50), nullable=False),
        sa.Column("period", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pairing", "flow", "period", "name", name="uq_report_file"),
    )


def downgrade() -> None:
    op.drop_table("report_file")
    op.drop_table("payout_match")
