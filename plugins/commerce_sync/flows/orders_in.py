"""orders_in: every channel order lands in the ERP exactly once, or sits in quarantine with a reason.

extract -> gate -> load -> report. Written against the ports only: no vendor names here.
Each step is a plain function of (FlowContext, run id, ...) returning small dicts, so Airflow
tasks, the CLI and tests call the same code.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from commerce_sync.flows.common import api_stats, apply_gate, finish_run, held_records, load_mappings, staged_orders
from commerce_sync.http import ClientError
from commerce_sync.models import Order, TranslationError
from commerce_sync.ports import SaleInstructions
from commerce_sync.runtime import FlowContext

FLOW = "orders_in"
ACCEPT_FLOW = "order_acceptance"  # its own quarantine: a held, unpaid order must never be replayed into the ERP
LINK_KIND = "order"
# A sale cannot be older than its channel order, but clocks differ between systems.
CLOCK_SKEW = timedelta(hours=1)

log = logging.getLogger(__name__)


def accept(ctx: FlowContext, run_id: str) -> dict[str, Any]:
    """Accept, before the channel's deadline, the waiting orders whose lines all map to the ERP.

    Only channels whose pairing has an `acceptance:` section take this step (Mirakl: OR21). An
    order with an unmapped line is held in quarantine (flow order_acceptance) and ops are told,
    with the time left; the next run accepts it once the mapping is fixed. Accepting is not
    booking: the order reaches the ERP through extract/load once the customer has paid.
    """
    policy = ctx.pairing.acceptance
    if policy is None:
        return {"awaiting": 0}
    key = ctx.pairing.key
    skus = set(load_mappings(ctx).get("skus", {}))
    held_before = {q.record_key for q in ctx.ledger.open_quarantine(key, ACCEPT_FLOW)}
    waiting = {ctx.channel.record_key(raw): raw for raw in ctx.channel.orders_awaiting_acceptance()}
    counts = {"awaiting": len(waiting), "accepted": 0, "partly_accepted": 0, "held": 0}
    fresh_holds: list[tuple[str, Order | None, list[dict[str, str]]]] = []
    for record_key, raw in waiting.items():
        try:
            order = ctx.channel.to_order(raw)
        except TranslationError as exc:
            reasons = [{"check": "payload_readable", "detail": exc.reason}]
            order = None
        else:
            unmapped = sorted({line.sku for line in order.lines if line.sku not in skus})
            reasons = [{"check": "sku_mapped", "detail": f"SKU {sku!r} is not mapped to a Cin7 SKU; add it to skus.csv"} for sku in unmapped]
            if not reasons or (policy.partial and len(unmapped) < len({line.sku for line in order.lines})):
                ctx.channel.accept_order(order, {line.line_ref: line.sku in skus for line in order.lines})
                counts["partly_accepted" if reasons else "accepted"] += 1
                ctx.ledger.resolve_quarantine(key, ACCEPT_FLOW, record_key, note="accepted" + (f", refused {', '.join(unmapped)}" if reasons else ""))
                continue
        counts["held"] += 1
        ctx.ledger.quarantine(key, ACCEPT_FLOW, record_key, raw, reasons, run_id)
        if record_key not in held_before:
            fresh_holds.append((record_key, order, reasons))
    for q in ctx.ledger.open_quarantine(key, ACCEPT_FLOW):
        if q.record_key not in waiting:
            # accepted by hand, refused, or expired on the channel: nothing left to decide here
            ctx.ledger.resolve_quarantine(key, ACCEPT_FLOW, q.record_key, note="no longer awaiting acceptance on the channel")
    if fresh_holds:
        _alert_unaccepted(ctx, policy, fresh_holds)
    log.info("%s: acceptance %s", key, counts)
    return {**counts, **api_stats(ctx)}


def _alert_unaccepted(ctx: FlowContext, policy, held: list[tuple[str, Order | None, list[dict[str, str]]]]) -> None:
    """Ops hear at once, with each order's acceptance deadline: after it the channel refuses it."""
    from html import escape

    from commerce_sync.alerts import send_email

    label = ctx.pairing.channel.label or ctx.channel.name
    rows = "".join(
        f"<tr><td>{escape(key)}</td><td>{escape(str(order.channel_ref if order else ''))}</td>"
        f"<td>{escape(f'{order.placed_at + timedelta(hours=policy.window_hours):%Y-%m-%d %H:%M} UTC' if order else 'unknown')}</td>"
        f"<td>{escape('; '.join(r['detail'] for r in reasons))}</td></tr>"
        for key, order, reasons in held
    )
    html = (
        f"<p>{len(held)} {escape(label)} order(s) cannot be accepted and wait in quarantine (flow {ACCEPT_FLOW}). "
        f"{escape(label)} refuses an order left undecided for {policy.window_hours} hours.</p>"
        f"<table border='1' cellpadding='4'><tr><th>order</th><th>customer order</th><th>accept by</th><th>why</th></tr>{rows}</table>"
        "<p>Map the SKUs (skus.csv or <code>python -m commerce_sync mappings import</code>); the next run accepts them. "
        "See docs/operations.md.</p>"
    )
    recipients = ctx.pairing.recipients.get(policy.recipients) or ctx.pairing.recipients.get("ops", [])
    send_email(recipients, f"[Commerce Sync] {ctx.pairing.key}: {len(held)} order(s) to accept by hand or map", html)


