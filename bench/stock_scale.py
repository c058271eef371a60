"""Stock at scale: 100,000 SKUs over 3 Cin7 locations, John Lewis (Mirakl) stock_out; or, with
--pairing cin7_commercetools, commercetools stock_out into the pairing's 3 supply channels (one run).

    .venv/bin/python bench/stock_scale.py [--skus 100000] [--changed 0.01] [--pairing cin7_john_lewis|cin7_commercetools]

commercetools: the shipped pairing, whose stock.regions map each supply channel to its Cin7
location(s) and buffer; one stock_out run sets all three; the entries start in step with Cin7. Runs: the
first sync (nothing pushed before: every entry read back, only those that differ written), a run
with nothing changed, a run after 1% of SKUs changed, and the naive baseline (every entry set,
no diff, no read-back) projected from the measured cost of one write (the changed run's push time
over its writes): run, it would take hours. ≈12 min at 100,000 SKUs on 2 cores.

Runs the flow's steps (extract: Cin7 availability + Mirakl offers; gate: GX; push: diff + one
STO01 import) in this process against the emulators (their own process), three times: the first
sync (everything is new), a run with nothing changed, and a run after 1% of SKUs changed in Cin7.
Baseline: the same changed run pushing every SKU (what a design without the diff would send).
Peak memory is this process's maximum resident set (ru_maxrss) over the whole benchmark.
"""

from __future__ import annotations

import argparse
import resource
import time
from decimal import Decimal

import yaml
from harness import ROOT, Emulators, pg_ledger, setup_env, sku_mappings, stock_run, table, wire

PAIRING = "cin7_john_lewis"
LOCATIONS = ["Main Warehouse", "Sydney Store", "Melbourne Store"]


def seed(emu: Emulators, n: int) -> None:
    emu.post("cin7", "/_sandbox/seed", {"products": [{"SKU": f"CS-{i:06d}", "Name": f"Product {i}"} for i in range(n)], "locations": LOCATIONS})
    for start in range(0, n, 20_000):
        rows = [{"SKU": f"CS-{i:06d}", "Location": loc, "OnHand": 10 + i % 7, "Allocated": i % 3} for i in range(start, min(n, start + 20_000)) for loc in LOCATIONS]
        emu.post("cin7", "/_sandbox/seed", {"availability": rows})
    for start in range(0, n, 10_000):
        emu.post("mirakl", "/_sandbox/offers", [{"shop_sku": f"JL-{i:06d}", "quantity": 0} for i in range(start, min(n, start + 10_000))])


def imports(emu: Emulators) -> list[dict]:
    return emu.get("mirakl", "/_sandbox/stock_imports")["imports"]


def mirakl_writes(emu: Emulators) -> int:
    return sum(1 for c in emu.get("mirakl", "/_sandbox/calls")["calls"] if c["method"] == "POST")


CT_PAIRING = "cin7_commercetools"


def ct_regions(home) -> dict[str, dict]:
    """The shipped pairing's supply channels (stock.regions: channel key -> Cin7 locations, buffer)."""
    return yaml.safe_load((home / "pairings" / f"{CT_PAIRING}.yaml").read_text())["stock"]["regions"]


def ct_setup(emu: Emulators, home, n: int) -> list[str]:
    """The one pairing (its supply channels as shipped), its SKU map, Cin7 and commercetools seeded
    in step (each entry = its channel's locations' availability less its buffer). Returns the
    Cin7 locations."""
    import os

    from commerce_sync.pairing import Buffer
    from commerce_sync.stock import sellable

    path = home / "pairings" / f"{CT_PAIRING}.yaml"
    data = yaml.safe_load(path.read_text())
    data["channel"]["options"]["page_size"] = 500
    data["stock"].update({"full_resync_hour_utc": None})
    path.write_text(yaml.safe_dump(data))
    regions = data["stock"]["regions"]
    sku_mappings(home, CT_PAIRING, n, "CS")
    locations = sorted({loc for r in regions.values() for loc in r["locations"]})
    available = lambda i: 10 + i % 7 - i % 3  # noqa: E731 - OnHand less Allocated, every location
    emu.post("cin7", "/_sandbox/seed", {"products": [{"SKU": f"CS-{i:06d}", "Name": f"Product {i}"} for i in range(n)], "locations": locations})
    for start in range(0, n, 20_000):
        rows = [{"SKU": f"CS-{i:06d}", "Location": loc, "OnHand": 10 + i % 7, "Allocated": i % 3} for i in range(start, min(n, start + 20_000)) for loc in locations]
        emu.post("cin7", "/_sandbox/seed", {"availability": rows})
    emu.post("commercetools", "/_sandbox/channels", [{"key": c, "roles": ["InventorySupply"]} for c in regions])
    for channel, region in regions.items():
        buffer, k = Buffer(**(region.get("buffer") or {})), len(region["locations"])
        for start in range(0, n, 10_000):
            emu.post("commercetools", "/_sandbox/inventory", [{"sku": f"CS-{i:06d}", "quantityOnStock": sellable(Decimal(available(i) * k), buffer),
                                                               "supplyChannel": {"typeId": "channel", "key": channel}} for i in range(start, min(n, start + 10_000))])
    return locations


