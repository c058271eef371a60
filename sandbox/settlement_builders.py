"""Adyen-native settlement files and the Cin7 sales they pay for: the tests' generated month, the
benchmark's 100,000 rows and the demo's sample come from here.

Plain data (bytes for the files, JSON-ready dicts for `POST /_sandbox/sales` on the Cin7
emulator) and, for tests, what reconciliation should make of every row. The layout follows
Adyen's documented Settlement details report (specs/adyen-settlement-details-report.md): costs
positive in their own columns, a row's net its gross at the exchange rate less its costs, one
MerchantPayout per batch carrying the batch's total in Net Debit. Nothing here imports the product.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

ADYEN_COLUMNS = [
    "Company Account", "Merchant Account", "Psp Reference", "Merchant Reference", "Payment Method", "Creation Date", "TimeZone", "Type",
    "Modification Reference", "Gross Currency", "Gross Debit (GC)", "Gross Credit (GC)", "Exchange Rate", "Net Currency", "Net Debit (NC)",
    "Net Credit (NC)", "Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)", "Payment Method Variant",
    "Modification Merchant Reference", "Batch Number", *(f"Reserved{i}" for i in range(4, 11)),
]
FEE_COLUMNS = {"commission": "Commission (NC)", "markup": "Markup (NC)", "scheme_fees": "Scheme Fees (NC)", "interchange": "Interchange (NC)"}
CENT = Decimal("0.01")
SKU = "CS-WEB-ITEM"  # the one product the generated sales sell (seed it in Cin7)
REFUND_SKU = "PSP-REFUND"  # the service item provider refunds are credited on (seed it too)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def adyen_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ADYEN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in ADYEN_COLUMNS})
    return out.getvalue().encode()


@dataclass
class Month:
    """A generated month: files by name, the Cin7 sales they pay for, and what should happen."""

    files: dict[str, bytes] = field(default_factory=dict)
    sales: list[dict] = field(default_factory=list)
    expected: dict[tuple[str, int], tuple[str, str | None]] = field(default_factory=dict)  # (file, line) -> (status, reason)
    fees: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # booked batch key -> fee name -> total (journal lines)
    created_refunds: int = 0  # refunds the ERP lacks: credit notes the flow must make

    @property
    def rows(self) -> int:
        return len(self.expected)


class _Batch:
    def __init__(self, month: Month, merchant: str, number: int, day: datetime, rng: random.Random):
        self.month, self.merchant, self.number, self.day, self.rng = month, merchant, number, day, rng
        self.name = f"settlement_detail_report_batch_{number}.csv"
        self.key = f"{merchant}-{number}"
        self.rows: list[dict[str, str]] = []
        self.expect: list[tuple[str, str | None]] = []
        self.fees: dict[str, Decimal] = {}
        self.creates = 0  # refunds in this batch the ERP has no credit note for

    def psp(self) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(16))

    def when(self) -> str:
        return (self.day + timedelta(seconds=self.rng.randint(0, 86_000))).strftime("%Y-%m-%d %H:%M:%S")

    def add(self, row: dict[str, str], expect: tuple[str, str | None]) -> None:
        self.rows.append({"Company Account": "DemoCompany", "Merchant Account": self.merchant, "Batch Number": str(self.number), "TimeZone": "CET", **row})
        self.expect.append(expect)

    def payment(self, kind: str, ref: str | None, gross: Decimal, currency: str, rate: Decimal, expect: tuple[str, str | None], *, costs: bool = True) -> None:
        """A Settled, Refunded or Chargeback row: gross in `currency`, net in GBP at `rate`, less costs."""
        fees = {"markup": cents(gross * Decimal("0.006")), "scheme_fees": Decimal("0.02"), "interchange": cents(gross * Decimal("0.003"))} if costs else {}
        if kind == "Chargeback":
            fees = {"commission": Decimal("7.50")}
        for name, value in fees.items():
            self.fees[name] = self.fees.get(name, Decimal("0")) + value
        converted = cents(gross * rate)
        credit = kind == "Settled"
        net = converted - sum(fees.values(), Decimal("0")) if credit else converted + sum(fees.values(), Decimal("0"))
        self.add({
            "Psp Reference": self.psp(), "Merchant Reference": ref or "", "Payment Method": self.rng.choice(["visa", "mc", "amex"]), "Creation Date": self.when(),
            "Type": kind, "Modification Reference": self.psp(), "Gross Currency": currency,
            "Gross Credit (GC)" if credit else "Gross Debit (GC)": str(gross), "Exchange Rate": str(rate), "Net Currency": "GBP",
            "Net Credit (NC)" if credit else "Net Debit (NC)": str(net), **{FEE_COLUMNS[k]: str(v) for k, v in fees.items()},
        }, expect)

    def other(self, kind: str, reference: str, net_debit: Decimal, expect: tuple[str, str | None]) -> None:
        """A batch-level row (Fee, DepositCorrection, MerchantPayout...): an amount in Net Debit."""
        self.add({"Creation Date": self.when(), "Type": kind, "Modification Reference": reference, "Gross Currency": "GBP", "Net Currency": "GBP",
                  "Net Debit (NC)": str(net_debit)}, expect)

    def net_sum(self) -> Decimal:
        total = Decimal("0")
        for row in self.rows:
            total += Decimal(row.get("Net Credit (NC)") or "0") - Decimal(row.get("Net Debit (NC)") or "0")
        return total

    def close(self, *, off_by: Decimal = Decimal("0")) -> None:
        """The MerchantPayout (what is left of everything else, plus `off_by` to unbalance it)."""
        held = bool(off_by)
        self.other("MerchantPayout", f"TX{self.number:06d}XT batch {self.number}", self.net_sum() + off_by, ("exception", "batch_unbalanced") if held else ("matched", None))
        if held:
            self.expect = [e if e == ("exception", "batch_unbalanced") else ("exception", "batch_held") for e in self.expect]
        else:
            self.month.fees[self.key] = {k: v for k, v in self.fees.items() if v}
            self.month.created_refunds += self.creates
        self.month.files[self.name] = adyen_csv(self.rows)
        for i, expect in enumerate(self.expect, start=2):
            self.month.expected[(self.name, i)] = expect


def month(*, batches: int = 6, payments: int = 400, prefix: str = "", start: datetime, merchant: str = "ShopGB", seed: int = 18,
          eur_rate: Decimal = Decimal("0.8612"), unbalanced: int | None = 3, exceptions: bool = True, first_order: int = 100_001,
          first_batch: int = 1) -> Month:
    """`batches` files of about `payments` rows each, over the month from `start`: settled payments
    in GBP and in EUR (settled in GBP), refunds (half with the ERP's credit note already there),
    chargebacks, a Fee row and a MerchantPayout per batch. With `exceptions`, each batch also
    holds the cases finance must see (no sale, a total that differs, a currency that differs, no
    order number, an adjustment, an unknown type, an order paid twice) and batch `unbalanced` does
    not balance (its payout is a cent out)."""
    rng = random.Random(seed)
    m = Month()
    order = first_order
    refundable: list[tuple[str, Decimal, str, bool]] = []  # (ref, refund amount, currency, ERP credit note already there)

    def sale(ref: str, total: Decimal, currency: str, *, invoiced: bool = True, notes: list[dict] | None = None) -> None:
        m.sales.append({"ExternalID": f"{prefix}{ref}", "Customer": f"Web customers {currency}", "CustomerCurrency": currency,
                        "Lines": [{"SKU": SKU, "Quantity": 1, "Price": str(total)}], "Invoiced": invoiced, "CreditNotes": notes or [],
                        "SaleOrderDate": (start - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")})

    last_paid: str | None = None
    for b in range(batches):
        number = first_batch + b
        batch = _Batch(m, merchant, number, start + timedelta(days=b * max(1, 28 // max(batches, 1))), rng)
        for _ in range(payments):
            order += 1
            ref = str(order)
            roll = rng.random()
            gross = Decimal(rng.randint(1_000, 30_000)) / 100
            if roll < 0.06 and refundable:  # a refund of an order paid earlier
                ref_r, amount, cur_r, noted = refundable.pop(rng.randrange(len(refundable)))
                batch.payment("Refunded", ref_r, amount, cur_r, eur_rate if cur_r == "EUR" else Decimal("1"), ("matched", None))
                batch.creates += 0 if noted else 1
                continue
            if roll < 0.075:
                sale(ref, gross, "GBP")
                batch.payment("Chargeback", ref, gross, "GBP", Decimal("1"), ("exception", "chargeback"))
                continue
            currency = "EUR" if roll < 0.30 else "GBP"
            rate = eur_rate if currency == "EUR" else Decimal("1")
            invoiced = rng.random() > 0.03  # a few not invoiced yet: their total is read from the sale itself
            if invoiced and rng.random() < 0.3:
                half = cents(gross / 2)
                if rng.random() < 0.5:  # the refunds flow credited half already: the provider's refund of it matches that credit note
                    refundable.append((ref, half, currency, True))
                    sale(ref, gross, currency, notes=[{"Memo": f"Refund R-{ref} - refunds flow", "Total": str(half)}])
                else:  # a refund the ERP has not heard of: the flow credits it
                    refundable.append((ref, rng.choice([gross, half]), currency, False))
                    sale(ref, gross, currency)
            else:
                sale(ref, gross, currency, invoiced=invoiced)
            batch.payment("Settled", ref, gross, currency, rate, ("matched", None))
            last_paid = ref
        if exceptions:
            order += 1
            batch.payment("Settled", str(order), Decimal("42.00"), "GBP", Decimal("1"), ("exception", "no_sale"))  # never booked in the ERP
            order += 1
            sale(str(order), Decimal("51.00"), "GBP")
            batch.payment("Settled", str(order), Decimal("50.00"), "GBP", Decimal("1"), ("exception", "amount_differs"))
            order += 1
            sale(str(order), Decimal("80.00"), "GBP")
            batch.payment("Settled", str(order), Decimal("80.00"), "EUR", eur_rate, ("exception", "currency_differs"))
            batch.payment("Settled", None, Decimal("12.00"), "GBP", Decimal("1"), ("exception", "no_reference"))
            if b == 1 and last_paid is not None:
                batch.payment("Settled", m_first_ref(m, prefix), Decimal("10.00"), "GBP", Decimal("1"), ("exception", "settled_twice"))
            if b == 0:
                batch.other("DepositCorrection", "Deposit Correction", Decimal("78.93"), ("exception", "other_entry"))
                batch.other("FutureJournalType", "something new", Decimal("1.00"), ("exception", "unknown_type"))
        fee = Decimal(rng.randint(500, 2_500)) / 100
        batch.fees["other"] = fee
        batch.other("Fee", "Transaction Fees", fee, ("matched", None))
        batch.close(off_by=Decimal("0.01") if exceptions and unbalanced == b else Decimal("0"))
    return m


def m_first_ref(m: Month, prefix: str) -> str:
    """The order number of the first matched settled payment of the month (paid again later)."""
    for name in m.files:
        rows = list(csv.DictReader(io.StringIO(m.files[name].decode())))
        for line, row in enumerate(rows, start=2):
            if row["Type"] == "Settled" and m.expected.get((name, line)) == ("matched", None):
                return row["Merchant Reference"]
    raise ValueError("no settled payment yet")
