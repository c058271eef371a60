"""Redaction: credentials and personal data never survive; business data stays readable."""

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_sync.redact import MASK, is_sensitive_key, redact, redact_url


def test_sensitive_keys_are_masked_wholesale_and_business_fields_kept():
    payload = {
        "api-auth-applicationkey": "k-123456",
        "api-auth-accountid": "acc-1",
        "marketplacer-api-key": "mk-1",
        "ShippingAddress": {"Line1": "1 George St", "City": "Sydney"},
        "billing_address": {"zip_code": "2000"},
        "buyerEmailAddress": "jo@example.com",
        "buyerFirstName": "Jo",
        "surname": "Bloggs",
        "Contact": "Jo Bloggs",
        "customer_name": "Jo Bloggs",
        "Phone": "0400 000 000",
        "client_secret": "s",
        "SKU": "CS-TEE-BLK-M",
        "Quantity": 2,
        "Price": Decimal("45.00"),
        "ExternalID": "MKP-1001",
        "Customer": "Marketplacer AU",
        "Account": "200",
        "OrderDate": "2026-11-22T12:00:00Z",
        "Name": "Tee black M",
    }
    out = redact(payload)
    masked = {"api-auth-applicationkey", "api-auth-accountid", "marketplacer-api-key", "ShippingAddress", "billing_address"}
    masked |= {"buyerEmailAddress", "buyerFirstName", "surname", "Contact", "customer_name", "Phone", "client_secret"}
    assert {k for k, v in out.items() if v == MASK} == masked
    for key in payload.keys() - masked:
        assert out[key] == payload[key]
    assert isinstance(out["Price"], Decimal) and out is not payload
    assert payload["ShippingAddress"]["Line1"] == "1 George St"  # a copy: the input is untouched


def test_key_matching_ignores_case_dashes_and_underscores():
    for key in ("Authorization", "API_KEY", "api-key", "Post_Code", "postalCode", "E-Mail", "next_page_token"):
        assert is_sensitive_key(key), key
    for key in ("SKU", "Quantity", "Price", "ExternalID", "Customer", "CompanyName", "TrackingNumber", "Account"):
        assert not is_sensitive_key(key), key


def test_empty_sensitive_values_stay_visible():
    # an empty or missing address is itself a finding when debugging a rejected order
    assert redact({"Email": "", "ShippingAddress": None}) == {"Email": "", "ShippingAddress": None}


def test_free_text_is_scrubbed_of_emails_phones_and_known_secrets():
    text = (
        "call +61 400 123 456 or (02) 9999 8888 or 415-555-0123, mail jo.b+x@example.co.uk, key k-98765 "
        "sku CS-0123-4567 qty 12 price 1234.50 order 100234567 on 2026-11-22T10:00:00"
    )
    out = redact(text, secrets=["k-98765"])
    for gone in ("400 123 456", "9999 8888", "555-0123", "jo.b+x@example.co.uk", "k-98765"):
        assert gone not in out
    for kept in ("CS-0123-4567", "qty 12", "1234.50", "100234567", "2026-11-22T10:00:00"):
        assert kept in out


def test_secrets_are_cut_out_of_strings_keys_and_bytes_and_short_ones_ignored():
    out = redact({"note": "auth=xq-77-zz;", "xq-77-zz": 1, "raw": b"x xq-77-zz y"}, secrets=["xq-77-zz", "ab", ""])
    assert out == {"note": "auth=***;", MASK: 1, "raw": "x *** y"}


def test_longer_secret_is_masked_whole_when_it_contains_a_shorter_one():
    assert redact("Basic dXNlcjpwYXNz", secrets=["pass", "dXNlcjpwYXNz"]) == "Basic ***"


def test_scalars_pass_through_and_tuples_become_lists():
    assert redact(Decimal("12.10")) == Decimal("12.10")
    assert redact(None) is None and redact(7) == 7 and redact(True) is True
    assert redact(("a", 1)) == ["a", 1]


def test_json_text_bodies_are_redacted_structurally_and_keep_amounts_exact():
    body = '{"password": "pw-1", "Lines": [{"SKU": "A", "Price": 12.10, "Tax": 0.30000000000000004}], "FirstName": "Jo"}'
    out = redact(body)
    assert json.loads(out, parse_float=Decimal) == {
        "password": MASK,
        "Lines": [{"SKU": "A", "Price": Decimal("12.10"), "Tax": Decimal("0.30000000000000004")}],
        "FirstName": MASK,
    }
    assert '"Price":12.10' in out  # written digit for digit, not as a float or a string
    assert redact(b'[{"email": "a@b.co"}]') == '[{"email":"***"}]'
    assert redact("{not json jo@example.com") == "{not json ***"


