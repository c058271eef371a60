"""OAuth2 client credentials in the shared client, against the SFCC emulator's Account Manager
token endpoint and its SCAPI Orders API over loopback: one token for many calls, a new one a
margin before it expires, exactly one renewal on a 401, refused credentials as a clear error,
and neither the secret nor any token in the payload log."""

from __future__ import annotations

import json

import pytest
import requests

from commerce_sync.http import ClientError, HttpClient, OAuth2ClientCredentials

SECRET = "client-secret-0f9e8d"
SCOPE = "SALESFORCE_COMMERCE_API:zzxy_prd sfcc.orders.rw"
ORDERS = "/checkout/orders/v1/organizations/f_ecom_zzxy_prd/orders"


@pytest.fixture(scope="module")
def server():
    from sandbox import sfcc
    from sandbox.server import start_server

    srv = start_server(sfcc.create_app(client_id="client-a", client_secret=SECRET))
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def fresh(server):
    requests.post(f"{server.url}/_sandbox/reset", timeout=10).raise_for_status()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(server, log=None, clock=None, secret=SECRET):
    auth = OAuth2ClientCredentials(f"{server.url}/dwsso/oauth2/access_token", "client-a", secret, SCOPE.split(), max_margin=60, clock=clock or Clock())
    return HttpClient(server.url, system="sfcc", auth=auth, payload_log=log.append if log is not None else None), auth


def _issued(server) -> int:
    return requests.get(f"{server.url}/_sandbox/tokens", timeout=10).json()["issued"]


def test_one_token_serves_every_call_until_shortly_before_it_expires(server):
    clock = Clock()
    client, auth = _client(server, clock=clock)
    for _ in range(5):
        assert client.get(ORDERS, params={"siteId": "UK"}) == {"data": []}
    assert auth.fetches == 1 and _issued(server) == 1
    clock.now += 1799 - 61  # the emulator's tokens live 1,799 s: still inside the 60 s margin
    client.get(ORDERS, params={"siteId": "UK"})
    assert auth.fetches == 1
    clock.now += 2  # now within the last minute of its life: renewed before it is sent
    client.get(ORDERS, params={"siteId": "UK"})
    assert auth.fetches == 2 and _issued(server) == 2


def test_a_refused_token_is_renewed_once_and_the_call_goes_through(server):
    client, auth = _client(server)
    client.get(ORDERS, params={"siteId": "UK"})
    requests.post(f"{server.url}/_sandbox/expire_tokens", timeout=10).raise_for_status()  # revoked early, unknown to our clock
    assert client.get(ORDERS, params={"siteId": "UK"}) == {"data": []}
    assert auth.fetches == 2
    calls = requests.get(f"{server.url}/_sandbox/calls", timeout=10).json()["calls"]
    assert [(c["path"].split("/")[1], c["status"]) for c in calls] == [("dwsso", 200), ("checkout", 200), ("checkout", 401), ("dwsso", 200), ("checkout", 200)]


def test_renewal_is_tried_once_not_in_a_loop(server):
    requests.post(f"{server.url}/_sandbox/config", json={"token_ttl": 0}, timeout=10).raise_for_status()  # every token is dead on arrival
    client, auth = _client(server)
    with pytest.raises(ClientError) as caught:
        client.get(ORDERS, params={"siteId": "UK"})
    assert caught.value.status == 401 and auth.fetches == 2


def test_refused_credentials_are_a_client_error_naming_the_token_url_without_the_secret(server):
    client, _ = _client(server, secret="wrong-secret-123")
    with pytest.raises(ClientError) as caught:
        client.get(ORDERS, params={"siteId": "UK"})
    assert caught.value.status == 401 and "access_token" in str(caught.value)
    assert "wrong-secret-123" not in str(caught.value) and "invalid_client" in (caught.value.body or "")
    calls = requests.get(f"{server.url}/_sandbox/calls", timeout=10).json()["calls"]
    assert {c["path"] for c in calls} == {"/dwsso/oauth2/access_token"}  # no API call went out without a token


def test_neither_secret_nor_tokens_are_logged_and_an_uploaded_file_is_logged_by_its_head(server):
    log: list[dict] = []
    client, auth = _client(server, log=log)
    client.get(ORDERS, params={"siteId": "UK"})
    requests.post(f"{server.url}/_sandbox/expire_tokens", timeout=10).raise_for_status()
    client.get(ORDERS, params={"siteId": "UK"})
    with pytest.raises(ClientError) as refused:  # a 403 (scope not granted) is no reason to renew
        client.post("/inventory/impex/v1/organizations/f_ecom_zzxy_prd/availability-records/imports", json={})
    assert refused.value.status == 403 and auth.fetches == 2
    text = json.dumps(log)
    assert len(auth.secrets()) == 4  # the secret, its Basic pair, both tokens
    assert all(s not in text for s in auth.secrets())
    # the token calls are logged too (the token masked), beside the API calls
    assert [e["status"] for e in log if "access_token" not in e["url"]] == [200, 401, 200, 403]  # the OCI scope was not asked for
    assert len([e for e in log if "access_token" in e["url"]]) == 2

    big = "\n".join(json.dumps({"recordId": str(i), "sku": f"SKU-{i}", "onHand": i}) for i in range(5000))
    client.max_logged_body = 2048
    with pytest.raises(ClientError):
        client.request("PUT", "/inventory/impex/v1/organizations/f_ecom_zzxy_prd/availability-records/imports/uploads/none", data=big.encode(), idempotent=True)
    logged = log[-1]["request_body"]
    assert len(logged) < 2200 and logged.startswith('{"recordId": "0"') and f"{len(big)} characters sent" in logged
