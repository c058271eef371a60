"""initial ledger tables

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mapping',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('pairing', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pairing', 'kind', 'key', name='uq_mapping')
    )
    op.create_table('mapping_history',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('pairing', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('old_value', sa.JSON(), nullable=True),
    sa.Column('new_value', sa.JSON(), nullable=True),
    sa.Column('source_file', sa.Text(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('order_link',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('pairing', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('channel_ref', sa.String(length=250), nullable=False),
    sa.Column('master_id', sa.String(length=250), nullable=False),
    sa.Column('master_ref', sa.String(length=250), nullable=True),
    sa.Column('run_id', sa.String(length=250), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pairing', 'kind', 'channel_ref', name='uq_order_link')
    )
    op.create_table('payload_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('pairing', sa.String(length=100), nullable=True),
    sa.Column('system', sa.String(length=50), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('request_body', sa.Text(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('logged_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('pairing', sa.String(length=100), nullable=False),
    sa.Column('flow', sa.String(length=50), nullable=False),
    sa.Column('record_key', sa.String(length=250), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_run_id', sa.String(length=250), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pairing', 'flow', 'record_key', name='uq_quarantine')
    )
    op.create_table('run_report',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('pairing', sa.String(length=100), nullable=False),
    sa.Column('flow', sa.String(length=50), nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('interval_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('interval_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('extracted', sa.Integer(), nullable=True),
    sa.Column('valid', sa.Integer(), nullable=True),
    sa.Column('quarantined', sa.Integer(), nullable=True),
    sa.Column('loaded', sa.Integer(), nullable=True),
    sa.Column('skipped', sa.Integer(), nullable=True),
    sa.Column('failed', sa.Integer(), nullable=True),
    sa.Column('throttled', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pairing', 'flow', 'run_id', name='uq_run_report')
    )
    op.create_table('staged_record',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('pairing', sa.String(length=100), nullable=False),
    sa.Column('flow', sa.String(length=50), nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('record_key', sa.String(length=250), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('staged_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pairing', 'flow', 'run_id', 'record_key', name='uq_staged_record')
    )
    op.create_table('watermark',
    sa.Column('pairing', sa.String(length=100), nullable=False),
    sa.Column('flow', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pairing', 'flow', 'name', name='pk_watermark')
    )
    op.create_index('ix_quarantine_open', 'quarantine', ['pairing', 'flow', 'status'])
    op.create_index('ix_staged_run', 'staged_record', ['pairing', 'flow', 'run_id'])
    op.create_index('ix_payload_log_time', 'payload_log', ['logged_at'])


def downgrade() -> None:
    op.drop_table('mapping')
    op.drop_table('mapping_history')
    op.drop_table('order_link')
    op.drop_table('payload_log')
    op.drop_table('quarantine')
    op.drop_table('run_report')
    op.drop_table('staged_record')
    op.drop_table('watermark')
