"""catalogue_out: the product master's record reaches the channel, and nothing sells on the channel
without a SKU the master holds.

extract (products the master changed since the watermark, less an overlap; the whole catalogue
at the daily full read) -> gate -> load (a new product created on the channel, unpublished unless
the pairing says otherwise, with only the fields the master owns; a changed one updated in those
fields only) -> report; and beside them, check (every SKU on sale on the channel against the
master's SKUs: one e-mail for the new orphans, each held, and taken off sale if the pairing says
`unpublish`).

What the channel can do is what it declares: a channel that can write products
(CATALOGUE_WRITE) gets them created and kept; one that can only say what it sells
(CATALOGUE_READ) gets the check alone. Written against the ports only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from commerce_sync.errors import ClientError, RefusedFields
from commerce_sync.flows.common import api_stats, apply_gate, finish_run, held_records, load_mappings, staged_records
from commerce_sync.flows.common import offers as _offers
from commerce_sync.models import CatalogueProduct, Listing, TranslationError
from commerce_sync.pairing import PairingError
from commerce_sync.ports import CATALOGUE_UNPUBLISH, CATALOGUE_WRITE, ListingInstructions
from commerce_sync.runtime import FlowContext

FLOW = "catalogue_out"
CHECK_FLOW = "catalogue_check"  # its own quarantine: a listing without a master SKU is not a product to replay
LINK_KIND = "listing"  # channel_ref = the master's product id, master_id = the channel's product id
WATERMARK = "master_modified"  # the newest modification time the master reported, as loaded
FULL_READ = "full_read_at"  # when the whole catalogue was last read: the check trusts the SKU table only after one
BATCH_KEY = "__batch__"  # one staged record: the read's high-water mark and what was held before the run

log = logging.getLogger(__name__)


def _policy(ctx: FlowContext):
    if ctx.pairing.catalogue is None:
        raise PairingError(f"{ctx.pairing.key}: catalogue_out needs a `catalogue:` section in the pairing file")
    return ctx.pairing.catalogue


def _label(ref, adapter) -> str:
    return ref.label or adapter.name


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


def extract(ctx: FlowContext, run_id: str, *, full: bool = False) -> dict[str, Any]:
    """Read what the master changed since the watermark (less the flow's overlap: clocks differ
    and a change may land while the previous read ran), or everything on a full read; keep the
    master's SKUs in the ledger for the check; stage the products for the channel (with the held
    ones, for replay) where the channel can write products."""
    key = ctx.pairing.key
    _policy(ctx)
    mark = ctx.ledger.get_watermark(key, FLOW, WATERMARK)
    full = full or mark is None or ctx.ledger.get_watermark(key, FLOW, FULL_READ) is None
    since = None if full else datetime.fromisoformat(mark) - timedelta(minutes=ctx.pairing.flow(FLOW).overlap_minutes)
    fetched: dict[str, Any] = {}
    modified: dict[str, tuple[str, datetime]] = {}  # record key -> (product ref, modified at)
    skus: list[dict[str, Any]] = []
    high = datetime.fromisoformat(mark) if mark else None
    unreadable: dict[str, str] = {}
    for raw in ctx.master.catalogue_changes(since):
        record_key = ctx.master.catalogue_key(raw)
        fetched[record_key] = raw
        try:
            product = ctx.master.to_catalogue_product(raw)
        except TranslationError as exc:
            unreadable[record_key] = exc.reason  # the gate holds it with the reason (or, for a check-only channel, the lines below)
            continue
        modified[record_key] = (product.product_ref, product.modified_at)
        skus += [{"sku": item.sku, "product_ref": product.product_ref, "active": product.active, "modified_at": product.modified_at} for item in product.items]
        high = product.modified_at if high is None or product.modified_at > high else high
    ctx.ledger.record_master_skus(key, skus, run_id)
    forgotten = 0
    if full:
        if not unreadable:
            # a whole read: what it did not find is gone from the master (while a product cannot be
            # read, the SKUs it had keep their rows rather than be reported as orphans)
            forgotten = ctx.ledger.forget_master_skus(key, except_run=run_id)
        ctx.ledger.set_watermark(key, FLOW, FULL_READ, _iso(datetime.now(timezone.utc)))
    writes = _offers(ctx, CATALOGUE_WRITE)
    if writes and full and mark is not None:
        # the daily whole read heals the SKU table; to the channel it sends only what changed since
        # the watermark or never reached it, not the whole catalogue again
        cut = datetime.fromisoformat(mark) - timedelta(minutes=ctx.pairing.flow(FLOW).overlap_minutes)
        linked = ctx.ledger.links(key, LINK_KIND, [ref for ref, _ in modified.values()])
        fetched = {k: raw for k, raw in fetched.items() if k not in modified or modified[k][1] >= cut or modified[k][0] not in linked}
    held_before = sorted(q.record_key for q in ctx.ledger.open_quarantine(key, FLOW))  # not news when held again
    replay = held_records(ctx, FLOW, exclude=fetched) if writes else {}
    if not writes:  # nothing is written, so nothing is gated; what could not be read is still held, with its reason
        for record_key, reason in unreadable.items():
            ctx.ledger.quarantine(key, FLOW, record_key, fetched[record_key], [{"check": "payload_readable", "detail": reason}], run_id)
        for q in ctx.ledger.open_quarantine(key, FLOW):
            if q.record_key in fetched and q.record_key not in unreadable:
                ctx.ledger.resolve_quarantine(key, FLOW, q.record_key, note="read cleanly from the master again")
    batch = {"high": _iso(high), "held_before": held_before, "writes": writes}
    ctx.ledger.stage(key, FLOW, run_id, [*(list(fetched.items()) + list(replay.items()) if writes else []), (BATCH_KEY, batch)])
    ctx.ledger.record_run(key, FLOW, run_id, extracted=len(fetched), started_at=datetime.now(timezone.utc))
    counts = {"extracted": len(fetched), "replayed": len(replay), "skus": len(skus), "full": full, "forgotten": forgotten, "unreadable": len(unreadable)}
    log.info("%s: catalogue read %s (since %s)", key, counts, since)
    return {**counts, **api_stats(ctx)}


def _batch(ctx: FlowContext, run_id: str) -> dict[str, Any]:
    return next((r.payload for r in ctx.ledger.staged(ctx.pairing.key, FLOW, run_id) if r.record_key == BATCH_KEY), {})


def _products(ctx: FlowContext, run_id: str, only: set[str] | None = None):
    keys = {r.record_key for r in ctx.ledger.staged(ctx.pairing.key, FLOW, run_id)} - {BATCH_KEY}
    return staged_records(ctx, FLOW, run_id, ctx.master.to_catalogue_product, keys if only is None else keys & only)


def _maps(ctx: FlowContext) -> dict[str, dict[str, dict]]:
    """skus, plus the channel's categories and attributes mappings (synced with the others)."""
    maps = load_mappings(ctx)
    return {**maps, **{kind: ctx.ledger.mapping(ctx.pairing.key, kind) for kind in ("categories", "attributes")}}


