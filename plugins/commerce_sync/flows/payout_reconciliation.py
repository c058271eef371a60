"""payout_reconciliation: every payout line matched to its sale to the cent; the marketplace's
commission, its tax and fees posted as one journal per payout in the master, exactly once, or, for
a master with no general ledger (`payouts.journal: file`), written with the net payout as one
journal file per period for the accounting system, exactly once (journal_file.py); everything else
(unmatched payouts, variances over the tolerance, refunds netted, sales with no payout past their
due period) in an exception report stored per period and e-mailed to finance.

extract -> gate -> reconcile -> report, against the ports only.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from commerce_sync.errors import ClientError
from commerce_sync.flows.common import flush_outbox, master_label
from commerce_sync.models import PayoutLine, TranslationError
from commerce_sync.money import quantize
from commerce_sync.runtime import FlowContext

FLOW = "payout_reconciliation"
LINK_KIND = "journal"
ZERO = Decimal("0")

log = logging.getLogger(__name__)


def _policy(ctx: FlowContext):
    if ctx.pairing.payouts is None:
        raise ValueError(f"{ctx.pairing.key}: payout_reconciliation needs a `payouts:` section in the pairing file")
    return ctx.pairing.payouts


def extract(ctx: FlowContext, run_id: str, *, start: datetime, end: datetime) -> dict[str, Any]:
    key = ctx.pairing.key
    fetched = {str(raw.get("id")): raw for raw in ctx.channel.fetch_payouts(start, end)}
    ctx.ledger.stage(key, FLOW, run_id, list(fetched.items()))
    ctx.ledger.record_run(key, FLOW, run_id, interval_start=start, interval_end=end, extracted=len(fetched), started_at=datetime.now(timezone.utc))
    return {"payouts": len(fetched), "period": f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC", "period_key": f"{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}"}


def _payouts(ctx: FlowContext, run_id: str):
    payouts: dict[str, list[PayoutLine]] = {}
    unreadable: dict[str, str] = {}
    for rec in ctx.ledger.staged(ctx.pairing.key, FLOW, run_id):
        try:
            payouts[rec.record_key] = ctx.channel.to_payout_lines(rec.payload)
        except TranslationError as exc:
            unreadable[rec.record_key] = exc.reason
    return payouts, unreadable


def gate(ctx: FlowContext, run_id: str, extracted: dict | None = None) -> dict[str, Any]:
    """Unreadable payouts go to quarantine; matching is the reconcile step's (it is the point)."""
    key = ctx.pairing.key
    payouts, unreadable = _payouts(ctx, run_id)
    staged = {r.record_key: r.payload for r in ctx.ledger.staged(key, FLOW, run_id)}
    for record_key, reason in unreadable.items():
        ctx.ledger.quarantine(key, FLOW, record_key, staged[record_key], [{"check": "payload_readable", "detail": reason}], run_id)
    ctx.ledger.record_run(key, FLOW, run_id, valid=len(payouts), quarantined=len(unreadable))
    return {"valid": len(payouts), "unreadable": len(unreadable), "period_key": (extracted or {}).get("period_key")}


def _sum(lines: list[PayoutLine], kind: str) -> Decimal:
    return sum((line.amount for line in lines if line.kind == kind), ZERO)