def extract(ctx: FlowContext, run_id: str, *, start: datetime, end: datetime) -> dict[str, Any]:
    """Stage the window's channel orders plus every open quarantined order (for replay)."""
    key = ctx.pairing.key
    fetched = {}
    for raw in ctx.channel.fetch_orders(start, end):
        fetched[ctx.channel.record_key(raw)] = raw
    replay = held_records(ctx, FLOW, exclude=fetched)
    staged = ctx.ledger.stage(key, FLOW, run_id, list(fetched.items()) + list(replay.items()))
    ctx.ledger.record_run(
        key, FLOW, run_id, interval_start=start, interval_end=end, extracted=len(fetched), started_at=datetime.now(timezone.utc)
    )
    log.info("%s: staged %d orders (%d from the window, %d replayed from quarantine)", key, staged, len(fetched), len(replay))
    return {"extracted": len(fetched), "replayed": len(replay), "staged": staged, **api_stats(ctx)}


def replay(ctx: FlowContext, run_id: str) -> dict[str, Any]:
    """Gate and load only the open quarantine, outside a scheduled run (the `replay` command)."""
    staged = ctx.ledger.stage(ctx.pairing.key, FLOW, run_id, list(held_records(ctx, FLOW).items()))
    extracted = {"extracted": 0, "replayed": staged, "staged": staged}
    gated = gate(ctx, run_id, extracted)
    loaded = load(ctx, run_id, gated)
    return report(ctx, run_id, extracted, gated, loaded)


def gate(ctx: FlowContext, run_id: str, extracted: dict | None = None) -> dict[str, Any]:
    """Validate the staged batch; quarantine failing orders; return the keys fit to load."""
    from commerce_sync.gates.orders import gate_orders  # GX is heavy: only the gate task pays for it

    key = ctx.pairing.key
    policy = ctx.pairing.policies
    payloads, orders, unreadable = staged_orders(ctx, FLOW, run_id)
    maps = load_mappings(ctx)
    result = gate_orders(
        orders,
        unreadable=unreadable,
        mapped_skus=set(maps.get("skus", {})),
        mapped_sellers=set(maps.get("sellers", {})),
        currencies=policy.currencies,
        max_bad_share=policy.max_bad_share,
        min_records_for_share=policy.min_records_for_share,
        replayed={q.record_key for q in ctx.ledger.open_quarantine(key, FLOW)},
    )
    log.info("%s: gate passed %d, quarantined %d", key, len(result.passed), len(result.failed))
    return apply_gate(ctx, FLOW, run_id, result, payloads)


