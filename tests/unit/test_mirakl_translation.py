"""Mirakl payloads to canonical models: pure translation, no HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_sync.models import TranslationError, order_charge_sum, order_line_sum
from commerce_sync.systems.mirakl import MiraklChannel

CH = MiraklChannel(None, seller_ref="john_lewis")


def raw_order(lines, *, commercial="JL1", shipping=None, total=None):
    order_lines = []
    for i, (sku, qty, unit, tax, ship, ship_tax) in enumerate(lines):
        order_lines.append({
            "order_line_id": f"O1-{i}", "order_line_state": "SHIPPING", "offer_sku": sku, "quantity": qty,
            "price_unit": Decimal(unit), "price": Decimal(unit) * qty, "taxes": [{"amount": Decimal(tax), "code": "VAT"}],
            "shipping_price": Decimal(ship), "shipping_taxes": [{"amount": Decimal(ship_tax), "code": "VAT"}], "product_title": sku,
        })
    computed = sum((l["price"] + l["shipping_price"] for l in order_lines), Decimal("0"))
    return {
        "order_id": "O1", "commercial_id": commercial, "created_date": "2026-11-20T10:00:00Z", "currency_iso_code": "GBP",
        "order_state": "SHIPPING", "order_tax_mode": "TAX_INCLUDED", "total_price": computed if total is None else Decimal(total),
        "customer": {"firstname": "Ada", "lastname": "Lovelace", "shipping_address": {"street_1": "1 Oxford St", "city": "London", "zip_code": "W1", "country_iso_code": "GBR"}},
        "order_lines": order_lines,
    }


def test_order_passes_tax_and_totals_through():
    order = CH.to_order(raw_order([("A", 2, "45.00", "15.00", "4.95", "0.82"), ("B", 1, "19.99", "3.33", "0", "0")]))
    assert order.channel_ref == "JL1" and order.channel_id == "O1" and order.seller_ref == "john_lewis"
    assert order.total == Decimal("114.94")
    assert order.tax_total == Decimal("19.15")
    assert [(c.kind, c.amount, c.tax) for c in order.charges] == [("shipping", Decimal("4.95"), Decimal("0.82"))]
    assert order_line_sum(order) + order_charge_sum(order) == order.total
    assert order.customer.shipping_address.postcode == "W1"


def test_missing_commercial_id_is_left_for_the_gate_to_refuse():
    assert CH.to_order(raw_order([("A", 1, "10.00", "1.67", "0", "0")], commercial=None)).channel_ref is None
    assert CH.to_order(raw_order([("A", 1, "10.00", "1.67", "0", "0")], commercial="")).channel_ref is None


def test_refused_lines_are_not_sold_and_an_all_refused_order_is_unreadable():
    raw = raw_order([("A", 1, "10.00", "1.67", "0", "0"), ("B", 1, "5.00", "0.83", "0", "0")], total="10.00")
    raw["order_lines"][1]["order_line_state"] = "REFUSED"
    assert [line.sku for line in CH.to_order(raw).lines] == ["A"]
    raw["order_lines"][0]["order_line_state"] = "CANCELED"
    with pytest.raises(TranslationError, match="no line that is sold"):
        CH.to_order(raw)


def test_a_float_amount_is_refused_not_rounded():
    raw = raw_order([("A", 1, "10.00", "1.67", "0", "0")])
    raw["total_price"] = 10.0
    with pytest.raises(TranslationError, match="binary float"):
        CH.to_order(raw)


def payout(txs):
    return {"id": "C1:O1", "cycle": "C1", "order": {"id": "O1", "commercial_id": "JL1"}, "transactions": [
        {"id": str(i), "type": t, "amount": Decimal(a), "currency_iso_code": "GBP", "transaction_date": "2026-11-21T00:00:00Z"} for i, (t, a) in enumerate(txs)
    ]}


def test_payout_kinds_add_back_to_what_the_customer_paid():
    lines = CH.to_payout_lines(payout([("ORDER_AMOUNT", "90.00"), ("ORDER_SHIPPING_AMOUNT", "4.95"), ("COMMISSION_FEE", "-11.39"),
                                       ("COMMISSION_VAT", "-2.28"), ("REFUND_ORDER_AMOUNT", "-45.00"), ("REFUND_COMMISSION_FEE", "5.40"),
                                       ("SELLER_PENALTY_FEE", "-1.00")]))
    kinds = {line.kind: line.amount for line in lines}
    assert kinds == {"payment": Decimal("40.68"), "commission": Decimal("5.99"), "commission_tax": Decimal("2.28"), "refund": Decimal("45.00"), "fee": Decimal("1.00")}
    assert sum(kinds.values()) == Decimal("94.95")  # the sale's total: nothing lost, nothing invented
    assert {line.payout_ref for line in lines} == {"C1-O1"} and {line.order_channel_ref for line in lines} == {"JL1"}


def test_payout_in_two_currencies_is_unreadable():
    raw = payout([("ORDER_AMOUNT", "1.00"), ("COMMISSION_FEE", "-0.10")])
    raw["transactions"][1]["currency_iso_code"] = "EUR"
    with pytest.raises(TranslationError, match="several currencies"):
        CH.to_payout_lines(raw)


def test_refund_credits_amount_and_shipping_on_the_line():
    raw = {"id": "refund-9", "kind": "refund", "order": {"order_id": "O1", "commercial_id": "JL1", "currency_iso_code": "GBP"},
           "line": {"order_line_id": "O1-0", "offer_sku": "A"},
           "money": {"id": "9", "amount": Decimal("45.00"), "shipping_amount": Decimal("4.95"), "quantity": 1, "reason_code": "34", "created_date": "2026-11-21T09:00:00Z"}}
    refund = CH.to_refund(raw)
    assert refund.order_channel_ref == "JL1" and refund.refund_ref == "refund-9"
    assert [(l.sku, l.quantity, l.amount) for l in refund.lines] == [("A", 1, Decimal("49.95"))]


money = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999.99"), places=2, allow_nan=False, allow_infinity=False)
line = st.tuples(st.text(min_size=1, max_size=20), st.integers(min_value=1, max_value=50), money, money, money, money)


@settings(max_examples=150, deadline=None)
@given(st.lists(line, min_size=1, max_size=6))
def test_any_order_translates_with_money_conserved(lines):
    raw = raw_order([(sku, qty, str(unit), str(tax), str(ship), str(st_)) for sku, qty, unit, tax, ship, st_ in lines])
    order = CH.to_order(raw)
    assert order_line_sum(order) + order_charge_sum(order) == order.total  # nothing dropped or rounded
    assert [l.sku for l in order.lines] == [l[0] for l in lines]  # SKUs untouched: no trimming, no truncation


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["order_id", "commercial_id", "created_date", "currency_iso_code", "total_price", "order_lines", "customer"]),
                       st.one_of(st.none(), st.text(max_size=5), st.integers(), st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=5)), max_size=2))))
def test_any_payload_translates_or_raises_the_typed_error(raw):
    try:
        CH.to_order(raw)
    except TranslationError as exc:
        assert exc.reason


@pytest.mark.parametrize("mode, inclusive", [("TAX_INCLUDED", True), ("TAX_EXCLUDED", False), (None, None)])
def test_the_orders_own_tax_mode_is_carried_and_an_absent_one_is_said_to_be_absent(mode, inclusive):
    raw = raw_order([("A", 2, "37.50", "15.00", "4.13", "0.82")])
    if mode is None:
        del raw["order_tax_mode"]  # required by OR11: an order without one states no mode, and says so
    else:
        raw["order_tax_mode"] = mode
    order = CH.to_order(raw)
    assert order.tax_inclusive is inclusive
    # the prices pass through in the order's own mode, never converted
    assert order.total == Decimal("79.13") and order.tax_total == Decimal("15.82")


def test_an_unknown_tax_mode_is_unreadable():
    raw = raw_order([("A", 1, "10.00", "1.67", "0", "0")])
    raw["order_tax_mode"] = "TAX_MAYBE"
    with pytest.raises(TranslationError, match="TAX_MAYBE"):
        CH.to_order(raw)