def gate(ctx: FlowContext, run_id: str, extracted: dict | None = None) -> dict[str, Any]:
    from commerce_sync.gates.catalogue import gate_catalogue

    key, policy = ctx.pairing.key, _policy(ctx)
    payloads, products, unreadable = _products(ctx, run_id)
    result = gate_catalogue(
        products,
        unreadable=unreadable,
        fields=policy.fields,
        price_list=policy.price_list,
        categories=set(_maps(ctx).get("categories", {})),
        master=_label(ctx.pairing.master, ctx.master),
        channel=_label(ctx.pairing.channel, ctx.channel),
        max_bad_share=ctx.pairing.policies.max_bad_share,
        min_records_for_share=ctx.pairing.policies.min_records_for_share,
        known_bad={q.record_key for q in ctx.ledger.open_quarantine(key, FLOW)},
    )
    return apply_gate(ctx, FLOW, run_id, result, payloads)


def instructions_for(ctx: FlowContext, maps: dict[str, dict[str, dict]]) -> Callable[[CatalogueProduct], ListingInstructions]:
    """The pairing's file and mappings as a function of one product: which fields, which channel
    SKUs, which channel category and attribute values (the mappings are indexed once a run)."""
    policy = _policy(ctx)
    sku_map: dict[str, str] = {}
    for channel_sku, row in maps.get("skus", {}).items():
        sku_map.setdefault(row["master_sku"], channel_sku)  # two channel SKUs on one master SKU: the first
    categories = {k: row.get("channel_category") for k, row in maps.get("categories", {}).items()}
    wanted = {channel: row["master_attribute"] for channel, row in maps.get("attributes", {}).items()}

    def how(product: CatalogueProduct) -> ListingInstructions:
        builtin = {"name": product.name, "category": product.category}
        attributes = {channel: value for channel, master in wanted.items() if (value := product.attributes.get(master) or builtin.get(master))}
        per_item = {item.sku: {channel: item.attributes[master] for channel, master in wanted.items() if item.attributes.get(master)} for item in product.items}
        return ListingInstructions(fields=tuple(policy.fields), sku_map=sku_map, publish=policy.publish, category=categories.get(product.category or ""),
                                   attributes=attributes, item_attributes=per_item, price_list=policy.price_list)

    return how


