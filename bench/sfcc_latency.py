"""Order-to-sale latency for cin7_sfcc: from an order entering a site's export queue to its sale
existing in Cin7 (stock is allocated only then), under a steady order rate and under a burst.

    .venv/bin/python bench/sfcc_latency.py [--limit 60] [--every 60] [--rate 6] [--minutes 3] [--burst 60]

The SFCC and Cin7 emulators run in their own processes; orders_in runs as the scheduler would
run it, every --every seconds (the pairing's schedule: every minute), one run at a time, its steps
in-process (the same functions the DAG's tasks call, without Airflow's own task start-up). An
order's latency is the time from its injection into SFCC to the moment the Cin7 emulator first
lists its sale with its order lines (polled every 0.1 s; Cin7 allocates stock from then). --limit is Cin7's calls a minute (the emulator's and the
pairing's; Cin7's real limit is 60): --limit 600 --every 6 runs the same shape ten times faster.

The floor beside each figure is what the schedule and Cin7's limit alone impose on each order: the
wait for the next run to start, plus the wait the limit puts on the order's last Cin7 call (one
saleList lookup per run, then a sale and its order per order: the k-th order of a burst needs
the run's 2k + 1-th call; Cin7 allows `limit` calls in any 60 s, so a call waits a minute for
each full `limit` ahead of it); its p50 and p95 over the same orders. What is above the floor is
the flow's own time (reading the queue, the gate, the ledger, the export status).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from datetime import datetime, timedelta, timezone

from harness import Emulators, pg_ledger, setup_env, table, wire

PAIRING = "cin7_sfcc"
CIN7_SEED = {
    "products": [{"SKU": s, "Name": s} for s in ("CS-TEE-BLK-M", "CS-TEE-BLK-L", "CS-CAP-NVY")],
    "locations": ["Main Warehouse"], "tax_rules": ["20% (VAT on Income)"], "customers": [{"Name": "Webshop UK (SFCC)", "Currency": "GBP"}],
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class World:
    """Injects orders, runs orders_in on its schedule, and times each order to its sale."""

    def __init__(self, emu: Emulators, every: float):
        self.emu, self.every = emu, every
        self.injected: dict[str, float] = {}
        self.booked: dict[str, float] = {}
        self.runs: list[float] = []
        self.starts: list[float] = []
        self.stop = threading.Event()
        self.n = 0

    def inject(self, count: int) -> None:
        from sandbox.sfcc_builders import make_order, plain

        orders = []
        for _ in range(count):
            self.n += 1
            number = f"{self.n:08d}"
            orders.append(make_order(number, "UK", [{"sku": "CS-TEE-BLK-M", "quantity": 1 + self.n % 2, "price": "45.00"}, {"sku": "CS-CAP-NVY", "quantity": 1, "price": "25.00"}],
                                     created=datetime.now(timezone.utc)))
        self.emu.post("sfcc", "/_sandbox/orders", plain(orders))
        now = time.monotonic()
        self.injected.update((f"UK-{o['orderNo']}", now) for o in orders)

    def watch(self) -> None:
        while not self.stop.is_set():
            sales = self.emu.get("cin7", "/_sandbox/sales")["sales"]
            now = time.monotonic()
            for s in sales:
                if (s.get("Order") or {}).get("Lines"):  # the sale's order posted: Cin7 allocates stock now
                    self.booked.setdefault(s["ExternalID"], now)
            time.sleep(0.1)

    def schedule(self) -> None:
        """orders_in every `every` s (a run that overruns delays the next, as max_active_runs=1 does)."""
        from tests.reliability.matrix import run_flow

        tick = time.monotonic()
        while not self.stop.is_set():
            now = datetime.now(timezone.utc)
            started = time.monotonic()
            self.starts.append(started)
            status = run_flow(PAIRING, "orders_in", f"run-{len(self.runs)}", now - timedelta(hours=1), now + timedelta(minutes=1))
            assert status == "success", status
            self.runs.append(time.monotonic() - started)
            tick += self.every
            self.stop.wait(max(0.0, tick - time.monotonic()))

    def wait_for(self, refs: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(r not in self.booked for r in refs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sum(r not in self.booked for r in refs)} orders never became sales")
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=60, help="Cin7 calls a minute (emulator and pairing)")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between orders_in runs (the pairing's schedule)")
    parser.add_argument("--rate", type=float, default=6.0, help="steady orders a minute (scaled with --every: per 60/every runs)")
    parser.add_argument("--minutes", type=float, default=3.0, help="steady phase, in schedule minutes (intervals of --every)")
    parser.add_argument("--burst", type=int, default=60, help="orders placed at once")
    args = parser.parse_args()

    home = setup_env()
    emu = Emulators(cin7_rate_limit=args.limit, only=("cin7", "marketplacer", "mirakl", "sfcc"))
    try:
        from commerce_sync import airflow_settings
        from commerce_sync.http import RateLimiter

        wire(emu, home, rates={"cin7_core": args.limit, "sfcc": 100_000})
        url = emu.url["sfcc"]
        os.environ.update({k: v for k, v in airflow_settings.env(overrides={
            f"{PAIRING}__cin7": {"host": f"{emu.url['cin7']}/ExternalApi/v2"},
            f"{PAIRING}__sfcc": {"host": url, "extra": {"tenant": "zzxy_prd", "token_url": f"{url}/dwsso/oauth2/access_token", "oci_tenant_group_id": "f_ecom_zzxy_prd"}},
        }).items() if k.startswith(f"AIRFLOW_CONN_{PAIRING.upper()}__")})
        emu.post("cin7", "/_sandbox/seed", CIN7_SEED)
        RateLimiter._shared.clear()
        with pg_ledger():
            from tests.reliability.matrix import run_flow

            now = datetime.now(timezone.utc)
            assert run_flow(PAIRING, "orders_in", "warm-up", now - timedelta(hours=1), now) == "success"  # imports GX once, as a worker has
            time.sleep(60.0 / args.limit * 3)  # the warm-up's calls out of the limiter's window
            world = World(emu, args.every)
            threads = [threading.Thread(target=world.watch, daemon=True), threading.Thread(target=world.schedule, daemon=True)]
            for t in threads:
                t.start()
            # steady: one order every 60/rate schedule-seconds
            gap = 60.0 / args.rate * args.every / 60.0
            end = time.monotonic() + args.minutes * args.every
            steady: list[str] = []
            while time.monotonic() < end:
                world.inject(1)
                steady.append(f"UK-{world.n:08d}")
                time.sleep(gap)
            world.wait_for(steady, 20 * args.every)
            # a burst, placed mid-interval like any order
            time.sleep(args.every / 2)
            first = world.n + 1
            world.inject(args.burst)
            burst = [f"UK-{n:08d}" for n in range(first, world.n + 1)]
            world.wait_for(burst, (2 * args.burst + 10) * 60.0 / args.limit + 10 * args.every)
            world.stop.set()
            for t in threads:
                t.join(timeout=600)
    finally:
        emu.stop()

    def floor(ref: str, ahead: int) -> float:
        """The next run's start after the order arrived, then the wait Cin7's limit puts on the
        order's last call: `limit` calls in any 60 s (the shared limiter's window), so the c-th
        call of a run waits a minute for each full `limit` ahead of it."""
        t = world.injected[ref]
        return next((x for x in world.starts if x >= t), t) - t + 60.0 * ((ahead - 1) // args.limit)

    rows = []
    # steady: one saleList and the order's two calls; burst: the k-th order waits for 2k + 1 calls
    for name, refs, ahead in (("steady", steady, lambda i: 3), ("burst", burst, lambda i: 1 + 2 * (i + 1))):
        lat = [world.booked[r] - world.injected[r] for r in refs]
        floors = [floor(r, ahead(i)) for i, r in enumerate(refs)]
        rows.append([name, len(refs), f"{statistics.median(lat):.1f} s", f"{statistics.median(floors):.1f} s", f"{percentile(lat, 95):.1f} s",
                     f"{percentile(floors, 95):.1f} s", f"{max(lat):.1f} s"])
    print()
    print(f"cin7_sfcc order-to-sale latency: orders_in every {args.every:g} s, Cin7 at {args.limit} calls/min, steady {args.rate:g} orders per "
          f"{args.every:g} s for {args.minutes:g} intervals, then a burst of {args.burst}")
    print(table(rows, ["phase", "orders", "p50", "floor p50", "p95", "floor p95", "max"]))
    print(f"orders_in runs: {len(world.runs)}, median {statistics.median(world.runs):.2f} s, longest {max(world.runs):.2f} s")


if __name__ == "__main__":
    main()
