"""The Mirakl seller emulator behaves like the API it stands for: auth, paging, order life,
shipments, stock imports, transaction logs, throttling. Over real HTTP on loopback."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
import requests

from sandbox import mirakl
from sandbox.mirakl import make_order, make_transaction
from sandbox.server import start_server

KEY = "test-key"
AUTH = {"Authorization": KEY}
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
TEE = {"offer_sku": "TEE", "quantity": 3, "price_unit": "45.00", "tax": "22.50"}
CAP = {"offer_sku": "CAP", "quantity": 1, "price_unit": "19.99", "tax": "3.33"}
SOCK = {"offer_sku": "SOCK", "quantity": 2, "price_unit": "5.00"}


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def server():
    handle = start_server(mirakl.create_app(api_key=KEY, shop_id=2001))
    yield handle
    handle.stop()


@pytest.fixture
def jl(server):
    requests.post(f"{server.url}/_sandbox/reset", timeout=5).raise_for_status()
    return Client(server.url)


class Client:
    def __init__(self, url: str):
        self.url = url

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.url}/api{path}", headers=AUTH, timeout=5, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw):
        r = self.api(method, path, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    def sandbox(self, method: str, path: str, body=None):
        r = requests.request(method, f"{self.url}/_sandbox{path}", json=body, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def order(self, order_id: str) -> dict:
        return self.sandbox("GET", f"/orders/{order_id}")

    def accept(self, order_id: str, decisions: dict[str, bool]) -> requests.Response:
        return self.api("PUT", f"/orders/{order_id}/accept", json={"order_lines": [{"id": k, "accepted": v} for k, v in decisions.items()]})


def assert_error(r: requests.Response, status: int, text: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and text in body["message"], body


# -- auth -------------------------------------------------------------------------------------------


def test_the_raw_shop_key_is_required_and_reaches_only_its_shop(jl):
    for headers in ({}, {"Authorization": "wrong"}, {"Authorization": f"Bearer {KEY}"}):
        r = requests.get(f"{jl.url}/api/version", headers=headers, timeout=5)
        assert r.status_code == 401 and r.json() == {"status": 401, "message": "Unauthorized"}
    assert jl.api("GET", "/version").status_code == 200
    assert jl.api("GET", "/orders", params={"shop_id": 2001}).status_code == 200
    assert_error(jl.api("GET", "/orders", params={"shop_id": 9}), 403, "shop 9")
    assert_error(jl.api("GET", "/no/such/thing"), 404)


# -- OR11 -------------------------------------------------------------------------------------------


def test_or11_filters_sorts_and_pages_by_offset(jl):
    orders = [
        make_order("O3-A", "O3", [CAP], state="SHIPPING", created=T0 + timedelta(minutes=3)),
        make_order("O1-A", "O1", [TEE], created=T0 + timedelta(minutes=1)),
        make_order("O2-B", "O2", [CAP], state="WAITING_DEBIT_PAYMENT", created=T0 + timedelta(minutes=2)),
        make_order("O2-A", "O2", [SOCK], state="SHIPPED", created=T0 + timedelta(minutes=2)),  # same time: order_id decides
        make_order("O4-A", None, [CAP], state="SHIPPING", created=T0 + timedelta(minutes=4)),  # broken: no commercial_id
    ]
    assert jl.sandbox("POST", "/orders", orders) == {"stored": 5}

    body = jl.ok("GET", "/orders")
    assert [o["order_id"] for o in body["orders"]] == ["O1-A", "O2-A", "O2-B", "O3-A", "O4-A"] and body["total_count"] == 5
    assert "commercial_id" not in body["orders"][-1]  # stored exactly as given

    def ids(**params):
        return [o["order_id"] for o in jl.ok("GET", "/orders", params=params)["orders"]]

    assert ids(order_ids="O3-A,O1-A") == ["O1-A", "O3-A"]
    assert ids(order_state_codes="SHIPPING,SHIPPED") == ["O2-A", "O3-A", "O4-A"]
    assert ids(start_date=iso(T0 + timedelta(minutes=2)), end_date=iso(T0 + timedelta(minutes=3))) == ["O2-A", "O2-B"]
    # update window: start inclusive, end exclusive
    assert ids(start_update_date=iso(T0 + timedelta(minutes=3)), end_update_date=iso(T0 + timedelta(minutes=4))) == ["O3-A"]
    assert ids(customer_debited="true") == ["O2-A", "O3-A", "O4-A"]
    assert ids(customer_debited="false") == ["O1-A", "O2-B"]
    assert ids(order_references_for_customer="O2") == ["O2-A", "O2-B"]

    page = jl.ok("GET", "/orders", params={"max": 2, "offset": 2})
    assert [o["order_id"] for o in page["orders"]] == ["O2-B", "O3-A"] and page["total_count"] == 5
    assert len(jl.ok("GET", "/orders", params={"max": 2, "paginate": "false"})["orders"]) == 5
    assert len(jl.ok("GET", "/orders", params={"max": 100})["orders"]) == 5
    assert_error(jl.api("GET", "/orders", params={"max": 101}), 400, "max")
    assert_error(jl.api("GET", "/orders", params={"order_state_codes": "SHIPING"}), 400, "SHIPING")
    assert_error(jl.api("GET", "/orders", params={"start_update_date": "yesterday"}), 400, "start_update_date")


# -- OR21 and the debit ---------------------------------------------------------------------------


def test_accept_refuse_lines_then_the_debit_makes_the_order_shippable(jl):
    jl.sandbox("POST", "/orders", [make_order("A1-A", "A1", [TEE, CAP, SOCK], created=T0)])

    r = jl.accept("A1-A", {"A1-A-1": True, "A1-A-2": True})
    assert_error(r, 400, "ORDER_LINE_ACCEPTANCE_DECISION_MISSING")
    assert "A1-A-3" in r.json()["message"]
    assert_error(jl.accept("A1-A", {"A1-A-1": True, "A1-A-2": True, "A1-A-9": True}), 400, "ORDER_LINE_NOT_FOUND")
    assert_error(jl.accept("NOPE-A", {"NOPE-A-1": True}), 404)
    assert jl.order("A1-A")["order_state"] == "WAITING_ACCEPTANCE"  # nothing half-applied

    r = jl.accept("A1-A", {"A1-A-1": True, "A1-A-2": True, "A1-A-3": False})
    assert r.status_code == 204 and r.content == b""
    order = jl.order("A1-A")
    assert order["order_state"] == "WAITING_DEBIT_PAYMENT"
    assert [line["order_line_state"] for line in order["order_lines"]] == ["WAITING_DEBIT_PAYMENT", "WAITING_DEBIT_PAYMENT", "REFUSED"]
    assert order["acceptance_decision_date"] and order["last_updated_date"] > order["created_date"]
    assert_error(jl.accept("A1-A", {"A1-A-1": True, "A1-A-2": True, "A1-A-3": False}), 400, "ORDER_INVALID_STATE")

    order = jl.sandbox("POST", "/orders/A1-A/debit")
    assert order["order_state"] == "SHIPPING" and order["customer_debited_date"]
    assert [line["order_line_state"] for line in order["order_lines"]] == ["SHIPPING", "SHIPPING", "REFUSED"]
    r = requests.post(f"{jl.url}/_sandbox/orders/A1-A/debit", timeout=5)
    assert_error(r, 400, "ORDER_INVALID_STATE")


def test_refusing_every_line_refuses_the_order_and_auto_debit_skips_the_wait(jl):
    jl.sandbox("POST", "/orders", [make_order("R1-A", "R1", [CAP, SOCK], created=T0), make_order("D1-A", "D1", [CAP], created=T0)])
    # OR21's line is an id and a decision: a refusal takes no reason code
    with_reason = {"order_lines": [{"id": "R1-A-1", "accepted": False, "reason_code": "34"}, {"id": "R1-A-2", "accepted": False}]}
    assert_error(jl.api("PUT", "/orders/R1-A/accept", json=with_reason), 400, "VALIDATION_ERROR")
    assert jl.order("R1-A")["order_state"] == "WAITING_ACCEPTANCE"
    assert jl.accept("R1-A", {"R1-A-1": False, "R1-A-2": False}).status_code == 204
    assert jl.order("R1-A")["order_state"] == "REFUSED"

    jl.sandbox("POST", "/orders", [make_order("M1-A", "M1", [CAP, SOCK], created=T0)])
    jl.sandbox("POST", "/config", {"partial_acceptance": False})
    assert_error(jl.accept("M1-A", {"M1-A-1": True, "M1-A-2": False}), 400, "ORDER_PARTIAL_ACCEPTANCE_DISABLED")

    jl.sandbox("POST", "/config", {"auto_debit": True})
    assert jl.accept("D1-A", {"D1-A-1": True}).status_code == 204
    order = jl.order("D1-A")
    assert order["order_state"] == "SHIPPING" and order["order_lines"][0]["order_line_state"] == "SHIPPING" and order["customer_debited_date"]


# -- OR23 / OR24 ----------------------------------------------------------------------------------


def test_tracking_then_ship_the_whole_order(jl):
    jl.sandbox("POST", "/carriers", [{"code": "DPD", "label": "DPD UK", "tracking_url": "https://track.dpd.co.uk/{trackingId}"}])
    jl.sandbox("POST", "/orders", [make_order("S1-A", "S1", [TEE, CAP], state="SHIPPING", created=T0),
                                   make_order("W1-A", "W1", [CAP], state="WAITING_DEBIT_PAYMENT", created=T0)])
    assert jl.ok("GET", "/shipping/carriers") == {"carriers": [{"code": "DPD", "label": "DPD UK", "tracking_url": "https://track.dpd.co.uk/{trackingId}"}]}

    assert_error(jl.api("PUT", "/orders/S1-A/tracking", json={"carrier_code": "UPS", "tracking_number": "1Z"}), 400, "UPS")
    assert_error(jl.api("PUT", "/orders/W1-A/tracking", json={"carrier_code": "DPD", "tracking_number": "1"}), 400, "ORDER_INVALID_STATE")
    assert_error(jl.api("PUT", "/orders/W1-A/ship"), 400, "ORDER_INVALID_STATE")

    assert jl.api("PUT", "/orders/S1-A/tracking", json={"carrier_code": "DPD", "tracking_number": "15501234"}).status_code == 204
    order = jl.order("S1-A")
    assert (order["shipping_carrier_code"], order["shipping_company"], order["shipping_tracking"], order["shipping_tracking_url"]) == (
        "DPD", "DPD UK", "15501234", "https://track.dpd.co.uk/15501234")
    assert order["order_state"] == "SHIPPING"

    r = jl.api("PUT", "/orders/S1-A/ship")
    assert r.status_code == 204 and r.content == b""
    order = jl.order("S1-A")
    assert order["order_state"] == "SHIPPED" and {line["order_line_state"] for line in order["order_lines"]} == {"SHIPPED"}
    assert all(line["shipped_date"] for line in order["order_lines"])
    assert_error(jl.api("PUT", "/orders/S1-A/ship"), 400, "ORDER_INVALID_STATE")


# -- ST01 / ST11 ----------------------------------------------------------------------------------


def test_partial_shipments_by_line_quantities_until_the_order_is_shipped(jl):
    jl.sandbox("POST", "/carriers", [{"code": "RM", "label": "Royal Mail"}])
    jl.sandbox("POST", "/orders", [make_order("P1-A", "P1", [TEE, CAP], state="SHIPPING", created=T0),
                                   make_order("P2-A", "P2", [CAP], state="WAITING_DEBIT_PAYMENT", created=T0)])
    first = {"order_id": "P1-A", "shipped": True, "tracking": {"carrier_code": "RM", "tracking_number": "RM1"},
             "shipment_lines": [{"order_line_id": "P1-A-1", "quantity": 1}]}
    body = jl.ok("POST", "/shipments", 201, json={"shipments": [first]})
    assert body["shipment_errors"] == []
    (shipment,) = body["shipment_success"]
    assert shipment["status"] == "SHIPPED" and shipment["order_id"] == "P1-A"
    assert shipment["shipment_lines"] == [{"order_line_id": "P1-A-1", "offer_sku": "TEE", "quantity": 1}]
    assert shipment["tracking"]["carrier_code"] == "RM" and shipment["tracking"]["tracking_number"] == "RM1"
    # no idempotency key in Mirakl: the same call again is a second shipment
    assert len(jl.ok("POST", "/shipments", 201, json={"shipments": [first]})["shipment_success"]) == 1
    assert jl.order("P1-A")["order_state"] == "SHIPPING"  # 2 of 3 tees, no cap yet

    body = jl.ok("POST", "/shipments", 201, json={"shipments": [
        {"order_id": "P1-A", "shipped": True, "shipment_lines": [{"order_line_id": "P1-A-1", "quantity": 2}]},  # 1 left
        {"order_id": "P1-A", "shipped": True, "tracking": {"carrier_code": "DHL", "tracking_number": "X"},
         "shipment_lines": [{"order_line_id": "P1-A-2", "quantity": 1}]},
        {"order_id": "P2-A", "shipped": True, "shipment_lines": [{"order_line_id": "P2-A-1", "quantity": 1}]},
        {"order_id": "P1-A", "shipped": True, "shipment_lines": [{"order_line_id": "P2-A-1", "quantity": 1}]},
        {"order_id": "P1-A", "shipped": True, "tracking": {"carrier_code": "RM", "tracking_number": "RM2"},
         "shipment_lines": [{"order_line_id": "P1-A-1", "quantity": 1}, {"order_line_id": "P1-A-2", "quantity": 1}]},
    ]})
    assert [e["order_id"] for e in body["shipment_errors"]] == ["P1-A", "P1-A", "P2-A", "P1-A"]
    messages = [e["message"] for e in body["shipment_errors"]]
    assert "more than the 1 left" in messages[0] and "DHL" in messages[1] and "WAITING_DEBIT_PAYMENT" in messages[2] and "not a line" in messages[3]
    assert len(body["shipment_success"]) == 1
    order = jl.order("P1-A")
    assert order["order_state"] == "SHIPPED" and {line["order_line_state"] for line in order["order_lines"]} == {"SHIPPED"}

    listed = jl.ok("GET", "/shipments", params={"order_id": "P1-A"})
    assert len(listed["data"]) == 3 and "next_page_token" not in listed and "previous_page_token" not in listed
    assert jl.ok("GET", "/shipments", params={"order_id": "P2-A"})["data"] == []
    page1 = jl.ok("GET", "/shipments", params={"order_id": "P1-A,P2-A", "limit": 2})
    page2 = jl.ok("GET", "/shipments", params={"page_token": page1["next_page_token"], "limit": 2})
    assert len(page1["data"]) == 2 and len(page2["data"]) == 1 and "next_page_token" not in page2 and page2["previous_page_token"]
    assert [s["id"] for s in page1["data"] + page2["data"]] == [s["id"] for s in listed["data"]]
    assert_error(jl.api("GET", "/shipments", params={"limit": 101}), 400, "limit")
    assert_error(jl.api("POST", "/shipments", json={"shipments": []}), 400)
    assert len(jl.sandbox("GET", "/shipments")["shipments"]) == 3


# -- STO01 / STO02 / STO03 ------------------------------------------------------------------------

STOCK_FILE = (
    '"offer-sku";"quantity";"warehouse-code";"update-delete"\n'
    '"TEE";"3";"";"update"\n'
    '"NOPE";"4";"";""\n'
    'CAP;-1;;\n'
    '"SOCK";"2.5";"";""\n'
    '"CAP";"9";"";""\n'
    '"BAG";"";"";"delete"\n'
)


def _upload(jl, text: str) -> requests.Response:
    return jl.api("POST", "/offers/stock/imports", files={"file": ("stock.csv", text.encode(), "text/csv")})


def test_stock_import_applies_on_completion_and_reports_refused_lines(jl):
    jl.sandbox("POST", "/offers", [{"shop_sku": s, "quantity": q} for s, q in (("TEE", 5), ("CAP", 7), ("SOCK", 1), ("BAG", 4))])
    r = _upload(jl, STOCK_FILE)
    assert r.status_code == 201, r.text
    import_id = r.json()["import_id"]
    assert r.headers["Location"].endswith(f"/api/offers/stock/imports/{import_id}/status")

    def quantities():
        return {o["shop_sku"]: o["quantity"] for o in jl.ok("GET", "/offers")["offers"]}

    assert quantities() == {"TEE": 5, "CAP": 7, "SOCK": 1, "BAG": 4}
    assert_error(jl.api("GET", f"/offers/stock/imports/{import_id}/error_report"), 404)  # not done yet
    first = jl.ok("GET", f"/offers/stock/imports/{import_id}/status")
    assert first["status"] == "WAITING" and first["has_error_report"] is False and first["shop_id"] == 2001
    assert quantities()["TEE"] == 5
    done = jl.ok("GET", f"/offers/stock/imports/{import_id}/status")
    assert (done["status"], done["lines_in_success"], done["lines_in_error"], done["has_error_report"]) == ("COMPLETE", 3, 3, True)
    assert quantities() == {"TEE": 3, "CAP": 9, "SOCK": 1, "BAG": 0}

    report = jl.api("GET", f"/offers/stock/imports/{import_id}/error_report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.text), delimiter=";"))
    assert [(r["error-line"], r["offer-sku"], r["quantity"]) for r in rows] == [("3", "NOPE", "4"), ("4", "CAP", "-1"), ("5", "SOCK", "2.5")]
    assert "does not exist" in rows[0]["error-message"] and "whole number" in rows[1]["error-message"] and "whole number" in rows[2]["error-message"]
    assert report.text.splitlines()[0] == "error-line;error-message;offer-sku;quantity;warehouse-code;update-delete"

    (stored,) = jl.sandbox("GET", "/stock_imports")["imports"]
    assert (stored["import_id"], stored["status"], len(stored["updates"]), len(stored["error_lines"])) == (import_id, "COMPLETE", 3, 3)
    assert [(line["offer-sku"], line["quantity"]) for line in stored["lines"]] == [  # every line as sent
        ("TEE", "3"), ("NOPE", "4"), ("CAP", "-1"), ("SOCK", "2.5"), ("CAP", "9"), ("BAG", "")]
    assert_error(jl.api("GET", "/offers/stock/imports/nope/status"), 404)


def test_stock_import_steps_follow_the_configured_poll_count(jl):
    jl.sandbox("POST", "/offers", [{"shop_sku": "TEE", "quantity": 5}])
    jl.sandbox("POST", "/config", {"import_polls_to_complete": 3})
    import_id = _upload(jl, "quantity;offer-sku;warehouse-code\n8;TEE;\n2;TEE;WH1\n3;TEE;WH2\n").json()["import_id"]
    statuses = [jl.ok("GET", f"/offers/stock/imports/{import_id}/status")["status"] for _ in range(4)]
    assert statuses == ["WAITING", "RUNNING", "COMPLETE", "COMPLETE"]
    (offer,) = jl.ok("GET", "/offers")["offers"]
    assert offer["quantity"] == 5 and offer["warehouses"] == [{"code": "WH1", "quantity": 2}, {"code": "WH2", "quantity": 3}]
    assert_error(jl.api("GET", f"/offers/stock/imports/{import_id}/error_report"), 404, "no error report")

    jl.sandbox("POST", "/config", {"import_polls_to_complete": 1, "stock_import_errors": {"TEE": "The offer is inactive"}})
    refused = _upload(jl, "offer-sku;quantity\nTEE;4\n").json()["import_id"]
    assert jl.ok("GET", f"/offers/stock/imports/{refused}/status")["lines_in_error"] == 1
    assert "The offer is inactive" in jl.api("GET", f"/offers/stock/imports/{refused}/error_report").text
    assert jl.ok("GET", "/offers")["offers"][0]["quantity"] == 5
    bad = _upload(jl, "sku;qty\nTEE;1\n").json()["import_id"]
    assert jl.ok("GET", f"/offers/stock/imports/{bad}/status")["status"] == "FAILED"
    assert_error(jl.api("POST", "/offers/stock/imports", data={"nofile": "x"}), 400, "file")


# -- TL02 -----------------------------------------------------------------------------------------


def test_tl02_filters_and_seek_pages_newest_first(jl):
    txs = [
        make_transaction("t1", "ORDER_AMOUNT", "90.00", order_id="T1-A", commercial_id="T1", cycle="C1", transaction_date=T0),
        make_transaction("t2", "COMMISSION_FEE", "-9.00", order_id="T1-A", commercial_id="T1", cycle="C1", transaction_date=T0 + timedelta(hours=1)),
        make_transaction("t3", "COMMISSION_VAT", "-1.80", order_id="T1-A", commercial_id="T1", cycle="C1", transaction_date=T0 + timedelta(hours=2)),
        make_transaction("t4", "ORDER_AMOUNT", "19.99", order_id="T2-A", commercial_id="T2", cycle="C2", transaction_date=T0 + timedelta(hours=3)),
        make_transaction("t5", "PAYMENT", "-79.20", cycle="C1", transaction_date=T0 + timedelta(hours=4), payment_state="PAID"),
    ]
    assert jl.sandbox("POST", "/transactions", txs) == {"stored": 5}
    path = "/sellerpayment/transactions_logs"

    def ids(**params):
        return [t["id"] for t in jl.ok("GET", path, params=params)["data"]]

    assert ids(limit=100) == ["t5", "t4", "t3", "t2", "t1"]  # dateCreated, newest first
    assert ids(limit=100, order="asc") == ["t1", "t2", "t3", "t4", "t5"]
    assert ids(seller_billing_cycle_id="C2") == ["t4"]
    assert ids(transaction_type="COMMISSION_FEE,COMMISSION_VAT") == ["t3", "t2"]
    assert ids(order_id="T1-A") == ["t3", "t2", "t1"]
    assert ids(payment_state="PAID") == ["t5"]
    assert ids(transaction_date_from=iso(T0 + timedelta(hours=1)), transaction_date_to=iso(T0 + timedelta(hours=3))) == ["t3", "t2"]
    assert ids(date_created_from=iso(T0 + timedelta(hours=3))) == ["t5", "t4"]

    seen, token, pages = [], None, 0
    while True:
        # with a token, the other parameters are ignored: the token carries its query
        params = {"page_token": token, "seller_billing_cycle_id": "C2"} if token else {"seller_billing_cycle_id": "C1", "limit": 2}
        body = jl.ok("GET", path, params=params)
        seen += [t["id"] for t in body["data"]]
        pages += 1
        assert ("previous_page_token" in body) == (pages > 1)
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == ["t5", "t3", "t2", "t1"] and pages == 2
    back = jl.ok("GET", path, params={"page_token": body["previous_page_token"]})
    assert [t["id"] for t in back["data"]] == ["t5", "t3"]

    assert_error(jl.api("GET", path, params={"limit": 2001}), 400, "limit")
    assert len(jl.ok("GET", path, params={"limit": 2000})["data"]) == 5
    assert_error(jl.api("GET", path, params={"transaction_type": "SALE"}), 400, "SALE")
    assert_error(jl.api("GET", path, params={"page_token": "garbage"}), 400, "page_token")


# -- throttling -----------------------------------------------------------------------------------


def test_over_the_rate_limit_answers_429_with_retry_after(jl):
    jl.sandbox("POST", "/config", {"rate_limit_per_minute": 3, "retry_after": 7})
    answers = [jl.api("GET", "/version") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[-1].headers["Retry-After"] == "7"
    assert_error(answers[-1], 429, "Too Many Requests")
    assert jl.sandbox("GET", "/config")["rate_limit_per_minute"] == 3  # /_sandbox is never limited
    calls = jl.sandbox("GET", "/calls")["calls"]
    assert [c["status"] for c in calls] == [200, 200, 200, 429]


def test_a_second_stock_import_within_a_minute_is_throttled_when_frequencies_are_enforced(jl):
    jl.sandbox("POST", "/offers", [{"shop_sku": "TEE", "quantity": 5}])
    assert _upload(jl, "offer-sku;quantity\nTEE;1\n").status_code == 201
    assert _upload(jl, "offer-sku;quantity\nTEE;2\n").status_code == 201  # not enforced by default
    jl.sandbox("POST", "/config", {"enforce_call_frequency": True})
    r = _upload(jl, "offer-sku;quantity\nTEE;3\n")
    assert_error(r, 429, "once per minute")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert len(jl.sandbox("GET", "/stock_imports")["imports"]) == 2


def test_injected_faults_use_mirakls_error_body(jl):
    jl.sandbox("POST", "/faults", {"status_burst": {"status": 503, "count": 1, "retry_after": 2}})
    r = jl.api("GET", "/version")
    assert r.status_code == 503 and r.json() == {"status": 503, "message": "sandbox fault"} and r.headers["Retry-After"] == "2"
    assert jl.api("GET", "/version").status_code == 200


# -- refunds and cancelations ---------------------------------------------------------------------


def test_refunds_and_cancelations_show_on_the_lines_and_bump_the_update_date(jl):
    jl.sandbox("POST", "/orders", [make_order("F1-A", "F1", [TEE, CAP], state="SHIPPED", created=T0)])
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    assert jl.ok("GET", "/orders", params={"start_update_date": iso(since)})["orders"] == []

    made = jl.sandbox("POST", "/orders/F1-A/refunds", [{"order_line_id": "F1-A-1", "quantity": 1, "amount": "45.00", "shipping_amount": "0", "reason_code": "15"}])
    assert made["stored"] == 1 and made["refunds"][0]["refund_state"] == "REFUNDED"
    jl.sandbox("POST", "/orders/F1-A/cancelations", [{"order_line_id": "F1-A-2", "quantity": 1, "amount": 19.99, "shipping_amount": 0, "reason_code": "34"}])

    (order,) = jl.ok("GET", "/orders", params={"start_update_date": iso(since)})["orders"]
    assert order["last_updated_date"] > order["created_date"]
    (refund,) = order["order_lines"][0]["refunds"]
    assert (refund["amount"], refund["quantity"], refund["reason_code"], refund["state"]) == (45, 1, "15", "REFUNDED")
    assert refund["id"] and refund["created_date"] and refund["order_refund_id"]
    (cancel,) = order["order_lines"][1]["cancelations"]
    assert (cancel["amount"], cancel["reason_code"]) == (19.99, "34")

    pending = jl.sandbox("POST", "/orders/F1-A/refunds", [{"order_line_id": "F1-A-1", "quantity": 1, "amount": "45.00", "reason_code": "15", "state": "WAITING_REFUND"}])
    assert pending["refunds"][0]["refund_state"] == "WAITING_REFUND"
    r = requests.post(f"{jl.url}/_sandbox/orders/F1-A/refunds", json=[{"order_line_id": "F1-A-9", "amount": "1"}], timeout=5)
    assert_error(r, 400, "F1-A-9")
