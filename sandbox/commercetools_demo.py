"""Demo data for the commercetools emulator: the supply channel and inventory entries stock_out
sets, the product type new products get, and a trickle of paid storefront orders with their
captured payments. The SKUs match include/mappings/cin7_commercetools/skus.csv and the Cin7 demo
catalogue; now and then an order has no orderNumber, so the demo shows one held too."""

from __future__ import annotations

import random
import threading

from sandbox.commercetools import create_resource, inject_order
from sandbox.common import start_trickle
from sandbox.commercetools_builders import make_order, payment, transaction

CT_SKUS = [("CS-TEE-BLK-M", "45.00"), ("CS-TEE-BLK-L", "45.00"), ("CS-CAP-NVY", "19.99")]
SUPPLY_CHANNEL = "cin7-main-warehouse"


def seed(data) -> None:
    with data.lock:
        create_resource(data, "channels", {"key": SUPPLY_CHANNEL, "roles": ["InventorySupply"], "name": {"en-GB": "Cin7 Main Warehouse"}})
        create_resource(data, "product_types", {"key": "apparel", "name": "Apparel", "description": "Clothing and accessories",
                                                "attributes": [{"name": "ean", "type": {"name": "text"}}, {"name": "weight", "type": {"name": "number"}}]})
        for sku, _ in CT_SKUS:
            create_resource(data, "inventory", {"sku": sku, "quantityOnStock": 0, "supplyChannel": {"typeId": "channel", "key": SUPPLY_CHANNEL}})


def demo_order(rng: random.Random, n: int) -> tuple[dict, dict]:
    lines = [{"sku": sku, "quantity": rng.randint(1, 2), "price": price} for sku, price in rng.sample(CT_SKUS, k=rng.randint(1, 2))]
    number = None if rng.random() < 0.05 else f"CT{5000 + n}"
    order = make_order(number, lines, shipping=rng.choice(["0", "4.95"]), payments=[f"demo-pay-{n}"])
    total = order["totalPrice"]["centAmount"] / 100
    return order, payment(f"demo-pay-{n}", total, transactions=[transaction("Charge", total)])


def start_order_trickle(data, every_seconds: float = 30.0, seed_value: int = 13) -> threading.Event:
    """Add a paid order (and its captured payment) every `every_seconds` until the event is set."""

    def add(rng: random.Random, n: int) -> None:
        order, pay = demo_order(rng, n)
        with data.lock:
            create_resource(data, "payments", pay)
            inject_order(data, order)

    return start_trickle(add, every_seconds, seed_value, "demo-commercetools-orders")
