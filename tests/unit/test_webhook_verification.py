"""How the webhook receiver decides a request proves itself (commerce_sync/webhooks.py): each
scheme's good, bad and missing proof, constant-time comparison, and the connection's checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from types import SimpleNamespace

import pytest

from commerce_sync import webhooks
from commerce_sync.webhooks import Expected, WebhookConfigError, expected_from, refusal

BODY = b'{"events": [{"id": 1}]}'


def conn(scheme=None, password="s3cret-value", login=None, **extra):
    return SimpleNamespace(conn_id="p__x_webhook", login=login, password=password,
                           extra_dejson={**({"scheme": scheme} if scheme else {}), **extra})


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def centra_signature(secret: str, body: bytes, stamp: int | None = None) -> str:
    stamp = int(time.time()) if stamp is None else stamp
    return f"t={stamp},v1=" + hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "headers, verdict",
    [
        ({"authorization": basic("hook", "s3cret-value")}, None),
        ({"authorization": basic("hook", "wrong")}, "wrong basic credentials"),
        ({"authorization": basic("other", "s3cret-value")}, "wrong basic credentials"),
        ({"authorization": "Basic !!not-base64"}, "malformed basic credentials"),
        ({}, "no basic credentials"),
        ({"authorization": "Bearer s3cret-value"}, "no basic credentials"),
    ],
)
def test_basic_auth(headers, verdict):
    assert refusal(Expected("basic", "s3cret-value", login="hook"), "cin7_core", headers, BODY) == verdict


@pytest.mark.parametrize(
    "headers, verdict",
    [({"authorization": "Bearer s3cret-value"}, None), ({"authorization": "bearer s3cret-value"}, None),
     ({"authorization": "Bearer s3cret-valuE"}, "wrong bearer token"), ({}, "no bearer token")],
)
def test_bearer_token(headers, verdict):
    assert refusal(Expected("bearer", "s3cret-value"), "cin7_core", headers, BODY) == verdict


@pytest.mark.parametrize(
    "headers, verdict",
    [({"x-webhook-secret": "s3cret-value"}, None), ({"x-webhook-secret": "s3cret"}, "wrong X-Webhook-Secret header"),
     ({"x-other": "s3cret-value"}, "no X-Webhook-Secret header")],
)
def test_custom_header(headers, verdict):
    assert refusal(Expected("header", "s3cret-value", header="X-Webhook-Secret"), "mirakl", headers, BODY) == verdict


def test_centra_signature_good_bad_missing_and_stale():
    expected = Expected("signature", "hook-secret")
    assert refusal(expected, "centra", {"x-centra-signature": centra_signature("hook-secret", BODY)}, BODY) is None
    # another secret, another body, a replay from ten minutes ago, no header, a mangled header
    assert refusal(expected, "centra", {"x-centra-signature": centra_signature("guess", BODY)}, BODY) == "bad X-Centra-Signature signature"
    assert refusal(expected, "centra", {"x-centra-signature": centra_signature("hook-secret", BODY)}, BODY + b" ") == "bad X-Centra-Signature signature"
    stale = centra_signature("hook-secret", BODY, int(time.time()) - 600)
    assert refusal(expected, "centra", {"x-centra-signature": stale}, BODY) == "bad X-Centra-Signature signature"
    assert refusal(expected, "centra", {}, BODY) == "no X-Centra-Signature header"
    assert refusal(expected, "centra", {"x-centra-signature": "v1=abc"}, BODY) == "bad X-Centra-Signature signature"


@pytest.mark.parametrize("scheme, headers, secret_given", [
    ("basic", {"authorization": basic("hook", "guess")}, b"hook:guess"),
    ("bearer", {"authorization": "Bearer guess"}, b"guess"),
    ("header", {"x-webhook-secret": "guess"}, b"guess"),
])
def test_every_secret_comparison_is_constant_time(monkeypatch, scheme, headers, secret_given):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(webhooks.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    expected = Expected(scheme, "s3cret-value", login="hook", header="X-Webhook-Secret")
    assert refusal(expected, "cin7_core", headers, BODY) is not None
    assert [given for given, _ in calls] == [secret_given]


def test_the_connection_names_a_scheme_the_system_sends():
    assert expected_from(conn("basic", login="hook"), "cin7_core") == Expected("basic", "s3cret-value", login="hook")
    assert expected_from(conn("signature"), "centra").scheme == "signature"
    with pytest.raises(WebhookConfigError, match="not one centra sends"):
        expected_from(conn("basic"), "centra")  # Centra signs; a password alone would let a forger in
    with pytest.raises(WebhookConfigError, match="not one sfcc sends"):
        expected_from(conn("header", header="X-A"), "sfcc")
    with pytest.raises(WebhookConfigError, match="no secret"):
        expected_from(conn("bearer", password=None), "cin7_core")
    with pytest.raises(WebhookConfigError, match="extra.header"):
        expected_from(conn("header"), "mirakl")


def test_the_secret_stays_out_of_the_repr_and_the_refusal_reasons():
    expected = Expected("header", "s3cret-value", header="X-Webhook-Secret")
    assert "s3cret" not in repr(expected)
    assert "s3cret" not in refusal(expected, "mirakl", {"x-webhook-secret": "s3cret-valu"}, BODY)


def test_flows_wake_on_the_systems_the_pairing_file_names():
    from commerce_sync.pairing import parse_pairing, PairingError
    import yaml
    from tests.conftest import ROOT

    data = yaml.safe_load((ROOT / "include" / "pairings" / "cin7_marketplacer.yaml").read_text())
    data["webhooks"] = {"master": {"connection": "c1", "wakes": ["dispatch_back", "stock_out"]}, "channel": {"connection": "c2", "wakes": ["orders_in"]}}
    pairing = parse_pairing("p", json.loads(json.dumps(data)))
    assert webhooks.waking_sources(pairing, "orders_in") == ["marketplacer"]
    assert webhooks.waking_sources(pairing, "stock_out") == ["cin7_core"]
    assert webhooks.waking_sources(pairing, "refunds") == []
    data["webhooks"]["channel"]["wakes"] = ["catalogue_out"]  # a flow this pairing does not run
    with pytest.raises(PairingError, match="catalogue_out"):
        parse_pairing("p", data)
