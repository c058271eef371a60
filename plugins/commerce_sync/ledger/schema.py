"""The ledger's tables: the integration's own memory, apart from Airflow's metadata DB.

Portable types only (SQLite for the quick start, PostgreSQL in production); the Alembic
migrations in migrations/versions/ create exactly these tables.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from commerce_sync.ledger.sealing import SealedJSON

metadata = MetaData()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable, default=utcnow if not nullable else None)


staged_record = Table(
    "staged_record",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("flow", String(50), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("record_key", String(250), nullable=False),
    Column("payload", SealedJSON, nullable=False),  # personal values sealed (sealing.py)
    _ts("staged_at"),
    UniqueConstraint("pairing", "flow", "run_id", "record_key", name="uq_staged_record"),
)

order_link = Table(
    "order_link",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("channel_ref", String(250), nullable=False),
    Column("master_id", String(250), nullable=False),
    Column("master_ref", String(250)),
    Column("run_id", String(250)),
    _ts("created_at"),
    Column("channel_id", String(250)),  # the channel's own id for the record (e.g. a Relay id)
    UniqueConstraint("pairing", "kind", "channel_ref", name="uq_order_link"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("flow", String(50), nullable=False),
    Column("record_key", String(250), nullable=False),
    Column("payload", SealedJSON, nullable=False),  # personal values sealed (sealing.py)
    Column("reasons", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="open"),
    _ts("first_seen"),
    _ts("last_seen"),
    Column("attempts", Integer, nullable=False, default=1),
    Column("last_run_id", String(250)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution_note", Text),
    Column("resolved_by", String(100)),
    UniqueConstraint("pairing", "flow", "record_key", name="uq_quarantine"),
)

payload_log = Table(
    "payload_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100)),
    Column("system", String(50), nullable=False),
    Column("method", String(10), nullable=False),
    Column("url", Text, nullable=False),
    Column("status", Integer),
    Column("request_body", Text),
    Column("response_body", Text),
    Column("duration_ms", Integer),
    Column("attempt", Integer),
    Column("error", Text),
    _ts("logged_at"),
)

watermark = Table(
    "watermark",
    metadata,
    Column("pairing", String(100), nullable=False),
    Column("flow", String(50), nullable=False),
    Column("name", String(100), nullable=False),
    Column("value", Text, nullable=False),
    _ts("updated_at"),
    PrimaryKeyConstraint("pairing", "flow", "name", name="pk_watermark"),
)

run_report = Table(
    "run_report",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("flow", String(50), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("interval_start", DateTime(timezone=True)),
    Column("interval_end", DateTime(timezone=True)),
    Column("extracted", Integer),
    Column("valid", Integer),
    Column("quarantined", Integer),
    Column("loaded", Integer),
    Column("skipped", Integer),
    Column("failed", Integer),
    Column("throttled", Integer),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("details", JSON),
    UniqueConstraint("pairing", "flow", "run_id", name="uq_run_report"),
)

mapping = Table(
    "mapping",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", JSON, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    _ts("updated_at"),
    UniqueConstraint("pairing", "kind", "key", name="uq_mapping"),
)

mapping_history = Table(
    "mapping_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("key", String(250), nullable=False),
    Column("action", String(20), nullable=False),
    Column("old_value", JSON),
    Column("new_value", JSON),
    Column("source_file", Text),
    Column("source_line", Integer),
    _ts("changed_at"),
    Column("changed_by", String(100)),
)

stock_snapshot = Table(
    "stock_snapshot",
    metadata,
    Column("pairing", String(100), nullable=False),
    Column("sku", String(250), nullable=False),  # channel SKU
    Column("quantity", Integer, nullable=False),  # what was last pushed to the channel
    Column("run_id", String(250)),
    _ts("pushed_at"),
    PrimaryKeyConstraint("pairing", "sku", name="pk_stock_snapshot"),
)

payout_match = Table(
    "payout_match",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("payout_ref", String(250), nullable=False),  # one remittance (one invoice's payout)
    Column("advice_ref", String(250)),
    Column("order_channel_ref", String(250)),
    Column("master_id", String(250)),
    Column("currency", String(3)),
    Column("sale_total", String(40)),  # money as exact decimal text: SQLite has no exact numeric
    Column("net", String(40)),
    Column("commission", String(40)),
    Column("commission_tax", String(40)),
    Column("fees", String(40)),
    Column("refunds", String(40)),
    Column("variance", String(40)),
    Column("status", String(30), nullable=False),  # matched | variance | unmatched
    Column("run_id", String(250)),
    _ts("matched_at"),
    UniqueConstraint("pairing", "payout_ref", name="uq_payout_match"),
)

report_file = Table(
    "report_file",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("flow", String(50), nullable=False),
    Column("period", String(100), nullable=False),
    Column("name", String(200), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("content", Text, nullable=False),  # text reports; "" for a binary file
    Column("data", LargeBinary, nullable=True),  # binary files (packing slip PDFs)
    _ts("created_at"),
    UniqueConstraint("pairing", "flow", "period", "name", name="uq_report_file"),
)

work_claim = Table(
    "work_claim",
    metadata,
    Column("pairing", String(100), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("key", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    _ts("claimed_at"),
    PrimaryKeyConstraint("pairing", "kind", "key", name="pk_work_claim"),
)

# A sliding log of reserved call slots per API account (epoch seconds), shared by every process:
# Airflow workers of several DAGs on one account book their calls here, so together they stay
# inside the account's calls-per-window. api_budget's row is the lock each booking takes.
api_budget = Table(
    "api_budget",
    metadata,
    Column("account", String(200), nullable=False),
    Column("last_slot", Float, nullable=False),
    PrimaryKeyConstraint("account", name="pk_api_budget"),
)

api_call_slot = Table(
    "api_call_slot",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("slot", Float, nullable=False),
)

# Who opened buyers' personal data, and when (`quarantine show --reveal`): sealed data is read in
# clear only with a trace.
personal_data_access = Table(
    "personal_data_access",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("subject", String(50), nullable=False),  # the table whose row was opened, e.g. quarantine
    Column("record_id", String(250), nullable=False),
    Column("record_key", String(250)),
    Column("action", String(20), nullable=False),  # reveal
    Column("accessed_by", String(100), nullable=False),
    _ts("accessed_at"),
)

# What a person did from the ops console beyond discards (kept on the quarantine row) and mapping
# changes (mapping_history): a replay request, with who asked and the Airflow run it started.
operator_action = Table(
    "operator_action",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("flow", String(50), nullable=False),
    Column("action", String(20), nullable=False),  # replay
    Column("subject", String(250)),  # e.g. quarantine #12
    Column("detail", Text),  # e.g. the Airflow run id
    Column("done_by", String(100), nullable=False),
    _ts("done_at"),
)

# Every alert e-mail, recorded before it is sent and kept until delivered: an SMTP server that is
# down never fails (nor repeats) the work; a later run's report step delivers what is queued.
# status: queued (waiting, last_error says why) | sending (claimed_by a process) | sent.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipients", JSON, nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("attachments", JSON, nullable=True),  # {file name: text}
    Column("conn_id", String(250), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    _ts("created_at"),
    Column("sent_at", DateTime(timezone=True), nullable=True),
)

Index("ix_outbox_status", outbox.c.status, outbox.c.created_at)
# Payment-provider settlement files, each version read once (name and SHA-256), and their rows
# with what reconciliation made of each (settlement_reconciliation).
settlement_file = Table(
    "settlement_file",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("name", String(500), nullable=False),
    Column("checksum", String(64), nullable=False),  # SHA-256 of the content, hex
    Column("size", Integer),
    Column("modified", String(100)),  # as the store reported it
    Column("status", String(20), nullable=False),  # read | changed | duplicate | unreadable
    Column("lines", Integer),
    Column("detail", Text),
    Column("period", String(100)),
    Column("run_id", String(250)),
    _ts("recorded_at"),
    UniqueConstraint("pairing", "name", "checksum", name="uq_settlement_file"),
)

settlement_line = Table(
    "settlement_line",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("file_id", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("batch", String(250)),
    Column("kind", String(30), nullable=False),
    Column("provider_type", String(80)),
    Column("merchant_ref", String(250)),
    Column("psp_ref", String(100)),
    Column("modification_ref", String(250)),
    Column("booked_at", DateTime(timezone=True)),
    Column("gross_currency", String(3)),
    Column("gross", String(40)),  # money as exact decimal text: SQLite has no exact numeric
    Column("exchange_rate", String(40)),
    Column("net_currency", String(3)),
    Column("net", String(40)),
    Column("fees", JSON),  # {fee name: decimal text}
    Column("status", String(20), nullable=False),  # new | matched | exception
    Column("reason", String(40)),  # the exception's type
    Column("detail", Text),
    Column("master_id", String(250)),  # the ERP sale, credit note or journal the row was matched to
    Column("master_total", String(40)),
    Column("period", String(100)),  # the report period that reconciled it
    Column("run_id", String(250)),
    _ts("updated_at"),
    UniqueConstraint("pairing", "file_id", "line_no", name="uq_settlement_line"),
)

# One row per erasure of buyers' personal data (on request or by retention): that it was done,
# when, by whom and how many rows of each table it touched; never what (no address, no hash).
erasure_log = Table(
    "erasure_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),  # request | retention
    Column("requested_by", String(100)),
    _ts("done_at"),
    Column("rows", JSON),  # {"quarantine": 1, "payload_log": 4, ...}
)

# The product master's SKUs as catalogue_out last read them (changed ones each run, all of them at
# the daily full read): what a listing on sale is checked against without reading the whole
# catalogue every run.
catalogue_sku = Table(
    "catalogue_sku",
    metadata,
    Column("pairing", String(100), nullable=False),
    Column("sku", String(250), nullable=False),  # master SKU
    Column("product_ref", String(250), nullable=False),  # the master's product holding it
    Column("active", Boolean, nullable=False),  # False: discontinued in the master
    Column("modified_at", DateTime(timezone=True)),  # the master's last change of the product
    Column("run_id", String(250)),  # the run that last read it
    _ts("seen_at"),
    PrimaryKeyConstraint("pairing", "sku", name="pk_catalogue_sku"),
)

# Verified webhook events (commerce_sync/webhooks.py): a wake-up's record, never its body (a
# digest only: the body is the vendor's word, and may carry a buyer's details).
webhook_event = Table(
    "webhook_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pairing", String(100), nullable=False),
    Column("system", String(50), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("wakes", JSON, nullable=False),  # the flows it woke
    Column("asset_event_id", Integer),  # Airflow's asset event; None: not posted (DAGs not parsed yet)
    _ts("received_at"),
)

Index("ix_order_link_master", order_link.c.pairing, order_link.c.kind, order_link.c.master_id)
Index("ix_quarantine_open", quarantine.c.pairing, quarantine.c.flow, quarantine.c.status)
Index("ix_staged_run", staged_record.c.pairing, staged_record.c.flow, staged_record.c.run_id)
Index("ix_payload_log_time", payload_log.c.logged_at)
Index("ix_api_call_slot", api_call_slot.c.account, api_call_slot.c.slot)
Index("ix_personal_data_access", personal_data_access.c.pairing, personal_data_access.c.accessed_at)
Index("ix_operator_action", operator_action.c.pairing, operator_action.c.done_at)
Index("ix_settlement_line_status", settlement_line.c.pairing, settlement_line.c.status)
Index("ix_settlement_line_ref", settlement_line.c.pairing, settlement_line.c.merchant_ref)
Index("ix_settlement_line_period", settlement_line.c.pairing, settlement_line.c.period)
# housekeeping (0010): old rows found by time, a quarantined order found by its link
Index("ix_staged_time", staged_record.c.staged_at)
Index("ix_quarantine_resolved", quarantine.c.resolved_at)
Index("ix_run_report_started", run_report.c.started_at)
Index("ix_report_file_time", report_file.c.created_at)
Index("ix_order_link_channel_id", order_link.c.pairing, order_link.c.kind, order_link.c.channel_id)

RUN_FIELDS = [c.name for c in run_report.columns if c.name not in ("id", "pairing", "flow", "run_id")]
Index("ix_webhook_event_time", webhook_event.c.pairing, webhook_event.c.received_at)
