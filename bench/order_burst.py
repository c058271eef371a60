"""Order burst: a flash sale's orders drained into Cin7 Core at its rate limit.

    .venv/bin/python bench/order_burst.py [--orders 5000] [--limit 600] [--baseline-orders 300] [--part all|single|baseline|shared]
                                          [--pairing cin7_marketplacer|cin7_commercetools]

single:   N orders queued on the pairing's channel (Marketplacer invoices, or commercetools orders
          with --pairing cin7_commercetools), orders_in drains them into the Cin7 emulator whose limit is
          --limit calls a minute (Cin7's real limit is 60; 600 scales the run down tenfold).
baseline: the naive design (one Cin7 lookup per order before creating it), on --baseline-orders.
shared:   two pairings (Marketplacer and John Lewis, N/2 orders each) on the same Cin7 account,
          each in its own process, draining at once: the budget is shared through the ledger.

Figures: Cin7 calls per order, throttled answers (429/503 from Cin7), the most calls in any
60 s, drain time and its ratio to the floor the limit allows (Cin7 calls / limit).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from harness import ROOT, Emulators, max_in_window, pg_ledger, setup_env, table, wire

CIN7_SEED = {
    "products": [{"SKU": s, "Name": s} for s in ("CS-TEE-BLK-M", "CS-TEE-BLK-L", "CS-CAP-NVY")],
    "locations": ["Main Warehouse"], "tax_rules": ["GST on Income", "20% (VAT on Income)"],
    "customers": ["Marketplacer", "Castore AU (Marketplacer)", "Lounge (Marketplacer)", {"Name": "John Lewis Marketplace", "Currency": "GBP"},
                  {"Name": "Storefront GBP", "Currency": "GBP"}],
}


def queue_marketplacer(emu: Emulators, n: int, start: int, placed: datetime) -> None:
    from tests.builders import marketplacer_invoice

    for chunk in range(0, n, 1000):
        emu.post("marketplacer", "/_sandbox/invoices", {"invoices": [
            marketplacer_invoice(start + i, [("CS-TEE-BLK-M", 1 + i % 3, 4500), ("CS-CAP-NVY", 1, 2500)], created_at=placed)
            for i in range(chunk, min(n, chunk + 1000))]})


def queue_commercetools(emu: Emulators, n: int, start: int, placed: datetime) -> None:
    from sandbox.commercetools_builders import make_order

    for chunk in range(0, n, 500):
        emu.post("commercetools", "/_sandbox/orders", [
            make_order(f"CT{start + i}", [{"sku": "CS-TEE-BLK-M", "quantity": 1 + i % 3, "price": "45.00"}, {"sku": "CS-CAP-NVY", "quantity": 1, "price": "25.00"}],
                       created=placed) for i in range(chunk, min(n, chunk + 500))])


# the pairing -> its channel's emulator and how a burst is queued on it
CHANNELS = {"cin7_marketplacer": ("marketplacer", queue_marketplacer), "cin7_commercetools": ("commercetools", queue_commercetools)}


def queue_john_lewis(emu: Emulators, n: int, start: int, placed: datetime) -> None:
    from sandbox.mirakl import make_order

    for chunk in range(0, n, 500):
        emu.post("mirakl", "/_sandbox/orders", [
            make_order(f"JL{start + i}-A", f"JL{start + i}", [{"offer_sku": "JL-TEE-BLK-M", "quantity": 1, "price_unit": "45.00", "tax": "7.50"}],
                       state="SHIPPING", created=placed)
            for i in range(chunk, min(n, chunk + 500))])


def cin7_calls(emu: Emulators) -> list[dict]:
    return [c for c in emu.get("cin7", "/_sandbox/calls")["calls"] if c["path"].startswith("/ExternalApi")]


def measure(emu: Emulators, orders: int, limit: int, seconds: float) -> dict:
    calls = cin7_calls(emu)
    sales = len(emu.get("cin7", "/_sandbox/sales")["sales"])
    ok = [c for c in calls if c["status"] not in (429, 503)]
    floor = len(ok) / limit * 60
    return {"orders": orders, "sales": sales, "calls": len(ok), "per_order": len(ok) / orders, "throttled": len(calls) - len(ok),
            "max_60s": max_in_window([c["ts"] for c in calls if c["status"] not in (429, 503)]), "seconds": seconds, "floor": floor,
            "ratio": seconds / floor if floor else float("nan")}


def run_single(emu: Emulators, n: int, limit: int, *, naive: bool = False, pairing: str = "cin7_marketplacer") -> dict:
    from tests.reliability.matrix import run_flow

    channel, queue = CHANNELS[pairing]
    emu.post("cin7", "/_sandbox/reset", None)
    emu.post(channel, "/_sandbox/reset", None)
    emu.post("cin7", "/_sandbox/seed", CIN7_SEED)
    now = datetime.now(timezone.utc)
    queue(emu, n, 100_000 if not naive else 200_000, now - timedelta(minutes=20))
    if naive:
        from commerce_sync.systems.cin7_core import Cin7CoreMaster

        # the naive design: look every order up on its own before creating it
        Cin7CoreMaster.find_sales = lambda self, ids, since: self._find_one_by_one(set(ids))
    with pg_ledger():
        started = time.monotonic()
        status = run_flow(pairing, "orders_in", f"burst-{'naive' if naive else 'paged'}", now - timedelta(hours=1), now + timedelta(minutes=5))
        seconds = time.monotonic() - started
    assert status == "success", status
    return measure(emu, n, limit, seconds)


def run_shared(emu: Emulators, n: int, limit: int) -> dict:
    emu.post("cin7", "/_sandbox/reset", None)
    for e in ("marketplacer", "mirakl"):
        emu.post(e, "/_sandbox/reset", None)
    emu.post("cin7", "/_sandbox/seed", CIN7_SEED)
    now = datetime.now(timezone.utc)
    queue_marketplacer(emu, n // 2, 300_000, now - timedelta(minutes=20))
    queue_john_lewis(emu, n - n // 2, 400_000, now - timedelta(minutes=20))
    start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(minutes=5)).isoformat()
    with pg_ledger():
        from commerce_sync.ledger import Ledger

        Ledger.from_url(os.environ["COMMERCE_SYNC_LEDGER_URL"]).dispose()  # migrate once, before two processes race to
        started = time.monotonic()
        workers = [subprocess.Popen([sys.executable, "-m", "tests.reliability.worker", p, "orders_in", f"shared-{p}", start, end], cwd=ROOT,
                                    stdout=subprocess.PIPE, text=True) for p in ("cin7_marketplacer", "cin7_john_lewis")]
        outs = [w.communicate()[0].strip().splitlines()[-1:] for w in workers]
        seconds = time.monotonic() - started
    assert all(o == ["success"] for o in outs), outs
    return measure(emu, n, limit, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=600, help="Cin7 calls per minute (emulator and pairing)")
    parser.add_argument("--baseline-orders", type=int, default=300)
    parser.add_argument("--part", choices=["all", "single", "baseline", "shared"], default="all")
    parser.add_argument("--pairing", choices=sorted(CHANNELS), default="cin7_marketplacer", help="whose channel the burst arrives on (shared: always Marketplacer and John Lewis)")
    args = parser.parse_args()

    home = setup_env()
    only = ("cin7", "marketplacer", "mirakl") if args.part in ("all", "shared") else ("cin7", CHANNELS[args.pairing][0])
    emu = Emulators(cin7_rate_limit=args.limit, only=tuple(dict.fromkeys(only + ("cin7", CHANNELS[args.pairing][0]))))
    try:
        # the channels' own limits are not what this measures
        wire(emu, home, rates={"cin7_core": args.limit, "marketplacer": 100_000, "mirakl": 100_000, "commercetools": 100_000},
             options={"marketplacer": {"page_size": 500}})
        results = {}
        if args.part in ("all", "single"):
            results[f"paged lookup (design, {args.pairing})"] = run_single(emu, args.orders, args.limit, pairing=args.pairing)
        if args.part in ("all", "baseline"):
            results[f"one lookup per order (naive, {args.baseline_orders} orders)"] = run_single(emu, args.baseline_orders, args.limit, naive=True, pairing=args.pairing)
        if args.part in ("all", "shared"):
            results["two pairings, one Cin7 account"] = run_shared(emu, args.orders, args.limit)
    finally:
        emu.stop()

    rows = []
    for name, r in results.items():
        rows.append([name, r["orders"], r["sales"], f"{r['per_order']:.3f}", r["calls"], r["throttled"], f"{r['max_60s']} (limit {args.limit})",
                     f"{r['seconds']:.0f} s", f"{r['floor']:.0f} s", f"{r['ratio']:.3f} (target <= 1.15)"])
    print()
    print(f"Order burst into the Cin7 emulator at {args.limit} calls/minute (targets: calls/order at the minimum of 2 + paging; 0 throttled; drain <= 1.15 x floor)")
    print(table(rows, ["run", "orders", "sales", "Cin7 calls/order", "Cin7 calls", "throttled", "most calls in 60 s", "drain", "floor", "drain/floor"]))
    naive = next((r for n, r in results.items() if "naive" in n), None)
    design = next((r for n, r in results.items() if n.startswith("paged lookup")), None)
    if naive and design:
        projected = naive["per_order"] * design["orders"] / args.limit * 60
        print(f"naive design projected to {design['orders']} orders: {naive['per_order']:.2f} calls/order, {projected:.0f} s at the limit "
              f"({projected / design['seconds']:.2f}x the design's drain)")


if __name__ == "__main__":
    main()
