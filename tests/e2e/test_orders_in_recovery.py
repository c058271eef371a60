"""Exactly once when Cin7's answer is lost after it committed: the next attempt finds the sale by
ExternalID and finishes it instead of creating a second one. Flow steps are called directly (the
same functions the Airflow tasks call) so the failure lands between attempts deterministically."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from commerce_sync.errors import TransientError
from commerce_sync.flows import orders_in
from commerce_sync.runtime import FlowContext
from tests.builders import marketplacer_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.pg]


def _core(counts: dict) -> dict:
    """A load's counts without its API statistics (those vary with retries)."""
    return {k: v for k, v in counts.items() if k not in ("api_calls", "throttled")}


def _staged_and_gated(ctx, run_id):
    now = datetime.now(timezone.utc)
    orders_in.extract(ctx, run_id, start=now - timedelta(hours=1), end=now + timedelta(minutes=1))
    return orders_in.gate(ctx, run_id)


@pytest.mark.parametrize("lost_path", ["/sale", "/sale/order"])
def test_a_lost_response_after_commit_never_makes_a_second_sale(wired, lost_path):
    wired.inject_invoices([marketplacer_invoice(4242, [("CS-CAP-NVY", 2, 2500)], created_at=datetime.now(timezone.utc) - timedelta(minutes=5))])
    requests.post(f"{wired.cin7}/_sandbox/faults", json={"lose_response_after_commit": {"path": lost_path, "method": "POST", "count": 1}}, timeout=5)

    with FlowContext.for_pairing("cin7_marketplacer") as ctx:
        gated = _staged_and_gated(ctx, "attempt-1")
        with pytest.raises(TransientError) as err:
            orders_in.load(ctx, "attempt-1", gated)
        assert err.value.maybe_committed  # the client did not re-POST blindly
    assert len(wired.sales()) == 1

    with FlowContext.for_pairing("cin7_marketplacer") as ctx:  # the task's retry: a fresh process
        counts = orders_in.load(ctx, "attempt-1", gated)
    assert _core(counts) == {"created": 0, "recovered": 1, "already_loaded": 0, "refused": 0, "in_flight": 0}
    (sale,) = wired.sales()
    assert sale["ExternalID"] == "MKP-4242"
    assert sale["Order"]["Status"] == "AUTHORISED" and [line["SKU"] for line in sale["Order"]["Lines"]] == ["CS-CAP-NVY"]

    with FlowContext.for_pairing("cin7_marketplacer") as ctx:  # and a later re-run skips it via the ledger
        assert orders_in.load(ctx, "attempt-1", gated)["already_loaded"] == 1
    assert len(wired.sales()) == 1


def test_cin7_refusing_one_order_quarantines_it_and_the_rest_loads(wired, pg_url):
    placed = datetime.now(timezone.utc) - timedelta(minutes=5)
    # CS-TEE-BLK-L is mapped here but the Cin7 emulator is told to forget it
    wired.inject_invoices([marketplacer_invoice(5001, [("CS-CAP-NVY", 1, 2500)], created_at=placed), marketplacer_invoice(5002, [("CS-TEE-BLK-L", 1, 4500)], created_at=placed)])
    requests.post(f"{wired.cin7}/_sandbox/reset", timeout=5)
    requests.post(f"{wired.cin7}/_sandbox/seed", json={"products": [{"SKU": "CS-CAP-NVY"}], "customers": ["Castore AU (Marketplacer)"], "locations": ["Main Warehouse"], "tax_rules": ["GST on Income"]}, timeout=5)
    with FlowContext.for_pairing("cin7_marketplacer") as ctx:
        gated = _staged_and_gated(ctx, "run-1")
        counts = orders_in.load(ctx, "run-1", gated)
        held = ctx.ledger.open_quarantine("cin7_marketplacer", "orders_in")
    assert counts["created"] == 1 and counts["refused"] == 1
    by_ext = {s["ExternalID"]: s for s in wired.sales()}
    assert by_ext["MKP-5001"]["Order"]["Status"] == "AUTHORISED"
    assert by_ext["MKP-5002"]["Order"] is None  # Cin7 kept the header it accepted before refusing the lines
    (row,) = held
    assert row.reasons[0]["check"] == "erp_refused" and "CS-TEE-BLK-L" in row.reasons[0]["detail"]

    # ops set the product up in Cin7; the replay finishes the same sale instead of making another
    requests.post(f"{wired.cin7}/_sandbox/seed", json={"products": [{"SKU": "CS-TEE-BLK-L"}]}, timeout=5)
    with FlowContext.for_pairing("cin7_marketplacer") as ctx:
        summary = orders_in.replay(ctx, "replay-1")
        assert ctx.ledger.open_quarantine("cin7_marketplacer", "orders_in") == []
    assert _core(summary["load"]) == {"created": 0, "recovered": 1, "already_loaded": 0, "refused": 0, "in_flight": 0}
    sales = wired.sales()
    assert sorted(s["ExternalID"] for s in sales) == ["MKP-5001", "MKP-5002"]
    assert all(s["Order"]["Status"] == "AUTHORISED" for s in sales)
