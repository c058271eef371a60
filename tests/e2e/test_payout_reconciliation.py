"""cin7_marketplacer__payout_reconciliation end to end (dag.test, both emulators, ledger in
PostgreSQL, a real SMTP server): matched to the cent, commission and its tax journaled once even
when the DAG runs twice, and the exceptions reported and e-mailed to finance."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from commerce_sync.ledger import Ledger
from tests.builders import marketplacer_invoice
from tests.e2e.test_orders_in import run_dag as run_orders_in

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]


def run_recon(start: datetime, end: datetime, n: int):
    from airflow.dag_processing.dagbag import DagBag

    from commerce_sync.pairing import project_root

    dag = DagBag(dag_folder=str(project_root() / "dags")).get_dag("cin7_marketplacer__payout_reconciliation")
    return dag.test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat()}, logical_date=end + timedelta(seconds=n))


def remittance(invoice: int, net: int, commission: int, tax: int, refund: int | None = None) -> dict:
    return {"invoiceLegacyId": invoice, "amountCents": net, "commissionAmountCents": commission, "commissionTaxCents": tax, "refundCents": refund}


def test_payouts_match_to_the_cent_journal_once_and_report_exceptions(wired, pg_url):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    placed = now - timedelta(minutes=30)
    wired.inject_invoices(
        [
            marketplacer_invoice(9001, [("CS-TEE-BLK-M", 2, 4500)], created_at=placed),  # 90.00 + 9.95 postage = 99.95
            marketplacer_invoice(9002, [("CS-CAP-NVY", 1, 2500)], created_at=placed),  # 34.95
            marketplacer_invoice(9003, [("CS-CAP-NVY", 1, 2500)], created_at=placed),  # 34.95
        ]
    )
    assert run_orders_in(now - timedelta(hours=1), now, 1).state == "success"

    paid = (now - timedelta(minutes=10)).isoformat()
    requests.post(
        f"{wired.marketplacer}/_sandbox/remittance_advices",
        json={"advices": [{"paidAt": paid, "paymentReference": "PAY-1", "currency": "AUD", "remittances": [
            remittance(9001, 8895, 1000, 100),  # 88.95 + 10.00 + 1.00 GST on commission = 99.95
            remittance(9002, 3164, 300, 30),  # one cent short of 34.95
            remittance(9003, 2220, 250, 25, refund=1000),  # a 10.00 refund netted: 22.20 + 2.50 + 0.25 + 10.00 = 34.95
            remittance(9999, 1000, 100, 10),  # for an order we never booked
        ]}]},
        timeout=10,
    ).raise_for_status()

    assert run_recon(now - timedelta(hours=1), now, 1).state == "success"
    assert run_recon(now - timedelta(hours=1), now, 2).state == "success"  # the DAG runs twice

    journals = requests.get(f"{wired.cin7}/_sandbox/journals", timeout=10).json()["journals"]
    by_ref = {j["Lines"][0]["Reference"]: j for j in journals}
    assert len(journals) == 4 and len(by_ref) == 4  # once per payout, not twice
    j9001 = next(j for j in journals if j["Narration"].endswith("PAYOUT-100"))
    assert [(l["Debit"], l["Credit"], Decimal(str(l["Amount"]))) for l in j9001["Lines"]] == [("6100", "1210", Decimal("10")), ("2310", "1210", Decimal("1"))]
    assert all(j["Status"] == "AUTHORISED" for j in journals)

    ledger = Ledger.from_url(pg_url)
    matches = {m["order_channel_ref"]: m for m in ledger.payout_matches("cin7_marketplacer")}
    assert matches["9001"]["status"] == "matched" and Decimal(matches["9001"]["variance"]) == 0
    assert matches["9002"]["status"] == "variance" and Decimal(matches["9002"]["variance"]) == Decimal("0.01")
    assert matches["9003"]["status"] == "matched"
    assert matches["9999"]["status"] == "unmatched"

    files = ledger.reports("cin7_marketplacer", "payout_reconciliation")
    rows = list(csv.DictReader(io.StringIO(files["exceptions.csv"])))
    assert sorted((r["type"], r["order"]) for r in rows) == [("refund_netted", "9003"), ("unmatched", "9999"), ("variance", "9002")]
    assert next(r for r in rows if r["type"] == "variance")["variance"] == "0.01"
    assert "9002" in files["exceptions.html"] and "Compare the order on both sides" in files["exceptions.html"]

    mail = wired.mailbox.messages
    assert len(mail) == 2 and all(m["To"] == "finance@example.com" for m in mail)
    assert "3 exception(s)" in mail[-1]["Subject"]
    attachments = [p.get_filename() for p in mail[-1].walk() if p.get_filename()]
    assert attachments == ["exceptions.csv"]
    ledger.dispose()
