"""Demo data for the commercetools emulator: the supply channels and inventory entries stock_out
sets (one entry per SKU in each supply channel of include/pairings/cin7_commercetools.yaml), the product type new products get, and a trickle of paid storefront orders with their
captured payments. The SKUs match include/mappings/cin7_commercetools/skus.csv and the Cin7 demo
catalogue; now and then an order has no orderNumber, so the demo shows one held too."""

from __future__ import annotations

import random
import threading

from sandbox.commercetools import create_resource, inject_order
from sandbox.common import start_trickle
from sandbox.commercetools_builders import make_order, payment, transaction

CT_SKUS = [("CS-TEE-BLK-M", "45.00"), ("CS-TEE-BLK-L", "45.00"), ("CS-CAP-NVY", "19.99")]
SUPPLY_CHANNELS = {"cin7-main-warehouse": "Cin7 Main Warehouse", "cin7-store-london": "London Store", "cin7-3pl-northampton": "3PL Northampton"}


def seed(data) -> None:
    with data.lock:
        for key, name in SUPPLY_CHANNELS.items():
            create_resource(data, "channels", {"key": key, "roles": ["InventorySupply"], "name": {"en-GB": name}})
        create_resource(data, "product_types", {"key": "apparel", "name": "Apparel", "description": "Clothing and accessories",
                                                "attributes": [{"name": "ean", "type": {"name": "text"}}, {"name": "weight", "type": {"name": "number"}}]})
        for sku, _ in CT_SKUS:
            for key in SUPPLY_CHANNELS:
                create_resource(data, "inventory", {"sku": sku, "quantityOnStock": 0, "supplyChannel": {"typeId": "channel", "key": key}})


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
