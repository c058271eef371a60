"""Contract: the Cin7 emulator's answers and the Cin7 adapter's requests against Cin7's OpenAPI file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from commerce_sync.http import HeaderAuth, HttpClient
from commerce_sync.ports import SaleInstructions
from commerce_sync.systems.cin7_core import Cin7CoreMaster
from commerce_sync.systems.marketplacer import MarketplacerChannel
from tests.builders import marketplacer_invoice, with_relay_ids
from tests.contract import cin7_spec

pytestmark = pytest.mark.e2e
AUTH = {"api-auth-accountid": "acct", "api-auth-applicationkey": "key-123456"}


@pytest.fixture(scope="module")
def cin7():
    from sandbox import cin7 as emulator
    from sandbox.server import start_server

    server = start_server(emulator.create_app(account_id="acct", application_key="key-123456", rate_limit_per_minute=10_000))
    requests.post(
        f"{server.url}/_sandbox/seed",
        json={"products": [{"SKU": "CS-CAP-NVY", "Name": "Cap"}], "availability": [{"SKU": "CS-CAP-NVY", "Location": "Main Warehouse", "OnHand": 5}],
              "locations": ["Main Warehouse"], "tax_rules": ["GST on Income"], "customers": ["Marketplacer"]},
        timeout=10,
    ).raise_for_status()
    yield server
    server.stop()


def _how():
    return SaleInstructions(
        external_id="MKP-77", customer="Marketplacer", location="Main Warehouse", tax_rule="GST on Income", tax_calculation="Inclusive",
        status="AUTHORISED", sku_map={"CS-CAP-NVY": "CS-CAP-NVY"}, source_channel="Marketplacer", seller_label="Castore AU",
    )


@pytest.fixture(scope="module")
def adapter_run(cin7):
    """Drive the real adapter against the emulator; keep every request it sent."""
    sent = []
    client = HttpClient(f"{cin7.url}/ExternalApi/v2", system="cin7_core", auth=HeaderAuth(AUTH), payload_log=sent.append)
    master = Cin7CoreMaster(client)
    order = MarketplacerChannel(None, currency="AUD").to_order(with_relay_ids(marketplacer_invoice(77, [("CS-CAP-NVY", 2, 2500)])))
    master.find_sales(["MKP-77"], datetime.now(timezone.utc) - timedelta(hours=1))
    sale = master.create_sale(order, _how())
    master._find_one_by_one({"MKP-77"})
    return sale, sent


def _api(cin7, method, path, **kw):
    r = requests.request(method, f"{cin7.url}/ExternalApi/v2{path}", headers=AUTH, timeout=10, **kw)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    "method, path, params, list_key",
    [
        ("GET", "/saleList", {"Page": 1, "Limit": 10}, "SaleList"),
        # GET /product is left out: its 200 response has no schema in the spec, only a description
        ("GET", "/ref/productavailability", {"Page": 1, "Limit": 10}, "ProductAvailabilityList"),
    ],
)
def test_emulator_list_responses_fit_the_spec(cin7, adapter_run, method, path, params, list_key):
    body = _api(cin7, method, path, params=params)
    assert body[list_key], "nothing to validate"
    assert cin7_spec.validate(body, cin7_spec.response_schema(method, path), strict_types=False) == []
    # and the fields the adapter reads have the spec's types
    item_schema = cin7_spec.response_schema(method, path)["properties"][list_key]["items"]
    for name in ("SaleID", "ExternalID", "OrderStatus", "OrderNumber", "SKU", "Location", "Available"):
        if name in item_schema.get("properties", {}):
            assert name in body[list_key][0], f"{path} items lack {name}"


def test_emulator_sale_and_order_responses_fit_the_spec(cin7, adapter_run):
    sale, _ = adapter_run
    for method, path, kw in (("GET", "/sale", {"params": {"ID": sale.master_id}}), ("GET", "/sale/order", {"params": {"SaleID": sale.master_id}})):
        body = _api(cin7, method, path, **kw)
        assert cin7_spec.validate(body, cin7_spec.response_schema(method, path), strict_types=False) == [], path
    header = _api(cin7, "GET", "/sale", params={"ID": sale.master_id})
    assert header["ExternalID"] == "MKP-77" and header["ID"] == sale.master_id


def test_every_request_the_adapter_sends_is_in_the_spec(adapter_run):
    _, sent = adapter_run
    assert {(e["method"], e["url"].split("?")[0].split("/ExternalApi/v2")[1]) for e in sent} == {
        ("GET", "/saleList"),
        ("POST", "/sale"),
        ("POST", "/sale/order"),
    }
    for entry in sent:
        body = json.loads(entry["request_body"], parse_float=Decimal) if entry.get("request_body") else None
        if entry["url"].endswith("/sale"):
            body = None  # POST /sale has no request schema in the spec (specs/README); the emulator checks it
        assert cin7_spec.validate_cin7_request(entry["method"], entry["url"], body) == [], entry["url"]
    assert all(e["status"] == 200 for e in sent)


@pytest.fixture(scope="module")
def money_and_stock_run(cin7, adapter_run):
    """The adapter's other calls: availability, changed sales, fulfilments, totals, journals, credit notes."""
    sale, _ = adapter_run
    requests.post(f"{cin7.url}/_sandbox/fulfilments", json={"SaleID": sale.master_id, "pack": [{"SKU": "CS-CAP-NVY", "Quantity": 2, "Box": "1"}],
                                                             "ship": [{"Box": "1", "Carrier": "DHL", "TrackingNumber": "T1"}]}, timeout=10).raise_for_status()
    requests.post(f"{cin7.url}/_sandbox/invoice", json={"SaleID": sale.master_id}, timeout=10).raise_for_status()
    sent = []
    master = Cin7CoreMaster(HttpClient(f"{cin7.url}/ExternalApi/v2", system="cin7_core", auth=HeaderAuth(AUTH), payload_log=sent.append))
    levels = list(master.read_availability())
    changed = list(master.updated_sales(datetime.now(timezone.utc) - timedelta(hours=1)))
    shipments = master.read_shipments(changed[0])
    total = master.sale_total(sale.master_id)
    journal = master.post_journal("MKP-PAYOUT-1", datetime.now(timezone.utc), "AUD", [("6100", "1210", Decimal("10.00"))])
    found = master.find_journal("MKP-PAYOUT-1")
    from commerce_sync.models import Refund, RefundLine

    refund = Refund(refund_ref="R1", order_channel_ref="77", currency="AUD", lines=[RefundLine(sku="CS-CAP-NVY", quantity=1, amount=Decimal("25.00"))],
                    requested_at=datetime.now(timezone.utc))
    note = master.create_credit_note(sale.master_id, refund, {"CS-CAP-NVY": "CS-CAP-NVY"}, "GST on Income")
    assert master.find_credit_note(sale.master_id, "R1") == note
    return {"levels": levels, "shipments": shipments, "total": total, "journal": journal, "found": found, "sent": sent, "sale": sale}


