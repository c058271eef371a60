"""Gate cost: rows per second of every Great Expectations gate (orders_in, stock_out,
dispatch_back, refunds) on synthetic batches (about 2% bad rows), the orders gate beside a
plain-pandas baseline doing the same checks by hand. Prints a table; not a test. The share of a
flow run spent in the gate is printed by bench/stock_scale.py ("gate share").

    .venv/bin/python bench/gate_throughput.py [ROWS ...]     (default 1000 10000 100000)
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from commerce_sync.models import Order, OrderLine  # noqa: E402

SKUS = {f"SKU-{i:05d}" for i in range(5000)}


def make_orders(n_lines: int) -> dict[str, Order]:
    orders = {}
    placed = datetime(2026, 11, 22, tzinfo=timezone.utc)
    for i in range(n_lines // 2):
        lines = [
            OrderLine(line_ref=f"{i}-{j}", sku=f"SKU-{(i + j) % 5000:05d}" if i % 50 else "UNMAPPED", quantity=1 + j, unit_price=Decimal("12.50"), line_total=Decimal("12.50") * (1 + j))
            for j in range(2)
        ]
        total = sum((ln.line_total for ln in lines), Decimal("0"))
        orders[f"k{i}"] = Order(channel="bench", channel_ref=str(i), channel_id=f"id{i}", placed_at=placed, currency="AUD", seller_ref="1", lines=lines, total=total, tax_inclusive=True)
    return orders


def gx_gate(orders):
    from commerce_sync.gates.orders import gate_orders

    return gate_orders(orders, unreadable={}, mapped_skus=SKUS, mapped_sellers={"1"}, currencies=["AUD"], max_bad_share=Decimal("0.5"))


def pandas_baseline(orders):
    from commerce_sync.gates.orders import orders_frame

    f = orders_frame(orders)
    bad = f[~f["sku"].isin(SKUS) | (f["quantity"] < 1) | (f["order_variance_minor"] != 0) | f["channel_ref"].isna()]
    return set(bad["_record_key"])


def stock_gate(n: int):
    from commerce_sync.gates.stock import gate_stock

    rows = [{"channel_sku": f"CH-{i}", "listing_id": str(i), "channel_quantity": 3, "master_sku": None if i % 50 == 0 else f"SKU-{i}",
             "available": str(i % 40)} for i in range(n)]
    return lambda: gate_stock(rows, unreadable={}, max_bad_share=Decimal("0.5"), min_records_for_share=10, known_bad=set())


def shipments_gate(n: int):
    from commerce_sync.gates.shipments import gate_shipments

    shipments = {f"T{i}:1": {"order_channel_id": f"O{i}", "carrier": "Pigeon" if i % 50 == 0 else "DPD", "tracking_number": f"TR{i}",
                             "lines": [{"sku": f"SKU-{i % 5000:05d}", "quantity": 1}]} for i in range(n)}
    return lambda: gate_shipments(shipments, unreadable={}, mapped_carriers={"DPD"}, mapped_skus=SKUS, max_bad_share=Decimal("0.5"),
                                  min_records_for_share=10, known_bad=set())


def refunds_gate(n: int):
    from commerce_sync.gates.refunds import gate_refunds
    from commerce_sync.models import Refund, RefundLine

    refunds = {f"R{i}": Refund(refund_ref=f"R{i}", order_channel_ref=f"O{i}", currency="GBP", reason="34",
                               lines=[RefundLine(line_ref="1", sku=f"SKU-{i % 5000:05d}", quantity=1, amount=Decimal("12.50"))],
                               requested_at=datetime(2026, 11, 22, tzinfo=timezone.utc)) for i in range(n)}
    linked = {f"O{i}" for i in range(n) if i % 50}
    return lambda: gate_refunds(refunds, linked_orders=linked, unreadable={}, mapped_skus=SKUS, max_bad_share=Decimal("0.5"),
                                min_records_for_share=10, known_bad=set())


def timed(fn) -> tuple[float, int]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, len(result.failed)


def main(sizes: list[int]) -> None:
    gx_gate(make_orders(100))  # warm-up: GX import and first context
    print(f"{'gate':<14} {'rows':>8} {'GX gate s':>10} {'GX rows/s':>10} {'quarantined':>11} {'pandas s':>9} {'pandas rows/s':>13}")
    for rows in sizes:
        orders = make_orders(rows)
        seconds, failed = timed(lambda: gx_gate(orders))
        t = time.perf_counter()
        pandas_baseline(orders)
        plain = time.perf_counter() - t
        print(f"{'orders_in':<14} {rows:>8} {seconds:>10.2f} {rows / seconds:>10.0f} {failed:>11} {plain:>9.2f} {rows / plain:>13.0f}")
        for name, build in (("stock_out", stock_gate), ("dispatch_back", shipments_gate), ("refunds", refunds_gate)):
            seconds, failed = timed(build(rows))
            print(f"{name:<14} {rows:>8} {seconds:>10.2f} {rows / seconds:>10.0f} {failed:>11} {'':>9} {'':>13}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000])
