"""The Centra emulator keeps Centra's rules: auth on both APIs, token buckets, page limits, events
only for listeners and queued until confirmed, PENDING orders that allocate when confirmed,
userErrors rather than HTTP errors, signed webhooks, and the shared fault layer by operation."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from sandbox import centra
from sandbox.server import start_server

TOKEN, SECRET = "t0k", "s3cret"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SEED = {"warehouses": ["Main", "Store"], "pricelists": [{"name": "AU", "currency": "AUD"}, {"name": "EU", "currency": "EUR"}], "markets": ["MP"],
        "products": [{"productNumber": "P1-", "name": "Tee", "variants": [{"variantNumber": "V1-", "sizes": [{"name": "M", "sizeNumber": "M"}, {"name": "L", "sizeNumber": "L"}]}]}],
        "stock": [{"warehouse": "Main", "sku": "P1-V1-M", "quantity": 2}, {"warehouse": "Store", "sku": "P1-V1-M", "quantity": 5}]}
ORDER = {"email": "a@example.com", "country": "AU", "pricelist": "AU", "currency": "AUD", "externalId": "MKP-1",
         "products": [{"sku": "P1-V1-M", "qty": 3, "price": "45.00", "tax": "12.27"}], "shippingValue": "9.95"}


@pytest.fixture(scope="module")
def server():
    handle = start_server(centra.create_app(token=TOKEN, order_api_secret=SECRET, requests_per_10s=5, mutations_per_10s=2))
    yield handle
    handle.stop()


@pytest.fixture
def url(server):
    requests.post(f"{server.url}/_sandbox/reset", timeout=10).raise_for_status()
    requests.post(f"{server.url}/_sandbox/config", json={"requests_per_10s": 10_000, "mutations_per_10s": 10_000}, timeout=10).raise_for_status()
    requests.post(f"{server.url}/_sandbox/seed", json=SEED, timeout=10).raise_for_status()
    return server.url


def gql(url, query, variables=None, headers=HEADERS):
    return requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers, timeout=10)


def create(url, body=ORDER, secret=SECRET):
    return requests.post(f"{url}/order-api/order", json=body, headers={"API-Authorization": secret}, timeout=10)


def test_each_api_wants_its_own_credential(url):
    assert gql(url, "{ pricelists { name } }", headers={}).status_code == 401
    assert gql(url, "{ pricelists { name } }", headers={"Authorization": f"Bearer {SECRET}"}).status_code == 401
    assert create(url, secret=TOKEN).status_code == 401
    assert gql(url, "{ pricelists { name } }").json()["data"]["pricelists"] == [{"name": "AU"}, {"name": "EU"}]


def test_token_buckets_answer_429_with_retry_after_and_count_mutations_apart(url):
    requests.post(f"{url}/_sandbox/config", json={"requests_per_10s": 3, "mutations_per_10s": 1}, timeout=10)
    confirm = "mutation { confirmEvents(input: {eventsIds: [1]}) { userErrors { message } } }"
    assert gql(url, confirm).status_code == 200
    refused = gql(url, confirm)  # the mutation bucket is empty, the request bucket is not
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert gql(url, "{ pricelists { name } }").status_code == 200
    assert gql(url, "{ pricelists { name } }").status_code == 200
    assert gql(url, "{ pricelists { name } }").status_code == 429


def test_lists_take_limit_up_to_200_and_page(url):
    assert "Limit must be in range 1 - 200" in gql(url, "{ pricelists(limit: 201) { name } }").json()["errors"][0]["message"]
    assert gql(url, "{ pricelists(limit: 1, page: 2) { name } }").json()["data"]["pricelists"] == [{"name": "EU"}]
    assert "Cannot query field" in gql(url, "{ pricelists { nope } }").json()["errors"][0]["message"]


def test_order_api_refusals_say_why(url):
    for change, why in (({"email": None}, "email is required"), ({"country": "Australia"}, "ISO-Alpha-2"), ({"currency": "EUR"}, "does not match pricelist"),
                        ({"products": [{"sku": "NOPE", "qty": 1, "price": "1"}]}, "no product with sku"), ({"pricelist": "XX"}, "no pricelist")):
        answer = create(url, {**ORDER, **change})
        assert answer.status_code == 400 and answer.json()["status"] == "no" and why in answer.json()["msg"], change
    assert create(url).json() == {"status": "ok", "order": 1001}


def test_a_confirmed_order_allocates_and_a_completed_shipment_takes_the_stock_out(url):
    number = create(url).json()["order"]
    state = "query($n: Int!) { orders(where: {number: [$n]}) { status grandTotal { value } net: grandTotal(includingTax: false) { value } } }"
    assert gql(url, state, {"n": number}).json()["data"]["orders"] == [{"status": "PENDING", "grandTotal": {"value": 144.95}, "net": {"value": 132.68}}]
    assert requests.get(f"{url}/_sandbox/stock", timeout=10).json()["Main/P1-V1-M"]["allocated"] == 0  # PENDING holds nothing
    confirm = "mutation($n: Int!) { confirmOrder(order: {number: $n}) { userErrors { message } order { status } } }"
    assert gql(url, confirm, {"n": number}).json()["data"]["confirmOrder"] == {"userErrors": [], "order": {"status": "CONFIRMED"}}
    again = gql(url, confirm, {"n": number}).json()["data"]["confirmOrder"]  # a refusal is a userError, not an HTTP error
    assert "not PENDING" in again["userErrors"][0]["message"]
    stock = requests.get(f"{url}/_sandbox/stock", timeout=10).json()
    assert (stock["Main/P1-V1-M"]["allocated"], stock["Store/P1-V1-M"]["allocated"]) == (2, 1)  # in allocation order
    shipment = requests.post(f"{url}/_sandbox/ship", json={"order": number, "carrier": "DHL", "trackingNumber": "T1"}, timeout=10).json()
    assert shipment["isShipped"] and shipment["trackingNumber"] == "T1"
    stock = requests.get(f"{url}/_sandbox/stock", timeout=10).json()
    assert (stock["Main/P1-V1-M"]["physical"], stock["Store/P1-V1-M"]["physical"], stock["Store/P1-V1-M"]["allocated"]) == (0, 4, 0)
    over = requests.post(f"{url}/_sandbox/ship", json={"order": number}, timeout=10)
    assert over.status_code == 400 and "is SHIPPED" in over.json()["error"]  # fully shipped: nothing more goes out


def test_events_exist_only_for_listeners_and_stay_queued_until_confirmed(url):
    events = "{ events(limit: 10) { id objectType changeType objectReference } }"
    create(url)
    assert gql(url, events).json()["data"]["events"] == []  # nobody listened when the order came
    listen = 'mutation { setEventListeners(input: [{objectType: Order, changeTypes: [CREATED]}]) { eventListeners { objectType changeTypes } userErrors { message } } }'
    assert gql(url, listen).json()["data"]["setEventListeners"]["eventListeners"] == [{"objectType": "Order", "changeTypes": ["CREATED"]}]
    create(url)
    create(url)
    queued = gql(url, events).json()["data"]["events"]
    assert [(e["objectType"], e["changeType"], e["objectReference"]) for e in queued] == [("Order", "CREATED", 1002), ("Order", "CREATED", 1003)]
    assert gql(url, events).json()["data"]["events"] == queued  # read again: still there
    gql(url, "mutation($ids: [Int!]!) { confirmEvents(input: {eventsIds: $ids}) { userErrors { message } } }", {"ids": [queued[0]["id"]]})
    assert [e["objectReference"] for e in gql(url, events).json()["data"]["events"]] == [1003]


def test_faults_narrow_to_a_graphql_operation(url):
    requests.post(f"{url}/_sandbox/faults", json={"status_burst": {"operation": "confirmOrder", "status": 503, "count": 1}}, timeout=10)
    assert gql(url, "{ pricelists { name } }").status_code == 200
    number = create(url).json()["order"]
    confirm = "mutation($n: Int!) { confirmOrder(order: {number: $n}) { order { status } } }"
    assert gql(url, confirm, {"n": number}).status_code == 503
    assert gql(url, confirm, {"n": number}).json()["data"]["confirmOrder"]["order"]["status"] == "CONFIRMED"


def test_webhooks_are_signed_and_retried(url):
    from commerce_sync.systems.centra import verify_webhook

    got: list[tuple[bytes, str]] = []
    failures = [1]

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((body, self.headers["X-Centra-Signature"]))
            status = 500 if failures and failures.pop() else 200  # the first delivery fails
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        requests.post(f"{url}/_sandbox/webhooks", json={"url": f"http://127.0.0.1:{receiver.server_port}/hook", "secret": "whsec", "retries": 1}, timeout=10)
        gql(url, 'mutation { setEventListeners(input: [{objectType: Order}]) { userErrors { message } } }')
        create(url)
        deliveries = []
        for _ in range(200):
            deliveries = requests.get(f"{url}/_sandbox/webhooks", timeout=10).json()["deliveries"]
            if deliveries:
                break
            threading.Event().wait(0.05)
        assert deliveries == [{"event": 1, "url": f"http://127.0.0.1:{receiver.server_port}/hook", "status": 200, "attempts": 2, "error": None}]
        assert len(got) == 2 and all(verify_webhook("whsec", header, body) for body, header in got)
        assert not verify_webhook("other", got[0][1], got[0][0])
    finally:
        receiver.shutdown()
