"""The commercetools adapter against the emulator over real HTTP, where a flow does not (yet) show
it: the catalogue methods, a token revoked mid-run, a 409 on a delivery recomputed from the new
state, a conflict that never ends held with its reason, keyset reads across many pages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from commerce_sync.errors import ConflictError
from commerce_sync.http import HttpClient, OAuth2ClientCredentials
from commerce_sync.models import Shipment, ShipmentLine
from commerce_sync.systems.commercetools import CommercetoolsChannel
from sandbox.commercetools_builders import make_order

pytestmark = pytest.mark.e2e
PROJECT = "adapter-shop"


@pytest.fixture(scope="module")
def server():
    from sandbox import commercetools
    from sandbox.server import start_server

    s = start_server(commercetools.create_app(project_key=PROJECT, client_id="cid", client_secret="csecret"))
    yield s
    s.stop()


@pytest.fixture
def shop(server):
    requests.post(f"{server.url}/_sandbox/reset", timeout=10).raise_for_status()
    seed = lambda what, items: requests.post(f"{server.url}/_sandbox/{what}", json=items, timeout=10).json()  # noqa: E731
    seed("product-types", [{"key": "apparel", "name": "Apparel", "description": "x",
                            "attributes": [{"name": "ean", "type": {"name": "text"}}, {"name": "weight", "type": {"name": "number"}},
                                           {"name": "colour", "type": {"name": "text"}}]}])
    log: list[dict] = []
    auth = OAuth2ClientCredentials(f"{server.url}/oauth/token", "cid", "csecret", [f"manage_project:{PROJECT}"])
    ch = CommercetoolsChannel(HttpClient(f"{server.url}/{PROJECT}", system="commercetools", auth=auth, payload_log=log.append), locale="en-GB",
                              product_type="apparel", attributes={"barcode": "ean", "weight": "weight"}, page_size=3, sleep=lambda s: None)
    ch.url, ch.seed, ch.log, ch.auth = server.url, seed, log, auth
    return ch


def test_a_new_sku_is_created_unpublished_with_only_the_master_fields(shop):
    pid = shop.create_product("CS-NEW-1", {"name": "New tee", "barcode": "5012345678900", "weight": 0.25, "colour": "red"})
    product = shop.client.get(f"/products/{pid}")
    assert product["masterData"]["published"] is False
    staged = product["masterData"]["staged"]
    assert staged["name"] == {"en-GB": "New tee"} and staged["masterVariant"]["sku"] == "CS-NEW-1"
    assert {a["name"]: a["value"] for a in staged["masterVariant"]["attributes"]} == {"ean": "5012345678900", "weight": 0.25}  # colour is not Cin7's
    assert "description" not in staged and staged["masterVariant"]["prices"] == [] and staged["categories"] == []
    assert shop.create_product("CS-NEW-1", {"name": "New tee"}) == pid  # a repeat finds it
    assert len([e for e in shop.log if e["method"] == "POST" and e["url"].endswith("/products")]) == 1


def test_changed_master_fields_are_written_and_nothing_else(shop):
    pid = shop.create_product("CS-NEW-2", {"name": "Cap", "barcode": "111"})
    version = shop.client.get(f"/products/{pid}")["version"]
    # ecommerce enriches the product: a description and a colour of its own
    shop.client.post(f"/products/{pid}", json={"version": version, "actions": [{"action": "setAttribute", "sku": "CS-NEW-2", "name": "colour", "value": "navy"}]})
    assert shop.update_product("CS-NEW-2", {"name": "Cap", "barcode": "111"})["version"] == version + 1  # nothing changed: no write
    shop.update_product("CS-NEW-2", {"name": "Cap navy", "barcode": "222"})
    staged = shop.client.get(f"/products/{pid}")["masterData"]["staged"]
    assert staged["name"] == {"en-GB": "Cap navy"}
    assert {a["name"]: a["value"] for a in staged["masterVariant"]["attributes"]} == {"ean": "222", "colour": "navy"}
    assert shop.update_product("NO-SUCH-SKU", {"name": "x"}) is None


def test_published_variants_are_listed_and_one_can_be_taken_off_sale(shop):
    ids = [shop.create_product(f"CS-PUB-{i}", {"name": f"Item {i}"}) for i in range(5)]
    for pid in ids[:4]:
        shop.update(f"/products/{pid}", lambda p: [{"action": "publish"}])
    listed = dict(shop.published_variants())  # page size 3: two pages
    assert listed == {f"CS-PUB-{i}": ids[i] for i in range(4)}
    shop.unpublish(ids[0])
    shop.unpublish(ids[0])  # already off sale: nothing sent
    assert "CS-PUB-0" not in dict(shop.published_variants())
    assert len([e for e in shop.log if e["method"] == "POST" and e["url"].endswith(ids[0])]) == 2  # publish, one unpublish


def test_a_token_revoked_mid_run_is_replaced_once_and_the_run_goes_on(shop):
    shop.seed("orders", [make_order(f"O{i}", [{"sku": "A", "quantity": 1, "price": "1.00"}]) for i in range(7)])
    now = datetime.now(timezone.utc)
    first = list(shop.fetch_orders(now - timedelta(hours=1), now + timedelta(minutes=1)))
    requests.post(f"{shop.url}/_sandbox/tokens/expire", timeout=10).raise_for_status()
    again = list(shop.fetch_orders(now - timedelta(hours=1), now + timedelta(minutes=1)))
    assert len(first) == len(again) == 7 and shop.auth.fetches == 2
    assert [e["status"] for e in shop.log if e["method"] == "GET"].count(401) == 1


def test_a_delivery_whose_order_changed_meanwhile_is_recomputed_not_replayed(shop):
    (order,) = shop.seed("orders", [make_order("D1", [{"sku": "A", "quantity": 2, "price": "1.00"}], shipping="1.00")])["orders"]
    stale = shop.client.get(f"/orders/{order['id']}")
    # meanwhile the warehouse's first box was recorded by someone else (same box, another run)
    box = Shipment(order_channel_ref="D1", master_ref="m", shipment_ref="t:1", carrier="DPD", tracking_number="T1",
                   shipped_at=datetime.now(timezone.utc), lines=[ShipmentLine(sku="A", quantity=1)])
    delivery_id = shop.push_shipment(order["id"], box, "DPD")
    from commerce_sync.systems.commercetools import delivery_key

    actions = [{"action": "addDelivery", "deliveryKey": delivery_key("t:1"), "items": [{"id": order["lineItems"][0]["id"], "quantity": 1}]}]
    shop.update(f"/orders/{order['id']}", lambda o: [] if any(d.get("key") == delivery_key("t:1") for d in o["shippingInfo"].get("deliveries") or []) else actions,
                current=stale)  # the stale copy meets a 409; the re-read shows the box is there: nothing sent
    after = shop.client.get(f"/orders/{order['id']}")
    assert [d["id"] for d in after["shippingInfo"]["deliveries"]] == [delivery_id]
    statuses = [e["status"] for e in shop.log if e["method"] == "POST" and e["url"].endswith(order["id"])]
    assert statuses == [200, 409]


def test_a_record_that_keeps_changing_is_refused_with_the_reason(shop):
    (entry,) = shop.seed("inventory", [{"sku": "A", "quantityOnStock": 1}])["created"]
    bumps = {"n": 0}

    def always_changed(e):  # someone writes between every read and write
        bumps["n"] += 1
        requests.post(f"{shop.url}/{PROJECT}/inventory/{entry['id']}", headers={"Authorization": f"Bearer {shop.auth.token()}"},
                      json={"version": e["version"], "actions": [{"action": "addQuantity", "quantity": 1}]}, timeout=10).raise_for_status()
        return [{"action": "changeQuantity", "quantity": 50}]

    with pytest.raises(ConflictError, match="changed by someone else on each of 5 attempts") as err:
        shop.update(f"/inventory/{entry['id']}", always_changed)
    assert err.value.status == 409 and bumps["n"] == 5
