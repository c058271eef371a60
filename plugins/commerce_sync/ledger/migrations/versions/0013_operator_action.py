"""operator_action: what a person did from the ops console (replay requests), by whom and when

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_action",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("pairing", sa.String(100), nullable=False),
        sa.Column("flow", sa.String(50), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(250)),
        sa.Column("detail", sa.Text()),
        sa.Column("done_by", sa.String(100), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_operator_action", "operator_action", ["pairing", "done_at"])


def downgrade() -> None:
    op.drop_index("ix_operator_action", table_name="operator_action")
    op.drop_table("operator_action")
