"""Personal values in staged and quarantined payloads are sealed at rest and read back whole."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from commerce_sync.ledger import Ledger
from commerce_sync.ledger.sealing import SEALED, SealKeyMissing, seal, unseal

ORDER = {
    "legacyId": 42, "totalCents": 9990, "buyerEmailAddress": "ada@example.org", "buyerPhone": "+44 20 7946 0958",
    "shippingAddress": {"address": "12 Engine Row", "postcode": "N1 9GU"},
    "lineItems": [{"variantSku": "CS-TEE", "quantity": 2}], "note": None,
}


def test_seal_hides_personal_values_and_keeps_the_rest_readable():
    sealed = seal(ORDER)
    raw = json.dumps(sealed)
    assert "ada@example.org" not in raw and "12 Engine Row" not in raw and "7946" not in raw
    assert sealed["legacyId"] == 42 and sealed["lineItems"] == ORDER["lineItems"]  # business data untouched
    assert set(sealed["shippingAddress"]) == {SEALED}
    assert unseal(sealed) == ORDER
    assert seal(sealed) == sealed  # sealing twice changes nothing


def test_rotation_first_key_seals_any_key_opens(monkeypatch):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("COMMERCE_SYNC_SEAL_KEY", old)
    sealed = seal(ORDER)
    monkeypatch.setenv("COMMERCE_SYNC_SEAL_KEY", f"{new},{old}")
    assert unseal(sealed) == ORDER
    monkeypatch.setenv("COMMERCE_SYNC_SEAL_KEY", new)
    with pytest.raises(Exception):  # InvalidToken: the old key is gone
        unseal(sealed)


def test_no_key_is_a_clear_error_not_plaintext(monkeypatch):
    monkeypatch.delenv("COMMERCE_SYNC_SEAL_KEY", raising=False)
    monkeypatch.delenv("AIRFLOW__CORE__FERNET_KEY", raising=False)
    monkeypatch.setattr("commerce_sync.ledger.sealing._key_material", lambda: (_ for _ in ()).throw(SealKeyMissing("set COMMERCE_SYNC_SEAL_KEY")))
    with pytest.raises(SealKeyMissing, match="COMMERCE_SYNC_SEAL_KEY"):
        seal(ORDER)
    assert seal({"legacyId": 1}) == {"legacyId": 1}  # nothing personal: no key needed


def test_the_ledger_stores_sealed_and_reads_whole(ledger_url):
    ledger = Ledger.from_url(ledger_url)
    try:
        ledger.stage("p", "orders_in", "run", [("42", ORDER)])
        ledger.quarantine("p", "orders_in", "42", ORDER, [{"check": "sku_mapped", "detail": "CS-TEE unmapped"}], "run")
        assert ledger.staged("p", "orders_in", "run")[0].payload == ORDER
        assert ledger.open_quarantine("p", "orders_in")[0].payload == ORDER
        with ledger.engine.connect() as conn:
            stored = " ".join(str(v) for v in conn.execute(text("select payload from staged_record union all select payload from quarantine")).scalars())
        assert "ada@example.org" not in stored and "CS-TEE" in stored
        # a row written before sealing existed still reads
        with ledger.engine.begin() as conn:
            conn.execute(text("update staged_record set payload = :p"), {"p": json.dumps({"buyerEmailAddress": "old@example.org"})})
        assert ledger.staged("p", "orders_in", "run")[0].payload == {"buyerEmailAddress": "old@example.org"}
    finally:
        ledger.dispose()
