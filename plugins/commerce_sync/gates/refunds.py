"""The refunds suite: a refund becomes a credit note only on a sale we booked, for SKUs we map."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from commerce_sync.gates.engine import RECORD_KEY, ROW_ID, Check, GateResult, expect, run_gate
from commerce_sync.models import Refund
from commerce_sync.money import from_minor, minor_units, quantize

COLUMNS = [RECORD_KEY, "order_linked", "sku", "quantity", "amount_minor", "currency"]


def refunds_frame(refunds: dict[str, Refund], linked_orders: set[str]) -> pd.DataFrame:
    rows = []
    for key, refund in refunds.items():
        for line in refund.lines:
            minor = int(quantize(line.amount, refund.currency).scaleb(minor_units(refund.currency)))
            rows.append({RECORD_KEY: key, "order_linked": refund.order_channel_ref in linked_orders, "sku": line.sku, "quantity": line.quantity, "amount_minor": minor,
                         "currency": refund.currency})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["quantity"] = frame["quantity"].astype("int64")
    frame["amount_minor"] = frame["amount_minor"].astype("int64")
    frame["order_linked"] = frame["order_linked"].astype(bool)
    return frame


def gate_refunds(refunds: dict[str, Refund], *, linked_orders: set[str], unreadable, mapped_skus: set[str], max_bad_share: Decimal, min_records_for_share: int, known_bad: set[str],
                  master: str = "Cin7") -> GateResult:
    # built (and GX imported) only for a batch with rows
    checks = lambda: [  # noqa: E731
        Check("batch_columns", "the refund frame does not have exactly the expected columns (a code change broke the gate)",
              expect.ExpectTableColumnsToMatchSet(column_set=[*COLUMNS, ROW_ID], exact_match=True), batch_level=True),
        Check("order_known", f"the refund is for an order this integration never booked in {master}",
              expect.ExpectColumnValuesToBeInSet(column="order_linked", value_set=[True])),
        Check("sku_mapped", f"a refunded SKU is not mapped in skus.csv (a {master} SKU and its channel SKU)", expect.ExpectColumnValuesToBeInSet(column="sku", value_set=sorted(mapped_skus))),
        Check("sku_present", "a refunded line names no SKU", expect.ExpectColumnValuesToNotBeNull(column="sku")),
        Check("quantity_not_negative", "a refunded quantity is negative", expect.ExpectColumnValuesToBeBetween(column="quantity", min_value=0)),
        Check("amount_positive", "a refunded amount is not positive", expect.ExpectColumnValuesToBeBetween(column="amount_minor", min_value=1),
              explain=lambda r: f"a refunded amount is not positive ({from_minor(int(r['amount_minor']), r['currency'])} {r['currency']})"),
    ]
    return run_gate("refunds", refunds_frame(refunds, linked_orders), checks, max_bad_share=max_bad_share,
                    min_records_for_share=min_records_for_share, pre_failed=unreadable, known_bad=known_bad)