def test_stock_fulfilment_and_money_calls_are_in_the_spec(money_and_stock_run):
    run = money_and_stock_run
    assert run["levels"] and run["shipments"][0].tracking_number == "T1" and run["total"] == Decimal("59.95")  # 2 x 25.00 + 9.95 postage
    assert run["found"] == run["journal"]
    paths = set()
    for entry in run["sent"]:
        path = entry["url"].split("?")[0].split("/ExternalApi/v2")[1]
        paths.add((entry["method"], path))
        body = json.loads(entry["request_body"], parse_float=Decimal) if entry.get("request_body") else None
        if path == "/sale/creditnote":
            body = None  # no request schema for POST /sale/creditnote in the spec (specs/README)
        assert cin7_spec.validate_cin7_request(entry["method"], entry["url"], body) == [], entry["url"]
    assert paths == {("GET", "/ref/productavailability"), ("GET", "/saleList"), ("GET", "/sale/fulfilment"), ("GET", "/sale"),
                     ("POST", "/journal"), ("GET", "/journal"), ("POST", "/sale/creditnote"), ("GET", "/sale/creditnote")}


def test_emulator_fulfilment_and_journal_answers_fit_the_spec(cin7, money_and_stock_run):
    sale = money_and_stock_run["sale"]
    for method, path, kw in (
        ("GET", "/sale/fulfilment", {"params": {"SaleID": sale.master_id}}),
        ("GET", "/journal", {"params": {"Page": 1, "Limit": 10}}),
    ):
        body = _api(cin7, method, path, **kw)
        assert cin7_spec.validate(body, cin7_spec.response_schema(method, path), strict_types=False) == [], path
    ship = _api(cin7, "GET", "/sale/fulfilment", params={"SaleID": sale.master_id})["Fulfilments"][0]["Ship"]["Lines"][0]
    assert {"Boxes", "Carrier", "TrackingNumber", "IsShipped", "ShipmentDate"} <= set(ship)  # the spec's response names


def test_customer_currency_lookup_is_in_the_spec_and_the_emulators_answer_fits_it(cin7):
    requests.post(f"{cin7.url}/_sandbox/seed", json={"customers": [{"Name": "John Lewis Marketplace", "Currency": "GBP"}, "John Lewis Marketplace AU"]},
                  timeout=10).raise_for_status()
    sent, cached = [], {}

    def cache(name, max_age, load):  # the ledger's reference cache, in miniature
        if name not in cached:
            cached[name] = load()
        return cached[name]

    master = Cin7CoreMaster(HttpClient(f"{cin7.url}/ExternalApi/v2", system="cin7_core", auth=HeaderAuth(AUTH), payload_log=sent.append), cache=cache)
    assert master.customer_currency("John Lewis Marketplace") == "GBP"  # exact name, not the AUD one it also matches
    assert master.customer_currency("John Lewis Marketplace") == "GBP"
    assert master.customer_currency("Nobody") is None
    assert Cin7CoreMaster(master.client, cache=cache).customer_currency("John Lewis Marketplace") == "GBP"  # another task: the shared cache
    assert [e["url"].split("?")[0].split("/ExternalApi/v2")[1] for e in sent] == ["/customer", "/customer"]  # one call per customer
    for entry in sent:
        assert cin7_spec.validate_cin7_request(entry["method"], entry["url"]) == [], entry["url"]
    body = _api(cin7, "GET", "/customer", params={"Name": "John Lewis", "Page": 1, "Limit": 10})
    assert len(body["CustomerList"]) == 2
    assert cin7_spec.validate(body, cin7_spec.response_schema("GET", "/customer"), strict_types=False) == []
