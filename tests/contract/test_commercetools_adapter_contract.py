"""Contract: every request the commercetools adapter sends, for every operation the flows (and
the coming catalogue flow) use, checked against commercetools' OpenAPI file: path, query
parameter names and types, JSON body (update actions by their own schemas). The adapter is
driven against the emulator over real HTTP and its payload log is what is checked."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from commerce_sync.http import HttpClient, OAuth2ClientCredentials
from commerce_sync.models import SaleRef, Shipment, ShipmentLine
from commerce_sync.systems.commercetools import CommercetoolsChannel
from sandbox.commercetools_builders import make_order, payment, transaction
from tests.contract import commercetools_spec as spec

pytestmark = pytest.mark.e2e
PROJECT, CLIENT, SECRET = "contract-shop", "contract-client", "contract-secret-value"
SCOPES = [f"{s}:{PROJECT}" for s in ("manage_orders", "view_payments", "manage_products", "manage_channels")]
# (method, path template) of every call the adapter makes
USED = {
    ("GET", "/{projectKey}/orders"), ("GET", "/{projectKey}/orders/{ID}"), ("POST", "/{projectKey}/orders/{ID}"),
    ("GET", "/{projectKey}/channels/key={key}"), ("POST", "/{projectKey}/channels"),
    ("GET", "/{projectKey}/inventory"), ("GET", "/{projectKey}/inventory/{ID}"), ("POST", "/{projectKey}/inventory"), ("POST", "/{projectKey}/inventory/{ID}"),
    ("GET", "/{projectKey}/payments"),
    ("GET", "/{projectKey}/product-projections"), ("POST", "/{projectKey}/products"), ("GET", "/{projectKey}/products/{ID}"), ("POST", "/{projectKey}/products/{ID}"),
}


@pytest.fixture(scope="module")
def sent():
    from sandbox import commercetools
    from sandbox.server import start_server

    now = datetime.now(timezone.utc).replace(microsecond=0)
    server = start_server(commercetools.create_app(project_key=PROJECT, client_id=CLIENT, client_secret=SECRET, scopes=tuple(SCOPES)))
    post = lambda path, body: requests.post(f"{server.url}/_sandbox/{path}", json=body, timeout=10).raise_for_status()  # noqa: E731
    post("channels", [{"key": "main-wh", "roles": ["InventorySupply"]}])
    post("product-types", [{"key": "apparel", "name": "Apparel", "description": "clothes",
                            "attributes": [{"name": "ean", "type": {"name": "text"}}, {"name": "weight", "type": {"name": "number"}}]}])
    post("payments", [payment("pay-1", "94.95", transactions=[transaction("Charge", "94.95", at=now - timedelta(minutes=3)), transaction("Refund", "40.00", interaction_id="RET-1")]),
                      payment("pay-2", "19.99", transactions=[transaction("Charge", "19.99", at=now - timedelta(minutes=2))])])
    orders = [make_order("C1", [{"sku": "TEE", "quantity": 2, "price": "45.00", "cart_discount": "5.00"}, {"sku": "CAP", "quantity": 1, "price": "19.99"}],
                         shipping="4.95", payments=["pay-1"]),
              make_order("C2", [{"sku": "CAP", "quantity": 1, "price": "19.99"}], payments=["pay-2"]),
              make_order("C3", [{"sku": "TEE", "quantity": 1, "price": "45.00"}], payment_state="Pending"),
              make_order(None, [{"sku": "TEE", "quantity": 1, "price": "45.00"}])]
    post("orders", orders)
    post("inventory", [{"sku": "TEE", "quantityOnStock": 3, "supplyChannel": {"typeId": "channel", "key": "main-wh"}},
                       {"sku": "CAP", "quantityOnStock": 0, "supplyChannel": {"typeId": "channel", "key": "main-wh"}}])

    log: list[dict] = []
    auth = OAuth2ClientCredentials(f"{server.url}/oauth/token", CLIENT, SECRET, SCOPES)
    client = HttpClient(f"{server.url}/{PROJECT}", system="commercetools", auth=auth, payload_log=log.append)
    ch = CommercetoolsChannel(client, page_size=2, supply_channel="main-wh", locale="en-GB", product_type="apparel",
                              attributes={"barcode": "ean", "weight": "weight"}, sleep=lambda s: None)
    window = (now - timedelta(hours=1), now + timedelta(minutes=5))
    raws = {r["orderNumber"] if r.get("orderNumber") else "-": r for r in ch.fetch_orders(*window)}
    assert set(raws) == {"C1", "C2", "-"}  # C3 is not paid: not bookable
    c1, c2 = ch.to_order(raws["C1"]), ch.to_order(raws["C2"])
    ch.acknowledge_order(c1, SaleRef(master_id="SALE-1", external_id="C1"))
    ch.acknowledge_order(c1, SaleRef(master_id="SALE-1", external_id="C1"))  # a repeat reads and adds nothing
    box = lambda ref, tracking, lines: Shipment(order_channel_ref="C1", master_ref="m", shipment_ref=ref, carrier="DPD",  # noqa: E731
                                                tracking_number=tracking, shipped_at=now, lines=[ShipmentLine(sku=s, quantity=q) for s, q in lines])
    ch.push_shipment(c1.channel_id, box("t:1", "P1", [("TEE", 1)]), "DPD")  # Partial
    ch.push_shipment(c1.channel_id, box("t:2", "P2", [("TEE", 1), ("CAP", 1)]), "DPD")  # Shipped
    ch.mark_ready(c2.channel_id)
    listings = ch.read_listings()
    assert ch.push_stock([(listings["TEE"], 5), (listings["CAP"], 0)]) == [("TEE", None), ("CAP", None)]
    stale = requests.get(f"{server.url}/_sandbox/inventory", timeout=10).json()["items"][0]
    ch.adjust_stock(stale["id"], -1)
    ch.update(f"/inventory/{stale['id']}", lambda e: [{"action": "changeQuantity", "quantity": 9}], current=stale)  # a 409, re-read, sent again
    ch.set_stock("SOCK", 4)  # no entry yet: created
    assert [r["id"] for r in ch.fetch_refunds(*window)] and list(ch.fetch_payouts(*window))
    pid = ch.create_product("NEW-1", {"name": "New tee", "barcode": "5012345678900", "weight": 0.25})
    assert ch.create_product("NEW-1", {"name": "New tee"}) == pid
    ch.update_product("NEW-1", {"name": "New tee, renamed", "weight": 0.3})
    requests.post(f"{server.url}/{PROJECT}/products/{pid}", headers={"Authorization": f"Bearer {auth.token()}"},
                  json={"version": client.get(f"/products/{pid}")["version"], "actions": [{"action": "publish"}]}, timeout=10).raise_for_status()
    assert ("NEW-1", pid) in list(ch.published_variants())
    ch.unpublish(pid)
    yield {"log": log, "token": auth.token()}
    server.stop()


def _body(entry):
    body = entry["request_body"]
    return json.loads(body) if isinstance(body, str) and body else body


def _api_calls(sent):
    return [e for e in sent["log"] if not e["system"].endswith(":oauth")]


def test_every_request_fits_the_spec(sent):
    problems = []
    for e in _api_calls(sent):
        problems += [f"{e['method']} {e['url']}: {p}" for p in spec.validate_request(e["method"], e["url"], _body(e))]
    assert problems == [], "\n".join(problems)


def test_every_operation_the_flows_use_was_exercised(sent):
    seen = {(e["method"], spec.path_template(e["method"], urlsplit(e["url"]).path)) for e in _api_calls(sent)}
    assert USED - seen == set()
    assert seen - USED == set()


def test_reads_page_by_keyset_never_by_offset_and_without_totals(sent):
    lists = [e for e in _api_calls(sent) if e["method"] == "GET" and spec.path_template("GET", urlsplit(e["url"]).path).count("/") == 2]
    assert lists
    for e in lists:
        query = parse_qsl(urlsplit(e["url"]).query)
        names = [k for k, _ in query]
        assert "offset" not in names and ("withTotal", "false") in query
        assert [v for k, v in query if k == "sort"] == ["lastModifiedAt asc", "id asc"]
    follow_ups = [e for e in lists if "lastModifiedAt >" in dict(parse_qsl(urlsplit(e["url"]).query)).get("where", "")]
    assert follow_ups, "no read went past its first page (page_size 2 should force it)"


def test_every_update_sends_the_resource_version_and_a_409_was_met_and_recomputed(sent):
    updates = [e for e in _api_calls(sent) if e["method"] == "POST" and spec.path_template("POST", urlsplit(e["url"]).path).endswith("{ID}")]
    assert updates and all(isinstance(_body(e).get("version"), int) and _body(e).get("actions") for e in updates)
    conflicts = [e for e in updates if e["status"] == 409]
    assert len(conflicts) == 1
    after = updates[updates.index(conflicts[0]) + 1]
    assert after["url"] == conflicts[0]["url"] and _body(after)["version"] > _body(conflicts[0])["version"] and after["status"] == 200


def test_the_token_request_is_client_credentials_with_known_scopes_and_the_token_is_never_logged(sent):
    (token_call,) = [e for e in sent["log"] if e["system"].endswith(":oauth")]
    assert urlsplit(token_call["url"]).path == urlsplit(spec.token_url()).path == "/oauth/token"
    form = token_call["request_body"]
    assert form["grant_type"] == "client_credentials"
    assert {s.split(":")[0] for s in form["scope"].split()} <= spec.scope_names()
    assert all(s.endswith(f":{PROJECT}") for s in form["scope"].split())
    text = json.dumps(sent["log"])
    assert sent["token"] not in text and SECRET not in text
