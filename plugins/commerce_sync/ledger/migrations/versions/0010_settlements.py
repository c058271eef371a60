"""settlement_file, settlement_line: payment-provider settlement files read once, and their rows

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_file",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pairing", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("modified", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("period", sa.String(length=100), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pairing", "name", "checksum", name="uq_settlement_file"),
    )
    # money as exact decimal text: SQLite has no exact numeric type
    money = [sa.Column(name, sa.String(length=40), nullable=True) for name in ("gross", "exchange_rate")]
    op.create_table(
        "settlement_line",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pairing", sa.String(length=100), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("batch", sa.String(length=250), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("provider_type", sa.String(length=80), nullable=True),
        sa.Column("merchant_ref", sa.String(length=250), nullable=True),
        sa.Column("psp_ref", sa.String(length=100), nullable=True),
        sa.Column("modification_ref", sa.String(length=250), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gross_currency", sa.String(length=3), nullable=True),
        *money,
        sa.Column("net_currency", sa.String(length=3), nullable=True),
        sa.Column("net", sa.String(length=40), nullable=True),
        sa.Column("fees", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("master_id", sa.String(length=250), nullable=True),
        sa.Column("master_total", sa.String(length=40), nullable=True),
        sa.Column("period", sa.String(length=100), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pairing", "file_id", "line_no", name="uq_settlement_line"),
    )
    op.create_index("ix_settlement_line_status", "settlement_line", ["pairing", "status"])
    op.create_index("ix_settlement_line_ref", "settlement_line", ["pairing", "merchant_ref"])
    op.create_index("ix_settlement_line_period", "settlement_line", ["pairing", "period"])


def downgrade() -> None:
    op.drop_index("ix_settlement_line_period", table_name="settlement_line")
    op.drop_index("ix_settlement_line_ref", table_name="settlement_line")
    op.drop_index("ix_settlement_line_status", table_name="settlement_line")
    op.drop_table("settlement_line")
    op.drop_table("settlement_file")
