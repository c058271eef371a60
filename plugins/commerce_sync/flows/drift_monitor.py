"""drift_monitor: the quiet failures, found before they cost money.

- stock drift: what the channel shows vs the master's sellable (available less unbooked orders and buffer), over a tolerance;
- orphaned orders: on the channel, neither in the master nor in quarantine, well after they were placed;
- shipped, not synced: a box shipped in the master that never reached the channel inside the window;
- money mismatches: an order's total or tax in the master differing from the channel's;
- no inventory record: a SKU sold on the channel (orderable, priced) with no stock record in its
  region's pool, as the channel's listings say (Listing.recorded).

check -> report (stored per run, e-mailed to ops when anything is found). Ports only.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from commerce_sync.flows.booking import tax_inclusive
from commerce_sync import ports
from commerce_sync.flows.common import flush_outbox, master_label, offers
from commerce_sync.flows.stock_out import read_stock_rows, sellable_of
from commerce_sync.models import TranslationError, amount_due
from commerce_sync.money import quantize
from commerce_sync.runtime import FlowContext

FLOW = "drift_monitor"
FINDINGS_KEY = "__findings__"
REPORT_COLUMNS = ["type", "key", "detail"]
FIRST = {"orphaned_order": 0, "dispatch_overdue": 1}  # the report's and the e-mail's order; the other types follow as found

log = logging.getLogger(__name__)


def _stock_drift(ctx: FlowContext) -> list[dict[str, Any]]:
    if ctx.pairing.stock is None:
        return []
    tolerance = ctx.pairing.drift.stock_tolerance
    found = []
    for row in read_stock_rows(ctx)["rows"]:
        expected = sellable_of(row, ctx.pairing.stock)
        shown = row.get("channel_quantity")
        if row.get("no_record"):
            # sold on the channel in a stock pool (a region) that holds no record of it: shoppers
            # there see no stock until stock_out writes one (or the SKU is never mapped, never will)
            where = f" in region {row['region']}" if row.get("region") else ""
            found.append({"type": "no_inventory_record", "key": row["channel_sku"],
                          "detail": f"on sale{where} with no inventory record there; "
                                    + (f"{master_label(ctx)} SKU {row['master_sku']} allows {expected}" if row["master_sku"] else f"not mapped to a {master_label(ctx)} SKU (skus.csv)")})
            continue
        if expected is not None and shown is not None and abs(shown - expected) > tolerance:
            found.append({"type": "stock_drift", "key": row["channel_sku"], "detail": f"channel shows {shown}, {master_label(ctx)} allows {expected}"
                          + (f" ({row['unbooked']} unit(s) in orders not booked yet held back)" if row.get("unbooked") else "")})
    return found


def _orders(ctx: FlowContext, since: datetime, now: datetime) -> list[dict[str, Any]]:
    """Orphans (placed long enough ago, never landed nor held) and total/tax mismatches."""
    key, drift = ctx.pairing.key, ctx.pairing.drift
    orders = {}
    for raw in ctx.channel.fetch_orders(since, now):
        try:
            orders[ctx.channel.record_key(raw)] = ctx.channel.to_order(raw)
        except TranslationError:
            continue  # unreadable orders are orders_in's to quarantine, not drift
    linked = ctx.ledger.links(key, "order", [o.channel_ref for o in orders.values()])
    held = {q.record_key for q in ctx.ledger.open_quarantine(key, "orders_in")}
    cutoff = now - timedelta(minutes=drift.orphan_after_minutes)
    queue = offers(ctx, ports.ORDER_QUEUE)
    found = []
    for record_key, order in orders.items():
        if order.ship_by is not None and order.ship_by < now:
            # the channel's own dispatch deadline has passed and the order still awaits dispatch there
            found.append({"type": "dispatch_overdue", "key": order.channel_ref or record_key,
                          "detail": f"to be dispatched by {order.ship_by:%Y-%m-%d %H:%M} UTC, not yet confirmed to the channel"})
        if order.channel_ref in linked:
            if queue and order.placed_at < cutoff:
                # booked, yet still waiting in the channel's export queue: the acknowledgement keeps failing
                found.append({"type": "orphaned_order", "key": order.channel_ref,
                              "detail": f"placed {order.placed_at:%Y-%m-%d %H:%M} UTC, booked in {master_label(ctx)} but still not marked exported on the channel"})
            booked = ctx.master.sale_amounts(linked[order.channel_ref])
            # the ERP's total includes tax whatever the mode; an exclusive order's total does not
            due = amount_due(order, tax_inclusive(ctx.pairing, order))
            for what, ours, theirs in (("total", due, booked["total"]), ("tax", order.tax_total, booked["tax"])):
                diff = quantize(theirs - ours, order.currency)
                if abs(diff) > drift.money_tolerance:
                    found.append({"type": f"{what}_mismatch", "key": order.channel_ref, "detail": f"channel {what} {ours}, {master_label(ctx)} {theirs} ({diff:+} {order.currency})"})
        elif record_key not in held and order.placed_at < cutoff:
            found.append({"type": "orphaned_order", "key": order.channel_ref or record_key,
                          "detail": f"placed {order.placed_at:%Y-%m-%d %H:%M} UTC, not in {master_label(ctx)} and not in quarantine"})
    return found


def _unsynced_shipments(ctx: FlowContext, since: datetime, now: datetime) -> list[dict[str, Any]]:
    key = ctx.pairing.key
    ours = ctx.ledger.linked_master_ids(key, "order")
    sales = [s for s in ctx.master.updated_sales(since) if s.master_id in ours]
    orders = ctx.ledger.links_by_master(key, "order", [s.master_id for s in sales])
    window = timedelta(minutes=ctx.pairing.drift.dispatch_window_minutes)
    shipments = [sh for sale in sales for sh in ctx.master.read_shipments(sale) if not isinstance(sh, TranslationError)]
    sent = ctx.ledger.links(key, "shipment", [sh.shipment_ref for sh in shipments])
    return [
        {"type": "shipped_not_synced", "key": orders[sh.master_ref]["channel_ref"],
         "detail": f"box {sh.shipment_ref} shipped {sh.shipped_at:%Y-%m-%d %H:%M} UTC ({sh.carrier}, {sh.tracking_number}) is not on the channel"}
        for sh in shipments
        if sh.shipment_ref not in sent and now - sh.shipped_at > window
    ]


def check(ctx: FlowContext, run_id: str) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    since = now - timedelta(hours=ctx.pairing.drift.lookback_hours)
    findings = _orders(ctx, since, now) + _stock_drift(ctx) + _unsynced_shipments(ctx, since, now)
    # what ops must see first: orders that never reached the ERP (a stalled queue), then the rest
    findings.sort(key=lambda f: FIRST.get(f["type"], len(FIRST)))
    ctx.ledger.stage(ctx.pairing.key, FLOW, run_id, [(FINDINGS_KEY, findings)])
    counts: dict[str, int] = {}
    for f in findings:
        counts[f["type"]] = counts.get(f["type"], 0) + 1
    ctx.ledger.record_run(ctx.pairing.key, FLOW, run_id, started_at=now, extracted=len(findings), details={"counts": counts})
    log.info("%s: drift %s", ctx.pairing.key, counts or "none")
    return {"findings": len(findings), "counts": counts, "since": since.isoformat()}


def report(ctx: FlowContext, run_id: str, checked: dict[str, Any]) -> dict[str, Any]:
    from html import escape

    from commerce_sync.alerts import run_link, send_email
    from commerce_sync.reports import to_csv

    key = ctx.pairing.key
    findings = next((r.payload for r in ctx.ledger.staged(key, FLOW, run_id) if r.record_key == FINDINGS_KEY), [])
    ctx.ledger.store_report(key, FLOW, run_id, "drift.csv", "text/csv", to_csv(findings, REPORT_COLUMNS))
    if findings:
        rows = "".join(f"<tr><td>{escape(f['type'])}</td><td>{escape(str(f['key']))}</td><td>{escape(f['detail'])}</td></tr>" for f in findings)
        html = (f"<p>The drift monitor found {len(findings)} thing(s) out of step since {escape(checked['since'])}:</p>"
                f"<table border='1' cellpadding='4'><tr><th>type</th><th>order / SKU</th><th>detail</th></tr>{rows}</table>"
                f"<p><a href='{escape(run_link(ctx.pairing.dag_id(FLOW), run_id))}'>Open the run</a>. docs/operations.md, 'Drift', says what each means.</p>")
        stalled = sum(f["type"] == "orphaned_order" for f in findings)
        if stalled:  # said before anything else: the stalled queue is what ops must see first
            html = f"<p><b>{stalled} order(s) not booked or not exported</b> (first in the table).</p>" + html
        send_email(ctx.pairing.recipients.get("ops", []), f"[Commerce Sync] {key}: drift found ({len(findings)})", html)
    details = {"counts": checked["counts"], "outbox": flush_outbox(ctx)}
    ctx.ledger.record_run(key, FLOW, run_id, finished_at=datetime.now(timezone.utc), details=details)
    return {"findings": len(findings), "counts": checked["counts"]}
