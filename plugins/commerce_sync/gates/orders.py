"""The orders_in suite: what a channel order must satisfy before it may become an ERP sale.

These are the booking rules, and the only ones: the orders gate applies them before loading, and
the acceptance step applies the very same ones before committing the shop to an order (a channel
where the seller accepts orders), so nothing is accepted that would then wait unbooked.

One row per order line; order-level facts (reference, seller, currency, customer, totals) repeat
on each row so a failure names the order. Money enters the frame as integer minor units (exact),
never as float, and leaves it in reasons as the channel wrote it (`-0.01 GBP`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pandas as pd

from commerce_sync.gates.engine import RECORD_KEY, ROW_ID, Check, GateResult, expect, run_gate
from commerce_sync.models import Order, order_charge_sum, order_line_sum, order_tax_sum
from commerce_sync.money import from_minor, minor_units, quantize

# (the ERP customer the order would be booked to, that customer's currency or None if unknown)
CustomerOf = Callable[[Order], tuple[str | None, str | None]]
# the taxes an order names that the pairing's tax mapping lacks (empty: all mapped)
UnmappedTaxes = Callable[[Order], list[str]]

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
    "tax_variance_minor",
    "master_customer",
    "customer_currency",
    "customer_currency_ok",
    "unmapped_taxes",
    "taxes_mapped",
]


def _minor(amount: Decimal, currency: str) -> int:
    # exact where the amount fits the minor unit; a finer amount is rounded once, here, for the check
    return int(quantize(amount, currency).scaleb(minor_units(currency)))


def _money(row: Mapping[str, Any], column: str, sign: bool = False) -> str:
    amount = from_minor(int(row[column]), row["currency"])
    return f"{amount:+} {row['currency']}" if sign else f"{amount} {row['currency']}"


def orders_frame(orders: dict[str, Order], customer_of: CustomerOf | None = None, unmapped_taxes: UnmappedTaxes | None = None) -> pd.DataFrame:
    rows = []
    for key, order in orders.items():
        cur = order.currency
        order_variance = order_line_sum(order) + order_charge_sum(order) - order.total
        tax_variance = order_tax_sum(order) - order.tax_total
        customer, customer_currency = customer_of(order) if customer_of else (None, None)
        untaxed = ", ".join(unmapped_taxes(order)) if unmapped_taxes else ""
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
                    "tax_variance_minor": _minor(tax_variance, cur),
                    "master_customer": customer,
                    # unknown to the ERP (None) is not a mismatch: the ERP itself refuses an unknown customer
                    "customer_currency": customer_currency,
                    "customer_currency_ok": customer_currency is None or customer_currency == cur,
                    "unmapped_taxes": untaxed,
                    "taxes_mapped": not untaxed,
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("quantity", "unit_price_minor", "line_total_minor", "line_variance_minor", "order_variance_minor", "tax_variance_minor"):
        frame[col] = frame[col].astype("int64")
    for col in ("customer_currency_ok", "taxes_mapped"):
        frame[col] = frame[col].astype(bool)
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
            "the channel order reference (the customer order number) is missing",
            expect.ExpectColumnValuesToNotBeNull(column="channel_ref"),
        ),
        Check(
            "sku_mapped",
            "SKU is not mapped to an ERP SKU (exact match: case and spaces count); add it to skus.csv",
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
            "unit price is negative",
            expect.ExpectColumnValuesToBeBetween(column="unit_price_minor", min_value=0),
            explain=lambda r: f"unit price of SKU '{r['sku']}' is negative ({_money(r, 'unit_price_minor')})",
        ),
        Check(
            "line_total_not_negative",
            "line total is negative",
            expect.ExpectColumnValuesToBeBetween(column="line_total_minor", min_value=0),
            explain=lambda r: f"line total of SKU '{r['sku']}' is negative ({_money(r, 'line_total_minor')})",
        ),
        Check(
            "currency_allowed",
            f"currency is not one the pairing trades in ({', '.join(currencies)})",
            expect.ExpectColumnValuesToBeInSet(column="currency", value_set=list(currencies)),
        ),
        Check(
            "customer_currency",
            "the ERP customer the order would be booked to trades in another currency",
            expect.ExpectColumnValuesToBeInSet(column="customer_currency_ok", value_set=[True]),
            explain=lambda r: (
                f"the order is in {r['currency']} but ERP customer '{r['master_customer']}' trades in {r['customer_currency']}, "
                f"and a sale takes its customer's currency; name a {r['currency']} customer in customers.csv"
            ),
        ),
        Check(
            "tax_mapped",
            "the order names a tax (name and rate) that tax_codes.csv does not map to an ERP tax rule",
            expect.ExpectColumnValuesToBeInSet(column="taxes_mapped", value_set=[True]),
            explain=lambda r: f"tax {r['unmapped_taxes']} is not mapped to an ERP tax rule; add it to tax_codes.csv (name, rate, master_tax_rule)",
        ),
        Check(
            "line_total_adds_up",
            "line total differs from unit price x quantity - discount",
            expect.ExpectColumnValuesToBeBetween(column="line_variance_minor", min_value=0, max_value=0),
            explain=lambda r: f"line total of SKU '{r['sku']}' differs from unit price x quantity - discount by {_money(r, 'line_variance_minor', sign=True)}",
        ),
        Check(
            "order_total_adds_up",
            "order total differs from line totals + charges",
            expect.ExpectColumnValuesToBeBetween(column="order_variance_minor", min_value=0, max_value=0),
            explain=lambda r: f"line totals + charges differ from the order total by {_money(r, 'order_variance_minor', sign=True)}",
        ),
        Check(
            "tax_adds_up",
            "the tax of the lines and charges differs from the order's tax",
            expect.ExpectColumnValuesToBeBetween(column="tax_variance_minor", min_value=0, max_value=0),
            explain=lambda r: f"the tax of the lines and charges differs from the order's tax by {_money(r, 'tax_variance_minor', sign=True)}",
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
    customer_of: CustomerOf | None = None,
    unmapped_taxes: UnmappedTaxes | None = None,
) -> GateResult:
    result = run_gate(
        "orders_in",
        orders_frame(orders, customer_of, unmapped_taxes),
        # built (and GX imported) only for a batch with rows
        lambda: orders_checks(mapped_skus=mapped_skus, mapped_sellers=mapped_sellers, currencies=currencies),
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
                        "detail": f"'{line.sku}' looks like mapped SKU '{folded[line.sku.strip().casefold()]}' "
                        "but differs in case or spaces; fix the listing or map it explicitly",
                    }
                )
