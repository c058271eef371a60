"""The payout journal file (journal_file.py): every remittance balances on its own, a charge the
marketplace gave back is a credit (never a negative debit), and nothing is written for zero."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from commerce_sync.journal_file import journal_csv, journal_rows, totals
from commerce_sync.pairing import PayoutPolicy

POLICY = PayoutPolicy(journal="file", journal_location="/tmp/x", payout_account="1010", clearing_account="1210", commission_account="6100",
                      commission_tax_account="2310", fee_account="6110")
WHEN = datetime(2026, 11, 30, tzinfo=timezone.utc)


def test_each_remittance_balances_and_a_refunded_fee_is_a_credit():
    parts = {"payment": Decimal("88.95"), "commission": Decimal("10.00"), "commission_tax": Decimal("1.00"), "fee": Decimal("-0.50"), "refund": Decimal("5.00")}
    rows = journal_rows("J-1", POLICY, [("R1", "9001", "AUD", WHEN, parts), ("R2", "9002", "AUD", WHEN, {"payment": Decimal("0")})])
    assert totals(rows)["debit"] == totals(rows)["credit"] == Decimal("99.95")
    by_account = {r["account"]: (r["debit"], r["credit"]) for r in rows}
    assert by_account["6110"] == ("", Decimal("0.50"))  # given back: a credit
    assert by_account["1210"] == ("", Decimal("99.45"))  # the receivable: what the buyer paid, less the fee given back
    assert "4090" not in by_account and {r["remittance"] for r in rows} == {"R1"}  # no refund account named; zero writes nothing
    assert journal_csv(rows).splitlines()[0] == "journal,date,account,description,debit,credit,currency,order,remittance"
