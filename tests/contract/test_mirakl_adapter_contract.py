"""Contract: every request the Mirakl adapter sends, for every operation the John Lewis flows use,
checked against Mirakl's seller OpenAPI file (path, query parameter names, JSON body); the adapter
is driven against the emulator over real HTTP and its payload log is what is checked."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests

from commerce_sync.http import HeaderAuth, HttpClient
from commerce_sync.models import Listing, Shipment, ShipmentLine
from commerce_sync.systems.mirakl import MiraklChannel
from sandbox.mirakl import make_offer, make_order, make_transaction
from tests.contract import mirakl_spec

pytestmark = pytest.mark.e2e
KEY = "contract-key"
# operation id -> (method, path template) of every call the adapter makes
USED = {
    "OR11": ("GET", "/api/orders"), "OR21": ("PUT", "/api/orders/{order_id}/accept"), "OR23": ("PUT", "/api/orders/{order_id}/tracking"),
    "OR24": ("PUT", "/api/orders/{order_id}/ship"), "ST01": ("POST", "/api/shipments"), "ST11": ("GET", "/api/shipments"),
    "SH21": ("GET", "/api/shipping/carriers"), "OF21": ("GET", "/api/offers"), "STO01": ("POST", "/api/offers/stock/imports"),
    "STO02": ("GET", "/api/offers/stock/imports/{import_id}/status"), "STO03": ("GET", "/api/offers/stock/imports/{import_id}/error_report"),
    "TL02": ("GET", "/api/sellerpayment/transactions_logs"),
}


@pytest.fixture(scope="module")
def sent():
    from sandbox import mirakl
    from sandbox.server import start_server

    now = datetime.now(timezone.utc).replace(microsecond=0)  # at set-up: the suite may have run for minutes
    server = start_server(mirakl.create_app(api_key=KEY, shop_id=2001))
    post = lambda path, body: requests.post(f"{server.url}{path}", json=body, timeout=10).raise_for_status()  # noqa: E731
    lines = [{"offer_sku": "TEE", "quantity": 2, "price_unit": "45.00", "tax": "15.00"}, {"offer_sku": "CAP", "quantity": 1, "price_unit": "19.99", "tax": "3.33"}]
    post("/_sandbox/orders", [make_order("C1-A", "C1", lines, created=now - timedelta(minutes=5)),
                              make_order("C2-A", "C2", lines, state="SHIPPING", created=now - timedelta(minutes=5)),
                              make_order("C3-A", "C3", lines[1:], state="SHIPPING", created=now - timedelta(minutes=5))])
    post("/_sandbox/offers", [make_offer("TEE", 1), make_offer("CAP", 2)])
    post("/_sandbox/config", {"stock_import_errors": {"CAP": "inactive offer"}})
    post("/_sandbox/orders/C2-A/refunds", [{"order_line_id": "C2-A-1", "quantity": 1, "amount": "45.00", "shipping_amount": "0", "reason_code": "34"}])
    post("/_sandbox/transactions", [make_transaction("t1", "ORDER_AMOUNT", "90.00", order_id="C2-A", commercial_id="C2", transaction_date=now - timedelta(minutes=1)),
                                    make_transaction("t2", "COMMISSION_VAT", "-1.80", order_id="C2-A", commercial_id="C2", transaction_date=now - timedelta(minutes=1))])

    log: list[dict] = []
    client = HttpClient(server.url, system="mirakl", auth=HeaderAuth({"Authorization": KEY}), payload_log=log.append)
    ch = MiraklChannel(client, shop_id="2001", seller_ref="s", import_poll_seconds=0.01)
    window = (now - timedelta(hours=1), now + timedelta(minutes=1))
    (waiting,) = list(ch.orders_awaiting_acceptance())
    order = ch.to_order(waiting)
    ch.accept_order(order, {line.line_ref: True for line in order.lines})
    ch.accept_order(order, {line.line_ref: True for line in order.lines})  # a repeat after a lost answer is no error
    assert {ch.record_key(r) for r in ch.fetch_orders(*window)} == {"C2-A", "C3-A"}
    box = lambda sku, tracking: Shipment(order_channel_ref="x", master_ref="m", shipment_ref=tracking, carrier="DPD", tracking_number=tracking,  # noqa: E731
                                         shipped_at=now, lines=[ShipmentLine(sku=sku, quantity=1)])
    ch.push_shipment("C2-A", box("TEE", "P1"), "DPD")  # partial: ST01
    ch.push_shipment("C3-A", box("CAP", "W1"), "DPD")  # whole: OR23 + OR24
    listings = ch.read_listings()
    results = ch.push_stock([(listings["TEE"], 5), (listings["CAP"], 0)])
    assert dict(results) == {"TEE": None, "CAP": "inactive offer"}
    assert [r["id"] for r in ch.fetch_refunds(*window)] == [f"refund-{r['id']}" for r in requests.get(f"{server.url}/_sandbox/orders/C2-A", timeout=10).json()["order_lines"][0]["refunds"]]
    (payout,) = list(ch.fetch_payouts(*window))
    assert {line.kind: line.amount for line in ch.to_payout_lines(payout)}["commission_tax"] == Decimal("1.8")
    yield log
    server.stop()


def test_every_request_fits_the_spec(sent):
    problems = []
    for entry in sent:
        body = json.loads(entry["request_body"]) if isinstance(entry["request_body"], str) and entry["request_body"] else None
        problems += [f"{entry['method']} {entry['url']}: {p}" for p in mirakl_spec.validate_mirakl_request(entry["method"], entry["url"], body)]
    assert problems == []


def test_every_operation_the_flows_use_was_exercised(sent):
    seen = {(e["method"], mirakl_spec.path_template(e["method"], urlsplit(e["url"]).path)) for e in sent}
    missing = {op for op, call in USED.items() if call not in seen}
    assert missing == set()
    for op, (method, template) in USED.items():  # the path templates really are the spec's operations
        assert mirakl_spec.spec()["paths"][template][method.lower()]["operationId"] == op


def test_auth_is_the_raw_key_and_never_in_the_log(sent):
    assert all(KEY not in json.dumps(e) for e in sent)
