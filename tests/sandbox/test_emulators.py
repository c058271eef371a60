"""The emulators behave like the APIs they stand for: auth, paging, limits, errors, faults."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox import cin7, marketplacer
from sandbox.server import start_server

CIN7_AUTH = {"api-auth-accountid": "acct", "api-auth-applicationkey": "key"}
MKP_AUTH = {"marketplacer-api-key": "mkey"}
QUERY = "query($first: Int!, $after: String, $filters: InvoiceFilters) { invoices(first: $first, after: $after, filters: $filters) { totalCount pageInfo { hasNextPage endCursor } nodes { legacyId totalCents lineItems { variantSku } } } }"


@pytest.fixture
def c7():
    server = start_server(cin7.create_app(account_id="acct", application_key="key", rate_limit_per_minute=1000))
    requests.post(f"{server.url}/_sandbox/seed", json={"products": [{"SKU": f"SKU-{i}"} for i in range(5)], "locations": ["WH"], "tax_rules": ["GST"], "customers": ["C"]}, timeout=5)
    yield server
    server.stop()


@pytest.fixture
def mkp():
    server = start_server(marketplacer.create_app(api_key="mkey"))
    yield server
    server.stop()


def _sale(url, ext="E1"):
    r = requests.post(f"{url}/ExternalApi/v2/sale", json={"Customer": "C", "Location": "WH", "TaxRule": "GST", "ExternalID": ext, "SkipQuote": True}, headers=CIN7_AUTH, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def test_cin7_refuses_wrong_credentials_with_the_error_model(c7):
    r = requests.get(f"{c7.url}/ExternalApi/v2/saleList", headers={"api-auth-accountid": "acct", "api-auth-applicationkey": "wrong"}, timeout=5)
    assert r.status_code == 403 and r.json()[0]["ErrorCode"] == 403


def test_cin7_pages_and_refuses_limits_over_1000(c7):
    r = requests.get(f"{c7.url}/ExternalApi/v2/product", params={"Page": 2, "Limit": 2}, headers=CIN7_AUTH, timeout=5).json()
    assert r["Total"] == 5 and r["Page"] == 2 and [p["SKU"] for p in r["Products"]] == ["SKU-2", "SKU-3"]
    r = requests.get(f"{c7.url}/ExternalApi/v2/product", params={"Limit": 1001}, headers=CIN7_AUTH, timeout=5)
    assert r.status_code == 400


def test_cin7_sale_is_two_calls_and_checks_skus_and_totals(c7):
    sale = _sale(c7.url)
    listed = requests.get(f"{c7.url}/ExternalApi/v2/saleList", params={"ExternalID": "E1"}, headers=CIN7_AUTH, timeout=5).json()["SaleList"]
    assert listed[0]["OrderStatus"] == "NOT AVAILABLE"  # header only, no lines yet
    order = {"SaleID": sale["ID"], "Status": "AUTHORISED", "Lines": [{"SKU": "SKU-1", "Quantity": 2, "Price": 10.05, "Discount": 0, "Total": 20.10}], "Total": 20.10}
    bad_sku = dict(order, Lines=[dict(order["Lines"][0], SKU="sku-1")])
    r = requests.post(f"{c7.url}/ExternalApi/v2/sale/order", json=bad_sku, headers=CIN7_AUTH, timeout=5)
    assert r.status_code == 400 and "sku-1" in r.json()[0]["Exception"]  # SKUs are exact
    r = requests.post(f"{c7.url}/ExternalApi/v2/sale/order", json=dict(order, Total=20.11), headers=CIN7_AUTH, timeout=5)
    assert r.status_code == 400 and "Total" in r.json()[0]["Exception"]
    r = requests.post(f"{c7.url}/ExternalApi/v2/sale/order", json=order, headers=CIN7_AUTH, timeout=5)
    assert r.status_code == 200 and r.json()["Total"] == 20.1
    r = requests.post(f"{c7.url}/ExternalApi/v2/sale/order", json=order, headers=CIN7_AUTH, timeout=5)
    assert r.status_code == 400  # an authorised order cannot take lines again
    listed = requests.get(f"{c7.url}/ExternalApi/v2/saleList", params={"ExternalID": "E1"}, headers=CIN7_AUTH, timeout=5).json()["SaleList"]
    assert listed[0]["OrderStatus"] == "AUTHORISED"


def _post_order(url, sale_id, lines, charges=(), **totals):
    body = {"SaleID": sale_id, "Status": "AUTHORISED", "Lines": lines, "AdditionalCharges": list(charges), **totals}
    return requests.post(f"{url}/ExternalApi/v2/sale/order", json=body, headers=CIN7_AUTH, timeout=5)


@pytest.mark.parametrize(
    "calculation, total, before_tax",
    [("Exclusive", "107.95", "92.95"), ("Inclusive", "92.95", "77.95")],  # lines 88.00 + charge 4.95, tax 14.18 + 0.82
)
def test_cin7_does_its_tax_arithmetic_in_both_modes(c7, calculation, total, before_tax):
    header = requests.post(f"{c7.url}/ExternalApi/v2/sale", json={"Customer": "C", "Location": "WH", "TaxRule": "GST", "ExternalID": calculation,
                                                                  "SkipQuote": True, "TaxCalculation": calculation}, headers=CIN7_AUTH, timeout=5).json()
    assert header["TaxCalculation"] == calculation
    lines = [{"SKU": "SKU-1", "Quantity": 2, "Price": 44.00, "Discount": 0, "Tax": 14.18, "Total": 88.00}]
    charges = [{"Description": "Delivery", "Price": 4.95, "Quantity": 1, "Tax": 0.82, "Total": 4.95}]
    wrong = "92.95" if calculation == "Exclusive" else "107.95"  # the other mode's arithmetic
    r = _post_order(c7.url, header["ID"], lines, charges, Tax=15.00, Total=float(wrong))
    assert r.status_code == 400 and "Total" in r.json()[0]["Exception"]
    r = _post_order(c7.url, header["ID"], lines, charges, Tax=14.00, Total=float(total))
    assert r.status_code == 400 and "Tax" in r.json()[0]["Exception"]  # the tax is the lines' and charges'
    r = _post_order(c7.url, header["ID"], lines, charges, Tax=15.00, Total=float(total))
    assert r.status_code == 200, r.text
    order = r.json()
    assert (str(order["Total"]), str(order["TotalBeforeTax"]), str(order["Tax"])) == (total, before_tax, "15.0")


def test_cin7_books_a_sale_in_its_customers_currency_and_lists_customers(c7):
    requests.post(f"{c7.url}/_sandbox/seed", json={"customers": [{"Name": "UK Shop", "Currency": "GBP"}, "AU Shop"]}, timeout=5).raise_for_status()
    sale = requests.post(f"{c7.url}/ExternalApi/v2/sale", json={"Customer": "UK Shop", "Location": "WH", "TaxRule": "GST", "CustomerCurrency": "AUD",
                                                                "SkipQuote": True}, headers=CIN7_AUTH, timeout=5).json()
    assert sale["CustomerCurrency"] == "GBP" and sale["BaseCurrency"] == "AUD"  # the customer's, whatever the request said
    assert _sale(c7.url, "E2")["CustomerCurrency"] == "AUD"  # a bare name keeps the base currency
    found = requests.get(f"{c7.url}/ExternalApi/v2/customer", params={"Name": "UK Shop"}, headers=CIN7_AUTH, timeout=5).json()
    assert found["Total"] == 1 and [(c["Name"], c["Currency"]) for c in found["CustomerList"]] == [("UK Shop", "GBP")]
    r = requests.post(f"{c7.url}/ExternalApi/v2/sale", json={"Customer": "C", "Location": "WH", "TaxRule": "GST", "TaxCalculation": "Gross"},
                      headers=CIN7_AUTH, timeout=5)
    assert r.status_code == 400 and "TaxCalculation" in r.json()[0]["Exception"]


def test_cin7_rate_limit_answers_503_with_retry_after():
    server = start_server(cin7.create_app(account_id="acct", application_key="key", rate_limit_per_minute=3))
    try:
        codes = [requests.get(f"{server.url}/ExternalApi/v2/saleList", headers=CIN7_AUTH, timeout=5) for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 200, 503]
        assert int(codes[-1].headers["Retry-After"]) >= 1
        assert "calls per minute" in codes[-1].json()[0]["Exception"]
    finally:
        server.stop()


def test_faults_burst_latency_and_a_lost_response_that_still_commits(c7):
    requests.post(f"{c7.url}/_sandbox/faults", json={"status_burst": {"status": 503, "count": 2, "retry_after": 1}}, timeout=5)
    codes = [requests.get(f"{c7.url}/ExternalApi/v2/saleList", headers=CIN7_AUTH, timeout=5).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    requests.post(f"{c7.url}/_sandbox/faults", json={"latency_ms": 300}, timeout=5)
    started = time.monotonic()
    requests.get(f"{c7.url}/ExternalApi/v2/saleList", headers=CIN7_AUTH, timeout=5)
    assert time.monotonic() - started >= 0.3
    requests.post(f"{c7.url}/_sandbox/faults", json={"lose_response_after_commit": {"path": "/sale", "method": "POST", "count": 1}}, timeout=5)
    r = requests.post(f"{c7.url}/ExternalApi/v2/sale", json={"Customer": "C", "Location": "WH", "TaxRule": "GST", "ExternalID": "LOST", "SkipQuote": True}, headers=CIN7_AUTH, timeout=5)
    assert r.status_code == 502 and r.content == b""
    sales = requests.get(f"{c7.url}/_sandbox/sales", timeout=5).json()["sales"]
    assert [s["ExternalID"] for s in sales] == ["LOST"]  # committed although the answer was lost
    calls = requests.get(f"{c7.url}/_sandbox/calls", timeout=5).json()["calls"]
    assert [c["status"] for c in calls][:3] == [503, 503, 200]
    requests.post(f"{c7.url}/_sandbox/reset", timeout=5)
    assert requests.get(f"{c7.url}/_sandbox/sales", timeout=5).json()["sales"] == []


def test_marketplacer_needs_its_key(mkp):
    r = requests.post(f"{mkp.url}/graphql", json={"query": "{ invoices(first: 1) { totalCount } }"}, timeout=5)
    assert r.status_code == 401 and r.json()["errors"][0]["message"] == "API Token has expired"


def test_marketplacer_relay_paging_filters_and_graphql_errors(mkp):
    invoices = [{"legacyId": i, "createdAt": f"2026-11-22T10:{i:02d}:00Z", "totalCents": 100 * i, "lineItems": [{"variantSku": "A", "quantity": 1}]} for i in range(1, 8)]
    invoices.append({"legacyId": None, "createdAt": "2026-11-22T10:30:00Z", "totalCents": None, "lineItems": [{"variantSku": "a ", "quantity": 0}]})
    stored = requests.post(f"{mkp.url}/_sandbox/invoices", json={"invoices": invoices}, timeout=5).json()["invoices"]
    assert stored[-1]["legacyId"] is None and stored[-1]["lineItems"][0]["variantSku"] == "a "  # kept broken

    seen, after = [], None
    while True:
        body = requests.post(f"{mkp.url}/graphql", json={"query": QUERY, "variables": {"first": 3, "after": after, "filters": {"createdSince": "2026-11-22T10:02:00Z", "createdUntil": "2026-11-22T10:31:00Z"}}}, headers=MKP_AUTH, timeout=5).json()
        conn = body["data"]["invoices"]
        seen += [n["legacyId"] for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == [2, 3, 4, 5, 6, 7, None] and conn["totalCount"] == 7

    body = requests.post(f"{mkp.url}/graphql", json={"query": "{ invoices(first: 1) { nodes { noSuchField } } }"}, headers=MKP_AUTH, timeout=5).json()
    assert "noSuchField" in body["errors"][0]["message"]
    body = requests.post(f"{mkp.url}/graphql", json={"query": "{ invoices(first: 501) { totalCount } }"}, headers=MKP_AUTH, timeout=5).json()
    assert "500" in body["errors"][0]["message"]