def _refusal(ctx: FlowContext, exc: ClientError) -> list[dict[str, str]]:
    """Quarantine reasons from a channel's refusal: one per field it named, in its own words."""
    channel = _label(ctx.pairing.channel, ctx.channel)
    if isinstance(exc, RefusedFields) and exc.problems:
        return [{"check": "channel_refused", "field": field, "detail": f"{channel} refused {field}: {message}"} for field, message in exc.problems]
    return [{"check": "channel_refused", "field": "", "detail": f"{channel} refused the product (HTTP {exc.status}): {exc.body or exc}"}]


def load(ctx: FlowContext, run_id: str, gated: dict[str, Any]) -> dict[str, Any]:
    """Create or update each valid product once. The ledger link first, then the channel (a
    create whose answer was lost is found there, by its SKUs), and only then a create. The
    watermark moves only once the batch is done: a run that dies here is read again."""
    key = ctx.pairing.key
    batch = _batch(ctx, run_id)
    counts = {"created": 0, "recovered": 0, "updated": 0, "unchanged": 0, "discontinued": 0, "refused": 0, "in_flight": 0}
    if batch.get("writes"):
        payloads, products, _ = _products(ctx, run_id, only=set(gated["valid_keys"]))
        how_for = instructions_for(ctx, _maps(ctx))
        by_ref = {p.product_ref: (k, p) for k, p in products.items()}
        claimed = ctx.ledger.claim(key, LINK_KIND, by_ref, run_id)  # one run writes a product at a time
        counts["in_flight"] = len(by_ref) - len(claimed)
        linked = ctx.ledger.links(key, LINK_KIND, claimed)
        for ref in sorted(claimed):
            record_key, product = by_ref[ref]
            if not product.active and ref not in linked:
                counts["discontinued"] += 1  # nothing new is made of what the master no longer sells
                ctx.ledger.resolve_quarantine(key, FLOW, record_key, note="discontinued in the master: not created")
                continue
            how = how_for(product)
            try:
                listing = linked.get(ref)
                if listing is None and (listing := ctx.channel.find_listing(product, how)) is not None:
                    counts["recovered"] += 1  # made by an earlier attempt whose answer was lost, or by hand
                    ctx.ledger.add_link(key, LINK_KIND, ref, listing, None, run_id, channel_id=listing)
                    changed = ctx.channel.update_listing(listing, product, how)
                elif listing is None:
                    listing = ctx.channel.create_listing(product, how)
                    counts["created"] += 1
                    ctx.ledger.add_link(key, LINK_KIND, ref, listing, None, run_id, channel_id=listing)
                    changed = False
                else:
                    changed = ctx.channel.update_listing(listing, product, how)
                    counts["updated" if changed else "unchanged"] += 1
            except ClientError as exc:
                counts["refused"] += 1
                ctx.ledger.quarantine(key, FLOW, record_key, payloads[record_key], _refusal(ctx, exc), run_id)
                continue
            ctx.ledger.resolve_quarantine(key, FLOW, record_key, note=f"on {_label(ctx.pairing.channel, ctx.channel)} as {listing}")
        ctx.ledger.release(key, LINK_KIND, claimed, run_id)
    if batch.get("high"):
        ctx.ledger.set_watermark(key, FLOW, WATERMARK, batch["high"])
    ctx.ledger.record_run(key, FLOW, run_id, loaded=counts["created"] + counts["recovered"] + counts["updated"], skipped=counts["unchanged"] + counts["discontinued"],
                          failed=counts["refused"], throttled=ctx.stats().get("throttled", 0))
    log.info("%s: catalogue load %s", key, counts)
    return {**counts, "channel_writes": bool(batch.get("writes")), **api_stats(ctx)}


