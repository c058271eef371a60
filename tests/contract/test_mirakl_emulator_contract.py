"""Contract: the Mirakl emulator's answers and the builders' data against Mirakl's seller OpenAPI
file; every request these tests send is checked against it too (path, query names, body)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
import requests

from sandbox.mirakl import DEFAULT_CARRIERS, ORDER_STATES, make_offer, make_order, make_transaction
from tests.contract import mirakl_spec

pytestmark = pytest.mark.e2e
KEY = "contract-key"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
LINES = [
    {"offer_sku": "TEE", "quantity": 2, "price_unit": "45.00", "tax": "15.00", "shipping_price": "4.95", "shipping_tax": "0.82",
     "commission_fee": "9.00", "commission_vat": "1.80"},
    {"offer_sku": "CAP", "quantity": 1, "price_unit": "19.99", "tax": "3.33"},
]


def _item(method: str, path: str, list_key: str) -> dict:
    return mirakl_spec.response_schema(method, path)["properties"][list_key]["items"]


# -- builders -------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ORDER_STATES)
def test_make_order_fits_the_or11_order_schema_in_every_state(state):
    order = make_order("JL1-A", "JL1", LINES, state=state, created=T0, shipping_deadline=T0 + timedelta(days=1))
    assert mirakl_spec.validate(order, _item("GET", "/api/orders", "orders")) == []
    assert {line["order_line_state"] for line in order["order_lines"]} == {state}
    json.dumps(order)  # plain JSON data: it can be posted as it is


def test_make_order_money_adds_up_and_a_missing_customer_order_number_is_a_schema_error():
    order = make_order("JL2-A", "JL2", LINES, state="SHIPPING", created=T0)
    tee, cap = order["order_lines"]
    assert (tee["price"], tee["shipping_price"], tee["total_price"], tee["total_commission"]) == (90.0, 4.95, 94.95, 10.8)
    assert (order["price"], order["shipping_price"], order["total_price"]) == (109.99, 4.95, 114.94)
    assert [t["amount"] for t in tee["taxes"]] == [15.0] and [t["amount"] for t in tee["shipping_taxes"]] == [0.82]
    assert order["references"]["order_reference_for_customer"] == "JL2" and order["order_tax_mode"] == "TAX_INCLUDED"
    broken = make_order("JL3-A", None, LINES, created=T0)
    assert mirakl_spec.validate(broken, _item("GET", "/api/orders", "orders")) == [": 'commercial_id' is a required property"]


def test_make_transaction_make_offer_and_the_default_carriers_fit_their_schemas():
    tl02 = _item("GET", "/api/sellerpayment/transactions_logs", "data")
    for tx in (make_transaction("t1", "ORDER_AMOUNT", "90.00", order_id="JL1-A", commercial_id="JL1", order_line_id="JL1-A-1", transaction_date=T0),
               make_transaction("t2", "COMMISSION_FEE", "-9.00", order_id="JL1-A", commercial_id="JL1"),
               make_transaction("t3", "PAYMENT", "-79.20", cycle=None, payment_state="PAID")):
        assert mirakl_spec.validate(tx, tl02) == [], tx["id"]
    fee = make_transaction("t2", "COMMISSION_FEE", "-9.00")
    assert (fee["amount"], fee["amount_credited"], fee["amount_debited"]) == (-9.0, 0, 9.0)
    assert mirakl_spec.validate(make_offer("TEE", 5), _item("GET", "/api/offers", "offers")) == []
    assert mirakl_spec.validate(make_offer("TEE", 5, offer_id=7, product_sku="P-1", price="12.10"), _item("GET", "/api/offers", "offers")) == []
    for carrier in DEFAULT_CARRIERS:
        assert mirakl_spec.validate(carrier, _item("GET", "/api/shipping/carriers", "carriers")) == []


# -- the emulator's answers ------------------------------------------------------------------------


class Api:
    """Every call is checked against the spec before it is sent."""

    def __init__(self, url: str):
        self.url = url

    def __call__(self, method: str, path: str, *, params: dict | None = None, json_body=None, files=None, headers=None) -> requests.Response:
        url = f"{self.url}{path}" + (f"?{urlencode(params)}" if params else "")
        assert mirakl_spec.validate_mirakl_request(method, url, json_body) == [], url
        return requests.request(method, url, json=json_body, files=files, headers={"Authorization": KEY} if headers is None else headers, timeout=10)


@pytest.fixture(scope="module")
def emulator():
    from sandbox import mirakl
    from sandbox.server import start_server

    server = start_server(mirakl.create_app(api_key=KEY, shop_id=2001))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scenario(emulator):
    """An order life on the emulator: accepted, debited, tracked, shipped whole or in parts,
    refunded; a stock import with refused lines; transaction lines. Keeps the write answers."""
    url, api = emulator.url, Api(emulator.url)

    def sandbox(path, body=None):
        r = requests.post(f"{url}/_sandbox{path}", json=body, timeout=10)
        assert r.status_code == 200, r.text

    sandbox("/orders", [
        make_order("C1-A", "C1", LINES, created=T0),
        make_order("C2-A", "C2", LINES, state="SHIPPING", created=T0),
        make_order("C3-A", "C3", LINES, state="SHIPPING", created=T0),
        make_order("C4-A", "C4", LINES, state="SHIPPED", created=T0),
    ])
    sandbox("/offers", [make_offer("TEE", 5), {"shop_sku": "CAP", "quantity": 2}])
    sandbox("/transactions", [make_transaction(f"t{i}", kind, amount, order_id="C4-A", commercial_id="C4", order_line_id="C4-A-1", transaction_date=T0 + timedelta(minutes=i))
                              for i, (kind, amount) in enumerate((("ORDER_AMOUNT", "90.00"), ("COMMISSION_FEE", "-9.00"), ("COMMISSION_VAT", "-1.80")))])
    writes = {}
    writes["OR21"] = api("PUT", "/api/orders/C1-A/accept", json_body={"order_lines": [{"id": "C1-A-1", "accepted": True}, {"id": "C1-A-2", "accepted": False}]})
    sandbox("/orders/C1-A/debit")
    writes["OR23"] = api("PUT", "/api/orders/C1-A/tracking", json_body={"carrier_code": "DPD", "tracking_number": "155"}, params={"shop_id": 2001})
    writes["OR24"] = api("PUT", "/api/orders/C1-A/ship")
    writes["ST01"] = api("POST", "/api/shipments", json_body={"shipments": [
        {"order_id": "C2-A", "shipped": True, "tracking": {"carrier_code": "ROYAL_MAIL", "tracking_number": "RM1"},
         "shipment_lines": [{"order_line_id": "C2-A-1", "quantity": 1}]},
        {"order_id": "C2-A", "shipped": True, "shipment_lines": [{"order_line_id": "C2-A-1", "quantity": 5}]},
        {"order_id": "C3-A", "shipped": False, "tracking": {"carrier_name": "Own van", "tracking_url": "https://example.com/t/1"},
         "shipment_lines": [{"order_line_id": "C3-A-1", "quantity": 2}, {"order_line_id": "C3-A-2", "quantity": 1}]},
    ]})
    sandbox("/orders/C4-A/refunds", [{"order_line_id": "C4-A-1", "quantity": 1, "amount": "45.00", "shipping_amount": "4.95", "reason_code": "15"}])
    sandbox("/orders/C4-A/cancelations", [{"order_line_id": "C4-A-2", "quantity": 1, "amount": "19.99", "shipping_amount": "0", "reason_code": "34"}])
    writes["STO01"] = api("POST", "/api/offers/stock/imports", files={"file": ("stock.csv", b"offer-sku;quantity;warehouse-code;update-delete\nTEE;3;;update\nNOPE;1;;\n", "text/csv")})
    import_id = writes["STO01"].json()["import_id"]
    writes["STO02"] = [api("GET", f"/api/offers/stock/imports/{import_id}/status") for _ in range(2)]
    writes["STO03"] = api("GET", f"/api/offers/stock/imports/{import_id}/error_report")
    return api, writes, import_id


@pytest.mark.parametrize(
    "path, params, list_key",
    [
        ("/api/orders", {"paginate": "false"}, "orders"),
        ("/api/orders", {"max": 2, "offset": 1, "order_state_codes": "SHIPPED,SHIPPING"}, "orders"),
        ("/api/shipping/carriers", None, "carriers"),
        ("/api/offers", {"max": 10}, "offers"),
        ("/api/shipments", {"order_id": "C2-A", "limit": 100}, "data"),
        ("/api/shipments", {"limit": 1}, "data"),
        ("/api/sellerpayment/transactions_logs", {"limit": 2000}, "data"),
        ("/api/sellerpayment/transactions_logs", {"limit": 1, "order_id": "C4-A"}, "data"),
    ],
)
def test_read_answers_fit_the_spec(scenario, path, params, list_key):
    api, _, _ = scenario
    r = api("GET", path, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body[list_key], "nothing to validate"
    assert mirakl_spec.validate(body, mirakl_spec.response_schema("GET", path)) == []
    if body.get("next_page_token"):  # the next page too
        nxt = api("GET", path, params={"page_token": body["next_page_token"]}).json()
        assert mirakl_spec.validate(nxt, mirakl_spec.response_schema("GET", path)) == []


def test_the_order_life_leaves_orders_that_still_fit_the_spec(scenario):
    api, _, _ = scenario
    orders = {o["order_id"]: o for o in api("GET", "/api/orders", params={"paginate": "false"}).json()["orders"]}
    assert (orders["C1-A"]["order_state"], orders["C2-A"]["order_state"], orders["C3-A"]["order_state"]) == ("SHIPPED", "SHIPPING", "SHIPPING")
    assert orders["C1-A"]["shipping_tracking"] == "155" and orders["C4-A"]["order_lines"][0]["refunds"] and orders["C4-A"]["order_lines"][1]["cancelations"]
    item = _item("GET", "/api/orders", "orders")
    for order in orders.values():
        assert mirakl_spec.validate(order, item) == [], order["order_id"]


def test_write_answers_fit_the_spec(scenario):
    api, writes, import_id = scenario
    for op, path in (("OR21", "/api/orders/C1-A/accept"), ("OR23", "/api/orders/C1-A/tracking"), ("OR24", "/api/orders/C1-A/ship")):
        assert writes[op].status_code == 204 and writes[op].content == b"", op
        assert "204" in mirakl_spec.operation("PUT", path)["responses"]

    st01 = writes["ST01"]
    assert st01.status_code == 201
    body = st01.json()
    assert len(body["shipment_success"]) == 2 and len(body["shipment_errors"]) == 1
    assert mirakl_spec.validate(body, mirakl_spec.response_schema("POST", "/api/shipments", 201)) == []

    assert writes["STO01"].status_code == 201
    assert mirakl_spec.validate(writes["STO01"].json(), mirakl_spec.response_schema("POST", "/api/offers/stock/imports", 201)) == []
    status_schema = mirakl_spec.response_schema("GET", "/api/offers/stock/imports/{import_id}/status")
    assert [s.json()["status"] for s in writes["STO02"]] == ["WAITING", "COMPLETE"]
    for answer in writes["STO02"]:
        assert mirakl_spec.validate(answer.json(), status_schema) == []

    report = writes["STO03"]
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    mirakl_spec.response_schema("GET", f"/api/offers/stock/imports/{import_id}/error_report", media_type="text/csv")  # declared so
    assert report.text.splitlines()[1].startswith("3;")  # the spec: line number first, then the reason

    version = api("GET", "/api/version")
    assert version.status_code == 200 and "200" in mirakl_spec.operation("GET", "/api/version")["responses"]


def test_error_answers_have_mirakls_error_body(scenario, emulator):
    api, _, _ = scenario
    answers = {
        401: api("GET", "/api/orders", headers={}),
        400: api("GET", "/api/orders", params={"max": 500}),
        404: api("PUT", "/api/orders/NOPE-A/ship"),
    }
    requests.post(f"{emulator.url}/_sandbox/config", json={"rate_limit_per_minute": 0, "retry_after": 3}, timeout=5)
    try:
        answers[429] = api("GET", "/api/version")
    finally:
        requests.post(f"{emulator.url}/_sandbox/config", json={"rate_limit_per_minute": None}, timeout=5)
    for status, r in answers.items():
        assert r.status_code == status, r.text
        assert mirakl_spec.validate_error(r.json()) == [] and r.json()["status"] == status
    assert answers[429].headers["Retry-After"] == "3"


def test_the_request_checker_finds_what_the_spec_does_not_allow():
    check = mirakl_spec.validate_mirakl_request
    assert check("GET", "https://x.mirakl.net/api/orders?order_ids=A,B&max=100&offset=0&shop_id=2001") == []
    assert check("GET", "https://x/api/sellerpayment/transactions_logs?limit=2000&page_token=abc&transaction_type=PAYMENT") == []
    assert check("GET", "https://x/api/orders?state=SHIPPING") == ["query parameter 'state' is not declared for GET /api/orders"]
    assert "not in the Mirakl seller spec" in check("GET", "https://x/api/no-such-thing")[0]
    assert check("PUT", "https://x/api/orders/A-1/accept", {"order_lines": [{"id": "A-1-1", "accepted": True}]}) == []
    assert check("PUT", "https://x/api/orders/A-1/accept", {"order_lines": [{"id": "A-1-1"}]}) == ["order_lines/0: 'accepted' is a required property"]
    assert check("POST", "https://x/api/shipments", {"shipments": [{"order_id": "A-1", "shipment_lines": [{"order_line_id": "A-1-1"}]}]}) == [
        "shipments/0/shipment_lines/0: 'quantity' is a required property"]
    assert mirakl_spec.path_template("PUT", "/api/orders/refund") == "/api/orders/refund"  # a literal segment wins over {order_id}