def ct_main(args) -> None:
    home = setup_env()
    emu = Emulators(cin7_rate_limit=1_000_000, only=("cin7", "commercetools"))
    rows = []
    try:
        wire(emu, home, rates={"cin7_core": 1_000_000, "commercetools": 1_000_000})
        t = time.perf_counter()
        locations = ct_setup(emu, home, args.skus)
        channels = len(ct_regions(home))
        print(f"seeded {args.skus} SKUs x {channels} supply channels in {time.perf_counter() - t:.0f} s", flush=True)
        writes = lambda: sum(1 for c in emu.get("commercetools", "/_sandbox/calls")["calls"] if c["method"] == "POST" and "/inventory/" in c["path"])  # noqa: E731
        per_write = None
        with pg_ledger():
            for label, run_id, change in (("first sync (nothing pushed before)", "r1", 0), ("nothing changed", "r2", 0), (f"{args.changed:.0%} changed", "r3", args.changed)):
                if change:
                    k = int(args.skus * change)
                    for loc in locations:  # the same SKUs move at every location: every supply channel has writes
                        emu.post("cin7", "/_sandbox/seed", {"availability": [{"SKU": f"CS-{i:06d}", "Location": loc, "OnHand": 40, "Allocated": 0}
                                                                             for i in range(0, args.skus, args.skus // k)][:k]})
                before = writes()
                r = stock_run(CT_PAIRING, run_id)  # one run sets every supply channel
                done = writes() - before
                if change:
                    per_write = r["times"]["push"] / done if done else None
                rows.append([label, r["listings"], r["pushed"]["sent"], done] + [f"{r['times'][k]:.1f}" for k in ("extract", "gate", "push", "total")])
                print(f"{label}: {r['times']['total']:.1f} s", flush=True)
        if per_write:
            entries = args.skus * channels
            rows.append(["naive: set every entry each run (projected)", entries, entries, entries, "-", "-", f"{per_write * entries:.0f}", f"{per_write * entries:.0f}"])
    finally:
        emu.stop()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"stock_out, commercetools, {args.skus} SKUs x {channels} supply channels in one pairing ({', '.join(locations)})")
    print(table(rows, ["run", "entries", "sent", "inventory writes", "extract s", "gate s", "push s", "run s"]))
    if per_write:
        print(f"one entry write (changed run): {per_write * 1000:.1f} ms; the naive row is that x every entry")
    print(f"peak memory of the flow process: {peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--pairing", choices=[PAIRING, CT_PAIRING], default=PAIRING)
    args = parser.parse_args()
    if args.pairing == CT_PAIRING:
        return ct_main(args)
    home = setup_env()
    emu = Emulators(cin7_rate_limit=1_000_000)
    rows = []
    try:
        wire(emu, home, rates={"cin7_core": 1_000_000, "mirakl": 1_000_000}, options={"mirakl": {"import_poll_seconds": 0.2, "page_size": 100}})
        path = home / "pairings" / f"{PAIRING}.yaml"
        data = yaml.safe_load(path.read_text())
        data["stock"]["locations"] = LOCATIONS
        path.write_text(yaml.safe_dump(data))
        sku_mappings(home, PAIRING, args.skus, "JL")
        t = time.perf_counter()
        seed(emu, args.skus)
        print(f"seeded {args.skus} SKUs x {len(LOCATIONS)} locations in {time.perf_counter() - t:.0f} s", flush=True)
        with pg_ledger():
            results = {}
            for label, run_id, change, full in (("first sync (all new)", "r1", 0, False), ("nothing changed", "r2", 0, False),
                                                (f"{args.changed:.0%} changed", "r3", args.changed, False),
                                                (f"{args.changed:.0%} changed, push every SKU (baseline)", "r4", args.changed, True)):
                if change:
                    k = int(args.skus * change)
                    bump = 20 if run_id == "r3" else 30
                    emu.post("cin7", "/_sandbox/seed", {"availability": [{"SKU": f"CS-{i:06d}", "Location": "Main Warehouse", "OnHand": bump, "Allocated": 0}
                                                                         for i in range(0, args.skus, args.skus // k)][:k]})
                before_imports, before_writes = len(imports(emu)), mirakl_writes(emu)
                r = stock_run(PAIRING, run_id, full=full)
                sent_lines = sum(len(i["lines"]) for i in imports(emu)[before_imports:])
                results[label] = r
                rows.append([label, r["listings"], r["pushed"]["sent"], sent_lines, mirakl_writes(emu) - before_writes,
                             f"{r['times']['extract']:.1f}", f"{r['times']['gate']:.1f}", f"{r['times']['push']:.1f}", f"{r['times']['total']:.1f} (target < 60)",
                             f"{r['times']['gate'] / r['times']['total']:.0%}"])
                print(f"{label}: {r['times']['total']:.1f} s", flush=True)
    finally:
        emu.stop()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"stock_out, John Lewis, {args.skus} SKUs x {len(LOCATIONS)} Cin7 locations ({args.skus * len(LOCATIONS)} availability rows)")
    print(table(rows, ["run", "listings", "sent", "lines in STO01 files", "Mirakl writes (STO01)", "extract s", "gate s", "push s", "run s", "gate share"]))
    print(f"peak memory of the flow process: {peak_mb:.0f} MB (target < 1536 MB)")


if __name__ == "__main__":
    main()
