"""The orders_in suite: what a channel order must satisfy before it may become an ERP sale.

One row per order line; order-level facts (reference, seller, currency, totals) repeat on each
row so a failure names the order. Money enters the frame as integer minor units (exact), never as
float.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from commerce_sync.gates.engine import RECORD_KEY, ROW_ID, Check, GateResult, expect, run_gate
from commerce_sync.models import Order, order_charge_sum, order_line_sum
from commerce_sync.money import minor_units, quantize

COLUMNS = [
    RECORD_KEY,
    "channel_ref",
    "seller_ref",
    "currency",
    "sku",
    "quantity",
    "unit_price_minor",
    "line_total_minor",
    "line_variance_minor",
    "order_variance_minor",
]


def _minor(amount: Decimal, currency: str) -> int:
    # exact where the amount fits the minor unit; a finer amount is rounded once, here, for the check
    return int(quantize(amount, currency).scaleb(minor_units(currency)))


def orders_frame(orders: dict[str, Order]) -> pd.DataFrame:
    rows = []
    for key, order in orders.items():
        cur = order.currency
        order_variance = order_line_sum(order) + order_charge_sum(order) - order.total
        for line in order.lines:
            line_variance = line.unit_price * line.quantity - line.discount - line.line_total
            rows.append(
                {
                    RECORD_KEY: key,
                    "channel_ref": order.channel_ref,
                    "seller_ref": order.seller_ref,
                    "currency": cur,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "unit_price_minor": _minor(line.unit_price, cur),
                    "line_total_minor": _minor(line.line_total, cur),
                    "line_variance_minor": _minor(line_variance, cur),
                    "order_variance_minor": _minor(order_variance, cur),
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("quantity", "unit_price_minor", "line_total_minor", "line_variance_minor", "order_variance_minor"):
        frame[col] = frame[col].astype("int64")
    return frame


def orders_checks(*, mapped_skus: set[str], mapped_sellers: set[str], currencies: list[str]) -> list[Check]:
    return [
        Check(
            "batch_columns",
            "the order frame does not have exactly the expected columns (a code change broke the gate)",
            expect.ExpectTableColumnsToMatchSet(column_set=[*COLUMNS, ROW_ID], exact_match=True),
            batch_level=True,
        ),
        Check(
            "channel_ref_present",
            "the channel order reference is missing",
            expect.ExpectColumnValuesToNotBeNull(column="channel_ref"),
        ),
        Check(
            "sku_mapped",
            "SKU is not mapped to a Cin7 SKU (exact match: case and spaces count); add it to skus.csv",
            expect.ExpectColumnValuesToBeInSet(column="sku", value_set=sorted(mapped_skus)),
        ),
        Check(
            "seller_mapped",
            "seller is not mapped; add it to sellers.csv",
            expect.ExpectColumnValuesToBeInSet(column="seller_ref", value_set=sorted(mapped_sellers)),
        ),
        Check(
            "seller_present",
            "the order names no seller",
            expect.ExpectColumnValuesToNotBeNull(column="seller_ref"),
        ),
        Check(
            "quantity_positive",
            "quantity must be a positive whole number",
            expect.ExpectColumnValuesToBeBetween(column="quantity", min_value=1),
        ),
        Check(
            "unit_price_not_negative",
            "unit price is negative (in minor units)",
            expect.ExpectColumnValuesToBeBetween(column="unit_price_minor", min_value=0),
        ),
        Check(
            "line_total_not_negative",
            "line total is negative (in minor units)",
            expect.ExpectColumnValuesToBeBetween(column="line_total_minor", min_value=0),
        ),
        Check(
            "currency_allowed",
            f"currency is not one the pairing trades in ({', '.join(currencies)})",
            expect.ExpectColumnValuesToBeInSet(column="currency", value_set=list(currencies)),
        ),
        Check(
            "line_total_adds_up",
            "line total differs from unit price x quantity - discount (difference in minor units)",
            expect.ExpectColumnValuesToBeBetween(column="line_variance_minor", min_value=0, max_value=0),
        ),
        Check(
            "order_total_adds_up",
            "order total differs from line totals + charges (difference in minor units)",
            expect.ExpectColumnValuesToBeBetween(column="order_variance_minor", min_value=0, max_value=0),
        ),
    ]


def gate_orders(
    orders: dict[str, Order],
    *,
    unreadable: dict[str, list[dict[str, str]]],
    mapped_skus: set[str],
    mapped_sellers: set[str],
    currencies: list[str],
    max_bad_share: Decimal,
    min_records_for_share: int = 10,
    replayed: set[str] = frozenset(),
) -> GateResult:
    checks = orders_checks(mapped_skus=mapped_skus, mapped_sellers=mapped_sellers, currencies=currencies)
    result = run_gate(
        "orders_in",
        orders_frame(orders),
        checks,
        max_bad_share=max_bad_share,
        min_records_for_share=min_records_for_share,
        pre_failed=unreadable,
        known_bad=replayed,
    )
    _add_near_miss_hints(result, orders, mapped_skus)
    return result


def _add_near_miss_hints(result: GateResult, orders: dict[str, Order], mapped_skus: set[str]) -> None:
    """Tell ops when an unmapped SKU differs from a mapped one only by case or spaces.

    The gate never folds case or trims (a near match is still refused): the hint only saves
    the person fixing it a search.
    """
    folded = {s.strip().casefold(): s for s in mapped_skus}
    for key, reasons in result.failed.items():
        order = orders.get(key)
        if order is None or not any(r["check"] == "sku_mapped" for r in reasons):
            continue
        for line in order.lines:
            if line.sku not in mapped_skus and line.sku.strip().casefold() in folded:
                reasons.append(
                    {
                        "check": "sku_near_match",
                        "detail": f"{line.sku!r} looks like mapped SKU {folded[line.sku.strip().casefold()]!r} "
                        "but differs in case or spaces; fix the listing or map it explicitly",
                    }
                )
