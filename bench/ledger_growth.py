"""Ledger growth: bytes a day at the demo's rate and at peak trade, before and after housekeeping,
and the time of one housekeeping run at peak.

    .venv/bin/python bench/ledger_growth.py [--orders 100] [--skus 100000] [--peak-orders 20000]

Measured, on a fresh PostgreSQL ledger, with the real flows against the emulators:
- per order, booked and shipped (orders_in then dispatch_back, packing slips for John Lewis):
  --orders orders per pairing in one window;
- per run of each flow of both pairings with nothing new to move (what every scheduled run
  costs), on the demo's 3-SKU catalogue;
- per stock_out run at peak: John Lewis, --skus SKUs, 1% changed since the last run.
Each figure is the growth of every table's rows as stored (compressed where PostgreSQL compresses).

Modelled from them (arithmetic, no run): a day = the pairing files' schedules (runs a day from
their crons) x the per-run cost + orders a day x the per-order cost. Demo: what `make demo` feeds
(a Marketplacer order every 20 s, a John Lewis order every 30 s). Peak: --peak-orders orders a
day on each pairing and every John Lewis stock run at --skus SKUs. Without housekeeping a table
grows by its day's growth every day; with it a pruned table holds its retention window.

One housekeeping run at peak: the rows a daily run deletes in steady state (one peak day of every
pruned table, past its retention) are copied from the measured rows with old timestamps, then
housekeeping runs and is timed (the retained windows are not built: deleting goes by index, so
their size costs a run little).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import time
from datetime import datetime, timedelta, timezone

import yaml
from harness import ROOT, Emulators, pg_ledger, setup_env, table, wire

MKP, JL = "cin7_marketplacer", "cin7_john_lewis"
DEMO_ORDERS_PER_DAY = {MKP: 86_400 // 20, JL: 86_400 // 30}  # sandbox demo trickles: one every 20 s / 30 s
DAYS = (30, 90, 365)


def sizes(engine) -> dict[str, tuple[int, int]]:
    """Rows and their bytes as stored (every column's stored size, compressed where PostgreSQL
    compressed it, plus the 24-byte row header) per table. Indexes and free page space come on
    top: the ratio of the ledger's size on disk to this is printed at the end."""
    from sqlalchemy import MetaData, func, literal, select

    meta = MetaData()
    meta.reflect(engine)
    out = {}
    with engine.connect() as conn:
        for name, t in meta.tables.items():
            if name == "ledger_alembic_version":
                continue
            row_bytes = sum((func.coalesce(func.pg_column_size(c), 0) for c in t.columns), literal(24))
            parts = {name: None}
            if name == "report_file":  # stored files (packing slips) and text reports have their own retention
                parts = {"report_file (files)": t.c.data.is_not(None), "report_file (reports)": t.c.data.is_(None)}
            for part, where in parts.items():
                q = select(func.count(), func.coalesce(func.sum(row_bytes), 0)).select_from(t)
                n, b = conn.execute(q if where is None else q.where(where)).one()
                out[part] = (int(n), int(b))
    return out


def on_disk(engine) -> tuple[int, int]:
    """(bytes on disk of every ledger table with its indexes and TOAST, bytes of its rows)."""
    from commerce_sync.housekeeping.sizes import ledger_sizes

    return sum(e["bytes"] or 0 for e in ledger_sizes(engine)), sum(b for _, b in sizes(engine).values())


# not growth: the flows delete an account's call slots older than its window as they book new
# ones, so this table holds about a minute of calls whatever the day's traffic
LIVE_WINDOW = ("api_call_slot",)


def delta(before: dict, after: dict) -> dict[str, tuple[int, int]]:
    return {t: (after[t][0] - before.get(t, (0, 0))[0], after[t][1] - before.get(t, (0, 0))[1]) for t in after if t not in LIVE_WINDOW}


def scaled(d: dict[str, tuple[int, int]], k: float) -> dict[str, tuple[float, float]]:
    return {t: (r * k, b * k) for t, (r, b) in d.items()}


def add(*parts: dict) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for part in parts:
        for t, (r, b) in part.items():
            r0, b0 = out.get(t, (0, 0))
            out[t] = (r0 + r, b0 + b)
    return out


def runs_per_day(cron: str) -> int:
    from croniter import croniter

    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    it, n = croniter(cron, start), 0
    while it.get_next(datetime) < start + timedelta(days=1):
        n += 1
    return n


def run_flow(pairing: str, flow: str, run_id: str, start: datetime, end: datetime) -> None:
    from tests.reliability.matrix import run_flow as run

    status = run(pairing, flow, run_id, start, end)
    if status != "success":
        raise RuntimeError(f"{pairing} {flow}: {status}")


