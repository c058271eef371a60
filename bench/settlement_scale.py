"""Settlement reconciliation at scale: a 100,000-row month of Adyen settlement files against Cin7.

    .venv/bin/python bench/settlement_scale.py [--rows 100000] [--batches 30] [--baseline-rows 2000]

A generated month (sandbox/settlement_builders.py: settled payments in GBP and EUR, refunds half
of which Cin7 already holds as credit notes, chargebacks, a fee row and a payout per batch, and the
exceptions finance must see) is dropped into a folder; the Cin7 emulator (its own process, rate
limit lifted: this measures the integration, not the throttle) holds the month's sales. The
flow's steps run in this process as its Airflow tasks would (extract, reconcile, report), the
ledger in a fresh PostgreSQL database. Every row's outcome is checked against the generator's.

Baseline: the naive design, one ERP lookup per row (saleList by ExternalID, then GET /sale for
the total), measured on `--baseline-rows` payment rows and projected to the month. Cin7 allows
60 calls a minute: the calls each design makes are what decide how long a month takes for real.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import yaml
from harness import ROOT, Emulators, free_port, pg_ledger, setup_env, table

PAIRING = "cin7_d2c_settlement"
FLOW = "settlement_reconciliation"


def calls(emu: Emulators) -> Counter:
    return Counter(f"{c['method']} {c['path'].removeprefix('/ExternalApi/v2')}" for c in emu.get("cin7", "/_sandbox/calls")["calls"] if c["path"].startswith("/ExternalApi"))


def wire_pairing(emu: Emulators, home, drop, smtp_port: int) -> None:
    pairings = home / "pairings"
    pairings.mkdir(exist_ok=True)
    data = yaml.safe_load((ROOT / "tests" / "pairings" / f"{PAIRING}.yaml").read_text())
    data["settlement"]["location"] = str(drop)
    (pairings / f"{PAIRING}.yaml").write_text(yaml.safe_dump(data))
    os.environ["COMMERCE_SYNC_PAIRINGS_DIR"] = str(pairings)
    os.environ[f"AIRFLOW_CONN_{PAIRING.upper()}__CIN7"] = json.dumps(
        {"conn_type": "http", "host": f"{emu.url['cin7']}/ExternalApi/v2", "login": "demo-account", "password": "demo-key"})
    os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port, "extra": {"disable_tls": True, "disable_ssl": True}})


def baseline(m, n: int) -> tuple[int, float, int]:
    """One lookup per payment row (the naive design): (rows, seconds, calls)."""
    import csv
    import io

    from commerce_sync.runtime import FlowContext

    refs = []
    for data in m.files.values():
        for row in csv.DictReader(io.StringIO(data.decode())):
            if row["Type"] in ("Settled", "Refunded") and row["Merchant Reference"]:
                refs.append(row["Merchant Reference"])
            if len(refs) >= n:
                break
        if len(refs) >= n:
            break
    with FlowContext.for_pairing(PAIRING) as ctx:
        t = time.perf_counter()
        for ref in refs:
            for item in ctx.master._list_items_one_by_one({ctx.pairing.external_id(ref)}).values():
                ctx.master.sale_total(str(item["SaleID"]))
        return len(refs), time.perf_counter() - t, ctx.stats().get("calls", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--baseline-rows", type=int, default=2_000)
    args = parser.parse_args()

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    from sandbox.settlement_builders import REFUND_SKU, SKU, month

    home = setup_env()
    drop = home / "drop"
    drop.mkdir()
    emu = Emulators(cin7_rate_limit=1_000_000, only=("cin7",))
    mail = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    mail.start()
    try:
        t = time.perf_counter()
        m = month(start=datetime(2026, 10, 1, tzinfo=timezone.utc), prefix="WEB-", batches=args.batches, payments=args.rows // args.batches - 6, unbalanced=args.batches // 2)
        for name, data in m.files.items():
            (drop / name).write_bytes(data)
        emu.post("cin7", "/_sandbox/seed", {"products": [{"SKU": SKU}, {"SKU": REFUND_SKU}]})
        for i in range(0, len(m.sales), 10_000):
            emu.post("cin7", "/_sandbox/sales", {"sales": m.sales[i : i + 10_000]})
        print(f"generated {m.rows} rows in {len(m.files)} files and seeded {len(m.sales)} Cin7 sales in {time.perf_counter() - t:.0f} s", flush=True)
        wire_pairing(emu, home, drop, mail.port)

        with pg_ledger() as url:
            from commerce_sync.flows import settlement_reconciliation as flow
            from commerce_sync.ledger import Ledger
            from commerce_sync.runtime import FlowContext

            end = datetime.now(timezone.utc)
            start = end - timedelta(days=1)
            before = calls(emu)
            times = {}
            with FlowContext.for_pairing(PAIRING) as ctx:
                t = time.perf_counter()
                extracted = flow.extract(ctx, "bench", start=start, end=end)
                times["extract"] = time.perf_counter() - t
            with FlowContext.for_pairing(PAIRING) as ctx:
                t = time.perf_counter()
                reconciled = flow.reconcile(ctx, "bench", extracted)
                times["reconcile"] = time.perf_counter() - t
            with FlowContext.for_pairing(PAIRING) as ctx:
                t = time.perf_counter()
                summary = flow.report(ctx, "bench", extracted, reconciled)
                times["report"] = time.perf_counter() - t
            used = calls(emu) - before
            ledger = Ledger.from_url(url)
            names = {f["id"]: f["name"] for f in ledger.settlement_files(PAIRING)}
            got = {(names[r["file_id"]], r["line_no"]): (r["status"], r["reason"]) for r in ledger.settlement_lines(PAIRING)}
            wrong = sum(1 for k, v in m.expected.items() if got.get(k) != v)
            ledger.dispose()
            n, base_s, base_calls = baseline(m, args.baseline_rows)
    finally:
        mail.stop()
        emu.stop()

    total = sum(times.values())
    design_calls = sum(used.values())
    payments = sum(1 for data in m.files.values() for line in data.decode().splitlines() if ",Settled," in line or ",Refunded," in line)
    base_month_calls = base_calls / n * payments
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"settlement_reconciliation, {m.rows} rows in {len(m.files)} Adyen batch files ({payments} payments and refunds), {len(m.sales)} Cin7 sales")
    print(f"rows reconciled otherwise than the generator expects: {wrong}; exceptions reported: {summary['exceptions']}; "
          f"credit notes created: {reconciled.get('credit_notes_created', 0)}; fee journals posted: {reconciled.get('journals_posted', 0)}")
    print(table([
        ["design: one saleList read for the month, a credit-note read per refund", f"{times['extract']:.1f}", f"{times['reconcile']:.1f}", f"{times['report']:.1f}",
         f"{total:.1f}", f"{m.rows / total:,.0f}", f"{design_calls:,}", f"{design_calls / 60:,.0f} min"],
        [f"naive baseline: a lookup per payment ({n} measured, projected)", "", f"{base_s / n * payments:.1f}", "", f"{base_s / n * payments:.1f}",
         f"{n / base_s:,.0f}", f"{base_month_calls:,.0f}", f"{base_month_calls / 60:,.0f} min"],
    ], ["run", "extract s", "reconcile s", "report s", "total s", "rows/s", "Cin7 calls", "at Cin7's 60 calls/min"]))
    print("Cin7 calls by the design:", ", ".join(f"{k} {v}" for k, v in sorted(used.items())))
    print(f"peak memory of the flow process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
