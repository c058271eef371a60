"""The SFCC emulator's rules over real HTTP: tokens and scopes, the Orders API's limits, custom
attributes, and OCI's import rules (a record id applied once, stale and invalid records, gzip),
exports and the fault layer."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from sandbox.sfcc_builders import make_order, plain

ORG = "f_ecom_zzxy_prd"
ORDERS = f"/checkout/orders/v1/organizations/{ORG}/orders"
IMPEX = f"/inventory/impex/v1/organizations/{ORG}/availability-records"


@pytest.fixture(scope="module")
def server():
    from sandbox import sfcc
    from sandbox.server import start_server

    srv = start_server(sfcc.create_app())
    yield srv
    srv.stop()


class Api:
    def __init__(self, url: str, scope: str = "sfcc.orders.rw sfcc.products sfcc.inventory.impex-inventory.rw"):
        self.url = url
        r = requests.post(f"{url}/dwsso/oauth2/access_token", auth=("demo-sfcc-client", "demo-sfcc-secret"),
                          data={"grant_type": "client_credentials", "scope": f"SALESFORCE_COMMERCE_API:zzxy_prd {scope}"}, timeout=10)
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", headers={**self.headers, **kw.pop("headers", {})}, timeout=10, **kw)


@pytest.fixture
def api(server):
    requests.post(f"{server.url}/_sandbox/reset", timeout=10).raise_for_status()
    return Api(server.url)


def test_tokens_need_the_client_the_grant_and_the_tenant(server):
    url = f"{server.url}/dwsso/oauth2/access_token"
    form = {"grant_type": "client_credentials", "scope": "SALESFORCE_COMMERCE_API:zzxy_prd sfcc.orders"}
    assert requests.post(url, auth=("demo-sfcc-client", "nope"), data=form, timeout=10).json()["error"] == "invalid_client"
    assert requests.post(url, auth=("demo-sfcc-client", "demo-sfcc-secret"), data={**form, "grant_type": "password"}, timeout=10).status_code == 400
    assert requests.post(url, auth=("demo-sfcc-client", "demo-sfcc-secret"), data={**form, "scope": "sfcc.orders"}, timeout=10).json()["error"] == "invalid_scope"
    ok = requests.post(url, auth=("demo-sfcc-client", "demo-sfcc-secret"), data=form, timeout=10).json()
    assert ok["token_type"] == "Bearer" and ok["expires_in"] == 1799 and "sfcc.orders" in ok["scope"].split()


def test_calls_need_a_live_token_for_this_organisation_with_the_scope(server, api):
    assert requests.get(f"{server.url}{ORDERS}", params={"siteId": "UK"}, timeout=10).status_code == 401
    assert api("GET", ORDERS.replace(ORG, "f_ecom_abcd_prd"), params={"siteId": "UK"}).status_code == 403
    reader = Api(server.url, scope="sfcc.orders")
    assert reader("GET", ORDERS, params={"siteId": "UK"}).status_code == 200
    assert reader("PUT", f"{ORDERS}/1/export-status", params={"siteId": "UK"}, json={"status": "exported"}).status_code == 403
    assert reader("POST", f"{IMPEX}/imports", json={}).status_code == 403
    requests.post(f"{server.url}/_sandbox/expire_tokens", timeout=10).raise_for_status()
    assert api("GET", ORDERS, params={"siteId": "UK"}).status_code == 401


def test_the_orders_api_keeps_its_limits(api):
    get = lambda **q: api("GET", ORDERS, params=q)  # noqa: E731
    assert get().status_code == 400 and "siteId" in get().json()["detail"]
    assert get(siteId="DE").status_code == 404
    assert get(siteId="UK", limit=201).status_code == 400
    assert get(siteId="UK", limit=200, offset=9_800).status_code == 200
    assert get(siteId="UK", limit=200, offset=9_801).status_code == 400
    assert get(siteId="UK", exportStatus="ready,failed,exported,not_exported").status_code == 400
    assert get(siteId="UK", status="new,completed,cancelled").status_code == 400


def test_orders_filter_sort_and_stay_on_their_site(server, api):
    orders = [make_order(f"000{i}", "UK", [{"sku": "A", "quantity": 1, "price": "1.00"}]) for i in (3, 1, 2)]
    orders[0]["creationDate"], orders[1]["creationDate"], orders[2]["creationDate"] = "2026-11-30T10:03:00.000Z", "2026-11-30T10:01:00.000Z", "2026-11-30T10:02:00.000Z"
    orders[2]["exportStatus"] = "exported"
    requests.post(f"{server.url}/_sandbox/orders", json=plain(orders), timeout=10).raise_for_status()
    page = api("GET", ORDERS, params={"siteId": "UK", "exportStatus": "ready", "sortBy": "creation_date", "sortOrder": "asc"}).json()["data"]
    assert [o["orderNo"] for o in page] == ["0001", "0003"]
    assert [o["orderNo"] for o in api("GET", ORDERS, params={"siteId": "UK"}).json()["data"]] == ["0003", "0002", "0001"]  # newest first by default
    assert api("GET", f"{ORDERS}/0001", params={"siteId": "US"}).status_code == 404


def test_only_custom_attributes_can_be_patched_and_statuses_take_the_spec_enums(server, api):
    requests.post(f"{server.url}/_sandbox/orders", json=plain([make_order("0001", "UK", [{"sku": "A", "quantity": 1, "price": "1.00"}])]), timeout=10).raise_for_status()
    path, site = f"{ORDERS}/0001", {"siteId": "UK"}
    assert api("PATCH", path, params=site, json={"c_trackingNumbers": "T1", "status": "completed"}).status_code == 400
    assert api("PATCH", path, params=site, json={"c_trackingNumbers": "T1"}).status_code == 204
    assert api("PUT", f"{path}/shipping-status", params=site, json={"status": "delivered"}).status_code == 400
    assert api("PUT", f"{path}/shipping-status", params=site, json={"status": "part_shipped"}).status_code == 204
    order = api("GET", path, params=site).json()
    assert order["c_trackingNumbers"] == "T1" and order["shippingStatus"] == "part_shipped" and order["status"] == "new"


def _import(api, lines: list[dict] | bytes) -> tuple[str, str]:
    started = api("POST", f"{IMPEX}/imports", json={}).json()
    body = lines if isinstance(lines, bytes) else ("\n".join(json.dumps(x) for x in lines) + "\n").encode()
    assert api("PUT", started["uploadLink"], data=body).status_code == 202
    return started["importId"], started["importStatusLink"]


def _poll(api, link: str) -> dict:
    for _ in range(5):
        status = api("GET", link).json()
        if status["status"] in ("COMPLETED", "FAILED"):
            return status
    raise AssertionError(status)


def test_an_import_applies_each_record_id_once_and_reports_bad_records_by_line(server, api):
    loc = {"location": "uk-warehouse", "mode": "UPDATE"}
    rec = lambda rid, sku, qty, date="2026-11-30T10:00:00.000Z": {"recordId": rid, "sku": sku, "onHand": qty, "effectiveDate": date}  # noqa: E731
    requests.post(f"{server.url}/_sandbox/config", json={"record_errors": {"C": "SKU C is blocked"}}, timeout=10).raise_for_status()
    file = [loc, rec("r1", "A", 5), rec("r2", "B", -1), rec("r3", "C", 2), {"location": "mars", "mode": "UPDATE"}, rec("r4", "D", 1)]
    _, link = _import(api, file)
    assert api("GET", link).json()["status"] == "IN_PROGRESS"  # nothing applied before the end
    assert requests.get(f"{server.url}/_sandbox/oci/inventory", timeout=10).json()["records"] == []
    status = _poll(api, link)
    assert (status["status"], status["recordsReadCount"], status["recordsProcessedCount"]) == ("COMPLETED", 4, 1)
    assert [e.split(":")[0] for e in status["validationErrors"]] == ["Line 3", "Line 4", "Line 6"]
    assert "recordId r2 (sku B)" in status["validationErrors"][0] and "SKU C is blocked" in status["validationErrors"][1]
    assert "location mars does not exist" in status["validationErrors"][2]

    # the same records again (a re-sent file) and an older one: skipped, nothing changes
    _, link = _import(api, gzip.compress(("\n".join(json.dumps(x) for x in [loc, rec("r1", "A", 5), rec("r9", "A", 0, "2026-11-29T10:00:00.000Z")]) + "\n").encode()))
    again = _poll(api, link)
    assert (again["recordsProcessedCount"], again["recordsSkippedCount"]) == (0, 2)
    (record,) = requests.get(f"{server.url}/_sandbox/oci/inventory", timeout=10).json()["records"]
    assert (record["sku"], record["onHand"], record["recordId"]) == ("A", 5, "r1")
    assert [a["recordId"] for a in requests.get(f"{server.url}/_sandbox/oci/applied", timeout=10).json()["applied"]] == ["r1"]


def test_an_upload_sent_twice_after_a_lost_answer_is_applied_once(server, api):
    started = api("POST", f"{IMPEX}/imports", json={}).json()
    body = (json.dumps({"location": "uk-warehouse", "mode": "UPDATE"}) + "\n" + json.dumps({"recordId": "x1", "sku": "A", "onHand": 3, "effectiveDate": "2026-11-30T10:00:00Z"})).encode()
    requests.post(f"{server.url}/_sandbox/faults", json={"lose_response_after_commit": {"path": started["uploadLink"].rsplit("/", 1)[1], "method": "PUT"}}, timeout=10)
    assert api("PUT", started["uploadLink"], data=body).status_code == 502  # taken, answer lost
    assert api("PUT", started["uploadLink"], data=body).status_code == 202  # the client's retry
    status = _poll(api, started["importStatusLink"])
    assert (status["recordsReadCount"], status["recordsProcessedCount"], status["recordsSkippedCount"]) == (2, 1, 1)
    assert len(requests.get(f"{server.url}/_sandbox/oci/applied", timeout=10).json()["applied"]) == 1


def test_an_export_lists_a_locations_records_as_ndjson(server, api):
    requests.post(f"{server.url}/_sandbox/oci/inventory", json=[{"location": "uk-warehouse", "sku": "A", "onHand": 7, "reserved": 2},
                                                               {"location": "eu-warehouse", "sku": "B", "onHand": 1}], timeout=10).raise_for_status()
    assert api("POST", f"{IMPEX}/exports", json={"objects": {"locations": ["nowhere"]}}).status_code == 400
    started = api("POST", f"{IMPEX}/exports", json={"objects": {"locations": ["uk-warehouse"]}}).json()
    status = api("GET", started["exportStatusLink"]).json()
    assert status["status"] == "COMPLETED"
    lines = [json.loads(x) for x in api("GET", status["download"]["downloadLink"]).text.splitlines()]
    assert lines[0] == {"location": "uk-warehouse"} and [(x["sku"], x["onHand"], x["ato"]) for x in lines[1:]] == [("A", 7, 5)]


def test_throttling_answers_429_with_retry_after(server, api):
    requests.post(f"{server.url}/_sandbox/config", json={"rate_limit_per_minute": 2, "retry_after": 7}, timeout=10).raise_for_status()
    answers = [api("GET", ORDERS, params={"siteId": "UK"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429] and answers[2].headers["Retry-After"] == "7"


def test_custom_attributes_must_be_defined_when_the_config_lists_them(server, api):
    requests.post(f"{server.url}/_sandbox/orders", json=plain([make_order("0001", "UK", [{"sku": "A", "quantity": 1, "price": "1.00"}])]), timeout=10).raise_for_status()
    requests.post(f"{server.url}/_sandbox/config", json={"order_attributes": ["c_trackingNumbers"]}, timeout=10).raise_for_status()
    path, site = f"{ORDERS}/0001", {"siteId": "UK"}
    refused = api("PATCH", path, params=site, json={"c_trackingNumbers": "T1", "c_carriers": "dpd"})
    assert refused.status_code == 400 and "c_carriers" in refused.json()["detail"]
    assert api("PATCH", path, params=site, json={"c_trackingNumbers": "T1"}).status_code == 204