def seed_world(emu: Emulators) -> None:
    from sandbox.demo_seed import CIN7_SEED

    emu.post("cin7", "/_sandbox/seed", CIN7_SEED)
    emu.post("mirakl", "/_sandbox/carriers", [{"code": c, "label": c} for c in ("DPD", "EVRI", "ROYAL_MAIL")])
    emu.post("marketplacer", "/_sandbox/adverts", {"adverts": [{"title": s, "variants": [{"sku": s, "countOnHand": 0}]} for s in ("CS-TEE-BLK-M", "CS-TEE-BLK-L", "CS-CAP-NVY")]})
    from sandbox.mirakl import make_offer

    emu.post("mirakl", "/_sandbox/offers", [make_offer(s, 0) for s in ("JL-TEE-BLK-M", "JL-TEE-BLK-L", "JL-CAP-NVY")])


def orders(emu: Emulators, pairing: str, n: int, placed: datetime) -> list[str]:
    """n orders on the channel; the ERP external ids they will be booked under."""
    if pairing == MKP:
        from tests.builders import marketplacer_invoice

        for start in range(0, n, 500):
            emu.post("marketplacer", "/_sandbox/invoices", {"invoices": [marketplacer_invoice(10_000 + i, [("CS-TEE-BLK-M", 1, 4500), ("CS-CAP-NVY", 1, 2500)], created_at=placed)
                                                                         for i in range(start, min(n, start + 500))]})
        return [f"MKP-{10_000 + i}" for i in range(n)]
    from sandbox.mirakl import make_order

    for start in range(0, n, 250):
        emu.post("mirakl", "/_sandbox/orders", [make_order(f"JL{10_000 + i}-A", f"JL{10_000 + i}", [{"offer_sku": "JL-TEE-BLK-M", "quantity": 1, "price_unit": "45.00", "tax": "7.50"}],
                                                           state="SHIPPING", created=placed) for i in range(start, min(n, start + 250))])
    return [f"JL{10_000 + i}" for i in range(n)]


