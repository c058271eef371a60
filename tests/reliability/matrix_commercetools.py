"""cin7_commercetools in the fault matrix (matrix.py): orders_in and stock_out, the flows most at
risk (a sale booked twice, a storefront showing stock Cin7 cannot ship), under every fault.

The commercetools emulator is this module's own (started once, on first use); its connection and
the pairing's Cin7 connection point at the matrix's emulators. Registered by one line in matrix.py.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import timedelta

import requests

from tests.reliability.matrix import EMULATORS, STOCK, Scenario, World, _once, _quarantine_check, _seed_cin7, _seed_stock, run_flow, window

CT = "cin7_commercetools"
PROJECT, CLIENT_ID, CLIENT_SECRET = "demo-shop", "demo-client", "demo-secret"
SUPPLY = "cin7-main-warehouse"
CT_GOOD = [("CT8001", [("CS-TEE-BLK-M", 2, "45.00")]), ("CT8002", [("CS-CAP-NVY", 1, "19.99")]), ("CT8003", [("CS-TEE-BLK-L", 1, "45.00")]),
           ("CT8004", [("CS-CAP-NVY", 2, "19.99")])]
CT_BAD = ("CT8099", [("CT-UNMAPPED", 1, "10.00")])
_server: dict = {}


def _commercetools() -> str:
    """The emulator's URL; started once per process, and the pairing's connections set to it."""
    if "url" not in _server:
        from sandbox import commercetools
        from sandbox.server import start_server

        _server["server"] = start_server(commercetools.create_app(project_key=PROJECT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
        _server["url"] = _server["server"].url
    return _server["url"]


EMULATORS["commercetools"] = _commercetools


def _wire(world: World) -> None:
    """A fresh emulator state and the two connections (the matrix's read timeout: a hang is a timeout)."""
    url = _commercetools()
    requests.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
    # the pairing's three supply channels; the cells stock the main one (the others have no entries)
    requests.post(f"{url}/_sandbox/channels", json=[{"key": k, "roles": ["InventorySupply"]} for k in (SUPPLY, "cin7-store-london", "cin7-3pl-northampton")],
                  timeout=10).raise_for_status()
    timeouts = {"read_timeout": 1, "connect_timeout": 2}
    extra = {"project_key": PROJECT, "auth_url": url, "scopes": ["manage_orders", "view_payments", "manage_products", "manage_channels"], **timeouts}
    os.environ[f"AIRFLOW_CONN_{CT.upper()}__COMMERCETOOLS"] = json.dumps({"conn_type": "http", "host": url, "login": CLIENT_ID, "password": CLIENT_SECRET, "extra": extra})
    os.environ[f"AIRFLOW_CONN_{CT.upper()}__CIN7"] = json.dumps({"conn_type": "http", "host": f"{world.cin7}/ExternalApi/v2", "login": "demo-account",
                                                                  "password": "demo-key", "extra": timeouts})


def _orders(world: World, with_bad: bool = True) -> None:
    from sandbox.commercetools_builders import make_order

    placed = world.now - timedelta(minutes=30)
    orders = [make_order(n, [{"sku": s, "quantity": q, "price": p} for s, q, p in lines], created=placed, order_id=f"id-{n}")
              for n, lines in CT_GOOD + ([CT_BAD] if with_bad else [])]
    world.post("commercetools", "/_sandbox/orders", orders)


def _orders_setup(world: World) -> None:
    _wire(world)
    _seed_cin7(world)
    world.post("cin7", "/_sandbox/seed", {"customers": [{"Name": "Storefront GBP", "Currency": "GBP"}]})
    _orders(world)


def _orders_check(world: World) -> list[str]:
    sales = world.sales()
    problems = _once(Counter(s["ExternalID"] for s in sales), {n for n, _ in CT_GOOD}, "sale")
    problems += [f"sale {s['ExternalID']} has no lines" for s in sales if not (s.get("Order") or {}).get("Lines")]
    synced = {o["orderNumber"]: len(o.get("syncInfo") or []) for o in world.get("commercetools", "/_sandbox/orders")["items"]}
    problems += [f"order {n} has {synced.get(n)} sync infos, expected 1" for n, _ in CT_GOOD if synced.get(n) != 1]
    return problems + _quarantine_check(world, CT, "orders_in", {f"id-{CT_BAD[0]}"}, lambda q: q.record_key)


ENTRY = {s: f"entry-{s}" for s in STOCK}  # fixed ids, so a fault can be aimed at one entry's writes


def _stock_setup(world: World) -> None:
    _wire(world)
    _seed_stock(world)
    world.post("commercetools", "/_sandbox/inventory", [{"id": ENTRY[s], "sku": s, "quantityOnStock": 0, "supplyChannel": {"typeId": "channel", "key": SUPPLY}}
                                                        for s in STOCK])


def _stock_check(world: World) -> list[str]:
    shown = {e["sku"]: e["quantityOnStock"] for e in world.get("commercetools", "/_sandbox/inventory")["items"]}
    want = {s: q - 1 for s, q in STOCK.items()}  # cin7_commercetools.yaml: a buffer of one unit
    return [f"{s}: channel shows {shown.get(s)}, expected {q}" for s, q in want.items() if shown.get(s) != q] + \
        _quarantine_check(world, CT, "stock_out", set(), lambda q: q.record_key)


# the suite's time is scarce: the cells that add seconds of waiting by design (latency on every
# call, Retry-After bursts) are left to `make fault-matrix` runs of the other pairings' cells,
# which exercise the same client code; these run what can book twice or oversell
CHEAP = ("timeout (server slow, commits)", "connection reset before", "response lost after commit", "500 errors", "malformed JSON",
         "schema drift (field renamed)", "duplicate delivery", "page shifted while read", "vendor error quotes our credentials")
CIN7_AVAILABILITY = {"emulator": "cin7", "path": "/ref/productavailability", "list_key": "ProductAvailabilityList", "drift": {"Available": "Availability"}}
SCENARIOS: list[Scenario] = [
    Scenario(CT, "orders_in", _orders_setup, _orders_check, {
        "write": {"emulator": "cin7", "path": "/sale", "method": "POST"},
        "read": {"emulator": "commercetools", "path": f"/{PROJECT}/orders", "method": "GET", "list_key": "results", "drift": {"orderNumber": "ordernumber"}}},
        # orders are read by a cursor (lastModifiedAt, id), never by offset: no page to shift
        tuple(f for f in CHEAP if f != "page shifted while read")),
    Scenario(CT, "stock_out", _stock_setup, _stock_check, {
        "write": {"emulator": "commercetools", "path": f"/inventory/{ENTRY['CS-CAP-NVY']}", "method": "POST"},
        "read": CIN7_AVAILABILITY}, CHEAP),
]
_ = run_flow, window  # the matrix runs these scenarios with its own runner
