"""cin7_sfcc's fault-matrix cells (orders_in, stock_out, dispatch_back), registered by matrix.py.

The SFCC emulator is this module's own (one per process, started at the first cell that needs
it and reset by each setup); the cin7_sfcc connections point at it and at the world's Cin7.
The invariants, beside matrix.py's: every good order `exported` in SFCC and the held one
`failed` (Business Manager shows it); OCI shows each SKU Cin7's sellable less the region's
safety stock.
"""

from __future__ import annotations

import atexit
import os
from collections import Counter
from datetime import timedelta

import requests

from tests.reliability.matrix import CIN7_SALE, Scenario, World, _once, _quarantine_check, _seed_cin7, _seed_stock, run_flow, window

PAIRING = "cin7_sfcc"
GOOD = [("00009001", [("CS-TEE-BLK-M", 2, "45.00")]), ("00009002", [("CS-CAP-NVY", 1, "25.00")]), ("00009003", [("CS-TEE-BLK-L", 1, "45.00")]),
        ("00009004", [("CS-CAP-NVY", 2, "25.00")])]
BAD = ("00009099", [("CS-SOCK-WHT", 1, "9.00")])  # not in skus.csv
_server = {}


def _sfcc(world: World) -> str:
    """The module's SFCC emulator, reset; the pairing's connections pointed at it (and at the
    world's Cin7, which the world resets itself)."""
    from commerce_sync import airflow_settings
    from sandbox import sfcc
    from sandbox.server import start_server

    if "handle" not in _server:
        _server["handle"] = start_server(sfcc.create_app())
        atexit.register(_server["handle"].stop)
    url = _server["handle"].url
    requests.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
    timeouts = {"read_timeout": 1, "connect_timeout": 2}
    env = airflow_settings.env(overrides={
        f"{PAIRING}__cin7": {"host": f"{world.cin7}/ExternalApi/v2", "extra": timeouts},
        f"{PAIRING}__sfcc": {"host": url, "extra": {"tenant": "zzxy_prd", "token_url": f"{url}/dwsso/oauth2/access_token",
                                                     "oci_tenant_group_id": "f_ecom_zzxy_prd", **timeouts}},
    })
    # the process's environment, as matrix_env's: a crash test's worker process inherits it
    os.environ.update({k: v for k, v in env.items() if k.startswith(f"AIRFLOW_CONN_{PAIRING.upper()}__")})
    world.more["sfcc"] = url
    world.post("cin7", "/_sandbox/seed", {"customers": [{"Name": "Webshop UK (SFCC)", "Currency": "GBP"}]})
    return url


def _post(world: World, path: str, body) -> None:
    from sandbox.sfcc_builders import plain

    world.post("sfcc", path, plain(body))


def _orders_setup(world: World, bad: bool = True) -> None:
    from sandbox.sfcc_builders import make_order

    _seed_cin7(world)
    _sfcc(world)
    placed = world.now - timedelta(minutes=30)
    _post(world, "/_sandbox/orders", [make_order(n, "UK", [{"sku": s, "quantity": q, "price": p} for s, q, p in lines], created=placed)
                                      for n, lines in GOOD + ([BAD] if bad else [])])


def _orders_check(world: World) -> list[str]:
    sales = world.sales()
    problems = _once(Counter(s["ExternalID"] for s in sales), {f"UK-{n}" for n, _ in GOOD}, "sale")
    problems += [f"sale {s['ExternalID']} has no lines" for s in sales if not (s.get("Order") or {}).get("Lines")]
    status = {n: world.get("sfcc", f"/_sandbox/orders/UK/{n}")["exportStatus"] for n, _ in GOOD + [BAD]}
    problems += [f"order {n} is {status[n]} in SFCC, expected exported" for n, _ in GOOD if status[n] != "exported"]
    if status[BAD[0]] != "failed":
        problems.append(f"the held order {BAD[0]} is {status[BAD[0]]} in SFCC, expected failed")
    return problems + _quarantine_check(world, PAIRING, "orders_in", {f"UK/{BAD[0]}"}, lambda q: q.record_key)


def _stock_setup(world: World) -> None:
    from tests.reliability.matrix import STOCK

    _seed_stock(world)
    _sfcc(world)
    _post(world, "/_sandbox/oci/inventory", [{"location": "uk-warehouse", "sku": s, "onHand": 0} for s in STOCK])


def _stock_check(world: World) -> list[str]:
    shown = {r["sku"]: r["onHand"] for r in world.get("sfcc", "/_sandbox/oci/inventory")["records"] if r["location"] == "uk-warehouse"}
    want = {"CS-TEE-BLK-M": 8, "CS-TEE-BLK-L": 2, "CS-CAP-NVY": 18}  # the uk region keeps two units back (cin7_sfcc.yaml)
    return [f"{s}: OCI shows {shown.get(s)}, expected {q}" for s, q in want.items() if shown.get(s) != q] + \
        _quarantine_check(world, PAIRING, "stock_out", set(), lambda q: q.record_key)


