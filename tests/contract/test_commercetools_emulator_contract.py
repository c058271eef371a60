"""Contract: the commercetools emulator's answers, for every operation and update action it
emulates and its error bodies, checked against commercetools' OpenAPI file; and the checks
themselves shown able to fail."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from sandbox.commercetools_builders import make_order, payment, transaction
from tests.contract import commercetools_spec as spec

pytestmark = pytest.mark.e2e
PROJECT = "shop"


@pytest.fixture(scope="module")
def answers():
    from sandbox import commercetools
    from sandbox.server import start_server

    server = start_server(commercetools.create_app(project_key=PROJECT, client_id="c", client_secret="s",
                                                   scopes=(f"manage_project:{PROJECT}", f"view_products:{PROJECT}")))
    seen: list[tuple[str, str, int, object]] = []
    token = requests.post(f"{server.url}/oauth/token", auth=("c", "s"), data={"grant_type": "client_credentials", "scope": f"manage_project:{PROJECT}"}, timeout=10).json()["access_token"]
    narrow = requests.post(f"{server.url}/oauth/token", auth=("c", "s"), data={"grant_type": "client_credentials", "scope": f"view_products:{PROJECT}"}, timeout=10).json()["access_token"]

    def call(method, path, body=None, params=None, bearer=None):
        r = requests.request(method, f"{server.url}/{PROJECT}{path}", json=body, params=params, headers={"Authorization": f"Bearer {bearer or token}"}, timeout=10)
        seen.append((method, urlsplit(r.url).path, r.status_code, r.json() if r.content else None))
        return r.json() if r.content else None

    requests.post(f"{server.url}/_sandbox/payments", json=[payment("p1", "10.00", transactions=[transaction("Charge", "10.00")])], timeout=10).raise_for_status()
    (order,) = requests.post(f"{server.url}/_sandbox/orders", json=[make_order("A1", [{"sku": "TEE", "quantity": 2, "price": "5.00", "cart_discount": "1.00"}],
                                                                             shipping="2.00", order_discount="1.00", payments=["p1"])], timeout=10).json()["orders"]
    line = order["lineItems"][0]["id"]
    channel = call("POST", "/channels", {"key": "erp", "roles": ["OrderExport"], "name": {"en": "ERP"}})
    call("GET", "/channels/key=erp")
    call("GET", "/channels", params={"where": 'key = "erp"'})
    call("GET", "/orders", params={"where": 'orderState in ("Open")', "sort": ["lastModifiedAt asc", "id asc"], "withTotal": "false", "limit": 5,
                                   "expand": "paymentInfo.payments[*]"})
    call("GET", f"/orders/{order['id']}")
    call("GET", "/orders/order-number=A1")
    v = order["version"]
    for actions in (
        [{"action": "updateSyncInfo", "channel": {"typeId": "channel", "id": channel["id"]}, "externalId": "S1", "syncedAt": "2026-11-30T10:00:00.000Z"}],
        [{"action": "addDelivery", "deliveryKey": "k1", "items": [{"id": line, "quantity": 1}],
          "parcels": [{"trackingData": {"trackingId": "T", "carrier": "DPD"}, "items": [{"id": line, "quantity": 1}]}]},
         {"action": "changeShipmentState", "shipmentState": "Partial"}],
        [{"action": "changeOrderState", "orderState": "Confirmed"}, {"action": "changePaymentState", "paymentState": "Paid"}],
        [{"action": "addReturnInfo", "returnTrackingId": "R1", "items": [{"lineItemId": line, "quantity": 1, "shipmentState": "Returned"}]}],
    ):
        v = call("POST", f"/orders/{order['id']}", {"version": v, "actions": actions})["version"]
    item = call("GET", f"/orders/{order['id']}")["returnInfo"][0]["items"][0]["id"]
    call("POST", f"/orders/{order['id']}", {"version": v, "actions": [{"action": "setReturnPaymentState", "returnItemId": item, "paymentState": "Refunded"}]})
    call("POST", f"/orders/{order['id']}", {"version": 1, "actions": [{"action": "changeShipmentState", "shipmentState": "Shipped"}]})  # 409
    entry = call("POST", "/inventory", {"sku": "TEE", "quantityOnStock": 4, "supplyChannel": {"typeId": "channel", "key": "erp"}})
    call("POST", f"/inventory/{entry['id']}", {"version": 1, "actions": [{"action": "changeQuantity", "quantity": 7}, {"action": "addQuantity", "quantity": 1},
                                                                        {"action": "removeQuantity", "quantity": 2}]})
    call("GET", "/inventory", params={"where": f'supplyChannel(id = "{channel["id"]}")'})
    call("GET", f"/inventory/{entry['id']}")
    pay = call("POST", "/payments", {"amountPlanned": {"currencyCode": "GBP", "centAmount": 500}, "transactions": [{"type": "Charge", "amount": {"currencyCode": "GBP", "centAmount": 500}}]})
    call("POST", f"/payments/{pay['id']}", {"version": 1, "actions": [{"action": "changeTransactionState", "transactionId": pay["transactions"][0]["id"], "state": "Success"},
                                                                     {"action": "addTransaction", "transaction": {"type": "Refund", "amount": {"currencyCode": "GBP", "centAmount": 100}, "state": "Success"}}]})
    call("GET", "/payments", params={"where": 'lastModifiedAt > "2020-01-01T00:00:00.000Z"'})
    call("GET", f"/payments/{pay['id']}")
    call("POST", "/product-types", {"key": "apparel", "name": "Apparel", "description": "x", "attributes": [
        {"name": "ean", "type": {"name": "text"}, "label": {"en": "EAN"}, "isRequired": False}]})
    call("GET", "/product-types/key=apparel")
    product = call("POST", "/products", {"productType": {"typeId": "product-type", "key": "apparel"}, "name": {"en": "Tee"}, "slug": {"en": "tee"},
                                         "masterVariant": {"sku": "TEE", "attributes": [{"name": "ean", "value": "123"}]}, "publish": False})
    call("POST", f"/products/{product['id']}", {"version": 1, "actions": [{"action": "changeName", "name": {"en": "Tee 2"}, "staged": True},
                                                                           {"action": "setAttribute", "sku": "TEE", "name": "ean", "value": "456", "staged": True},
                                                                           {"action": "publish"}]})
    call("GET", f"/products/{product['id']}")
    call("GET", "/product-projections", params={"staged": "true", "where": 'masterVariant(sku = "TEE")'})
    call("GET", "/product-projections")
    call("POST", f"/products/{product['id']}", {"version": 4, "actions": [{"action": "unpublish"}]})
    # errors
    call("GET", "/orders", params={"where": "not a predicate"})
    call("GET", "/orders", params={"offset": 20000})
    call("GET", "/orders/no-such-order")
    call("POST", "/channels", {"key": "erp"})  # duplicate key
    call("POST", "/inventory", {"sku": "X", "quantityOnStock": 1, "supplyChannel": {"typeId": "channel", "key": "nope"}})
    call("GET", "/orders", bearer="expired-or-made-up")
    call("GET", "/orders", bearer=narrow)
    yield seen
    server.stop()


def test_every_answer_fits_the_spec(answers):
    problems = []
    for method, path, status, body in answers:
        problems += [f"{method} {path} {status}: {p}" for p in spec.validate_response(method, path, status, body)]
    assert problems == [], "\n".join(problems)


def test_the_scenario_met_every_status_the_flows_handle(answers):
    assert {status for *_, status, _ in answers} >= {200, 201, 400, 401, 403, 404, 409}


def test_a_conflict_names_the_current_version(answers):
    (conflict,) = [body for *_, status, body in answers if status == 409]
    assert conflict["errors"][0]["code"] == "ConcurrentModification" and isinstance(conflict["errors"][0]["currentVersion"], int)
    assert spec.validate(conflict, spec.schema("ErrorResponse")) == []


@pytest.mark.parametrize("body, problem", [
    ({"version": 1, "actions": [{"action": "addDelivery", "items": [{"id": "a"}]}]}, "quantity"),
    ({"version": 1, "actions": [{"action": "teleport"}]}, "teleport"),
    ({"version": 1, "actions": [{"action": "changeShipmentState", "shipmentState": "Lost"}]}, "Lost"),
    ({"actions": []}, "version"),
])
def test_the_request_check_can_fail(body, problem):
    problems = spec.validate_request("POST", "/shop/orders/abc", body)
    assert any(problem in p for p in problems), problems


def test_the_answer_check_can_fail():
    assert spec.validate_response("GET", "/shop/inventory/abc", 200, {"id": "x", "sku": "A"})  # no version, quantities...
    assert spec.validate_response("GET", "/shop/orders", 200, {"results": []})
    assert spec.validate_request("GET", "/shop/orders?offsett=1") and spec.validate_request("GET", "/shop/orders?limit=ten")
    assert spec.validate_request("DELETE", "/shop/nowhere")
