"""Retention: what each table keeps, and the pruning of what has outlived its purpose.

Pruned: the payload log, staged batches, API call slots and idle budgets, stale work claims,
replayed quarantine rows, run reports, stored reports and files, delivered outbox alerts.
Never pruned (the exactly-once guarantees and the flows' memory): order_link (orders,
shipments, credit notes, journals), payout_match, watermark, stock_snapshot, mapping and
mapping_history, discarded quarantine rows (a decision never to book), open quarantine rows,
erasure_log. README, 'Housekeeping', says why for each.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, exists
from sqlalchemy.engine import Engine

from commerce_sync.housekeeping.batches import Batching, delete_in_batches
from commerce_sync.ledger.schema import (
    api_budget,
    api_call_slot,
    outbox,
    payload_log,
    quarantine,
    report_file,
    run_report,
    staged_record,
    utcnow,
    webhook_event,
    work_claim,
)

KEPT = ("order_link", "payout_match", "watermark", "stock_snapshot", "mapping", "mapping_history", "erasure_log")


def days(n: float) -> timedelta:
    return timedelta(days=n)


def _staged(r, now: datetime) -> Iterator[tuple[str, Table, object]]:
    s, rr = staged_record, run_report
    finished = exists().where(rr.c.pairing == s.c.pairing, rr.c.flow == s.c.flow, rr.c.run_id == s.c.run_id, rr.c.finished_at.is_not(None))
    special = dict(r.staged_days_by_flow)
    for flow, n in special.items():
        yield "staged_record", s, and_(s.c.staged_at < now - days(n), s.c.flow == flow, finished)
    rest = s.c.flow.not_in(list(special)) if special else s.c.flow.is_not(None)
    yield "staged_record", s, and_(s.c.staged_at < now - days(r.staged_days), rest, finished)
    # a run that never finished: kept long enough for someone to re-run or clear it
    yield "staged_record", s, and_(s.c.staged_at < now - days(r.staged_unfinished_days), ~finished)


def _outbox(engine: Engine, r, now: datetime) -> Iterator[tuple[str, Table, object]]:
    # only what went out: an undelivered alert (sent_at NULL) is never pruned, however old
    yield "outbox", outbox, and_(outbox.c.status == "sent", outbox.c.sent_at < now - days(r.outbox_days))


def rules(engine: Engine, settings, now: datetime) -> Iterator[tuple[str, Table, object]]:
    """(table name, table, condition of the rows to delete), in the order they are pruned."""
    r = settings.retention
    yield "payload_log", payload_log, payload_log.c.logged_at < now - days(r.payload_log_days)
    yield from _staged(r, now)
    epoch = now.timestamp()
    yield "api_call_slot", api_call_slot, api_call_slot.c.slot < epoch - r.api_call_slot_seconds
    yield "api_budget", api_budget, api_budget.c.last_slot < epoch - days(r.api_budget_idle_days).total_seconds()
    yield "work_claim", work_claim, work_claim.c.claimed_at < now - days(r.work_claim_days)
    q = quarantine
    # replayed rows only: their order is booked and linked; open rows wait for a fix, and a
    # discarded row is the decision never to book that record, which must outlive any re-read
    yield "quarantine", q, and_(q.c.status == "replayed", q.c.resolved_at < now - days(r.quarantine_resolved_days))
    yield "run_report", run_report, run_report.c.started_at < now - days(r.run_report_days)
    f = report_file
    yield "report_file", f, and_(f.c.data.is_(None), f.c.created_at < now - days(r.report_days))
    yield "report_file", f, and_(f.c.data.is_not(None), f.c.created_at < now - days(r.stored_files_days))
    yield from _outbox(engine, r, now)
    yield "webhook_event", webhook_event, webhook_event.c.received_at < now - days(r.webhook_event_days)


def prune(engine: Engine, settings, now: datetime | None = None) -> dict[str, int]:
    """Delete what has outlived its retention; rows deleted per table."""
    now = now or utcnow()
    batching = Batching.of(settings)
    deleted: dict[str, int] = {}
    for name, table, where in rules(engine, settings, now):
        deleted[name] = deleted.get(name, 0) + delete_in_batches(engine, table, where, batching)
    return deleted