def instructions(ctx: FlowContext, order: Order, maps: dict[str, dict[str, dict]]) -> SaleInstructions:
    p = ctx.pairing
    seller = maps.get("sellers", {}).get(order.seller_ref or "", {})
    return SaleInstructions(
        external_id=p.external_id(order.channel_ref),
        customer=seller.get("master_customer") or p.policies.customer,
        location=p.policies.location,
        tax_rule=p.policies.tax_rule,
        tax_calculation=p.policies.tax_calculation,
        status=p.policies.sale_status,
        sku_map={k: v["master_sku"] for k, v in maps.get("skus", {}).items()},
        source_channel=p.channel.label or ctx.channel.name.capitalize(),
        seller_label=seller.get("seller_name") or order.seller_name,
        shipping_description=p.policies.shipping_description,
        discount_description=p.policies.discount_description,
    )


def load(ctx: FlowContext, run_id: str, gated: dict[str, Any]) -> dict[str, Any]:
    """Create each valid order in the ERP unless the ledger or the ERP already holds it.

    The ledger link is checked first (cheap, local); then the ERP by external id, which catches a
    sale created by an earlier attempt whose response was lost. Only then is a sale created.
    """
    key = ctx.pairing.key
    payloads, orders, _ = staged_orders(ctx, FLOW, run_id, only=set(gated["valid_keys"]))
    maps = load_mappings(ctx)
    by_ref = {o.channel_ref: (k, o) for k, o in orders.items()}
    # claim before looking: another run (an overlapping window, a parallel backfill) may be
    # booking the same order right now, and only one may create it
    claimed = ctx.ledger.claim(key, LINK_KIND, by_ref, run_id)
    linked = ctx.ledger.links(key, LINK_KIND, claimed)
    counts = {"created": 0, "recovered": 0, "already_loaded": 0, "refused": 0, "in_flight": len(by_ref) - len(claimed)}
    for ref in linked:
        counts["already_loaded"] += 1
        ctx.ledger.resolve_quarantine(key, FLOW, by_ref[ref][0], note=f"already loaded as {linked[ref]}")

    todo = {ref: by_ref[ref] for ref in claimed if ref not in linked}
    if todo:
        since = min(o.placed_at for _, o in todo.values()) - CLOCK_SKEW
        existing = ctx.master.find_sales([ctx.pairing.external_id(r) for r in todo], since)
    else:
        existing = {}

    for ref, (record_key, order) in todo.items():
        how = instructions(ctx, order, maps)
        try:
            sale = existing.get(how.external_id)
            if sale is None:
                sale = ctx.master.create_sale(order, how)
                counts["created"] += 1
            else:
                if not sale.has_lines:
                    sale = ctx.master.complete_sale(sale, order, how)
                counts["recovered"] += 1
        except ClientError as exc:
            # The ERP refused this one order (e.g. a SKU mapped here but unknown there): hold it, go on.
            counts["refused"] += 1
            reason = {"check": "erp_refused", "detail": f"{ctx.master.name} refused the sale (HTTP {exc.status}): {exc.body}"}
            ctx.ledger.quarantine(key, FLOW, record_key, payloads[record_key], [reason], run_id)
            continue
        ctx.ledger.add_link(key, LINK_KIND, ref, sale.master_id, sale.order_number, run_id, channel_id=order.channel_id)
        ctx.channel.acknowledge_order(order, sale)
        ctx.ledger.resolve_quarantine(key, FLOW, record_key, note=f"loaded as {sale.order_number or sale.master_id}")

    ctx.ledger.release(key, LINK_KIND, claimed, run_id)
    ctx.ledger.record_run(
        key,
        FLOW,
        run_id,
        loaded=counts["created"] + counts["recovered"],
        skipped=counts["already_loaded"],
        failed=counts["refused"],
        throttled=ctx.stats().get("throttled", 0),
    )
    log.info("%s: load %s", key, counts)
    return {**counts, **api_stats(ctx)}


def report(ctx: FlowContext, run_id: str, extracted: dict, gated: dict, loaded: dict, accepted: dict | None = None) -> dict[str, Any]:
    """Close the run report: counts, throttling and latency, one row per run in the ledger."""
    return finish_run(ctx, FLOW, run_id, accept=accepted, extract=extracted, gate=gated, load=loaded)
