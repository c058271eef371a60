"""refunds: a channel refund becomes one credit note in the master (Cin7) on the linked sale, for the refunded
lines and amounts, with no restock (stock returns only when the warehouse has the item back and
has inspected it). A refund on an order we never booked is quarantined.

extract -> gate -> load -> report, against the ports only.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from commerce_sync.errors import ClientError
from commerce_sync.flows.common import api_stats, apply_gate, finish_run, held_records, load_mappings, master_label, staged_records
from commerce_sync.runtime import FlowContext

FLOW = "refunds"
LINK_KIND = "credit_note"

log = logging.getLogger(__name__)


def extract(ctx: FlowContext, run_id: str, *, start: datetime, end: datetime) -> dict[str, Any]:
    key = ctx.pairing.key
    fetched = {str(raw.get("id")): raw for raw in ctx.channel.fetch_refunds(start, end)}
    replay = held_records(ctx, FLOW, exclude=fetched)
    ctx.ledger.stage(key, FLOW, run_id, list(fetched.items()) + list(replay.items()))
    ctx.ledger.record_run(key, FLOW, run_id, interval_start=start, interval_end=end, extracted=len(fetched), started_at=datetime.now(timezone.utc))
    return {"extracted": len(fetched), "replayed": len(replay)}


def _refunds(ctx: FlowContext, run_id: str):
    return staged_records(ctx, FLOW, run_id, ctx.channel.to_refund)


def gate(ctx: FlowContext, run_id: str, extracted: dict | None = None) -> dict[str, Any]:
    payloads, refunds, unreadable = _refunds(ctx, run_id)
    linked = set(ctx.ledger.links(ctx.pairing.key, "order", [r.order_channel_ref for r in refunds.values()]))
    return gate_batch(ctx, run_id, payloads, refunds, unreadable, linked=linked, mapped_skus=set(load_mappings(ctx).get("skus", {})))


def gate_batch(ctx: FlowContext, run_id: str, payloads, refunds, unreadable, *, linked: set[str], mapped_skus: set[str]) -> dict[str, Any]:
    """The refunds suite over a staged batch, whichever way the refunds go; what fails is held."""
    from commerce_sync.gates.refunds import gate_refunds

    result = gate_refunds(
        refunds,
        linked_orders=linked,
        unreadable=unreadable,
        mapped_skus=mapped_skus,
        max_bad_share=ctx.pairing.policies.max_bad_share,
        min_records_for_share=ctx.pairing.policies.min_records_for_share,
        known_bad={q.record_key for q in ctx.ledger.open_quarantine(ctx.pairing.key, FLOW)},
        master=master_label(ctx),
    )
    return apply_gate(ctx, FLOW, run_id, result, payloads)


def load(ctx: FlowContext, run_id: str, gated: dict[str, Any]) -> dict[str, Any]:
    key = ctx.pairing.key
    payloads, refunds, _ = _refunds(ctx, run_id)
    claimed = ctx.ledger.claim(key, LINK_KIND, [refunds[k].refund_ref for k in gated["valid_keys"]], run_id)  # one run credits a refund
    todo = {k: refunds[k] for k in gated["valid_keys"] if refunds[k].refund_ref in claimed}
    done = ctx.ledger.links(key, LINK_KIND, [r.refund_ref for r in todo.values()])
    sales = ctx.ledger.links(key, "order", [r.order_channel_ref for r in todo.values()])
    sku_map = {k: v["master_sku"] for k, v in load_mappings(ctx).get("skus", {}).items()}
    counts = {"credited": 0, "already_credited": 0, "refused": 0, "in_flight": len(gated["valid_keys"]) - len(todo)}
    for record_key, refund in todo.items():
        if refund.refund_ref in done:
            counts["already_credited"] += 1
            continue
        sale_id = sales[refund.order_channel_ref]
        try:
            # the ERP first: a credit note whose answer was lost is found, not made twice
            note = ctx.master.find_credit_note(sale_id, refund.refund_ref) or ctx.master.create_credit_note(sale_id, refund, sku_map, ctx.pairing.policies.tax_rule)
        except ClientError as exc:
            counts["refused"] += 1
            ctx.ledger.quarantine(key, FLOW, record_key, payloads[record_key], [{"check": "erp_refused", "detail": f"{ctx.master.name} refused the credit note (HTTP {exc.status}): {exc.body}"}], run_id)
            continue
        ctx.ledger.add_link(key, LINK_KIND, refund.refund_ref, note, None, run_id, channel_id=record_key)
        ctx.ledger.resolve_quarantine(key, FLOW, record_key, note=f"credit note {note}")
        counts["credited"] += 1
    ctx.ledger.release(key, LINK_KIND, claimed, run_id)
    ctx.ledger.record_run(key, FLOW, run_id, loaded=counts["credited"], skipped=counts["already_credited"], failed=counts["refused"])
    log.info("%s: refunds %s", key, counts)
    return {**counts, **api_stats(ctx)}


def report(ctx: FlowContext, run_id: str, extracted: dict, gated: dict, loaded: dict) -> dict[str, Any]:
    return finish_run(ctx, FLOW, run_id, extract=extracted, gate=gated, load=loaded)
