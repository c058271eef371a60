"""cin7_marketplacer__refunds end to end (dag.test, both emulators, ledger in PostgreSQL): one
credit note per refund, no restock, even when Cin7's answer to the first attempt is lost; a
refund for an order we never booked is quarantined."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from commerce_sync.errors import TransientError
from commerce_sync.flows import refunds
from commerce_sync.ledger import Ledger
from commerce_sync.runtime import FlowContext
from tests.builders import marketplacer_invoice
from tests.e2e.test_orders_in import run_dag as run_orders_in

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]


def run_refunds(start: datetime, end: datetime, n: int):
    from airflow.dag_processing.dagbag import DagBag

    from commerce_sync.pairing import project_root

    dag = DagBag(dag_folder=str(project_root() / "dags")).get_dag("cin7_marketplacer__refunds")
    return dag.test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat()}, logical_date=end + timedelta(seconds=n))


def test_a_refund_becomes_one_credit_note_without_restock(wired, pg_url):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    wired.inject_invoices([marketplacer_invoice(8001, [("CS-TEE-BLK-M", 2, 4500), ("CS-CAP-NVY", 1, 2500)], created_at=now - timedelta(minutes=30))])
    assert run_orders_in(now - timedelta(hours=1), now, 1).state == "success"
    requests.post(f"{wired.cin7}/_sandbox/invoice", json={"ExternalID": "MKP-8001"}, timeout=10).raise_for_status()

    stamp = (now - timedelta(minutes=5)).isoformat()
    requests.post(
        f"{wired.marketplacer}/_sandbox/refund_requests",
        json={
            "refundRequests": [
                {"invoiceLegacyId": 8001, "status": "REFUNDED", "createdAt": stamp, "reason": "too small", "lineItems": [{"sku": "CS-TEE-BLK-M", "quantity": 1, "amountCents": 4500}]},
                {"invoiceLegacyId": 8001, "status": "REQUESTED", "createdAt": stamp, "lineItems": [{"sku": "CS-CAP-NVY", "quantity": 1, "amountCents": 2500}]},
                {"invoiceLegacyId": 9999, "status": "REFUNDED", "createdAt": stamp, "lineItems": [{"sku": "CS-CAP-NVY", "quantity": 1, "amountCents": 2500}]},
            ]
        },
        timeout=10,
    ).raise_for_status()
    # a first attempt: Cin7 books the credit note but its answer never arrives
    requests.post(f"{wired.cin7}/_sandbox/faults", json={"lose_response_after_commit": {"path": "/sale/creditnote", "method": "POST", "count": 1}}, timeout=10)
    with FlowContext.for_pairing("cin7_marketplacer") as ctx:
        refunds.extract(ctx, "attempt-1", start=now - timedelta(hours=1), end=now)
        gated = refunds.gate(ctx, "attempt-1")
        with pytest.raises(TransientError):
            refunds.load(ctx, "attempt-1", gated)

    # then Airflow runs the flow (a retry would do the same): it finds the note instead of making another
    assert run_refunds(now - timedelta(hours=1), now, 1).state == "success"
    assert run_refunds(now - timedelta(hours=1), now, 2).state == "success"  # and a re-run

    (sale,) = [s for s in wired.sales() if s["ExternalID"] == "MKP-8001"]
    (note,) = sale["_credit_notes"]  # one, although the first POST's answer was lost and it ran twice
    assert note["Restock"] == []
    assert note["Status"] == "AUTHORISED" and note["Memo"].startswith("Refund 1")
    assert [(l["SKU"], l["Quantity"], Decimal(str(l["Total"]))) for l in note["Lines"]] == [("CS-TEE-BLK-M", 1, Decimal("45"))]

    ledger = Ledger.from_url(pg_url)
    held = ledger.open_quarantine("cin7_marketplacer", "refunds")
    assert [{r["check"] for r in q.reasons} for q in held] == [{"order_known"}]
    assert held[0].payload["invoice"]["legacyId"] == 9999
    ledger.dispose()
