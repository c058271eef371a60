"""Fault-matrix cells for centra_marketplacer (registered in matrix.py): orders_in (Marketplacer
invoices into Centra's Order API) and stock_out (Centra warehouse stock, read whole on the first
run and from Centra's events after, to Marketplacer). The same invariants as every cell: each good
record reaches its target exactly once, each bad one is held with a reason, nothing else is."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sandbox.demo_seed import CENTRA_SEED
from tests.builders import marketplacer_invoice
from tests.reliability.matrix import Scenario, World, _once, _quarantine_check

CM = "centra_marketplacer"
CM_GOOD = [(7101, [("CS-TEE-BLK-M", 2, 4500)]), (7102, [("CS-CAP-NVY", 1, 2500)]), (7103, [("CS-TEE-BLK-L", 1, 4500)])]
CM_BAD = (7199, [("CS-SOCK-WHT", 1, 1500)])  # no Centra size mapped
CM_STOCK = {"CT-TEE-BLK-M": ("CS-TEE-BLK-M", 10), "CT-TEE-BLK-L": ("CS-TEE-BLK-L", 3), "CT-CAP-NVY-OS": ("CS-CAP-NVY", 6)}


def _seed_centra(world: World) -> None:
    # Centra's real buckets (60 requests, 20 mutations per 10 s) would make a cell wait on Retry-After
    world.post("centra", "/_sandbox/config", {"requests_per_10s": 100_000, "mutations_per_10s": 100_000, "allocation_warehouses": ["Main Warehouse"]})
    world.post("centra", "/_sandbox/seed", {**CENTRA_SEED, "stock": [{"warehouse": "Main Warehouse", "sku": s, "quantity": q} for s, (_, q) in CM_STOCK.items()]
                                            + [{"warehouse": "Showroom", "sku": "CT-TEE-BLK-M", "quantity": 40}]})


def _orders_setup(world: World) -> None:
    _seed_centra(world)
    placed = world.now - timedelta(minutes=30)
    world.post("marketplacer", "/_sandbox/invoices", {"invoices": [marketplacer_invoice(n, lines, created_at=placed) for n, lines in CM_GOOD + [CM_BAD]]})


def _orders_check(world: World) -> list[str]:
    orders = world.get("centra", "/_sandbox/orders")["orders"]
    problems = _once(Counter(o["externalId"] for o in orders), {f"MKP-{n}" for n, _ in CM_GOOD}, "order")
    problems += [f"order {o['externalId']} is {o['status']}, not confirmed" for o in orders if o["status"] != "CONFIRMED"]
    return problems + _quarantine_check(world, CM, "orders_in", {str(CM_BAD[0])}, lambda q: str(q.payload.get("legacyId")))


def _stock_setup(world: World) -> None:
    _seed_centra(world)
    world.post("marketplacer", "/_sandbox/adverts", {"adverts": [{"title": c, "variants": [{"sku": c, "countOnHand": 0}]} for c, _ in CM_STOCK.values()]})


def _stock_check(world: World) -> list[str]:
    shown = world.get("marketplacer", "/_sandbox/stock_updates")["stock"]
    want = {channel: q - 1 for channel, q in CM_STOCK.values()}  # Main Warehouse only, one unit of buffer (centra_marketplacer.yaml)
    return [f"{s}: channel shows {shown.get(s)}, expected {q}" for s, q in want.items() if shown.get(s) != q] + \
        _quarantine_check(world, CM, "stock_out", set(), lambda q: q.record_key)


# Each cell costs 2-3 s (two runs of the flow): the suite runs the ones that prove most about
# exactly-once and reading Centra's pages, not all thirteen faults per flow.
ORDERS_FAULTS = ("response lost after commit", "page shifted while read", "malformed JSON", "vendor error quotes our credentials")
STOCK_FAULTS = ("response lost after commit", "duplicate delivery", "page shifted while read", "schema drift (field renamed)", "malformed JSON")

SCENARIOS: list[Scenario] = [
    Scenario(CM, "orders_in", _orders_setup, _orders_check, {
        "write": {"emulator": "centra", "path": "/order-api/order", "method": "POST"},
        "read": {"emulator": "marketplacer", "operation": "invoices", "list_key": "nodes", "drift": {"legacyId": "legacyID"}}}, ORDERS_FAULTS),
    Scenario(CM, "stock_out", _stock_setup, _stock_check, {
        "write": {"emulator": "marketplacer", "operation": "variantUpdate"},
        "read": {"emulator": "centra", "operation": "warehouses", "list_key": "stock", "drift": {"freeToAllocateQuantity": "freeToAllocate"}}}, STOCK_FAULTS),
]
