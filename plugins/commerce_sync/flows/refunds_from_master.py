"""refunds, the other way round (a pairing with `refunds.origin: master`): a refund or completed
return in the master opens the matching refund request on the channel order, exactly once, so the
marketplace no longer shows the order as complete. A return on an order this integration never
booked, or of a SKU the mapping lacks, is quarantined and replayed once fixed.

The same DAG (<pairing>__refunds) and steps as the refunds flow; factory.flow_module picks this
module from the pairing's direction. extract -> gate -> load -> report, against the ports only
(ports.MasterReturns, ports.RefundRequester).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from commerce_sync.errors import ClientError
from commerce_sync.flows.common import api_stats, channel_sku_map, finish_run, held_records, load_mappings, master_label, staged_records
from commerce_sync.flows.refunds import FLOW, gate_batch
from commerce_sync.runtime import FlowContext

LINK_KIND = "refund_request"

log = logging.getLogger(__name__)


def extract(ctx: FlowContext, run_id: str, *, start: datetime, end: datetime) -> dict[str, Any]:
    key = ctx.pairing.key
    fetched = {ctx.master.return_key(raw): raw for raw in ctx.master.fetch_returns(start, end)}
    already = ctx.ledger.links(key, LINK_KIND, fetched)  # the overlap reads returns already sent
    fresh = {k: v for k, v in fetched.items() if k not in already}
    replay = held_records(ctx, FLOW, exclude=fresh)
    ctx.ledger.stage(key, FLOW, run_id, list(fresh.items()) + list(replay.items()))
    ctx.ledger.record_run(key, FLOW, run_id, interval_start=start, interval_end=end, extracted=len(fresh), skipped=len(already),
                          started_at=datetime.now(timezone.utc))
    return {"extracted": len(fresh), "already_requested": len(already), "replayed": len(replay)}


def _staged(ctx: FlowContext, run_id: str):
    payloads, refunds, unreadable = staged_records(ctx, FLOW, run_id, ctx.master.to_refund)
    orders = ctx.ledger.links_by_master(ctx.pairing.key, "order", [r.order_master_ref for r in refunds.values()])
    return payloads, refunds, unreadable, orders


def gate(ctx: FlowContext, run_id: str, extracted: dict | None = None) -> dict[str, Any]:
    payloads, refunds, unreadable, orders = _staged(ctx, run_id)
    return gate_batch(ctx, run_id, payloads, refunds, unreadable, linked={r.order_channel_ref for r in refunds.values() if r.order_master_ref in orders},
                      mapped_skus={v["master_sku"] for v in load_mappings(ctx).get("skus", {}).values()})  # the refund's lines carry master SKUs


def load(ctx: FlowContext, run_id: str, gated: dict[str, Any]) -> dict[str, Any]:
    key = ctx.pairing.key
    payloads, refunds, _, orders = _staged(ctx, run_id)
    claimed = ctx.ledger.claim(key, LINK_KIND, gated["valid_keys"], run_id)  # one run opens a request
    done = ctx.ledger.links(key, LINK_KIND, claimed)
    to_channel = channel_sku_map(load_mappings(ctx))
    counts = {"requested": 0, "already_requested": len(done), "refused": 0, "in_flight": len(gated["valid_keys"]) - len(claimed)}
    for record_key in gated["valid_keys"]:
        if record_key in done or record_key not in claimed:
            continue
        refund = refunds[record_key]
        order = orders[refund.order_master_ref]
        channel_refund = refund.model_copy(update={
            "reason": refund.reason or ctx.pairing.refunds.reason,
            "lines": [line.model_copy(update={"sku": to_channel[line.sku]}) for line in refund.lines],
        })
        reference = f"{key}:{record_key}"  # carried by the request: a lost answer is found, not made twice
        try:
            request_id = ctx.channel.open_refund_request(order["channel_id"], channel_refund, reference)
        except ClientError as exc:
            counts["refused"] += 1
            ctx.ledger.quarantine(key, FLOW, record_key, payloads[record_key],
                                  [{"check": "channel_refused", "detail": f"{ctx.pairing.channel.label or ctx.channel.name} refused the refund request: {exc}"}], run_id)
            continue
        ctx.ledger.add_link(key, LINK_KIND, record_key, refund.order_master_ref, reference, run_id, channel_id=request_id)
        ctx.ledger.resolve_quarantine(key, FLOW, record_key, note=f"refund request {request_id}")
        counts["requested"] += 1
    ctx.ledger.release(key, LINK_KIND, claimed, run_id)
    ctx.ledger.record_run(key, FLOW, run_id, loaded=counts["requested"], skipped=counts["already_requested"], failed=counts["refused"])
    log.info("%s: refunds from %s %s", key, master_label(ctx), counts)
    return {**counts, **api_stats(ctx)}


def report(ctx: FlowContext, run_id: str, extracted: dict, gated: dict, loaded: dict) -> dict[str, Any]:
    return finish_run(ctx, FLOW, run_id, extract=extracted, gate=gated, load=loaded)
