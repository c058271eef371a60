"""catalogue_sku: the product master's SKUs as catalogue_out last read them

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_sku",
        sa.Column("pairing", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=250), nullable=False),
        sa.Column("product_ref", sa.String(length=250), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pairing", "sku", name="pk_catalogue_sku"),
    )


def downgrade() -> None:
    op.drop_table("catalogue_sku")