def reconcile(ctx: FlowContext, run_id: str, gated: dict | None = None) -> dict[str, Any]:
    key, policy = ctx.pairing.key, _policy(ctx)
    payouts, _ = _payouts(ctx, run_id)
    refs = {lines[0].order_channel_ref for lines in payouts.values() if lines}
    sales = ctx.ledger.links(key, "order", refs)
    journaled = ctx.ledger.links(key, LINK_KIND, [lines[0].payout_ref for lines in payouts.values() if lines])
    exceptions: list[dict[str, Any]] = []
    counts = {"matched": 0, "variance": 0, "unmatched": 0, "journals_posted": 0, "journals_already": 0, "journals_none_due": 0}
    to_file: list[tuple] = []  # (remittance, order, currency, booked, parts) for the period's journal file
    master = master_label(ctx)
    for record_key, lines in payouts.items():
        first = lines[0]
        cur = first.currency
        parts = {k: _sum(lines, k) for k in ("payment", "commission", "commission_tax", "fee", "refund")}
        row = {"order": first.order_channel_ref, "payout": first.payout_ref, "paid_net": parts["payment"], "commission": parts["commission"],
               "commission_tax": parts["commission_tax"], "fees": parts["fee"], "refunds": parts["refund"]}
        sale_id = sales.get(first.order_channel_ref or "")
        if sale_id is None:
            counts["unmatched"] += 1
            exceptions.append({**row, "type": "unmatched", "detail": f"no {master} sale is linked to this order"})
            status, total, variance = "unmatched", None, None
        else:
            total = ctx.master.sale_total(sale_id)
            # what the customer paid = what we were paid + what the marketplace kept (+ refunds it deducted)
            expected = sum(parts.values(), ZERO)
            variance = quantize(total - expected, cur)
            row.update(master_sale=sale_id, sale_total=total, variance=variance)
            if abs(variance) > policy.tolerance:
                counts["variance"] += 1
                status = "variance"
                exceptions.append({**row, "type": "variance", "detail": f"{master} total {total} vs paid {expected}: {variance:+} {cur}"})
            else:
                counts["matched"] += 1
                status = "matched"
            if parts["refund"]:
                exceptions.append({**row, "type": "refund_netted", "detail": f"{parts['refund']} {cur} of refunds deducted from this payout"})
        if policy.journal == "file":
            to_file.append((first.payout_ref, first.order_channel_ref, cur, first.booked_at, parts))
        else:
            counts["journals_" + _post_journal(ctx, policy, first, parts, journaled, run_id)] += 1
        ctx.ledger.record_payout_match(
            key, first.payout_ref, advice_ref=record_key, order_channel_ref=first.order_channel_ref, master_id=sale_id, currency=cur,
            sale_total=_text(total), net=_text(parts["payment"]), commission=_text(parts["commission"]), commission_tax=_text(parts["commission_tax"]),
            fees=_text(parts["fee"]), refunds=_text(parts["refund"]), variance=_text(variance), status=status, run_id=run_id,
        )
    if policy.journal == "file" and to_file:
        counts["journals_" + _write_journal_file(ctx, policy, (gated or {}).get("period_key") or run_id, to_file, run_id)] += 1
    overdue_before = datetime.now(timezone.utc) - timedelta(days=policy.due_days)
    for order in ctx.ledger.orders_without_payout(key, overdue_before):
        exceptions.append({"type": "no_remittance", "order": order["channel_ref"], "master_sale": order["master_id"],
                           "detail": f"booked {order['created_at']:%Y-%m-%d}, no payout after {policy.due_days} days"})
    ctx.ledger.stage(key, FLOW, run_id, [("__exceptions__", [{k: _text(v) if isinstance(v, Decimal) else v for k, v in e.items()} for e in exceptions])])
    ctx.ledger.record_run(key, FLOW, run_id, loaded=counts["matched"], failed=counts["variance"] + counts["unmatched"])
    log.info("%s: payouts %s, %d exception(s)", key, counts, len(exceptions))
    return {**counts, "exceptions": len(exceptions)}


def _post_journal(ctx: FlowContext, policy, first: PayoutLine, parts: dict[str, Decimal], journaled: dict[str, str], run_id: str) -> str:
    """Commission, its tax and fees as one journal, once per payout: 'posted', 'already' or 'none_due'."""
    if first.payout_ref in journaled:
        return "already"
    if not ctx.ledger.claim(ctx.pairing.key, LINK_KIND, [first.payout_ref], run_id):
        return "already"  # another run is posting it right now
    lines = [
        (account, policy.clearing_account, parts[kind])
        for kind, account in (("commission", policy.commission_account), ("commission_tax", policy.commission_tax_account), ("fee", policy.fee_account))
        if parts[kind] > 0
    ]
    if not lines:
        return "none_due"  # the marketplace kept nothing back
    reference = f"{ctx.pairing.channel.reference_prefix}PAYOUT-{first.payout_ref}"
    if ctx.ledger.links(ctx.pairing.key, LINK_KIND, [first.payout_ref]):
        return "already"  # it finished between our first look and the claim
    try:
        journal = ctx.master.find_journal(reference) or ctx.master.post_journal(reference, first.booked_at, first.currency, lines)
    except ClientError:
        # refused (4xx): nothing was written, so the re-run after the fix must not find the payout
        # claimed by this failed run for half an hour. (A write that may have landed keeps its
        # claim: this run's retry looks the journal up first.)
        ctx.ledger.release(ctx.pairing.key, LINK_KIND, [first.payout_ref], run_id)
        raise
    ctx.ledger.add_link(ctx.pairing.key, LINK_KIND, first.payout_ref, journal, reference, run_id)
    ctx.ledger.release(ctx.pairing.key, LINK_KIND, [first.payout_ref], run_id)
    return "posted"