def ship(emu: Emulators, external_ids: list[str], carrier: str) -> None:
    for ext in external_ids:
        emu.post("cin7", "/_sandbox/fulfilments", {"ExternalID": ext, "pack": [{"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "1"}],
                                                   "ship": [{"Box": "1", "Carrier": carrier, "TrackingNumber": f"T{ext}"}]})


def peak_stock(emu: Emulators, home, n: int, engine) -> dict[str, tuple[int, int]]:
    """One John Lewis stock run at n SKUs, 1% changed since the run before it."""
    from stock_scale import LOCATIONS, mappings, seed

    path = home / "pairings" / f"{JL}.yaml"
    data = yaml.safe_load(path.read_text())
    data["stock"]["locations"] = LOCATIONS
    path.write_text(yaml.safe_dump(data))
    keep = home / "mappings_demo"
    shutil.copytree(home / "mappings", keep)
    mappings(home, n)
    with (home / "mappings" / JL / "skus.csv").open("a", newline="") as f:  # the demo's SKUs stay mapped
        csv.writer(f).writerows([["JL-TEE-BLK-M", "CS-TEE-BLK-M", "Tee"], ["JL-TEE-BLK-L", "CS-TEE-BLK-L", "Tee"], ["JL-CAP-NVY", "CS-CAP-NVY", "Cap"]])
    seed(emu, n)
    now = datetime.now(timezone.utc)
    run_flow(JL, "stock_out", "peak-stock-first", now, now)
    emu.post("cin7", "/_sandbox/seed", {"availability": [{"SKU": f"CS-{i:06d}", "Location": "Main Warehouse", "OnHand": 25, "Allocated": 0} for i in range(0, n, 100)]})
    before = sizes(engine)
    run_flow(JL, "stock_out", "peak-stock-steady", now, now)
    return delta(before, sizes(engine))


def fmt_mb(b: float) -> str:
    return f"{max(b, 0) / 1e6:,.1f}"


def fmt_days(d: float) -> str:
    return f"{d:g} d" if d >= 1 else f"{d * 24:g} h"


def housekeeping_run_at_peak(engine, day: dict[str, tuple[float, float]]) -> tuple[float, dict]:
    """Copy the measured rows into one peak day of expired rows per pruned table, then time a run."""
    from sqlalchemy import text

    from commerce_sync import housekeeping
    from commerce_sync.housekeeping.settings import load_settings
    from commerce_sync.ledger import Ledger

    old = {"days_400": datetime.now(timezone.utc) - timedelta(days=401), "days_31": datetime.now(timezone.utc) - timedelta(days=31)}
    copies = {
        # table: (SQL copying the existing rows `k` times with old stamps and unique keys)
        "payload_log": "INSERT INTO payload_log (pairing, system, method, url, status, request_body, response_body, duration_ms, attempt, error, logged_at) "
                       "SELECT pairing, system, method, url, status, request_body, response_body, duration_ms, attempt, error, :days_31 FROM payload_log, generate_series(1, :k)",
        "staged_record": "INSERT INTO staged_record (pairing, flow, run_id, record_key, payload, staged_at) "
                         "SELECT pairing, flow, run_id || '~' || g, record_key, payload, :days_31 FROM staged_record, generate_series(1, :k) g",
        "run_report": "INSERT INTO run_report (pairing, flow, run_id, extracted, loaded, started_at, finished_at, details) "
                      "SELECT pairing, flow, run_id || '~' || g, extracted, loaded, :days_400, :days_400, details FROM run_report, generate_series(1, :k) g",
        "report_file": "INSERT INTO report_file (pairing, flow, period, name, content_type, content, data, created_at) "
                       "SELECT pairing, flow, period || '~' || g, name, content_type, content, data, :days_400 FROM report_file, generate_series(1, :k) g",
    }
    made = {}
    with engine.begin() as conn:
        for name, sql in copies.items():
            rows = conn.execute(text(f"SELECT count(*) FROM {name}")).scalar()
            if not rows:
                continue
            expired = sum(r for t, (r, _) in day.items() if t.split(" ")[0] == name)  # report_file: files and reports
            k = max(1, round(expired / rows))
            conn.execute(text(sql), {**old, "k": k})
            made[name] = rows * k
    ledger = Ledger(engine)
    t = time.perf_counter()
    details = housekeeping.run("bench-peak", ledger=ledger, settings=load_settings())
    return time.perf_counter() - t, {"made": made, "deleted": details["prune"]["deleted"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100, help="orders per pairing measured (booked and shipped)")
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--peak-orders", type=int, default=20_000, help="orders a day per pairing at peak")
    args = parser.parse_args()
    home = setup_env()
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    from harness import free_port

    mail = Controller(Sink(), hostname="127.0.0.1", port=free_port())  # reports and alerts must go somewhere
    mail.start()
    emu = Emulators(cin7_rate_limit=1_000_000)
    started = time.perf_counter()
    try:
        wire(emu, home, rates={"cin7_core": 1_000_000, "mirakl": 1_000_000}, options={"mirakl": {"import_poll_seconds": 0.2, "page_size": 100}},
             smtp_port=mail.port)
        shutil.copytree(ROOT / "include" / "mappings", home / "mappings")
        import os

        os.environ["COMMERCE_SYNC_MAPPINGS_DIR"] = str(home / "mappings")
        seed_world(emu)
        from commerce_sync.housekeeping.settings import load_settings
        from commerce_sync.ledger import Ledger
        from commerce_sync.pairing import get_pairing

        with pg_ledger() as url:
            engine = Ledger.from_url(url).engine
            now = datetime.now(timezone.utc)
            per_order: dict[str, dict] = {}
            for pairing, carrier in ((MKP, "Australia Post"), (JL, "DPD")):
                for flow in ("orders_in", "dispatch_back"):  # one-offs first (mapping files synced, reference lists cached)
                    run_flow(pairing, flow, f"warm-{pairing}-{flow}", now - timedelta(days=2), now - timedelta(days=2))
                before = sizes(engine)
                ids = orders(emu, pairing, args.orders, now - timedelta(minutes=30))
                run_flow(pairing, "orders_in", f"orders-{pairing}", now - timedelta(hours=1), now + timedelta(minutes=5))
                ship(emu, ids, carrier)
                run_flow(pairing, "dispatch_back", f"dispatch-{pairing}", now - timedelta(hours=1), now + timedelta(minutes=5))
                per_order[pairing] = scaled(delta(before, sizes(engine)), 1 / args.orders)
                print(f"{pairing}: {args.orders} orders booked and shipped", flush=True)
            per_run: dict[tuple[str, str], dict] = {}
            schedule: dict[tuple[str, str], int] = {}
            later = datetime.now(timezone.utc) + timedelta(minutes=10)
            for pairing in (MKP, JL):
                for flow, cfg in get_pairing(pairing).flows.items():
                    # the first run may do one-off work (a first stock push, a mapping file synced): the second is every run's
                    run_flow(pairing, flow, f"first-{pairing}-{flow}", later, later + timedelta(minutes=5))
                    before = sizes(engine)
                    run_flow(pairing, flow, f"empty-{pairing}-{flow}", later, later + timedelta(minutes=5))
                    per_run[(pairing, flow)] = delta(before, sizes(engine))
                    schedule[(pairing, flow)] = runs_per_day(cfg.schedule) if cfg.schedule else 0
            print("every flow's empty run measured", flush=True)
            stock_peak = peak_stock(emu, home, args.skus, engine)
            print(f"peak stock run ({args.skus} SKUs) measured", flush=True)

            demo_day = add(*(scaled(per_run[k], n) for k, n in schedule.items()), *(scaled(per_order[p], DEMO_ORDERS_PER_DAY[p]) for p in (MKP, JL)))
            stock_runs = schedule[(JL, "stock_out")]
            peak_day = add(*(scaled(per_run[k], n) for k, n in schedule.items() if k != (JL, "stock_out")),
                           scaled(stock_peak, stock_runs), *(scaled(per_order[p], args.peak_orders) for p in (MKP, JL)))

            settings = load_settings()
            r = settings.retention
            window = {"payload_log": r.payload_log_days, "staged_record": max(r.staged_days, *r.staged_days_by_flow.values()), "work_claim": r.work_claim_days, "quarantine": r.quarantine_resolved_days,
                      "run_report": r.run_report_days, "report_file (reports)": r.report_days, "report_file (files)": r.stored_files_days}
            # stock_out's staged share keeps 2 days, the orders' 7: weigh the window by where the bytes are
            stock_share = scaled(stock_peak, stock_runs).get("staged_record", (0, 0))[1] / max(peak_day.get("staged_record", (0, 1))[1], 1)

            def held(day: dict, days: int, pruned: bool) -> float:
                total = 0.0
                for t, (_, b) in day.items():
                    keep = days
                    if pruned and t in window:
                        keep = min(days, window[t])
                        if t == "staged_record" and day is peak_day:
                            keep = min(days, stock_share * r.staged_days_by_flow.get("stock_out", r.staged_days) + (1 - stock_share) * r.staged_days)
                    total += max(b, 0) * keep
                return total * overhead

            disk, logical = on_disk(engine)
            overhead = disk / max(logical, 1)  # indexes, TOAST chunk headers, free page space
            hk_seconds, hk = housekeeping_run_at_peak(engine, peak_day)
    finally:
        emu.stop()
        mail.stop()

    print()
    print(f"Ledger growth a day, by table (MB; measured per order and per run, times the schedules; {time.perf_counter() - started:.0f} s in all)")
    tables = sorted({*demo_day, *peak_day}, key=lambda t: -peak_day.get(t, (0, 0))[1])
    rows = [[t, f"{max(demo_day.get(t, (0, 0))[0], 0):,.0f}", fmt_mb(demo_day.get(t, (0, 0))[1]), f"{max(peak_day.get(t, (0, 0))[0], 0):,.0f}", fmt_mb(peak_day.get(t, (0, 0))[1]),
             fmt_days(window[t]) if t in window else "kept"] for t in tables if demo_day.get(t, (0, 0))[1] or peak_day.get(t, (0, 0))[1]]
    rows.append(["total", "", fmt_mb(sum(max(b, 0) for _, b in demo_day.values())), "", fmt_mb(sum(max(b, 0) for _, b in peak_day.values())), ""])
    print(table(rows, ["table", "demo rows/day", "demo MB/day", "peak rows/day", "peak MB/day", "retention"]))
    print()
    print(f"demo: {DEMO_ORDERS_PER_DAY[MKP]:,} Marketplacer + {DEMO_ORDERS_PER_DAY[JL]:,} John Lewis orders a day, 3 SKUs, the pairing files' schedules")
    print(f"peak: {args.peak_orders:,} orders a day per pairing, {stock_runs} John Lewis stock runs a day at {args.skus:,} SKUs (1% changed a run)")
    print(f"on disk the ledger took {overhead:.2f}x its rows' bytes (indexes, TOAST, free space): the sizes below include it")
    print("api_call_slot is left out: it holds about a minute of calls, whatever the day's traffic")
    print()
    head = ["ledger size after", *(f"{d} days" for d in DAYS)]
    size_rows = [[f"{label}, {'with' if pruned else 'without'} housekeeping", *(f"{held(day, d, pruned) / 1e9:,.2f} GB" for d in DAYS)]
                 for label, day in (("demo", demo_day), ("peak", peak_day)) for pruned in (False, True)]
    print(table(size_rows, head))
    print()
    print(f"one housekeeping run at peak (one day of expired rows: {', '.join(f'{t} {n:,}' for t, n in hk['made'].items())}): {hk_seconds:.1f} s; "
          f"deleted {sum(hk['deleted'].values()):,} rows")


if __name__ == "__main__":
    main()
