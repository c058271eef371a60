"""Redaction: credentials and personal data never survive; business data stays readable."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_sync.redact import MASK, redact, redact_url


def test_sensitive_keys_are_masked_wholesale_and_business_fields_kept():
    payload = {
        "api-auth-applicationkey": "k-123456",
        "ShippingAddress": {"Line1": "1 George St", "City": "Sydney"},
        "buyerEmailAddress": "jo@example.com",
        "buyerFirstName": "Jo",
        "Contact": "Jo Bloggs",
        "SKU": "CS-TEE-BLK-M",
        "Quantity": 2,
        "Price": "45.00",
        "ExternalID": "MKP-1001",
        "OrderDate": "2026-11-22T12:00:00Z",
    }
    out = redact(payload)
    for key in ("api-auth-applicationkey", "ShippingAddress", "buyerEmailAddress", "buyerFirstName", "Contact"):
        assert out[key] == MASK
    for key in ("SKU", "Quantity", "Price", "ExternalID", "OrderDate"):
        assert out[key] == payload[key]


def test_free_text_is_scrubbed_of_emails_phones_and_known_secrets():
    text = "call +61 400 123 456 or (02) 9999 8888, mail jo@example.com, key k-98765 sku CS-0123-4567 on 2026-11-22"
    out = redact(text, secrets=["k-98765"])
    assert "400 123 456" not in out and "9999 8888" not in out and "jo@example.com" not in out and "k-98765" not in out
    assert "CS-0123-4567" in out and "2026-11-22" in out


def test_json_text_bodies_are_redacted_structurally():
    body = json.dumps({"password": "pw-1", "Lines": [{"SKU": "A"}]})
    assert json.loads(redact(body)) == {"password": MASK, "Lines": [{"SKU": "A"}]}


def test_urls_lose_sensitive_query_values():
    assert redact_url("http://h/x?apikey=abc123&Page=2") == "http://h/x?apikey=***&Page=2"


_leaf = st.one_of(st.text(max_size=12), st.integers(), st.none())
_tree = st.recursive(_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)), max_leaves=20)


# Secrets are keys and tokens: text with letters in it. Numbers in a payload are never scanned
# (masking digits inside a quantity would corrupt data), so an all-digit "secret" is out of scope.
_secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=6, max_size=20).filter(lambda s: any(c.isalpha() for c in s))


@settings(max_examples=150, deadline=None)
@given(tree=_tree, secret=_secret, where=st.integers(0, 3))
def test_a_known_secret_never_survives_anywhere_in_a_structure(tree, secret, where):
    planted = [tree, {"note": f"x{secret}y"}, [f"{secret}"], {"deep": {"list": ["a", f"pre {secret} post"]}}][where]
    out = redact({"payload": planted, "also": tree}, secrets=[secret])
    assert secret not in json.dumps(out, default=str)
