"""Gate cost: rows per second of the orders_in Great Expectations gate, against a plain-pandas
baseline doing the same checks by hand, on synthetic batches. Prints a table; not a test.

    .venv/bin/python bench/gate_throughput.py [ROWS ...]
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
        orders[f"k{i}"] = Order(channel="bench", channel_ref=str(i), channel_id=f"id{i}", placed_at=placed, currency="AUD", seller_ref="1", lines=lines, total=total)
    return orders


def gx_gate(orders):
    from commerce_sync.gates.orders import gate_orders

    return gate_orders(orders, unreadable={}, mapped_skus=SKUS, mapped_sellers={"1"}, currencies=["AUD"], max_bad_share=Decimal("0.5"))


def pandas_baseline(orders):
    from commerce_sync.gates.orders import orders_frame

    f = orders_frame(orders)
    bad = f[~f["sku"].isin(SKUS) | (f["quantity"] < 1) | (f["order_variance_minor"] != 0) | f["channel_ref"].isna()]
    return set(bad["_record_key"])


def main(sizes: list[int]) -> None:
    gx_gate(make_orders(100))  # warm-up: GX import and first context
    print(f"{'rows':>8} {'GX gate s':>10} {'GX rows/s':>10} {'pandas s':>9} {'pandas rows/s':>13} {'quarantined':>11}")
    for rows in sizes:
        orders = make_orders(rows)
        t0 = time.perf_counter()
        result = gx_gate(orders)
        t1 = time.perf_counter()
        pandas_baseline(orders)
        t2 = time.perf_counter()
        print(f"{rows:>8} {t1 - t0:>10.2f} {rows / (t1 - t0):>10.0f} {t2 - t1:>9.2f} {rows / (t2 - t1):>13.0f} {len(result.failed):>11}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000])
