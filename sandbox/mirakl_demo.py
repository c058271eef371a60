"""Demo data for the Mirakl (John Lewis) emulator: the shop's offers and a trickle of orders.

The SKUs match include/mappings/cin7_john_lewis/skus.csv and the Cin7 demo catalogue, except
one that is deliberately unmapped so the demo shows an order held for acceptance too. The
emulator debits accepted orders at once (config auto_debit) since no customer pays in a demo.
"""

from __future__ import annotations

import random
from decimal import Decimal
import threading

from sandbox.common import start_trickle
from sandbox.mirakl_builders import make_offer, make_order

JL_SKUS = [("JL-TEE-BLK-M", "45.00"), ("JL-TEE-BLK-L", "45.00"), ("JL-CAP-NVY", "19.99")]
JL_UNMAPPED = ("JL-SOCK-WHT", "9.00")
DEMO_OFFERS = [make_offer(sku, 0, price=price) for sku, price in JL_SKUS + [JL_UNMAPPED]]
DEMO_CONFIG = {"auto_debit": True}


def demo_order(rng: random.Random, n: int) -> dict:
    pool = JL_SKUS + ([JL_UNMAPPED] if rng.random() < 0.1 else [])
    lines = []
    for sku, price in rng.sample(pool, k=rng.randint(1, min(2, len(pool)))):
        qty = rng.randint(1, 2)
        # prices include 20% VAT: the VAT of a line is a sixth of it
        lines.append({"offer_sku": sku, "quantity": qty, "price_unit": price, "tax": str((Decimal(price) * qty / 6).quantize(Decimal("0.01")))})
    return make_order(f"JL{9000 + n}-A", f"JL{9000 + n}", lines, shipping_price=rng.choice(["0", "4.95"]))


def seed(data) -> None:
    with data.lock:
        for offer in DEMO_OFFERS:
            data.offers[offer["shop_sku"]] = dict(offer)
        data.config.update(DEMO_CONFIG)


def start_order_trickle(data, every_seconds: float = 30.0, seed_value: int = 11) -> threading.Event:
    """Add a new order waiting for acceptance every `every_seconds` until the event is set."""

    def add(rng: random.Random, n: int) -> None:
        order = demo_order(rng, n)
        data.add_orders([order])

    return start_trickle(add, every_seconds, seed_value, "demo-mirakl-orders")
