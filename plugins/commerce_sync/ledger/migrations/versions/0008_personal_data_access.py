"""personal_data_access: who revealed buyers' personal data (quarantine show --reveal), and when

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personal_data_access",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("pairing", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(50), nullable=False),
        sa.Column("record_id", sa.String(250), nullable=False),
        sa.Column("record_key", sa.String(250)),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("accessed_by", sa.String(100), nullable=False),
        sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_personal_data_access", "personal_data_access", ["pairing", "accessed_at"])


def downgrade() -> None:
    op.drop_index("ix_personal_data_access", table_name="personal_data_access")
    op.drop_table("personal_data_access")
