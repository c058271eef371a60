"""orders_in: every channel order lands in the ERP exactly once, or sits in quarantine with a reason.

extract -> gate -> load -> report. Written against the ports only: no vendor names here.
Each step is a plain function of (FlowContext, run id, ...) returning small dicts, so Airflow
tasks, the CLI and tests call the same code.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from commerce_sync.flows.booking import check_bookable, instructions, tax_mode_note
from commerce_sync import ports
from commerce_sync.flows.common import api_stats, apply_gate, finish_run, held_records, load_mappings, offers, staged_orders
from commerce_sync.errors import HttpError
from commerce_sync.http import ClientError
from commerce_sync.models import Order, SaleRef, TranslationError
from commerce_sync.runtime import FlowContext

FLOW = "orders_in"
ACCEPT_FLOW = "order_acceptance"  # its own quarantine: a held, unpaid order must never be replayed into the ERP
LINK_KIND = "order"
# A sale cannot be older than its channel order, but clocks differ between systems.
CLOCK_SKEW = timedelta(hours=1)

log = logging.getLogger(__name__)


def accept(ctx: FlowContext, run_id: str) -> dict[str, Any]:
    """Accept, before the channel's deadline, the waiting orders that can be booked.

    Only channels whose pairing has an `acceptance:` section take this step (Mirakl: OR21).
    Accepting commits the shop to ship, so a waiting order must pass the very booking rules the
    orders gate applies later (`booking.check_bookable`: currency, customer order number, SKU
    mapping, seller, customer's currency, totals, quantities, prices). One that fails is never
    accepted: with `unbookable: hold` (the default) it waits in quarantine (flow
    order_acceptance) and ops are told, with the accept-by time, and the next run accepts it once
    the cause is fixed; with `unbookable: refuse` its lines are refused on the channel at once.
    Accepting is not booking: the order reaches the ERP through extract/load once paid.
    """
    policy = ctx.pairing.acceptance
    if policy is None:
        return {"awaiting": 0}
    key = ctx.pairing.key
    held_before = {q.record_key for q in ctx.ledger.open_quarantine(key, ACCEPT_FLOW)}
    waiting = {ctx.channel.record_key(raw): raw for raw in ctx.channel.orders_awaiting_acceptance()}
    counts = {"awaiting": len(waiting), "accepted": 0, "partly_accepted": 0, "held": 0, "refused": 0}
    orders: dict[str, Order] = {}
    unreadable: dict[str, list[dict[str, str]]] = {}
    for record_key, raw in waiting.items():
        try:
            orders[record_key] = ctx.channel.to_order(raw)
        except TranslationError as exc:
            unreadable[record_key] = [{"check": "payload_readable", "detail": exc.reason}]
    maps = load_mappings(ctx)
    verdict = check_bookable(ctx, orders, unreadable=unreadable, replayed=held_before, maps=maps) if waiting else None
    skus = set(maps.get("skus", {}))
    fresh_holds: list[tuple[str, Order | None, list[dict[str, str]]]] = []
    refusals: list[tuple[str, Order | None, list[dict[str, str]]]] = []
    try:
        for record_key, raw in waiting.items():
            order, reasons = orders.get(record_key), verdict.failed.get(record_key, []) if verdict else []
            if order is not None and not reasons:
                ctx.channel.accept_order(order, {line.line_ref: True for line in order.lines})
                counts["accepted"] += 1
                ctx.ledger.resolve_quarantine(key, ACCEPT_FLOW, record_key, note="accepted")
                continue
            if order is not None and policy.partial and _only_unmapped(reasons) and any(line.sku in skus for line in order.lines):
                ctx.channel.accept_order(order, {line.line_ref: line.sku in skus for line in order.lines})
                counts["partly_accepted"] += 1
                unmapped = sorted({line.sku for line in order.lines if line.sku not in skus})
                ctx.ledger.resolve_quarantine(key, ACCEPT_FLOW, record_key, note=f"accepted, refused {', '.join(unmapped)}")
                continue
            ctx.ledger.quarantine(key, ACCEPT_FLOW, record_key, raw, reasons, run_id)
            if order is not None and policy.unbookable == "refuse":
                # the channel's refusal takes no reason (OR21: a line id and accepted true/false):
                # the reasons stay here, on the closed quarantine row, and in the e-mail
                ctx.channel.accept_order(order, {line.line_ref: False for line in order.lines})
                counts["refused"] += 1
                row = ctx.ledger.quarantine_by_key(key, ACCEPT_FLOW, record_key)
                ctx.ledger.discard_quarantine(row.id, "refused on the channel: " + "; ".join(f"{r['check']}: {r['detail']}" for r in reasons), by="commerce_sync")
                refusals.append((record_key, order, reasons))
                continue
            counts["held"] += 1  # unreadable orders too: what cannot be read cannot be refused line by line
            if record_key not in held_before:
                fresh_holds.append((record_key, order, reasons))
        for q in ctx.ledger.open_quarantine(key, ACCEPT_FLOW):
            if q.record_key not in waiting:
                # accepted by hand, refused, or expired on the channel: nothing left to decide here
                ctx.ledger.resolve_quarantine(key, ACCEPT_FLOW, q.record_key, note="no longer awaiting acceptance on the channel")
    finally:
        # even when a later order's call fails the step: a retry sees these holds as old news
        if fresh_holds:
            _alert_acceptance(ctx, policy, fresh_holds, refused=False)
        if refusals:
            _alert_acceptance(ctx, policy, refusals, refused=True)
    log.info("%s: acceptance %s", key, counts)
    return {**counts, **api_stats(ctx)}


def _only_unmapped(reasons: list[dict[str, str]]) -> bool:
    return bool(reasons) and all(r["check"] in ("sku_mapped", "sku_near_match") for r in reasons)


def _alert_acceptance(ctx: FlowContext, policy, orders: list[tuple[str, Order | None, list[dict[str, str]]]], *, refused: bool) -> None:
    """Ops hear at once, with each order's acceptance deadline (after it the channel refuses the
    order itself) or, under `unbookable: refuse`, with what was refused and why."""
    from html import escape

    from commerce_sync.alerts import send_email

    label = ctx.pairing.channel.label or ctx.channel.name
    rows = "".join(
        f"<tr><td>{escape(key)}</td><td>{escape(str(order.channel_ref or '') if order else '')}</td>"
        f"<td>{escape(f'{order.placed_at + timedelta(hours=policy.window_hours):%Y-%m-%d %H:%M} UTC' if order else 'unknown')}</td>"
        f"<td>{escape('; '.join(r['check'] + ': ' + r['detail'] for r in reasons))}</td></tr>"
        for key, order, reasons in orders
    )
    table = f"<table border='1' cellpadding='4'><tr><th>order</th><th>customer order</th><th>accept by</th><th>why</th></tr>{rows}</table>"
    if refused:
        html = (
            f"<p>{len(orders)} {escape(label)} order(s) could not be booked and were refused on {escape(label)} "
            f"(the pairing's <code>acceptance.unbookable: refuse</code>).</p>{table}"
            "<p>They are closed in quarantine (flow order_acceptance) with these reasons. See docs/operations.md.</p>"
        )
        subject = f"[Commerce Sync] {ctx.pairing.key}: {len(orders)} order(s) refused, could not be booked"
    else:
        html = (
            f"<p>{len(orders)} {escape(label)} order(s) cannot be booked, so they were not accepted, and wait in quarantine "
            f"(flow {ACCEPT_FLOW}). {escape(label)} refuses an order left undecided for {policy.window_hours} hours.</p>{table}"
            "<p>Fix the cause (map the SKU in skus.csv or with <code>python -m commerce_sync mappings import</code>, name the "
            "customer for the currency in customers.csv, ...) and the next run accepts them; or decide them in the channel's "
            "back office. See docs/operations.md.</p>"
        )
        subject = f"[Commerce Sync] {ctx.pairing.key}: {len(orders)} order(s) to accept by hand or map"
    recipients = ctx.pairing.recipients.get(policy.recipients) or ctx.pairing.recipients.get("ops", [])
    send_email(recipients, subject, html)


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
    out = {"extracted": len(fetched), "replayed": len(replay), "staged": staged, **api_stats(ctx)}
    if offers(ctx, ports.ORDER_QUEUE):
        # held, yet still in the channel's queue: the hold never reached the channel (a lost
        # answer, a crash); the gate marks them again. Normally none.
        held_keys = {q.record_key for q in ctx.ledger.open_quarantine(key, FLOW)}
        out["held_in_queue"] = sorted(k for k in fetched if k in held_keys)
    return out


def replay(ctx: FlowContext, run_id: str) -> dict[str, Any]:
    """Gate and load only the open quarantine, outside a scheduled run (the `replay` command)."""
    staged = ctx.ledger.stage(ctx.pairing.key, FLOW, run_id, list(held_records(ctx, FLOW).items()))
    extracted = {"extracted": 0, "replayed": staged, "staged": staged}
    gated = gate(ctx, run_id, extracted)
    loaded = load(ctx, run_id, gated)
    return report(ctx, run_id, extracted, gated, loaded)


def gate(ctx: FlowContext, run_id: str, extracted: dict | None = None) -> dict[str, Any]:
    """Validate the staged batch; quarantine failing orders; return the keys fit to load."""
    key = ctx.pairing.key
    payloads, orders, unreadable = staged_orders(ctx, FLOW, run_id)
    held_before = {q.record_key for q in ctx.ledger.open_quarantine(key, FLOW)}
    result = check_bookable(ctx, orders, unreadable=unreadable, replayed=held_before)
    log.info("%s: gate passed %d, quarantined %d", key, len(result.passed), len(result.failed))
    gated = apply_gate(ctx, FLOW, run_id, result, payloads)
    if offers(ctx, ports.ORDER_QUEUE):
        # after the quarantine rows are written: a hold shown on the channel is always in quarantine
        again = set((extracted or {}).get("held_in_queue") or ())
        fresh = {k: r for k, r in result.failed.items() if k not in held_before or k in again}
        gated["held_on_channel"] = _show_holds(ctx, fresh)
        gated["hold_not_shown"] = len(fresh) - gated["held_on_channel"]
    return gated


def _show_holds(ctx: FlowContext, holds: dict[str, list[dict[str, str]]]) -> int:
    """Mark each newly held order held on the channel; one the channel refuses or cannot be
    reached for stays in quarantine all the same and is marked when the next run finds it
    still queued."""
    shown = 0
    for record_key, reasons in holds.items():
        try:
            ctx.channel.hold_order(record_key, "; ".join(f"{r['check']}: {r['detail']}" for r in reasons))
            shown += 1
        except HttpError as exc:
            log.warning("%s: order %s is held, but the channel was not told: %s", ctx.pairing.key, record_key, exc)
    return shown


def load(ctx: FlowContext, run_id: str, gated: dict[str, Any]) -> dict[str, Any]:
    """Create each valid order in the ERP unless the ledger or the ERP already holds it.

    The ledger link is checked first (cheap, local); then the ERP by external id, which catches a
    sale created by an earlier attempt whose response was lost. Only then is a sale created.
    Each booked order's link is written at once; the channel is told (acknowledge_order) on a
    background thread while the next order goes to the ERP (`_Acknowledgements`).
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
    # Told again: on a queue channel every order found booked (it is read from the queue again only
    # while the channel has not heard); elsewhere those an earlier attempt of this same run booked
    # (a retry after a failed acknowledgement or a dead worker). A repeat is harmless on every channel.
    tell_again = set(linked) if offers(ctx, ports.ORDER_QUEUE) else set(ctx.ledger.links(key, LINK_KIND, linked, made_by=run_id))
    acks = _Acknowledgements(ctx)
    try:
        for ref in linked:
            counts["already_loaded"] += 1
            if ref in tell_again:
                acks.submit(ref, by_ref[ref][1], SaleRef(master_id=linked[ref], external_id=ctx.pairing.external_id(ref)), again=True)
            ctx.ledger.resolve_quarantine(key, FLOW, by_ref[ref][0], note=f"already loaded as {linked[ref]}")

        todo = {ref: by_ref[ref] for ref in claimed if ref not in linked}
        if todo:
            since = min(o.placed_at for _, o in todo.values()) - CLOCK_SKEW
            existing = ctx.master.find_sales([ctx.pairing.external_id(r) for r in todo], since)
        else:
            existing = {}

        for ref, (record_key, order) in todo.items():
            how = instructions(ctx, order, maps)
            note = tax_mode_note(ctx.pairing, order)
            if note:
                counts[f"tax_mode_{note}"] = counts.get(f"tax_mode_{note}", 0) + 1  # only when it happens: the run report shows it
                log.warning("%s: order %s %s; booked %s", key, ref,
                            "states no tax mode: the pairing's tax_calculation applies" if note == "defaulted"
                            else f"states {'tax-inclusive' if order.tax_inclusive else 'tax-exclusive'} prices, unlike the pairing's tax_calculation",
                            how.tax_calculation)
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
            # the link first: whatever becomes of the acknowledgement, no run books this order again
            ctx.ledger.add_link(key, LINK_KIND, ref, sale.master_id, sale.order_number, run_id, channel_id=order.channel_id)
            acks.submit(ref, order, sale)
            ctx.ledger.resolve_quarantine(key, FLOW, record_key, note=f"loaded as {sale.order_number or sale.master_id}")
    except Exception:
        # the step fails with its own error once the channel has been told of what is booked
        # (normally a short backlog: the ERP's rate limit paces the load, not the channel); what
        # failed, the retry of this run tells again (tell_again above)
        acks.finish(counts, retry=False)
        raise
    except BaseException:
        acks.finish(counts, retry=False, drop_waiting=True)  # interrupted: end now; the retry of this run tells the channel
        raise
    failed = acks.finish(counts, retry=True)

    ctx.ledger.release(key, LINK_KIND, claimed, run_id)
    fields = {}
    if failed:
        counts["acknowledgement_failed"] = len(failed)
        fields["details"] = {"load": dict(counts)}  # the report step will not run: the run report says it here
    ctx.ledger.record_run(
        key,
        FLOW,
        run_id,
        loaded=counts["created"] + counts["recovered"],
        skipped=counts["already_loaded"],
        failed=counts["refused"],
        throttled=ctx.stats().get("throttled", 0),
        **fields,
    )
    log.info("%s: load %s", key, counts)
    if failed:
        # as before acknowledgements left the critical path, the step fails with the channel's
        # error (a retry of this run tells the channel again; nothing is booked twice), now only
        # once the rest of the batch is booked
        refs, first = [ref for ref, _ in failed], failed[0][1]
        first.add_note(f"{key}: booked, but {ctx.channel.name} was not told of order(s) {', '.join(refs)}; a retry of this run tells it again")
        raise first
    return {**counts, **api_stats(ctx)}