SHIPPED = {"00009001": [("CS-TEE-BLK-M", "Royal Mail Tracked 24", "RM1"), ("CS-TEE-BLK-M", "DPD Next Day", "DPD2")],
           "00009002": [("CS-CAP-NVY", "Royal Mail Tracked 24", "RM3")]}
UNMAPPED_CARRIER = ("00009003", "CS-TEE-BLK-L", "Pigeon Post", "PP4")  # not in carriers.csv: held


def _dispatch_setup(world: World) -> None:
    _orders_setup(world, bad=False)  # the booked orders alone: the held one is orders_in's cells' business
    status = run_flow(PAIRING, "orders_in", "setup-orders", *window(world))
    assert status == "success", status
    for order_no, boxes in SHIPPED.items():
        world.post("cin7", "/_sandbox/fulfilments", {
            "ExternalID": f"UK-{order_no}", "pack": [{"SKU": sku, "Quantity": 1, "Box": str(i)} for i, (sku, _, _) in enumerate(boxes, 1)],
            "ship": [{"Box": str(i), "Carrier": carrier, "TrackingNumber": tracking} for i, (_, carrier, tracking) in enumerate(boxes, 1)]})
    order_no, sku, carrier, tracking = UNMAPPED_CARRIER
    world.post("cin7", "/_sandbox/fulfilments", {"ExternalID": f"UK-{order_no}", "pack": [{"SKU": sku, "Quantity": 1, "Box": "1"}],
                                                 "ship": [{"Box": "1", "Carrier": carrier, "TrackingNumber": tracking}]})


def _dispatch_check(world: World) -> list[str]:
    import json

    orders = {n: world.get("sfcc", f"/_sandbox/orders/UK/{n}") for n in [*SHIPPED, UNMAPPED_CARRIER[0]]}
    boxes = Counter(b["tracking"] for o in orders.values() for b in json.loads(o.get("c_commerceSyncShipments") or "[]"))
    problems = _once(boxes, {t for shipped in SHIPPED.values() for _, _, t in shipped}, "box")
    problems += [f"order {n} is {orders[n].get('shippingStatus')} in SFCC, expected shipped" for n in SHIPPED if orders[n].get("shippingStatus") != "shipped"]
    if orders[UNMAPPED_CARRIER[0]].get("shippingStatus") != "not_shipped":
        problems.append(f"order {UNMAPPED_CARRIER[0]} (carrier unmapped) is {orders[UNMAPPED_CARRIER[0]].get('shippingStatus')} in SFCC, expected not_shipped")
    return problems + _quarantine_check(world, PAIRING, "dispatch_back", {f"UK-{UNMAPPED_CARRIER[0]}"}, lambda q: str(q.payload.get("order_channel_ref")))


# Only cheap cells, and only what is SFCC's own: the queue read (orders_in's read faults), the
# booking with its export status and holds (orders_in's write faults), the OCI import (stock_out's
# write faults). Cin7's side (stock_out's availability read) is the other Cin7 pairings' cells;
# the slow ones (latency, hangs, 429/503 and their waits) prove the shared client, proven there too.
ORDERS_FAULTS = frozenset({"connection reset before", "response lost after commit", "malformed JSON", "schema drift (field renamed)",
                           "duplicate delivery", "page shifted while read", "vendor error quotes our credentials"})
STOCK_FAULTS = frozenset({"connection reset before", "response lost after commit", "500 errors", "vendor error quotes our credentials"})
DISPATCH_FAULTS = frozenset({"connection reset before", "response lost after commit", "malformed JSON", "vendor error quotes our credentials"})
SCENARIOS = [
    Scenario(PAIRING, "orders_in", _orders_setup, _orders_check, {
        "write": CIN7_SALE,
        "read": {"emulator": "sfcc", "path": "/orders", "method": "GET", "list_key": "data", "drift": {"orderNo": "orderNumber"}}}, ORDERS_FAULTS),
    Scenario(PAIRING, "stock_out", _stock_setup, _stock_check, {
        "write": {"emulator": "sfcc", "path": "/imports", "method": "POST"},
        "read": {"emulator": "cin7", "path": "/ref/productavailability", "list_key": "ProductAvailabilityList", "drift": {"Available": "Availability"}}}, STOCK_FAULTS),
    # the write: the PATCH recording the box on the order (its shipping-status PUT follows it)
    Scenario(PAIRING, "dispatch_back", _dispatch_setup, _dispatch_check, {
        "write": {"emulator": "sfcc", "method": "PATCH"},
        "read": {"emulator": "cin7", "path": "/saleList", "list_key": "SaleList", "drift": {"SaleID": "SaleId"}}}, DISPATCH_FAULTS),
]
