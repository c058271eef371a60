"""api_budget, api_call_slot: one API account's call budget, shared by every process that calls it

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_budget",
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("last_slot", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account", name="pk_api_budget"),
    )
    op.create_table(
        "api_call_slot",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("slot", sa.Float(), nullable=False),
    )
    op.create_index("ix_api_call_slot", "api_call_slot", ["account", "slot"])


def downgrade() -> None:
    op.drop_index("ix_api_call_slot", table_name="api_call_slot")
    op.drop_table("api_call_slot")
    op.drop_table("api_budget")