def check(ctx: FlowContext, run_id: str, extracted: dict | None = None, loaded: dict | None = None) -> dict[str, Any]:
    """Every SKU on sale on the channel against the master's SKUs. A listing whose SKU the master
    does not hold (or no longer sells) is held in the `catalogue_check` quarantine; new ones are
    e-mailed to the pairing's catalogue recipients in one message; with `orphans: unpublish` a
    listing whose every SKU on sale is an orphan is taken off sale (one that also sells SKUs the
    master holds is reported, not taken down with them)."""
    key, policy = ctx.pairing.key, _policy(ctx)
    if ctx.ledger.get_watermark(key, FLOW, FULL_READ) is None:
        return {"checked": False, "why": "the master's catalogue has not yet been read whole"}
    master_label = _label(ctx.pairing.master, ctx.master)
    selling = ctx.channel.selling_skus()
    master = ctx.ledger.master_skus(key)
    to_master = {channel_sku: row["master_sku"] for channel_sku, row in load_mappings(ctx).get("skus", {}).items()}
    orphans: dict[str, tuple[Listing, str, str]] = {}
    for sku, listing in selling.items():
        master_sku = to_master.get(sku, sku)
        row = master.get(master_sku)
        if row is None:
            orphans[sku] = (listing, master_sku, f"on sale, but {master_label} holds no SKU {master_sku!r}")
        elif not row["active"]:
            orphans[sku] = (listing, master_sku, f"on sale, but SKU {master_sku!r} is discontinued in {master_label}")
    held_before = {q.record_key: q for q in ctx.ledger.open_quarantine(key, CHECK_FLOW)}
    unpublish = policy.orphans == "unpublish" and _offers(ctx, CATALOGUE_UNPUBLISH)
    orphan_listings = {listing.listing_id for listing, _, _ in orphans.values()}
    mixed = {s.listing_id for sku, s in selling.items() if sku not in orphans and s.listing_id in orphan_listings}
    taken_off: set[str] = set()
    fresh: list[dict[str, Any]] = []
    for sku, (listing, master_sku, why) in sorted(orphans.items()):
        note = ""
        if unpublish and listing.listing_id not in mixed:
            if listing.listing_id not in taken_off:
                ctx.channel.take_off_sale(listing)
                taken_off.add(listing.listing_id)
            note = "taken off sale"
        elif unpublish:
            note = "not taken off sale: the same listing sells SKUs the master holds"
        payload = {"sku": sku, "master_sku": master_sku, "listing_id": listing.listing_id, "where": listing.where, "taken_off_sale": note == "taken off sale"}
        ctx.ledger.quarantine(key, CHECK_FLOW, sku, payload, [{"check": "sku_in_master", "detail": why + (f"; {note}" if note else "")}], run_id)
        if sku not in held_before:
            fresh.append({**payload, "why": why, "note": note})
    resolved = 0
    for sku, row in held_before.items():
        if sku in orphans:
            continue
        payload = row.payload if isinstance(row.payload, dict) else {}
        master_sku = payload.get("master_sku") or sku
        if (master.get(master_sku) or {}).get("active"):
            resolved += ctx.ledger.resolve_quarantine(key, CHECK_FLOW, sku, note=f"{master_label} now holds SKU {master_sku}")
        elif sku not in selling and not payload.get("taken_off_sale"):
            resolved += ctx.ledger.resolve_quarantine(key, CHECK_FLOW, sku, note="no longer on sale")
        # taken off sale by us: it stays held until the master has the SKU or someone discards it
    if fresh:
        _alert_orphans(ctx, fresh, master_label)
    counts = {"checked": True, "on_sale": len(selling), "orphans": len(orphans), "new_orphans": len(fresh), "taken_off_sale": len(taken_off), "resolved": resolved}
    log.info("%s: catalogue check %s", key, counts)
    return {**counts, **api_stats(ctx)}


def _recipients(ctx: FlowContext) -> list[str]:
    return ctx.pairing.recipients.get(_policy(ctx).recipients) or ctx.pairing.recipients.get("ops", [])


