"""stock_out: channels never show more than the ERP can ship (buffer applied), and only changed
SKUs are sent. The ERP is the single source of truth.

extract (ERP availability + channel listings) -> gate -> push (changed only; all on a full
resync) -> report. Written against the ports only.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from commerce_sync.flows.common import flush_outbox, load_mappings
from commerce_sync.models import Listing, TranslationError
from commerce_sync.runtime import FlowContext
from commerce_sync.stock import buffer_for, sellable, total_available

FLOW = "stock_out"
SNAPSHOT_KEY = "__snapshot__"  # one staged record holds the whole batch: 100k rows, one write
SELLABLE_KEY = "__sellable__"

log = logging.getLogger(__name__)


def _policy(ctx: FlowContext):
    if ctx.pairing.stock is None:
        raise ValueError(f"{ctx.pairing.key}: stock_out needs a `stock:` section in the pairing file")
    return ctx.pairing.stock


def read_stock_rows(ctx: FlowContext) -> dict[str, Any]:
    """Every channel listing beside what Cin7 has available for it (one row per listing)."""
    policy = _policy(ctx)
    # the two reads and the mapping sync are independent and mostly wait on their APIs and the
    # ledger: side by side, a 100,000-SKU run takes as long as the slowest, not the sum
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stock-read") as pool:
        pending = pool.submit(ctx.channel.read_listings)
        maps = pool.submit(load_mappings, ctx)
        levels, unreadable = [], []
        for item in ctx.master.read_availability():
            (unreadable if isinstance(item, TranslationError) else levels).append(item)
        listings = pending.result()
        skus = maps.result().get("skus", {})
    totals = {None: total_available(levels, policy.locations)}
    totals |= {name: total_available(levels, region.locations) for name, region in policy.regions.items()}
    rows = []
    for key, listing in listings.items():
        sku = listing.sku
        master = (skus.get(sku) or {}).get("master_sku")
        if listing.region is not None and listing.region not in policy.regions:
            raise ValueError(f"{ctx.pairing.key}: the channel keeps stock in region {listing.region!r}, which the pairing's "
                             f"stock.regions do not name ({', '.join(policy.regions) or 'none'}): say which locations feed it")
        # a mapped SKU the ERP no longer reports has nothing to sell: 0, never a guess
        available = totals[listing.region].get(master, Decimal("0")) if master else None
        row = {
            "channel_sku": key,  # the SKU, or region:SKU where the channel keeps stock per region
            "listing_id": listing.listing_id,
            "channel_quantity": listing.quantity,
            "master_sku": master,
            "available": str(available) if available is not None else None,
        }
        if listing.region is not None:
            row |= {"sku": sku, "region": listing.region}
        rows.append(row)
    listed_masters = {r["master_sku"] for r in rows if r["master_sku"]}
    return {
        "rows": rows,
        "unreadable": [{"key": e.record_key, "reason": e.reason} for e in unreadable],
        "mapped_not_listed": sorted(v["master_sku"] for v in skus.values() if v.get("master_sku") not in listed_masters),
    }


def sellable_of(row: dict[str, Any], policy) -> int | None:
    """What the channel should show for a row, or None where no whole, non-negative number exists."""
    if row.get("master_sku") is None or row.get("available") is None:
        return None
    available = Decimal(row["available"])
    if available != available.to_integral_value() or available < 0:
        return None
    return sellable(available, buffer_for(row["master_sku"], policy, row.get("region")))


def extract(ctx: FlowContext, run_id: str) -> dict[str, Any]:
    """Read every channel listing and the ERP's availability; stage them as one record."""
    payload = read_stock_rows(ctx)
    ctx.ledger.stage(ctx.pairing.key, FLOW, run_id, [(SNAPSHOT_KEY, payload)])
    ctx.ledger.record_run(ctx.pairing.key, FLOW, run_id, extracted=len(payload["rows"]), started_at=datetime.now(timezone.utc))
    return {"listings": len(payload["rows"]), "unreadable": len(payload["unreadable"]), "mapped_not_listed": len(payload["mapped_not_listed"])}


