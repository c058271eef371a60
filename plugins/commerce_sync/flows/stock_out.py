"""stock_out: channels never show more than the ERP can ship (buffer applied), and only changed
SKUs are sent. The ERP is the single source of truth.

extract (ERP availability + channel listings) -> gate -> push (changed only; all on a full
resync) -> report. Written against the ports only.

A master with a change feed (ports.AvailabilityChanges: Centra's events) is read whole only on
the daily full resync (and the first run); other runs read the availability of the SKUs its feed
names. Those SKUs are kept in the ledger (watermark `pending`) from the extract until a push has
sent them, and the feed is confirmed only once the extract committed that: a worker dying in
between loses nothing (the feed or the watermark still holds them) and doubles nothing (the push
sends only what differs from what was last sent).

In-flight orders: an order captured on the channel but not booked in the ERP yet (staged by
orders_in, held in its quarantine, claimed by a load in flight, not yet read by orders_in, or not
yet bookable by the pairing's policy: awaiting payment, confirmation or acceptance) is not in the
ERP's availability, so its units are taken off what is pushed, each order exactly once (keyed by
the channel's record key, whichever source saw it); a booked one never (the ERP's availability
holds it), a cancelled one no more. Which side counts an order is a matter of order of reads:
- booked: the ledger's link sequence is read before the ERP's stock, and only the links it
  covers count as booked (a sale linked after that read may be missing from the stock read);
- placed: the listings are read before the orders. Where the channel takes its own orders off
  its figure (a listing with `as_of`: commercetools), an order placed after the listing's
  `as_of` is not in the figure read and its channel write takes it off (it writes the target
  less what sold since the read: stock.less_sold_since_read), so the listing holds back only
  orders placed at or before `as_of`; where the figure is set outright (no `as_of`), every
  unbooked order is held back (stock.UnbookedUnits.for_listing).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from commerce_sync.flows.common import flush_outbox, load_mappings, master_label
from commerce_sync.models import Listing, Order, TranslationError
from commerce_sync.ports import AvailabilityChanges
from commerce_sync.runtime import FlowContext
from commerce_sync.stock import UnbookedUnits, buffer_for, sellable, total_available

FLOW = "stock_out"
SNAPSHOT_KEY = "__snapshot__"  # one staged record holds the whole batch: 100k rows, one write
SELLABLE_KEY = "__sellable__"
PENDING = "pending"  # watermark: master SKUs the change feed named that no push has sent yet (JSON list)
RECHECK = "recheck"  # watermark: SKUs a full read did not report (given 0), read again by name next run
FULL = "*"  # PENDING's value when the next run must read everything (this one read rows it could not use)

log = logging.getLogger(__name__)


def _policy(ctx: FlowContext):
    if ctx.pairing.stock is None:
        raise ValueError(f"{ctx.pairing.key}: stock_out needs a `stock:` section in the pairing file")
    return ctx.pairing.stock


def read_stock_rows(ctx: FlowContext, only: set[str] | None = None) -> dict[str, Any]:
    """Every channel listing beside what the master has available for it (one row per listing);
    with `only`, the listings of those master SKUs, from the master's availability of them alone."""
    policy = _policy(ctx)
    # before the ERP's stock is read: a sale linked after this may be missing from that read,
    # so its order still counts as unbooked (see the module docstring)
    mark = ctx.ledger.link_mark(ctx.pairing.key, _link_kind())
    # the two reads and the mapping sync are independent and mostly wait on their APIs and the
    # ledger: side by side, a 100,000-SKU run takes as long as the slowest, not the sum
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stock-read") as pool:
        pending = pool.submit(ctx.channel.read_listings)
        maps = pool.submit(load_mappings, ctx)
        levels, unreadable = [], []
        for item in ctx.master.read_availability() if only is None else ctx.master.availability_of_skus(only):
            (unreadable if isinstance(item, TranslationError) else levels).append(item)
        listings = pending.result()
        skus = maps.result().get("skus", {})
    # after the listings (see the module docstring): what is captured and not booked yet. Per
    # master SKU, not per region: a region's row holds back every unbooked unit of its SKU (more
    # than its own share where several regions sell it: never more than the master can ship)
    unbooked = UnbookedUnits(*unbooked_orders(ctx, policy.unbooked_lookback_hours, mark), {k: v["master_sku"] for k, v in skus.items()})
    totals = {None: total_available(levels, policy.locations)}
    totals |= {name: total_available(levels, region.locations) for name, region in policy.regions.items()}
    rows = []
    for key, listing in listings.items():
        sku = listing.sku
        master = (skus.get(sku) or {}).get("master_sku")
        if only is not None and master not in only:
            continue
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
            "unbooked": unbooked.for_listing(master, listing.as_of, listing.region) if master else 0,
        }
        if listing.region is not None:
            row |= {"sku": sku, "region": listing.region}
        if not listing.recorded:
            row["no_record"] = True  # drift_monitor's `no_inventory_record`; stock_out creates the record
        rows.append(row)
    listed_masters = {r["master_sku"] for r in rows if r["master_sku"]}
    return {
        "rows": rows,
        "unreported": sorted(listed_masters - set().union(*totals.values())),  # given 0: the master reported no stock of them here
        "unreadable": [{"key": e.record_key, "reason": e.reason} for e in unreadable],
        "mapped_not_listed": sorted(v["master_sku"] for v in skus.values() if v.get("master_sku") not in listed_masters),
    }