def test_urls_lose_sensitive_query_values_and_secrets_even_percent_encoded():
    assert redact_url("http://h/x?apikey=abc123&Page=2") == "http://h/x?apikey=***&Page=2"
    assert redact_url("http://h/x?q=a%2Bsecret%2Fz&Limit=5", secrets=["a+secret/z"]) == "http://h/x?q=***&Limit=5"
    assert redact_url("http://h/shops/sec-ret-9/orders", secrets=["sec-ret-9"]) == "http://h/shops/***/orders"


_leaf = st.one_of(st.text(max_size=12), st.integers(), st.none(), st.decimals(allow_nan=False, allow_infinity=False, places=2))
_tree = st.recursive(_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)), max_leaves=20)

# Secrets are keys and tokens: text with letters in it. Numbers in a payload are never scanned
# (masking digits inside a quantity would corrupt data), so an all-digit "secret" is out of scope.
_secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789-._~+/=", min_size=6, max_size=24).filter(lambda s: any(c.isalpha() for c in s))


def _plant(tree, secret: str, where: int):
    return [
        tree,
        {"note": f"x{secret}y"},
        [secret],
        {"deep": {"list": ["a", f"pre {secret} post"]}},
        {secret: tree},
        json.dumps({"body": {"n": f"{secret}"}}),
        secret.encode(),
        ({"k": f"Bearer {secret}"},),
    ][where]


@settings(max_examples=200, deadline=None)
@given(tree=_tree, secret=_secret, where=st.integers(0, 7))
def test_a_known_secret_never_survives_anywhere_in_a_structure(tree, secret, where):
    out = redact({"payload": _plant(tree, secret, where), "also": tree}, secrets=[secret])
    assert secret not in json.dumps(out, default=str)
    assert secret not in str(out)


_business_keys = st.sampled_from(["SKU", "Quantity", "Price", "Lines", "ExternalID", "Customer", "Name", "Total"])
_business_tree = st.recursive(_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(_business_keys, kids, max_size=4)), max_leaves=20)


def _numbers(obj) -> list:
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in _numbers(v)]
    if isinstance(obj, (list, tuple)):
        return [n for v in obj for n in _numbers(v)]
    return [obj] if isinstance(obj, (int, Decimal)) else []


@settings(max_examples=100, deadline=None)
@given(tree=_business_tree)
def test_business_numbers_are_never_altered(tree):
    out = redact({"data": tree}, secrets=["abcd", "1234"])
    assert _numbers(out) == _numbers(tree)  # same values, same order, Decimal stays Decimal
    assert [type(n) for n in _numbers(out)] == [type(n) for n in _numbers(tree)]


def test_a_bounded_redaction_walks_only_what_the_log_keeps():
    import json as _json

    page = {"Total": 1000, "ProductAvailabilityList": [{"SKU": f"S{i}", "Email": f"b{i}@example.org", "Available": i} for i in range(1000)]}
    out = _json.loads(redact(_json.dumps(page), ["sekrit-key"], max_chars=500))
    rows = out["ProductAvailabilityList"]
    assert out["Total"] == 1000 and 5 < len(rows) < 30
    assert rows[-1] == f"...[{1000 - (len(rows) - 1)} more items not logged]"
    assert all(r["Email"] == "***" for r in rows[:-1])  # what is kept is redacted as ever
    assert "example.org" not in _json.dumps(out)
    assert redact(page, max_chars=None)["ProductAvailabilityList"][999]["Email"] == "***"  # unbounded: every row


def test_addresses_are_scrubbed_however_they_are_written():
    """The payload log keeps redacted text: an address in another script, percent-encoded (a URL
    path), HTML- or JSON-escaped (a body kept as text) is masked too. Before: all kept whole."""
    written = [
        "jöran.ström@exämple.se",
        "alex.buyer%40example.com",
        "alex.buyer&#64;example.com",
        "alex.buyer&#x40;example.com",
        "alex.buyer\\u0040example.com",
        "ALEX.BUYER@EXAMPLE.COM",
    ]
    for address in written:
        out = redact(f"customer {address} wrote")
        assert out == f"customer {MASK} wrote", (address, out)
    assert redact_url("https://shop.example/api/customers/alex.buyer%40example.com/orders") == f"https://shop.example/api/customers/{MASK}/orders"
    for business in ("price 12.50@3.00 each", "v1.2@3", "2026-11-22T10:00:00", "CS-TEE-BLK-M"):
        assert redact(business) == business

