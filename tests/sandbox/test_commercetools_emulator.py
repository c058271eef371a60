"""The commercetools emulator: OAuth, scopes, predicates, paging limits, versions and 409s, the
update actions the flows use. Over real HTTP on a free loopback port."""

from __future__ import annotations

import pytest
import requests

from sandbox import commercetools as ct
from sandbox.commercetools_builders import make_order, payment, transaction
from sandbox.commercetools_predicates import PredicateError, evaluate, parse
from sandbox.server import start_server

PROJECT = "test-shop"


@pytest.fixture(scope="module")
def server():
    s = start_server(ct.create_app(project_key=PROJECT, client_id="cid", client_secret="csecret",
                                   scopes=(f"manage_orders:{PROJECT}", f"view_products:{PROJECT}", f"manage_products:{PROJECT}", f"view_payments:{PROJECT}")))
    yield s
    s.stop()


@pytest.fixture
def api(server):
    requests.post(f"{server.url}/_sandbox/reset", timeout=10).raise_for_status()

    class Api:
        url = server.url

        def __init__(self):
            self.token = self.token_for()

        def token_for(self, scope: str | None = None) -> str:
            r = requests.post(f"{server.url}/oauth/token", auth=("cid", "csecret"), data={"grant_type": "client_credentials", **({"scope": scope} if scope else {})}, timeout=10)
            r.raise_for_status()
            return r.json()["access_token"]

        def call(self, method, path, token=None, **kw):
            return requests.request(method, f"{server.url}/{PROJECT}{path}", headers={"Authorization": f"Bearer {token or self.token}"}, timeout=10, **kw)

        def seed(self, what, items):
            r = requests.post(f"{server.url}/_sandbox/{what}", json=items, timeout=10)
            r.raise_for_status()
            return r.json().get("created") or r.json().get("orders")

    return Api()


# -- predicates (pure) ----------------------------------------------------------------------------
DOC = {"id": "b", "orderState": "Open", "lastModifiedAt": "2026-11-30T10:00:00.000Z", "version": 3, "tags": ["x", "y"],
       "paymentInfo": {"payments": [{"typeId": "payment", "id": "p1"}, {"typeId": "payment", "id": "p2"}]},
       "supplyChannel": {"typeId": "channel", "id": "c1"}}


@pytest.mark.parametrize("predicate, expected", [
    ('orderState = "Open"', True), ('orderState in ("Confirmed", "Open")', True), ('orderState not in ("Open")', False),
    ('lastModifiedAt >= "2026-11-30T10:00:00Z" and lastModifiedAt < "2026-11-30T10:00:00.001Z"', True),
    ('lastModifiedAt > "2026-11-30T10:00:00.000Z" or (lastModifiedAt = "2026-11-30T10:00:00.000Z" and id > "a")', True),
    ('lastModifiedAt > "2026-11-30T10:00:00.000Z" or (lastModifiedAt = "2026-11-30T10:00:00.000Z" and id > "b")', False),
    ('paymentInfo(payments(id in ("p9", "p2")))', True), ('paymentInfo(payments(id = "p3"))', False),
    ('supplyChannel(id = "c1")', True), ("supplyChannel is not defined", False), ("orderNumber is not defined", True),
    ("version > 2 and version <= 3", True), ('tags contains any ("y", "z")', True), ('tags contains all ("x", "z")', False),
    ('not (orderState = "Open")', False), ("tags is empty", False), ('orderNumber = "x"', False),
])
def test_predicates_evaluate_as_documented(predicate, expected):
    assert evaluate(parse(predicate), DOC) is expected


@pytest.mark.parametrize("bad", ["", "orderState =", 'orderState = "Open" and', "orderState(", '"Open" = orderState', "var.x = 1", "a = 1 b = 2"])
def test_malformed_predicates_are_refused(bad):
    with pytest.raises(PredicateError):
        parse(bad)