def _link_kind() -> str:
    from commerce_sync.flows.orders_in import LINK_KIND

    return LINK_KIND


def unbooked_orders(ctx: FlowContext, lookback_hours: int, mark: int | None = None) -> tuple[dict[str, Order], set[str]]:
    """(every captured order the sources know, by record key; the references of those of them
    booked, among the links up to `mark` where given, which stock.UnbookedUnits leaves out).
    Sources: orders_in's staged records and open quarantine (the ledger), and the channel's
    captured orders of the lookback (those orders_in has not read yet, and those not bookable
    yet); one the channel says it let go (cancelled) counts no more, whatever the ledger holds.
    An order the channel cannot translate has no SKUs to hold back: it is orders_in's to
    quarantine, and counted here once it can be read."""
    from commerce_sync.flows.orders_in import FLOW as ORDERS, LINK_KIND

    key = ctx.pairing.key
    since = datetime.now(timezone.utc) - timedelta(hours=lookback_hours)
    raws: dict[str, Any] = {r.record_key: r.payload for r in ctx.ledger.staged_since(key, ORDERS, since)}
    raws.update({q.record_key: q.payload for q in ctx.ledger.open_quarantine(key, ORDERS)})
    for raw, holds in ctx.channel.captured_orders(since, datetime.now(timezone.utc) + timedelta(minutes=1)):
        if holds:
            raws[ctx.channel.record_key(raw)] = raw
        else:
            raws.pop(ctx.channel.record_key(raw), None)
    orders: dict[str, Order] = {}
    for record_key, raw in raws.items():
        try:
            orders[record_key] = ctx.channel.to_order(raw)
        except (TranslationError, ValueError):
            continue
    booked = set(ctx.ledger.links(key, LINK_KIND, [o.channel_ref for o in orders.values() if o.channel_ref], up_to=mark))
    log.info("%s: %d order(s) captured on the channel, %d of them booked", key, len(orders), len(booked))
    return orders, booked


def sellable_of(row: dict[str, Any], policy) -> int | None:
    """What the channel should show for a row (the ERP's availability less the unbooked orders'
    units and the buffer), or None where no whole, non-negative number exists."""
    if row.get("master_sku") is None or row.get("available") is None:
        return None
    available = Decimal(row["available"])
    if available != available.to_integral_value() or available < 0:
        return None
    return sellable(available - int(row.get("unbooked") or 0), buffer_for(row["master_sku"], policy, row.get("region")))


def _changes(ctx: FlowContext, full: bool) -> tuple[set[str] | None, set[str] | None]:
    """(the master SKUs to read this run, None for all; the SKUs the feed named that this run's
    push settles, None where the master has no feed)."""
    if not isinstance(ctx.master, AvailabilityChanges):
        return None, None
    pending = ctx.ledger.get_watermark(ctx.pairing.key, FLOW, PENDING)
    recheck = ctx.ledger.get_watermark(ctx.pairing.key, FLOW, RECHECK)
    named = ctx.master.changed_skus()  # read on a full run too: the feed must not pile up
    settles = set(json.loads(pending if pending not in (None, FULL) else "[]")) | set(json.loads(recheck or "[]")) | named
    # the first run reads everything: the feed names only what changed after it started listening
    return (None if full or pending in (None, FULL) else settles), settles


def extract(ctx: FlowContext, run_id: str, *, full: bool = False) -> dict[str, Any]:
    """Read the channel listings and the ERP's availability (of the changed SKUs only, where the
    master has a change feed and this is no full resync); stage them as one record."""
    key = ctx.pairing.key
    changes, settles = _changes(ctx, full)
    payload = read_stock_rows(ctx, changes)
    if settles is not None and changes is None:  # a whole read: every listed SKU waits for its push, not just those the feed named
        settles |= {r["master_sku"] for r in payload["rows"] if r["master_sku"]}
    payload.update(changes=sorted(changes) if changes is not None else None, settles=sorted(settles) if settles is not None else None)
    ctx.ledger.stage(key, FLOW, run_id, [(SNAPSHOT_KEY, payload)])
    if settles is not None:  # committed before the feed is confirmed (after this step), cleared by the push
        # rows read but unusable: the next run reads everything again rather than trust the feed alone
        ctx.ledger.set_watermark(key, FLOW, PENDING, FULL if payload["unreadable"] else json.dumps(sorted(settles)))
        ctx.ledger.set_watermark(key, FLOW, RECHECK, json.dumps(payload["unreported"] if changes is None else []))
    ctx.ledger.record_run(key, FLOW, run_id, extracted=len(payload["rows"]), started_at=datetime.now(timezone.utc))
    return {"listings": len(payload["rows"]), "unreadable": len(payload["unreadable"]), "mapped_not_listed": len(payload["mapped_not_listed"]),
            "changed_only": changes is not None}


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
        master=master_label(ctx),
    )
    for record_key, reasons in result.failed.items():
        ctx.ledger.quarantine(key, FLOW, record_key, rows.get(record_key, {"key": record_key}), reasons, run_id)
    # a whole read: an ERP row held as unreadable before and read cleanly now is superseded
    for q in ctx.ledger.open_quarantine(key, FLOW) if snapshot.get("changes") is None else ():
        if q.record_key.startswith("erp:") and q.record_key not in result.failed:
            ctx.ledger.resolve_quarantine(key, FLOW, q.record_key, note=f"read cleanly from {master_label(ctx)} again")
    quantities = {sku: sellable_of(rows[sku], policy) for sku in result.passed}
    ctx.ledger.stage(key, FLOW, run_id, [(SELLABLE_KEY, quantities)])
    ctx.ledger.record_run(key, FLOW, run_id, valid=len(result.passed), quarantined=len(result.failed))
    return {"valid": len(result.passed), "quarantined": len(result.failed)}