def _alert_orphans(ctx: FlowContext, fresh: list[dict[str, Any]], master_label: str) -> None:
    """One e-mail: each SKU on sale that the master does not hold, where it sells, what was done."""
    from html import escape

    from commerce_sync.alerts import send_email

    channel = _label(ctx.pairing.channel, ctx.channel)
    rows = "".join(
        f"<tr><td>{escape(o['sku'])}</td><td>{escape(str(o.get('where') or ''))}</td><td>{escape(str(o['listing_id']))}</td>"
        f"<td>{escape(o['why'])}</td><td>{escape(o['note'] or 'reported only')}</td></tr>"
        for o in fresh
    )
    html = (
        f"<p>{len(fresh)} SKU(s) on sale on {escape(channel)} have no SKU in {escape(master_label)}, the product master. "
        f"An order for one cannot be fulfilled from {escape(master_label)}.</p>"
        f"<table border='1' cellpadding='4'><tr><th>SKU on {escape(channel)}</th><th>where</th><th>listing</th><th>why</th><th>done</th></tr>{rows}</table>"
        f"<p>Either create the SKU in {escape(master_label)} (or correct skus.csv if it is a different code there), or take the listing "
        f"off sale on {escape(channel)}. Each waits in the quarantine (flow {CHECK_FLOW}) until then; "
        "see docs/operations.md, 'The catalogue'.</p>"
    )
    send_email(_recipients(ctx), f"[Commerce Sync] {ctx.pairing.key}: {len(fresh)} SKU(s) on sale on {channel} without a {master_label} SKU", html)


def _alert_held(ctx: FlowContext, run_id: str, held_before: set[str]) -> int:
    """One e-mail for the products held for the first time in this run (by the gate or refused by
    the channel): the product, the field and the channel's own message, and what to fix."""
    from html import escape

    from commerce_sync.alerts import send_email

    fresh = [q for q in ctx.ledger.open_quarantine(ctx.pairing.key, FLOW) if q.last_run_id == run_id and q.record_key not in held_before]
    if not fresh:
        return 0
    channel, master_label = _label(ctx.pairing.channel, ctx.channel), _label(ctx.pairing.master, ctx.master)
    rows = []
    for q in fresh:
        try:
            product = ctx.master.to_catalogue_product(q.payload)
            name, skus = product.name or "", ", ".join(i.sku for i in product.items)
        except TranslationError:
            name, skus = "(unreadable)", ""
        for reason in q.reasons:
            rows.append(f"<tr><td>{escape(q.record_key)}</td><td>{escape(name)}</td><td>{escape(skus)}</td>"
                        f"<td>{escape(reason.get('field') or reason['check'])}</td><td>{escape(reason['detail'])}</td></tr>")
    html = (
        f"<p>{len(fresh)} {escape(master_label)} product(s) did not reach {escape(channel)} and wait in quarantine (flow {FLOW}).</p>"
        f"<table border='1' cellpadding='4'><tr><th>product</th><th>name</th><th>SKUs</th><th>field</th><th>why</th></tr>{''.join(rows)}</table>"
        f"<p>Fix the product in {escape(master_label)}, or the mapping the message names (categories.csv, attributes.csv, skus.csv); "
        "the next run sends it once. See docs/operations.md, 'The catalogue'.</p>"
    )
    send_email(_recipients(ctx), f"[Commerce Sync] {ctx.pairing.key}: {len(fresh)} product(s) held from {channel}", html)
    return len(fresh)


def replay(ctx: FlowContext, run_id: str) -> dict[str, Any]:
    """Gate and load only the open quarantine, outside a scheduled run (after a mapping fix)."""
    held = held_records(ctx, FLOW)
    batch = {"high": None, "held_before": sorted(held), "writes": _offers(ctx, CATALOGUE_WRITE)}
    ctx.ledger.stage(ctx.pairing.key, FLOW, run_id, [*held.items(), (BATCH_KEY, batch)])
    extracted = {"extracted": 0, "replayed": len(held)}
    gated = gate(ctx, run_id, extracted)
    loaded = load(ctx, run_id, gated)
    return report(ctx, run_id, extracted, gated, loaded, None)


def report(ctx: FlowContext, run_id: str, extracted: dict, gated: dict, loaded: dict, checked: dict | None = None) -> dict[str, Any]:
    held = _alert_held(ctx, run_id, set(_batch(ctx, run_id).get("held_before") or ()))
    details = finish_run(ctx, FLOW, run_id, extract=extracted, gate=gated, load=loaded, check=checked)
    return {**details, "newly_held": held}
