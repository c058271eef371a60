"""dispatch_back: what the warehouse shipped reaches the channel, per box, with the mapped carrier
and the tracking number; partial shipments become several shipments; nothing is sent twice and
nothing is sent half-right.

extract (the master's sales changed in the window, their shipped boxes) -> gate -> load -> report.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from commerce_sync.errors import ClientError
from commerce_sync.flows.common import api_stats, apply_gate, channel_sku_map, finish_run, held_records, load_mappings, master_label
from commerce_sync.models import Shipment, ShipmentLine, TranslationError
from commerce_sync.runtime import FlowContext

FLOW = "dispatch_back"
LINK_KIND = "shipment"

log = logging.getLogger(__name__)


def extract(ctx: FlowContext, run_id: str, *, start: datetime, end: datetime) -> dict[str, Any]:
    key = ctx.pairing.key
    ours = ctx.ledger.linked_master_ids(key, "order")  # only sales this integration created
    sales = [s for s in ctx.master.updated_sales(start) if s.master_id in ours]
    orders = ctx.ledger.links_by_master(key, "order", [s.master_id for s in sales])
    staged: dict[str, Any] = {}
    for sale in sales:
        order = orders[sale.master_id]
        for item in ctx.master.read_shipments(sale):
            if isinstance(item, TranslationError):
                staged[item.record_key] = {"unreadable": item.reason, "sale": sale.master_id, "order_channel_ref": order["channel_ref"]}
                continue
            staged[item.shipment_ref] = {**item.model_dump(mode="json"), "order_channel_ref": order["channel_ref"], "order_channel_id": order["channel_id"],
                                         "order_number": order["master_ref"]}
    already = ctx.ledger.links(key, LINK_KIND, staged)
    fresh = {k: v for k, v in staged.items() if k not in already}
    replay = held_records(ctx, FLOW, exclude=fresh)
    ctx.ledger.stage(key, FLOW, run_id, list(fresh.items()) + list(replay.items()))
    ctx.ledger.record_run(key, FLOW, run_id, interval_start=start, interval_end=end, extracted=len(fresh), skipped=len(already), started_at=datetime.now(timezone.utc))
    return {"sales": len(sales), "shipments": len(fresh), "already_sent": len(already), "replayed": len(replay)}


def gate(ctx: FlowContext, run_id: str, extracted: dict | None = None) -> dict[str, Any]:
    from commerce_sync.gates.shipments import gate_shipments

    key = ctx.pairing.key
    staged = {r.record_key: r.payload for r in ctx.ledger.staged(key, FLOW, run_id)}
    unreadable = {k: [{"check": "payload_readable", "detail": v["unreadable"]}] for k, v in staged.items() if "unreadable" in v}
    shipments = {k: v for k, v in staged.items() if "unreadable" not in v}
    maps = load_mappings(ctx)
    known_before = {q.record_key for q in ctx.ledger.open_quarantine(key, FLOW)}
    result = gate_shipments(
        shipments,
        unreadable=unreadable,
        mapped_carriers=set(maps.get("carriers", {})),
        mapped_skus={v["master_sku"] for v in maps.get("skus", {}).values()},
        max_bad_share=ctx.pairing.policies.max_bad_share,
        min_records_for_share=ctx.pairing.policies.min_records_for_share,
        known_bad=known_before,
        master=master_label(ctx),
    )
    verdict = apply_gate(ctx, FLOW, run_id, result, staged)
    fresh_holds = {k: v for k, v in result.failed.items() if k in staged and "unreadable" not in staged[k] and k not in known_before}
    if fresh_holds:
        _alert_held(ctx, fresh_holds, staged)
    return verdict


def _alert_held(ctx: FlowContext, held: dict[str, list[dict[str, str]]], staged: dict[str, Any]) -> None:
    """A held shipment is a customer without tracking: ops hear of it at once, not at month end."""
    from html import escape

    from commerce_sync.alerts import send_email

    rows = "".join(
        f"<tr><td>{escape(str(staged[k].get('order_channel_ref')))}</td><td>{escape(str(staged[k].get('carrier')))}</td>"
        f"<td>{escape(str(staged[k].get('tracking_number')))}</td><td>{escape('; '.join(r['detail'] for r in reasons))}</td></tr>"
        for k, reasons in held.items()
    )
    html = (
        f"<p>{len(held)} shipment(s) were not sent to {escape(ctx.channel.name)} and wait in quarantine (flow dispatch_back).</p>"
        f"<table border='1' cellpadding='4'><tr><th>order</th><th>{escape(master_label(ctx))} carrier</th><th>tracking</th><th>why</th></tr>{rows}</table>"
        f"<p>Fix the carrier mapping (carriers.csv) or the tracking number in {escape(master_label(ctx))}; the next run sends them. See docs/operations.md.</p>"
    )
    send_email(ctx.pairing.recipients.get("ops", []), f"[Commerce Sync] {ctx.pairing.key}: {len(held)} shipment(s) held", html)


def load(ctx: FlowContext, run_id: str, gated: dict[str, Any]) -> dict[str, Any]:
    key = ctx.pairing.key
    staged = {r.record_key: r.payload for r in ctx.ledger.staged(key, FLOW, run_id)}
    maps = load_mappings(ctx)
    carriers = {k: v["channel_carrier"] for k, v in maps.get("carriers", {}).items()}
    to_channel = channel_sku_map(maps)  # shipped master SKUs back to the channel's
    claimed = ctx.ledger.claim(key, LINK_KIND, gated["valid_keys"], run_id)  # one run sends a box
    done = ctx.ledger.links(key, LINK_KIND, claimed)
    counts = {"sent": 0, "already_sent": len(done), "refused": 0, "in_flight": len(gated["valid_keys"]) - len(claimed)}
    refused: dict[str, list[dict[str, str]]] = {}
    for record_key in gated["valid_keys"]:
        if record_key in done or record_key not in claimed:
            continue
        payload = staged[record_key]
        shipment = _channel_shipment(payload, to_channel)
        try:
            channel_id = ctx.channel.push_shipment(payload["order_channel_id"], shipment, carriers[payload["carrier"]])
        except ClientError as exc:
            counts["refused"] += 1
            refused[record_key] = [{"check": "channel_refused", "detail": str(exc)}]
            ctx.ledger.quarantine(key, FLOW, record_key, payload, refused[record_key], run_id)
            continue
        ctx.ledger.add_link(key, LINK_KIND, record_key, payload["master_ref"], payload.get("tracking_number"), run_id, channel_id=channel_id)
        ctx.ledger.resolve_quarantine(key, FLOW, record_key, note=f"sent as {channel_id}")
        counts["sent"] += 1
    ctx.ledger.release(key, LINK_KIND, claimed, run_id)
    if refused:
        _alert_held(ctx, refused, staged)  # refused by the channel: as urgent as held by the gate
    slips = store_packing_slips(ctx, run_id, [k for k in gated["valid_keys"] if k not in refused], staged, maps)
    counts["packing_slips"] = len(slips)
    unprintable = {name: chars for name, chars in slips.items() if chars}
    if unprintable:  # in the run report: which slip printed '?' for what
        counts["packing_slips_unprintable"] = unprintable
    ctx.ledger.record_run(key, FLOW, run_id, loaded=counts["sent"], failed=counts["refused"], throttled=ctx.stats().get("throttled", 0))
    log.info("%s: dispatch %s", key, counts)
    return {**counts, **api_stats(ctx)}


def store_packing_slips(ctx: FlowContext, run_id: str, record_keys: list[str], staged: dict[str, Any], maps: dict) -> dict[str, str]:
    """A branded packing slip (PDF) per shipped box, from the ERP's fulfilment: what is in this
    box, both order numbers, the ship-to name and address (unsealed from the staged record only
    to be printed; never logged), the return instructions. Stored with the run (period = run id)
    so the run report lists them and `python -m commerce_sync files get` fetches one. Returns
    file name -> the characters no font could print ('' when none): the run report names them."""
    policy = ctx.pairing.packing_slips
    if policy is None or not record_keys:
        return {}
    from commerce_sync.models import ShipTo
    from commerce_sync.packing_slips import PackingSlip, SlipLine, describe, render, slip_filename

    names = {row["master_sku"]: row.get("name") for row in maps.get("skus", {}).values()}
    stored: dict[str, str] = {}
    for record_key in record_keys:
        payload = staged[record_key]
        slip = PackingSlip(
            brand=policy.brand,
            order_number=str(payload.get("order_number") or payload["master_ref"]),
            customer_order_number=str(payload["order_channel_ref"]),
            box=record_key.split(":", 1)[-1],
            shipped_at=datetime.fromisoformat(payload["shipped_at"]) if payload.get("shipped_at") else None,
            carrier=payload.get("carrier"),
            tracking_number=payload.get("tracking_number"),
            lines=[SlipLine(sku=line["sku"], name=names.get(line["sku"]), quantity=line["quantity"]) for line in payload["lines"]],
            return_instructions=policy.return_instructions,
            ship_to=ShipTo(**payload["shipping_address"]).lines() if payload.get("shipping_address") else (),
        )
        name = slip_filename(slip)
        rendered = render(slip)
        ctx.ledger.store_file(ctx.pairing.key, FLOW, run_id, name, "application/pdf", rendered.pdf)
        stored[name] = describe(rendered.unprintable)
        if rendered.unprintable:
            log.warning("%s: %s printed %d character(s) no font has as '?': %s", ctx.pairing.key, name, len(rendered.unprintable),
                        ", ".join(f"U+{ord(c):04X}" for c in rendered.unprintable))
    return stored


def _channel_shipment(payload: dict[str, Any], to_channel: dict[str, str]) -> Shipment:
    lines = [ShipmentLine(sku=to_channel[line["sku"]], quantity=line["quantity"]) for line in payload["lines"]]
    fields = {k: payload[k] for k in ("master_ref", "shipment_ref", "carrier", "tracking_number", "shipped_at")}
    return Shipment(order_channel_ref=payload["order_channel_ref"], lines=lines, **fields)


def report(ctx: FlowContext, run_id: str, extracted: dict, gated: dict, loaded: dict) -> dict[str, Any]:
    return finish_run(ctx, FLOW, run_id, extract=extracted, gate=gated, load=loaded)