def push(ctx: FlowContext, run_id: str, gated: dict | None = None, *, full: bool = False) -> dict[str, Any]:
    """Send what changed since the last push or differs from what the channel showed when read
    (everything on a full resync), in batches."""
    key, policy = ctx.pairing.key, _policy(ctx)
    staged = {r.record_key: r.payload for r in ctx.ledger.staged(key, FLOW, run_id)}
    quantities: dict[str, int] = staged[SELLABLE_KEY]
    rows = {r["channel_sku"]: r for r in staged[SNAPSHOT_KEY]["rows"]}
    before = ctx.ledger.pushed_stock(key)
    todo = [
        (Listing(sku=rows[sku].get("sku", sku), listing_id=rows[sku]["listing_id"], quantity=rows[sku]["channel_quantity"],
                 region=rows[sku].get("region")), qty)
        for sku, qty in sorted(quantities.items())
        # what the channel shows counts too: one that takes its orders off its figure (or whose
        # write took off what sold since our read) shows less than we last sent, and a booked
        # order then brings the target back to what we last sent: it is set again
        if full or before.get(sku) != qty or rows[sku]["channel_quantity"] != qty
    ]
    results = ctx.channel.push_stock(todo, batch_size=policy.push_batch_size) if todo else []
    sent = dict((listing.key, qty) for listing, qty in todo)
    accepted = {sku: sent[sku] for sku, error in results if error is None}
    ctx.ledger.record_pushed_stock(key, accepted, run_id)
    for sku, error in results:
        if error is not None:
            ctx.ledger.quarantine(key, FLOW, sku, rows[sku], [{"check": "channel_refused", "detail": f"{ctx.channel.name} refused the stock update: {error}"}], run_id)
    # a listing that passed the gate and is now in step with the master leaves quarantine
    refused = {sku for sku, error in results if error is not None}
    for q in ctx.ledger.open_quarantine(key, FLOW):
        if q.record_key in quantities and q.record_key not in refused:
            ctx.ledger.resolve_quarantine(key, FLOW, q.record_key, note=f"stock {quantities[q.record_key]} in step with {master_label(ctx)}")
    _settle_pending(ctx, staged[SNAPSHOT_KEY], {rows[sku]["master_sku"] for sku in refused})
    counts = {"sent": len(accepted), "refused": len(results) - len(accepted), "unchanged": len(quantities) - len(todo), "full_resync": full}
    ctx.ledger.record_run(key, FLOW, run_id, loaded=counts["sent"], skipped=counts["unchanged"], failed=counts["refused"], throttled=ctx.stats().get("throttled", 0))
    log.info("%s: stock push %s", key, counts)
    return counts


def _settle_pending(ctx: FlowContext, snapshot: dict[str, Any], refused: set[str]) -> None:
    """The SKUs this run read for the change feed are sent: they leave the pending list (those the
    channel refused stay, and are read again next run)."""
    key = ctx.pairing.key
    pending = ctx.ledger.get_watermark(key, FLOW, PENDING)
    if pending in (None, FULL) or snapshot.get("settles") is None:
        return
    left = set(json.loads(pending)) - (set(snapshot["settles"]) - refused)
    ctx.ledger.set_watermark(key, FLOW, PENDING, json.dumps(sorted(left)))


def report(ctx: FlowContext, run_id: str, extracted: dict, gated: dict, pushed: dict) -> dict[str, Any]:
    details = {"extract": extracted, "gate": gated, "push": pushed, "open_quarantine": len(ctx.ledger.open_quarantine(ctx.pairing.key, FLOW)),
               "outbox": flush_outbox(ctx)}
    ctx.ledger.record_run(ctx.pairing.key, FLOW, run_id, finished_at=datetime.now(timezone.utc), details=details)
    return details