def gate(ctx: FlowContext, run_id: str, extracted: dict | None = None) -> dict[str, Any]:
    """Validate; quarantine what fails; stage the sellable quantity of every listing that passed."""
    from commerce_sync.gates.stock import gate_stock

    key, policy = ctx.pairing.key, _policy(ctx)
    (snapshot,) = [r.payload for r in ctx.ledger.staged(key, FLOW, run_id) if r.record_key == SNAPSHOT_KEY]
    rows = {r["channel_sku"]: r for r in snapshot["rows"]}
    unreadable = {f"erp:{u['key']}": [{"check": "payload_readable", "detail": u["reason"]}] for u in snapshot["unreadable"]}
    result = gate_stock(
        list(rows.values()),
        unreadable=unreadable,
        max_bad_share=ctx.pairing.policies.max_bad_share,
        min_records_for_share=ctx.pairing.policies.min_records_for_share,
        known_bad={q.record_key for q in ctx.ledger.open_quarantine(key, FLOW)},
    )
    for record_key, reasons in result.failed.items():
        ctx.ledger.quarantine(key, FLOW, record_key, rows.get(record_key, {"key": record_key}), reasons, run_id)
    # the read is whole: an ERP row held as unreadable before and read cleanly now is superseded
    for q in ctx.ledger.open_quarantine(key, FLOW):
        if q.record_key.startswith("erp:") and q.record_key not in result.failed:
            ctx.ledger.resolve_quarantine(key, FLOW, q.record_key, note="read cleanly from Cin7 again")
    quantities = {sku: sellable_of(rows[sku], policy) for sku in result.passed}
    ctx.ledger.stage(key, FLOW, run_id, [(SELLABLE_KEY, quantities)])
    ctx.ledger.record_run(key, FLOW, run_id, valid=len(result.passed), quarantined=len(result.failed))
    return {"valid": len(result.passed), "quarantined": len(result.failed)}


def push(ctx: FlowContext, run_id: str, gated: dict | None = None, *, full: bool = False) -> dict[str, Any]:
    """Send what changed since the last push (everything on a full resync), in batches."""
    key, policy = ctx.pairing.key, _policy(ctx)
    staged = {r.record_key: r.payload for r in ctx.ledger.staged(key, FLOW, run_id)}
    quantities: dict[str, int] = staged[SELLABLE_KEY]
    rows = {r["channel_sku"]: r for r in staged[SNAPSHOT_KEY]["rows"]}
    before = ctx.ledger.pushed_stock(key)
    todo = [
        (Listing(sku=rows[sku].get("sku", sku), listing_id=rows[sku]["listing_id"], quantity=rows[sku]["channel_quantity"],
                 region=rows[sku].get("region")), qty)
        for sku, qty in sorted(quantities.items())
        if full or before.get(sku) != qty
    ]
    results = ctx.channel.push_stock(todo, batch_size=policy.push_batch_size) if todo else []
    sent = dict((listing.key, qty) for listing, qty in todo)
    accepted = {sku: sent[sku] for sku, error in results if error is None}
    ctx.ledger.record_pushed_stock(key, accepted, run_id)
    for sku, error in results:
        if error is not None:
            ctx.ledger.quarantine(key, FLOW, sku, rows[sku], [{"check": "channel_refused", "detail": f"{ctx.channel.name} refused the stock update: {error}"}], run_id)
    # a listing that passed the gate and is now in step with Cin7 leaves quarantine
    refused = {sku for sku, error in results if error is not None}
    for q in ctx.ledger.open_quarantine(key, FLOW):
        if q.record_key in quantities and q.record_key not in refused:
            ctx.ledger.resolve_quarantine(key, FLOW, q.record_key, note=f"stock {quantities[q.record_key]} in step with Cin7")
    counts = {"sent": len(accepted), "refused": len(results) - len(accepted), "unchanged": len(quantities) - len(todo), "full_resync": full}
    ctx.ledger.record_run(key, FLOW, run_id, loaded=counts["sent"], skipped=counts["unchanged"], failed=counts["refused"], throttled=ctx.stats().get("throttled", 0))
    log.info("%s: stock push %s", key, counts)
    return counts


def report(ctx: FlowContext, run_id: str, extracted: dict, gated: dict, pushed: dict) -> dict[str, Any]:
    details = {"extract": extracted, "gate": gated, "push": pushed, "open_quarantine": len(ctx.ledger.open_quarantine(ctx.pairing.key, FLOW)),
               "outbox": flush_outbox(ctx)}
    ctx.ledger.record_run(ctx.pairing.key, FLOW, run_id, finished_at=datetime.now(timezone.utc), details=details)
    return details
