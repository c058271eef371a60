"""A period's marketplace charges as a journal file for the accounting system, for a master that
keeps no general ledger (Centra: `payouts.journal: file`).

One journal per period; per remittance: the net payout debited to the bank (payout_account), the
commission, its tax, the fees (and refunds deducted, where the pairing names an account for them)
debited to their accounts, and the marketplace receivable (clearing_account) credited with their
sum, i.e. what the buyer paid. So each remittance balances on its own and the file ties to the
remittances line by line. Pure: rows and CSV here, the flow writes the file once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from commerce_sync.reports import to_csv

COLUMNS = ["journal", "date", "account", "description", "debit", "credit", "currency", "order", "remittance"]
ZERO = Decimal("0")


def journal_rows(reference: str, policy, entries: Iterable[tuple[str, str | None, str, datetime, dict[str, Decimal]]]) -> list[dict]:
    """entries: (remittance ref, order ref, currency, booked at, parts by kind: payment, commission,
    commission_tax, fee, refund). Zero amounts make no row."""
    debits = (("payment", policy.payout_account, "net payout"), ("commission", policy.commission_account, "marketplace commission"),
              ("commission_tax", policy.commission_tax_account, "tax on commission"), ("fee", policy.fee_account, "marketplace fees"),
              ("refund", policy.refund_account, "refunds deducted"))
    rows: list[dict] = []
    for remittance, order, currency, booked, parts in entries:
        common = {"journal": reference, "date": f"{booked:%Y-%m-%d}", "currency": currency, "order": order or "", "remittance": remittance}
        lines = [(account, what, parts.get(kind, ZERO)) for kind, account, what in debits if account and parts.get(kind, ZERO)]
        for account, what, amount in lines:
            # a negative amount (a charge the marketplace gave back) is a credit, never a negative debit
            rows.append({**common, "account": account, "description": what, "debit": amount if amount > 0 else "", "credit": -amount if amount < 0 else ""})
        total = sum((amount for _, _, amount in lines), ZERO)
        if total:
            rows.append({**common, "account": policy.clearing_account, "description": "marketplace receivable",
                         "debit": -total if total < 0 else "", "credit": total if total > 0 else ""})
    return rows


def totals(rows: Iterable[dict]) -> dict[str, Decimal]:
    """Debits and credits per currency and in all: a journal balances when they are equal."""
    out = {"debit": ZERO, "credit": ZERO}
    for row in rows:
        for side in ("debit", "credit"):
            out[side] += Decimal(str(row[side])) if row[side] != "" else ZERO
    return out


def journal_csv(rows: list[dict]) -> str:
    return to_csv(rows, columns=COLUMNS)