# -- auth -----------------------------------------------------------------------------------------
def test_tokens_come_from_client_credentials_and_scopes_are_checked(api):
    bad = requests.post(f"{api.url}/oauth/token", auth=("cid", "wrong"), data={"grant_type": "client_credentials"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert requests.post(f"{api.url}/oauth/token", auth=("cid", "csecret"), data={"grant_type": "client_credentials", "scope": f"manage_project:{PROJECT}"},
                         timeout=10).json()["error"] == "invalid_scope"
    assert api.call("GET", "/orders", token="nope").json()["errors"][0]["code"] == "invalid_token"
    products_only = api.token_for(f"view_products:{PROJECT}")
    assert api.call("GET", "/inventory", token=products_only).status_code == 200
    refused = api.call("GET", "/orders", token=products_only)
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    assert api.call("POST", "/inventory", token=products_only, json={"sku": "A", "quantityOnStock": 1}).status_code == 403


def test_an_expired_token_is_refused(api):
    requests.post(f"{api.url}/_sandbox/tokens/expire", timeout=10).raise_for_status()
    assert api.call("GET", "/orders").status_code == 401


# -- queries --------------------------------------------------------------------------------------
def test_paging_limits_sorting_and_total(api):
    api.seed("inventory", [{"sku": f"S{i:02d}", "quantityOnStock": i} for i in range(12)])
    body = api.call("GET", "/inventory", params={"sort": "quantityOnStock desc", "limit": 5, "offset": 2}).json()
    assert [r["sku"] for r in body["results"]] == ["S09", "S08", "S07", "S06", "S05"] and body["total"] == 12 and body["count"] == 5
    assert "total" not in api.call("GET", "/inventory", params={"withTotal": "false"}).json()
    assert api.call("GET", "/inventory").json()["limit"] == 20
    for params, message in (({"limit": 501}, "between 1 and 500"), ({"offset": 10001}, "must not exceed 10000"), ({"sort": "sku up"}, "sort"),
                            ({"where": 'sku = "A" and'}, "where")):
        r = api.call("GET", "/inventory", params=params)
        assert r.status_code == 400 and message in r.json()["message"] and r.json()["errors"][0]["code"] == "InvalidInput"


def test_orders_expand_their_payments(api):
    api.seed("payments", [payment("pay-1", "10.00", transactions=[transaction("Charge", "10.00")])])
    (order,) = api.seed("orders", [make_order("O1", [{"sku": "A", "quantity": 1, "price": "10.00"}], payments=["pay-1"])])
    plain = api.call("GET", f"/orders/{order['id']}").json()
    assert "obj" not in plain["paymentInfo"]["payments"][0]
    found = api.call("GET", "/orders", params={"where": 'paymentInfo(payments(id in ("pay-1")))', "expand": "paymentInfo.payments[*]"}).json()
    assert found["results"][0]["paymentInfo"]["payments"][0]["obj"]["transactions"][0]["type"] == "Charge"
    assert api.call("GET", "/orders/order-number=O1").json()["id"] == order["id"]


# -- versions -------------------------------------------------------------------------------------
def test_a_stale_version_is_a_409_with_the_current_version_and_changes_nothing(api):
    (entry,) = api.seed("inventory", [{"sku": "A", "quantityOnStock": 5}])
    ok = api.call("POST", f"/inventory/{entry['id']}", json={"version": 1, "actions": [{"action": "addQuantity", "quantity": 2}, {"action": "removeQuantity", "quantity": 1}]})
    assert ok.status_code == 200 and ok.json()["quantityOnStock"] == 6 and ok.json()["version"] == 3  # one per action
    assert ok.json()["lastModifiedAt"] > entry["lastModifiedAt"]
    stale = api.call("POST", f"/inventory/{entry['id']}", json={"version": 1, "actions": [{"action": "changeQuantity", "quantity": 0}]})
    assert stale.status_code == 409
    (err,) = stale.json()["errors"]
    assert err["code"] == "ConcurrentModification" and err["currentVersion"] == 3 and "Expected: 1 - Actual: 3" in err["message"]
    assert api.call("GET", f"/inventory/{entry['id']}").json()["quantityOnStock"] == 6
    bad = api.call("POST", f"/inventory/{entry['id']}", json={"version": 3, "actions": [{"action": "changeQuantity", "quantity": 1}, {"action": "nope"}]})
    assert bad.status_code == 400 and api.call("GET", f"/inventory/{entry['id']}").json()["quantityOnStock"] == 6  # all or nothing


def test_inventory_is_unique_per_sku_and_supply_channel(api):
    (channel,) = api.seed("channels", [{"key": "wh", "roles": ["InventorySupply"]}])
    api.seed("inventory", [{"sku": "A", "quantityOnStock": 1}, {"sku": "A", "quantityOnStock": 2, "supplyChannel": {"typeId": "channel", "key": "wh"}}])
    dup = api.call("POST", "/inventory", json={"sku": "A", "quantityOnStock": 3, "supplyChannel": {"typeId": "channel", "id": channel["id"]}})
    assert dup.status_code == 400 and dup.json()["errors"][0]["code"] == "DuplicateField"
    missing = api.call("POST", "/inventory", json={"sku": "B", "quantityOnStock": 3, "supplyChannel": {"typeId": "channel", "key": "nowhere"}})
    assert missing.status_code == 400 and missing.json()["errors"][0]["code"] == "ReferencedResourceNotFound"


def test_order_actions_sync_info_deliveries_returns(api):
    api.seed("channels", [{"key": "erp", "roles": ["OrderExport"]}])
    (order,) = api.seed("orders", [make_order("O2", [{"sku": "A", "quantity": 2, "price": "10.00"}], shipping="2.00")])
    line = order["lineItems"][0]["id"]
    r = api.call("POST", f"/orders/{order['id']}", json={"version": 1, "actions": [
        {"action": "updateSyncInfo", "channel": {"typeId": "channel", "key": "erp"}, "externalId": "SALE-9"},
        {"action": "addDelivery", "deliveryKey": "box-1", "items": [{"id": line, "quantity": 1}],
         "parcels": [{"trackingData": {"trackingId": "T1", "carrier": "DPD"}, "items": [{"id": line, "quantity": 1}]}]},
        {"action": "changeShipmentState", "shipmentState": "Partial"},
        {"action": "addReturnInfo", "returnTrackingId": "RET-1", "items": [{"lineItemId": line, "quantity": 1, "shipmentState": "Returned"}]},
    ]})
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["syncInfo"][0]["externalId"] == "SALE-9" and o["shipmentState"] == "Partial" and o["version"] == 5
    (delivery,) = o["shippingInfo"]["deliveries"]
    assert delivery["key"] == "box-1" and delivery["parcels"][0]["trackingData"]["trackingId"] == "T1"
    assert o["returnInfo"][0]["items"][0]["paymentState"] == "Initial"
    again = api.call("POST", f"/orders/{order['id']}", json={"version": 5, "actions": [{"action": "addDelivery", "deliveryKey": "box-1", "items": []}]})
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == "DuplicateField"
    wrong = api.call("POST", f"/orders/{order['id']}", json={"version": 5, "actions": [{"action": "changeShipmentState", "shipmentState": "Lost"}]})
    assert wrong.status_code == 400


def test_products_are_staged_until_published_and_projections_follow(api):
    api.seed("product-types", [{"key": "apparel", "name": "Apparel", "description": "x", "attributes": [{"name": "ean", "type": {"name": "text"}},
                                                                                                      {"name": "weight", "type": {"name": "number"}}]}])
    draft = {"productType": {"typeId": "product-type", "key": "apparel"}, "name": {"en-GB": "Tee"}, "slug": {"en-GB": "tee"},
             "masterVariant": {"sku": "TEE-1", "attributes": [{"name": "ean", "value": "5012345678900"}, {"name": "weight", "value": 0.2}]}}
    created = api.call("POST", "/products", json=draft)
    assert created.status_code == 201 and created.json()["masterData"]["published"] is False
    pid = created.json()["id"]
    assert api.call("GET", "/product-projections", params={"staged": "false"}).json()["results"] == []
    staged = api.call("GET", "/product-projections", params={"staged": "true", "where": 'masterVariant(sku = "TEE-1") or variants(sku = "TEE-1")'}).json()
    assert staged["results"][0]["id"] == pid
    assert api.call("POST", "/products", json={**draft, "slug": {"en-GB": "tee-2"}}).json()["errors"][0]["code"] == "DuplicateField"  # the SKU
    bad_attr = {**draft, "slug": {"en-GB": "x"}, "masterVariant": {"sku": "X", "attributes": [{"name": "colour", "value": "red"}]}}
    assert api.call("POST", "/products", json=bad_attr).json()["errors"][0]["code"] == "AttributeNameDoesNotExist"
    pub = api.call("POST", f"/products/{pid}", json={"version": 1, "actions": [{"action": "publish"}]}).json()
    assert [r["masterVariant"]["sku"] for r in api.call("GET", "/product-projections").json()["results"]] == ["TEE-1"]
    api.call("POST", f"/products/{pid}", json={"version": pub["version"], "actions": [{"action": "unpublish"}]}).raise_for_status()
    assert api.call("GET", "/product-projections").json()["results"] == []


def test_an_order_placed_with_reserve_on_order_takes_stock_or_is_refused(api):
    api.seed("inventory", [{"sku": "A", "quantityOnStock": 3}])
    api.seed("orders", [make_order("R1", [{"sku": "A", "quantity": 2, "price": "1.00"}], inventory_mode="ReserveOnOrder")])
    assert api.call("GET", "/inventory").json()["results"][0]["quantityOnStock"] == 1
    r = requests.post(f"{api.url}/_sandbox/orders", json=[make_order("R2", [{"sku": "A", "quantity": 2, "price": "1.00"}], inventory_mode="ReserveOnOrder")], timeout=10)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "OutOfStock"