def _write_journal_file(ctx: FlowContext, policy, period_key: str, entries: list[tuple], run_id: str) -> str:
    """The period's journal as one file in the pairing's store, once: 'posted' or 'already'. The
    ledger link (kind journal_file, keyed by period) says it was written; a run that died between
    writing and linking finds the file in the store and does not write it again."""
    from commerce_sync.journal_file import journal_csv, journal_rows, totals
    from commerce_sync.object_store import write_once

    key = ctx.pairing.key
    if ctx.ledger.links(key, "journal_file", [period_key]) or not ctx.ledger.claim(key, "journal_file", [period_key], run_id):
        return "already"
    reference = f"{ctx.pairing.channel.reference_prefix}JOURNAL-{period_key}"
    rows = journal_rows(reference, policy, entries)
    sums = totals(rows)
    if sums["debit"] != sums["credit"]:  # by construction it balances: a difference is a bug, never a file
        raise ValueError(f"{key}: the journal of {period_key} does not balance ({sums['debit']} debit, {sums['credit']} credit)")
    text = journal_csv(rows)
    name = f"{key}-journal-{period_key}.csv"
    written, digest = write_once(policy.journal_location, name, text.encode(), policy.journal_connection)
    ctx.ledger.store_report(key, FLOW, period_key, "journal.csv", "text/csv", text)  # beside the exception report
    ctx.ledger.add_link(key, "journal_file", period_key, name, digest, run_id)
    ctx.ledger.release(key, "journal_file", [period_key], run_id)
    log.info("%s: journal file %s %s (%s debit = credit)", key, name, "written" if written else "already in the store", sums["debit"])
    return "posted"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def report(ctx: FlowContext, run_id: str, extracted: dict, gated: dict, reconciled: dict) -> dict[str, Any]:
    """Store the exception report (CSV and HTML) for the period and e-mail it to finance."""
    from commerce_sync.alerts import send_email
    from commerce_sync.reports import exception_help, to_csv, to_html, with_amounts

    key, policy = ctx.pairing.key, _policy(ctx)
    staged = {r.record_key: r.payload for r in ctx.ledger.staged(key, FLOW, run_id)}
    exceptions = [with_amounts(e) for e in staged.get("__exceptions__", [])]
    period = extracted["period"]
    summary = {"period": period, "payouts": extracted["payouts"], "matched to the cent": reconciled["matched"], "variances": reconciled["variance"],
               "unmatched": reconciled["unmatched"], "commission journals posted": reconciled["journals_posted"], "exceptions": len(exceptions)}
    title = f"Payout reconciliation, {key}, {period}"
    csv_text, html = to_csv(exceptions), to_html(title, exceptions, summary, notes=exception_help(master_label(ctx)))
    ctx.ledger.store_report(key, FLOW, period, "exceptions.csv", "text/csv", csv_text)
    ctx.ledger.store_report(key, FLOW, period, "exceptions.html", "text/html", html)
    subject = f"[Commerce Sync] {key} payouts {period}: {len(exceptions)} exception(s)"
    send_email(ctx.pairing.recipients.get(policy.report_recipients, []), subject, html, {"exceptions.csv": csv_text})
    ctx.ledger.record_run(key, FLOW, run_id, finished_at=datetime.now(timezone.utc), details={**summary, "outbox": flush_outbox(ctx)})
    return summary
