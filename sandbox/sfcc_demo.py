"""Demo data for the SFCC emulator: the sites' catalogue and a trickle of UK orders.

The SKUs match include/mappings/cin7_sfcc/skus.csv and the Cin7 demo catalogue, except one
that is deliberately unmapped so the demo shows a held order too.
"""

from __future__ import annotations

import random
import threading

from sandbox.common import start_trickle
from sandbox.sfcc_builders import make_order, make_product

SFCC_SKUS = [("CS-TEE-BLK-M", "45.00"), ("CS-TEE-BLK-L", "45.00"), ("CS-CAP-NVY", "25.00")]
SFCC_UNMAPPED = ("CS-GIFTBOX", "5.00")
DEMO_PRODUCTS = [make_product(sku, {"UK": True, "EU": True, "US": True}) for sku, _ in SFCC_SKUS] + [make_product(SFCC_UNMAPPED[0], {"UK": True})]


def demo_order(rng: random.Random, n: int) -> dict:
    pool = SFCC_SKUS + ([SFCC_UNMAPPED] if rng.random() < 0.1 else [])
    lines = [{"sku": sku, "quantity": rng.randint(1, 2), "price": price} for sku, price in rng.sample(pool, k=rng.randint(1, min(2, len(pool))))]
    return make_order(f"{7000 + n:08d}", "UK", lines, currency="GBP", taxation="gross", shipping=rng.choice(["0", "4.95"]))


def seed(data) -> None:
    with data.lock:
        for product in DEMO_PRODUCTS:
            data.products[product["id"]] = dict(product)


def start_order_trickle(data, every_seconds: float = 30.0, seed_value: int = 16) -> threading.Event:
    """Add a new UK order, ready for export, every `every_seconds` until the event is set."""

    def add(rng: random.Random, n: int) -> None:
        order = demo_order(rng, n)
        with data.lock:
            data.orders[(order["siteId"], order["orderNo"])] = order

    return start_trickle(add, every_seconds, seed_value, "demo-sfcc-orders")