class _Acknowledgements:
    """Tells the channel of booked orders (acknowledge_order) on one background thread, in
    booking order, while the load sends the next order to the ERP.

    Why a thread, not the end of the batch: the ERP's rate limit paces the load, and an
    acknowledgement (a versioned update of the order: ~50 ms) between two ERP calls left that
    budget idle; after the batch it would still add its whole time to the drain, and the channel
    would hear late. One thread keeps the channel's own load what it was (one call at a time).
    While it runs, the channel adapter is used by this thread only (the load calls the master);
    the HTTP client's token cache and rate limiter are locked, and its payload log and shared
    budget go through the ledger's engine, one pooled connection per thread. The ledger's own
    writes (link, quarantine, run report) stay on the load's thread.
    """

    def __init__(self, ctx: FlowContext):
        self.ctx = ctx
        self.pool: ThreadPoolExecutor | None = None
        self.sent: list[tuple[str, Order, SaleRef, bool, Future]] = []

    def submit(self, ref: str, order: Order, sale: SaleRef, *, again: bool = False) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="acknowledge")
        self.sent.append((ref, order, sale, again, self.pool.submit(self.ctx.channel.acknowledge_order, order, sale)))

    def finish(self, counts: dict[str, Any], *, retry: bool, drop_waiting: bool = False) -> list[tuple[str, BaseException]]:
        """Wait for the acknowledgements; with `retry` (the load went through) a failed one is sent
        once more, here on the load's thread. `drop_waiting` (the load is interrupted) waits only
        for the one under way: the others are left for the retry of this run to send. Returns
        (order ref, error) of those that failed, each logged with its order."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=drop_waiting)
        failed: list[tuple[str, BaseException]] = []
        dropped: list[str] = []
        for ref, order, sale, again, done in self.sent:
            if done.cancelled():
                dropped.append(ref)
                continue
            error = done.exception()
            if error is not None and retry:
                try:
                    self.ctx.channel.acknowledge_order(order, sale)
                    error = None
                except Exception as exc:  # noqa: BLE001 - whatever it is, it is reported with the order
                    error = exc
            if error is None:
                if again:
                    counts["acknowledged_again"] = counts.get("acknowledged_again", 0) + 1
                continue
            log.warning("%s: order %s is booked as %s, but %s was not told: %s", self.ctx.pairing.key, ref, sale.order_number or sale.master_id,
                        self.ctx.channel.name, error)
            failed.append((ref, error))
        if dropped:
            log.warning("%s: the load was interrupted before %s was told of %d booked order(s) (%s); the retry of this run tells it", self.ctx.pairing.key,
                        self.ctx.channel.name, len(dropped), ", ".join(dropped[:20]) + (", ..." if len(dropped) > 20 else ""))
        self.sent = []
        return failed


def report(ctx: FlowContext, run_id: str, extracted: dict, gated: dict, loaded: dict, accepted: dict | None = None) -> dict[str, Any]:
    """Close the run report: counts, throttling and latency, one row per run in the ledger."""
    return finish_run(ctx, FLOW, run_id, accept=accepted, extract=extracted, gate=gated, load=loaded)
