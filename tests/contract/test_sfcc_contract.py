"""Contract: the SFCC adapter and emulator against SCAPI Orders 1.5.2
(specs/sfcc-scapi-orders-1.5.2.openapi.yaml). The adapter is driven against the emulator over
real HTTP (Account Manager token included) through every call the flows use; its payload log is
what is checked: each Orders request's path, query parameters and body. The emulator's answers,
errors included, are checked against the response schemas the spec declares for them.

Products and OCI calls are outside this file (Salesforce publishes no OCI OpenAPI; sandbox/README
lists what the emulator assumes): they are checked to go to those API families only."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests

from commerce_sync.http import HttpClient, OAuth2ClientCredentials
from commerce_sync.models import SaleRef, Shipment, ShipmentLine
from commerce_sync.systems.sfcc import SfccChannel
from tests.contract.oas import OpenApiSpec

pytestmark = pytest.mark.e2e
SPEC = OpenApiSpec("sfcc-scapi-orders-1.5.2.openapi.yaml", base_path="/checkout/orders/v1")
ORG = "f_ecom_zzxy_prd"
SECRET = "contract-secret-4711"
USED = {
    "getOrders": ("GET", "/organizations/{organizationId}/orders"),
    "getOrder": ("GET", "/organizations/{organizationId}/orders/{orderNo}"),
    "updateOrder": ("PATCH", "/organizations/{organizationId}/orders/{orderNo}"),
    "updateOrderExportStatus": ("PUT", "/organizations/{organizationId}/orders/{orderNo}/export-status"),
    "updateOrderShippingStatus": ("PUT", "/organizations/{organizationId}/orders/{orderNo}/shipping-status"),
}
SITES = {"UK": {"currency": "GBP", "taxation": "gross", "order_prefix": "UK-"}, "US": {"currency": "USD", "taxation": "net", "order_prefix": "US-"}}


@pytest.fixture(scope="module")
def server():
    from sandbox import sfcc
    from sandbox.server import start_server

    srv = start_server(sfcc.create_app(client_id="contract-client", client_secret=SECRET))
    post = lambda path, body: requests.post(f"{srv.url}{path}", json=sfcc.plain(body), timeout=10).raise_for_status()  # noqa: E731
    tee = {"sku": "TEE", "quantity": 2, "price": "45.00", "adjustments": [{"amount": "-5.00", "promotion": "TEN-OFF-TEES"}]}
    post("/_sandbox/orders", [
        sfcc.make_order("00000101", "UK", [tee, {"sku": "CAP", "quantity": 1, "price": "19.99"}], order_adjustments=[{"amount": "-10.00"}],
                        shipping_adjustments=[{"amount": "-4.95", "promotion": "FREE-SHIPPING"}]),
        sfcc.make_order("00000102", "UK", [{"sku": "CAP", "quantity": 1, "price": "19.99"}]),
        sfcc.make_order("00000103", "UK", [{"sku": "CAP", "quantity": 1, "price": "19.99"}], payment_status="not_paid"),
        sfcc.make_order("00000101", "US", [{"sku": "CAP", "quantity": 3, "price": "20.00", "tax_rate": "0.0725"}], currency="USD", taxation="net"),
    ])
    post("/_sandbox/products", [{"id": "TEE", "online": {"UK": True}}, {"id": "CAP", "online": {"UK": True}}, {"id": "TEE-MASTER", "online": {"UK": True}, "type": "master"}])
    post("/_sandbox/oci/inventory", [{"location": "uk-warehouse", "sku": "CAP", "onHand": 4}])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def sent(server):
    log: list[dict] = []
    auth = OAuth2ClientCredentials(f"{server.url}/dwsso/oauth2/access_token", "contract-client", SECRET,
                                   "SALESFORCE_COMMERCE_API:zzxy_prd sfcc.orders.rw sfcc.products sfcc.inventory.impex-inventory.rw".split())
    client = HttpClient(server.url, system="sfcc", auth=auth, payload_log=log.append)
    ch = SfccChannel(client, organization_id=ORG, sites=SITES, bookable={"status": ["new"], "payment_status": ["paid"]}, page_size=1,
                     hold_reason_attribute="c_commerceSyncHold", regions={"uk": {"location": "uk-warehouse", "sites": ["UK"]}}, stock_region="uk",
                     import_poll_seconds=0.01)
    raws = list(ch.fetch_orders(datetime.now(timezone.utc), datetime.now(timezone.utc)))  # a page per order: paging exercised
    assert sorted(ch.record_key(r) for r in raws) == ["UK/00000101", "UK/00000102", "US/00000101"]
    orders = {ch.record_key(r): ch.to_order(r) for r in raws}
    ch.acknowledge_order(orders["UK/00000102"], SaleRef(master_id="s1", external_id="UK-00000102"))
    ch.hold_order("US/00000101", "sku_mapped: SKU is not mapped")
    box = lambda ref, sku, tracking: Shipment(order_channel_ref="UK-00000101", master_ref="s2", shipment_ref=ref, carrier="DPD",  # noqa: E731
                                              tracking_number=tracking, shipped_at=datetime.now(timezone.utc), lines=[ShipmentLine(sku=sku, quantity=1)])
    ch.push_shipment("UK/00000101", box("F1:1", "TEE", "DPD-1"), "dpd")
    ch.push_shipment("UK/00000101", box("F1:2", "TEE", "DPD-2"), "dpd")
    listings = ch.read_listings()
    assert set(listings) == {"uk:TEE", "uk:CAP"} and listings["uk:CAP"].quantity == 4
    assert ch.push_stock([(listings["uk:TEE"], 3), (listings["uk:CAP"], 1)]) == [("uk:TEE", None), ("uk:CAP", None)]
    yield {"log": log, "orders": orders, "auth": auth}


def _orders_calls(log: list[dict]) -> list[dict]:
    return [e for e in log if urlsplit(e["url"]).path.startswith("/checkout/orders/v1/")]


def test_every_orders_request_fits_the_spec(sent):
    problems = []
    for entry in _orders_calls(sent["log"]):
        body = json.loads(entry["request_body"], parse_float=Decimal) if entry["request_body"] else None
        problems += [f"{entry['method']} {entry['url']}: {p}" for p in SPEC.validate_request(entry["method"], entry["url"], body)]
        path = urlsplit(entry["url"]).path
        assert f"/organizations/{ORG}/" in path and SPEC.doc["components"]["schemas"]["OrganizationId"]["pattern"]
    assert problems == []


def test_every_orders_operation_the_flows_use_was_exercised_and_answered_as_declared(sent):
    seen = {(e["method"], SPEC.path_template(e["method"], urlsplit(e["url"]).path)): e["status"] for e in _orders_calls(sent["log"])}
    assert {op for op, call in USED.items() if call not in seen} == set()
    for op, (method, template) in USED.items():
        assert SPEC.doc["paths"][template][method.lower()]["operationId"] == op
        assert SPEC.declares_status(method, template, seen[(method, template)]), f"{op} answered {seen[(method, template)]}"
    other = {urlsplit(e["url"]).path.split("/")[1] for e in sent["log"]} - {"checkout"}
    assert other == {"product", "inventory", "dwsso"}  # SCAPI Products, OCI and the Account Manager token, nothing else


def test_the_queue_is_read_oldest_first_by_export_status_and_within_the_paging_limits(sent):
    reads = [dict(p.split("=", 1) for p in urlsplit(e["url"]).query.split("&")) for e in _orders_calls(sent["log"]) if e["method"] == "GET" and urlsplit(e["url"]).path.endswith("/orders")]
    assert reads and all(q["exportStatus"] == "ready" and q["sortBy"] == "creation_date" and q["sortOrder"] == "asc" for q in reads)
    assert all(1 <= int(q["limit"]) <= 200 and int(q["offset"]) + int(q["limit"]) <= 10_000 for q in reads)
    assert {q["siteId"] for q in reads} == {"UK", "US"}


def test_emulator_answers_fit_the_spec(server, sent):
    token = sent["auth"].token()
    get = lambda path, **params: requests.get(f"{server.url}/checkout/orders/v1{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10)  # noqa: E731
    base = f"/organizations/{ORG}/orders"
    for site in ("UK", "US"):
        answer = get(base, siteId=site, limit=200)
        assert answer.status_code == 200
        assert SPEC.validate(answer.json(), SPEC.response_schema("GET", base)) == [], site
    one = get(f"{base}/00000101", siteId="UK")
    assert SPEC.validate(one.json(), SPEC.response_schema("GET", f"{base}/00000101")) == []
    assert one.json()["c_trackingNumbers"] == "DPD-1, DPD-2" and one.json()["shippingStatus"] == "part_shipped"
    errors = [
        ("GET", f"{base}/nope", get(f"{base}/nope", siteId="UK")),
        ("GET", base, get(base, siteId="NOWHERE")),
        ("PATCH", f"{base}/00000101", requests.patch(f"{server.url}/checkout/orders/v1{base}/00000101", params={"siteId": "UK"}, json={"shippingStatus": "shipped"},
                                                      headers={"Authorization": f"Bearer {token}"}, timeout=10)),
        ("PUT", f"{base}/00000101/export-status", requests.put(f"{server.url}/checkout/orders/v1{base}/00000101/export-status", params={"siteId": "UK"},
                                                               json={"status": "sent"}, headers={"Authorization": f"Bearer {token}"}, timeout=10)),
    ]
    for method, path, answer in errors:
        assert SPEC.declares_status(method, path, answer.status_code), f"{method} {path} answered {answer.status_code}"
        assert SPEC.validate(answer.json(), SPEC.response_schema(method, path, answer.status_code)) == [], f"{method} {path}"


def test_the_adapter_writes_only_what_scapi_lets_it_write(server, sent):
    patches = [json.loads(e["request_body"]) for e in _orders_calls(sent["log"]) if e["method"] == "PATCH"]
    assert patches and all(k.startswith("c_") for body in patches for k in body)
    us = requests.get(f"{server.url}/_sandbox/orders/US/00000101", timeout=10).json()
    assert us["exportStatus"] == "failed" and us["c_commerceSyncHold"].startswith("sku_mapped")
    assert requests.get(f"{server.url}/_sandbox/orders/UK/00000102", timeout=10).json()["exportStatus"] == "exported"
    assert requests.get(f"{server.url}/_sandbox/orders/UK/00000103", timeout=10).json()["exportStatus"] == "ready"  # not bookable: untouched


def test_credentials_and_tokens_never_reach_the_log(sent):
    text = json.dumps(sent["log"], default=str)
    assert SECRET not in text
    assert all(token not in text for token in sent["auth"].secrets())
    assert sent["auth"].fetches == 1  # one token for the whole run
