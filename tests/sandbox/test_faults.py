"""The fault layer every emulator shares (sandbox/faults.py), over real HTTP on loopback."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox import cin7, marketplacer, mirakl
from sandbox.faults import graphql_fields
from sandbox.server import start_server

CIN7_AUTH = {"api-auth-accountid": "acct", "api-auth-applicationkey": "key"}
MKP_AUTH = {"marketplacer-api-key": "mkey"}
SALE = {"Customer": "C", "Location": "WH", "TaxRule": "GST", "SkipQuote": True}


@pytest.fixture(scope="module")
def c7():
    server = start_server(cin7.create_app(account_id="acct", application_key="key", rate_limit_per_minute=100000))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh(c7):
    requests.post(f"{c7.url}/_sandbox/reset", timeout=5)
    requests.post(f"{c7.url}/_sandbox/seed", json={"products": [{"SKU": f"SKU-{i}"} for i in range(5)], "locations": ["WH"], "tax_rules": ["GST"], "customers": ["C"]}, timeout=5)


def arm(server, body):
    r = requests.post(f"{server.url}/_sandbox/faults", json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["faults"]


def calls(server):
    return requests.get(f"{server.url}/_sandbox/calls", timeout=5).json()["calls"]


def sales(server):
    return [s["ExternalID"] for s in requests.get(f"{server.url}/_sandbox/sales", timeout=5).json()["sales"]]


def post_sale(server, ext, timeout=5):
    return requests.post(f"{server.url}/ExternalApi/v2/sale", json={**SALE, "ExternalID": ext}, headers=CIN7_AUTH, timeout=timeout)


def products(server, page, limit=2):
    return requests.get(f"{server.url}/ExternalApi/v2/product", params={"Page": page, "Limit": limit}, headers=CIN7_AUTH, timeout=5)


def test_unknown_fault_is_refused_and_armed_faults_are_shown(c7):
    r = requests.post(f"{c7.url}/_sandbox/faults", json={"gremlins": {}}, timeout=5)
    assert r.status_code == 400 and "gremlins" in r.json()["error"]
    arm(c7, {"status_burst": {"status": 429, "count": 2, "path": "/sale"}})
    assert requests.get(f"{c7.url}/_sandbox/faults", timeout=5).json()["faults"]["status_burst"][0]["count"] == 2
    requests.delete(f"{c7.url}/_sandbox/faults", timeout=5)
    assert requests.get(f"{c7.url}/_sandbox/faults", timeout=5).json()["faults"] == {}


def test_burst_fires_only_on_the_narrowed_call_and_is_marked_in_the_call_log(c7):
    arm(c7, {"status_burst": {"status": 429, "count": 1, "path": "/sale", "method": "POST", "retry_after": 2}})
    assert products(c7, 1).status_code == 200  # another path: untouched, the burst stays armed
    r = post_sale(c7, "E1")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert post_sale(c7, "E1").status_code == 200  # count spent
    log = calls(c7)
    assert [c.get("fault") for c in log] == [None, ["status_burst"], None]
    assert sales(c7) == ["E1"]  # the refused call changed nothing


def test_reset_before_drops_the_connection_and_commits_nothing(c7):
    arm(c7, {"reset_connection": {"when": "before", "path": "/sale", "method": "POST"}})
    with pytest.raises(requests.exceptions.RequestException):
        post_sale(c7, "R1").json()
    assert sales(c7) == []
    assert [(c["status"], c["fault"]) for c in calls(c7)] == [(None, ["reset_connection:before"])]  # dropped unprocessed


def test_reset_after_commit_drops_the_connection_but_the_sale_exists(c7):
    arm(c7, {"reset_connection": {"when": "after_commit", "path": "/sale", "method": "POST"}})
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        post_sale(c7, "R2").json()
    assert sales(c7) == ["R2"]
    assert calls(c7)[-1]["fault"] == ["reset_connection:after_commit"]


def test_hang_after_commit_times_the_client_out_with_the_write_done(c7):
    arm(c7, {"hang": {"seconds": 1.5, "path": "/sale", "method": "POST"}})
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        post_sale(c7, "H1", timeout=(2, 0.5))
    assert time.monotonic() - started < 1.4
    time.sleep(1.3)
    assert sales(c7) == ["H1"]



def test_a_call_hanging_from_an_earlier_plan_does_not_spend_a_fault_armed_after_it(c7):
    # The fault matrix once lost a cell this way: a hung write of the "timeout" cell woke up in
    # a later cell and took that cell's "reset after commit", so the cell's own write never met it.
    arm(c7, {"hang": {"seconds": 1.0, "path": "/sale", "method": "POST"}})
    with pytest.raises(requests.exceptions.ReadTimeout):
        post_sale(c7, "H2", timeout=(2, 0.3))
    arm(c7, {"reset_connection": {"when": "after_commit", "path": "/sale", "method": "POST"}})
    time.sleep(1.0)  # the hung call finishes now, under the new plan
    assert requests.get(f"{c7.url}/_sandbox/faults", timeout=5).json()["faults"]["reset_connection"][0]["count"] == 1
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        post_sale(c7, "R3").json()
    assert [c.get("fault") for c in calls(c7)] == [["hang:after_commit"], ["reset_connection:after_commit"]]
def test_hang_before_is_slow_then_processed(c7):
    arm(c7, {"hang": {"seconds": 0.4, "when": "before", "path": "/sale"}})
    started = time.monotonic()
    assert post_sale(c7, "H2").status_code == 200
    assert time.monotonic() - started >= 0.4


def test_malformed_json_cuts_a_successful_answer(c7):
    arm(c7, {"malformed_json": {"path": "/product"}})
    r = products(c7, 1)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    assert products(c7, 1).json()["Products"]


def test_schema_drift_renames_and_drops_fields_at_any_depth(c7):
    arm(c7, {"schema_drift": {"rename": {"SKU": "Sku"}, "drop": ["Name"], "count": 1}})
    drifted = products(c7, 1).json()["Products"]
    assert all("Sku" in p and "SKU" not in p and "Name" not in p for p in drifted)
    assert all("SKU" in p for p in products(c7, 1).json()["Products"])


def test_a_drift_that_matches_nothing_stays_armed_and_unreported(c7):
    arm(c7, {"schema_drift": {"rename": {"NoSuchField": "X"}}})
    products(c7, 1)
    assert "fault" not in calls(c7)[-1]
    assert requests.get(f"{c7.url}/_sandbox/faults", timeout=5).json()["faults"]["schema_drift"][0]["count"] == 1


def test_duplicate_items_delivers_each_item_twice(c7):
    arm(c7, {"duplicate_items": {"list_key": "Products"}})
    skus = [p["SKU"] for p in products(c7, 1).json()["Products"]]
    assert skus == ["SKU-0", "SKU-0", "SKU-1", "SKU-1"]


@pytest.mark.parametrize("by, page2", [(-1, ["SKU-1", "SKU-2"]), (1, ["SKU-3"])])
def test_pages_shift_while_read(c7, by, page2):
    arm(c7, {"shift_pages": {"list_key": "Products", "by": by}})
    first = [p["SKU"] for p in products(c7, 1).json()["Products"]]
    second = [p["SKU"] for p in products(c7, 2).json()["Products"]]
    third = [p["SKU"] for p in products(c7, 3).json()["Products"]]
    assert first == ["SKU-0", "SKU-1"] and second == page2 and third == ["SKU-4"]
    assert [c.get("fault") for c in calls(c7)] == [None, ["shift_pages"], None]


def test_graphql_operation_narrows_a_fault_to_one_root_field():
    server = start_server(marketplacer.create_app(api_key="mkey"))
    try:
        arm(server, {"status_burst": {"status": 503, "operation": "invoices", "count": None}})
        other = requests.post(f"{server.url}/graphql", json={"query": "{ refundRequests(first: 1) { totalCount } }"}, headers=MKP_AUTH, timeout=5)
        hit = requests.post(f"{server.url}/graphql", json={"query": "query Q { invoices(first: 1) { totalCount } }"}, headers=MKP_AUTH, timeout=5)
        assert other.status_code == 200 and hit.status_code == 503
        assert calls(server)[-1]["operation"] == ["invoices"]
    finally:
        server.stop()
    assert graphql_fields(b'{"query": "mutation { shipmentCreate(input: {}) { errors { message } } }"}') == {"shipmentCreate"}
    assert graphql_fields(b"not json") == set()


def test_mirakl_bursts_speak_mirakls_error_shape():
    server = start_server(mirakl.create_app(api_key="k", shop_id=1))
    try:
        arm(server, {"status_burst": {"status": 500}})
        r = requests.get(f"{server.url}/api/orders", headers={"Authorization": "k"}, timeout=5)
        assert r.status_code == 500 and r.json() == {"status": 500, "message": "sandbox fault"}
    finally:
        server.stop()


def test_echo_credentials_answers_an_error_quoting_every_header_unprocessed(c7):
    arm(c7, {"echo_credentials": {"path": "/sale", "method": "POST"}})
    r = post_sale(c7, "ECHO-1")
    assert r.status_code == 400
    message = r.json()[0]["Exception"]
    assert "api-auth-accountid: acct" in message and "api-auth-applicationkey: key" in message and "/sale" in message
    assert sales(c7) == []  # refused, not processed
    assert post_sale(c7, "ECHO-2").status_code == 200 and sales(c7) == ["ECHO-2"]  # once only
    assert [c.get("fault") for c in calls(c7)] == [["echo_credentials"], None]


def test_echo_credentials_refuses_in_band_where_the_vendor_does():
    """Marketplacer mutations refuse in their payload's errors (HTTP 200); Mirakl refuses each
    ST01 shipment in shipment_errors and each stock line in the import's error report."""
    mkp = start_server(marketplacer.create_app(api_key="mkey"))
    mir = start_server(mirakl.create_app(api_key="mirakl-secret-key", shop_id=1))
    try:
        arm(mkp, {"echo_credentials": {"operation": "variantUpdate"}})
        r = requests.post(f"{mkp.url}/graphql", headers=MKP_AUTH, timeout=5,
                          json={"query": 'mutation { variantUpdate(input: {variantId: "x", attributes: {countOnHand: 1}}) { errors { field messages } } }'})
        assert r.status_code == 200
        (error,) = r.json()["data"]["variantUpdate"]["errors"]
        assert "marketplacer-api-key: mkey" in error["messages"][0]

        auth = {"Authorization": "mirakl-secret-key"}
        arm(mir, {"echo_credentials": [{"path": "/api/shipments", "method": "POST"}, {"path": "/api/offers/stock/imports"}]})
        r = requests.post(f"{mir.url}/api/shipments", json={"shipments": [{"order_id": "O-1", "shipment_lines": []}]}, headers=auth, timeout=5)
        assert r.status_code == 201 and r.json()["shipment_success"] == []
        assert "authorization: mirakl-secret-key" in r.json()["shipment_errors"][0]["message"]
        requests.post(f"{mir.url}/_sandbox/offers", json=[mirakl.make_offer("SKU-1", 0)], timeout=5).raise_for_status()
        r = requests.post(f"{mir.url}/api/offers/stock/imports", headers=auth, timeout=5,
                          files={"file": ("s.csv", b"offer-sku;quantity;warehouse-code;update-delete\nSKU-1;5;;update\n", "text/csv")})
        import_id = r.json()["import_id"]
        for _ in range(5):
            status = requests.get(f"{mir.url}/api/offers/stock/imports/{import_id}/status", headers=auth, timeout=5).json()
            if status["status"] == "COMPLETE":
                break
        report = requests.get(f"{mir.url}/api/offers/stock/imports/{import_id}/error_report", headers=auth, timeout=5).text
        assert "authorization: mirakl-secret-key" in report and "SKU-1" in report
        offers = requests.get(f"{mir.url}/_sandbox/offers", timeout=5).json()["offers"]
        assert [o["quantity"] for o in offers] == [0]  # refused: nothing changed
    finally:
        mkp.stop()
        mir.stop()
