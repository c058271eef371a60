"""erasure_log, and indexes housekeeping finds old rows by

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_staged_time", "staged_record", ["staged_at"]),
    ("ix_quarantine_resolved", "quarantine", ["resolved_at"]),
    ("ix_run_report_started", "run_report", ["started_at"]),
    ("ix_report_file_time", "report_file", ["created_at"]),
    ("ix_order_link_channel_id", "order_link", ["pairing", "kind", "channel_id"]),
]


def upgrade() -> None:
    op.create_table(
        "erasure_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(100)),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.JSON()),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("erasure_log")
