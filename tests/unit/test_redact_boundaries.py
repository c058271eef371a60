"""The one redaction at the boundaries (ledger writes, e-mails, log lines): the run's registered
secrets go wherever they hide, credential values go after their names even when unknown, business
text stays as it is, and every log line of the process passes it."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from commerce_sync import redact
from commerce_sync.redact import MASK, RedactingFilter, register_secret_source, register_secrets, scrub, scrub_data, scrub_text

SECRET = "sk-live-7f3a/91+b&c"


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.setattr(redact, "_values", set())
    monkeypatch.setattr(redact, "_sources", [])
    redact._known.cache_clear()
    yield
    redact._known.cache_clear()


def test_registered_secrets_are_cut_out_in_every_form_they_take_in_text():
    register_secrets([SECRET, None, "", "abc"])  # empty and too-short values are ignored
    for text in (f"key {SECRET} end", f"<td>key sk-live-7f3a/91+b&amp;c</td>", "url ?k=sk-live-7f3a%2F91%2Bb%26c", '{"k": "sk-live-7f3a\\/91+b&c"}'):
        cleaned = scrub_text(text)
        assert "7f3a" not in cleaned, text
        assert MASK in cleaned
    assert scrub_text("abc stays") == "abc stays"


@pytest.mark.parametrize("text, kept", [
    ("request refused with headers host: api; marketplacer-api-key: unknown-key-1; accept: */*", "host: api;"),
    ('{"Authorization": "Bearer eyJhbGciOi.x.y", "sku": "A-1"}', '"sku": "A-1"'),
    ("GET /api/orders?apikey=zz-unknown&max=10", "&max=10"),
    ("api-auth-accountid: acc-9; api-auth-applicationkey: app-key-9", "api-auth-accountid: "),
    ("&quot;client_secret&quot;: &quot;s3cr3t-value&quot;", "client_secret"),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: "),
])
def test_values_after_a_credentials_name_are_masked_even_when_unknown(text, kept):
    cleaned = scrub_text(text)
    assert MASK in cleaned and kept in cleaned
    for value in ("unknown-key-1", "eyJhbGciOi", "zz-unknown", "acc-9", "app-key-9", "s3cr3t-value", "dXNlcjpwYXNz"):
        assert value not in cleaned


@pytest.mark.parametrize("text", [
    "next_page_token did not advance",
    "channel total 45.00, Cin7 44.90 (+0.10 GBP)",
    "Marketplace charges MKP-PAYOUT-100 to account 6100",
    "carrier 'Pigeon Post' is not one of Marketplacer's postage carriers",
    "box 1 shipped 2026-11-22 10:00 UTC (DPD, 15501234567890) is not on the channel",
])
def test_business_text_is_left_alone(text):
    register_secrets([SECRET])
    assert scrub_text(text) == text


def test_structures_are_walked_and_values_kept_in_type():
    register_secrets([SECRET])
    out = scrub({"reasons": [{"check": "channel_refused", "detail": f"refused: {SECRET}"}], "n": 3, "total": Decimal("1.10"), SECRET: ("x", SECRET)})
    assert out == {"reasons": [{"check": "channel_refused", "detail": f"refused: {MASK}"}], "n": 3, "total": Decimal("1.10"), MASK: ("x", MASK)}


def test_data_records_lose_known_secrets_only_and_are_not_copied_when_clean():
    register_secrets([SECRET])
    clean = {"next_page_token": "abc", "rows": [{"sku": "A", "qty": 1}]}
    assert scrub_data(clean) is clean  # a vendor's field names are data, not credentials
    dirty = {"rows": [{"sku": "A", "note": f"x {SECRET}"}]}
    assert scrub_data(dirty) == {"rows": [{"sku": "A", "note": f"x {MASK}"}]}


def test_the_ledgers_json_columns_are_serialised_with_known_secrets_cut_out():
    from commerce_sync.redact import scrubbed_json

    register_secrets([SECRET])
    assert scrubbed_json({"amount": Decimal("12.10"), "sku": "A"}) == '{"amount":12.1,"sku":"A"}'
    assert scrubbed_json({"detail": f"refused: {SECRET}", SECRET: [SECRET]}) == '{"detail":"refused: ***","***":["***"]}'


def test_a_source_gives_its_current_secrets_and_is_held_weakly():
    class Auth:
        token = "tok-first-value"

        def secrets(self):
            return [self.token]

    auth = Auth()
    register_secret_source(auth.secrets)
    assert scrub_text("a tok-first-value b") == f"a {MASK} b"
    auth.token = "tok-refreshed-value"
    assert scrub_text("a tok-refreshed-value b") == f"a {MASK} b"
    del auth
    assert scrub_text("a tok-refreshed-value b") == "a tok-refreshed-value b"


def test_a_log_line_and_its_traceback_lose_secrets_and_personal_data(caplog):
    register_secrets([SECRET])
    logger = logging.getLogger("commerce_sync.test_boundary")
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "refused %s for %s", (SECRET, "jo@example.com"), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == f"refused {MASK} for {MASK}"
    try:
        raise ValueError(f"vendor said: apikey={SECRET}")
    except ValueError:
        import sys

        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "7f3a" not in text and "ValueError" in text and "failed" in text


def test_every_record_of_the_process_is_redacted_once_installed(caplog):
    register_secrets([SECRET])
    redact.install_log_redaction()
    redact.install_log_redaction()  # idempotent
    assert getattr(logging.getLogRecordFactory(), "commerce_sync_redaction", False)
    caplog.set_level(logging.INFO)
    logging.getLogger("urllib3.connectionpool").info("GET /x?token=%s", SECRET)
    logging.getLogger("commerce_sync.flows.x").warning("echoed: %s", SECRET)
    assert "7f3a" not in caplog.text and caplog.text.count(MASK) == 2
