"""commercetools money, orders, refunds and payouts to canonical models: pure functions, with
property tests over orders built the way commercetools computes them (sandbox builders)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce_sync.models import TranslationError, order_charge_sum, order_line_sum
from commerce_sync.systems.commercetools_orders import money, order_from, payout_lines_from, refund_from, tax_portions
from sandbox.commercetools_builders import make_order, payment, transaction
from sandbox.commercetools_builders import money as ct_money

WHEN = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)


def translate(raw):
    return order_from(raw, channel="commercetools", default_seller="storefront", locale="en-GB")


# -- money --------------------------------------------------------------------------------------
def test_cent_and_high_precision_money_are_exact():
    assert money({"type": "centPrecision", "currencyCode": "GBP", "centAmount": 1999, "fractionDigits": 2}, "x") == Decimal("19.99")
    assert money({"type": "highPrecision", "currencyCode": "EUR", "centAmount": 123, "preciseAmount": 123456, "fractionDigits": 5}, "x") == Decimal("1.23456")
    assert money({"type": "centPrecision", "currencyCode": "JPY", "centAmount": 1500, "fractionDigits": 0}, "x") == Decimal("1500")
    assert money({"currencyCode": "GBP", "centAmount": 5}, "x") == Decimal("0.05")  # plain Money: the currency's own cents
    assert money({"currencyCode": "GBP", "centAmount": Decimal("500.0"), "fractionDigits": 2}, "x") == Decimal("5.00")


@pytest.mark.parametrize("bad, why", [
    ({"currencyCode": "GBP", "centAmount": 19.99, "fractionDigits": 2}, "not a whole number"),
    ({"currencyCode": "GBP", "centAmount": Decimal("19.5"), "fractionDigits": 2}, "not a whole number"),
    ({"currencyCode": "GBP", "centAmount": True, "fractionDigits": 2}, "missing"),
    ({"currencyCode": "GBP", "fractionDigits": 2}, "missing"),
    ({"type": "highPrecision", "currencyCode": "GBP", "centAmount": 1, "fractionDigits": 4}, "preciseAmount is missing"),
    ({"type": "weird", "currencyCode": "GBP", "centAmount": 1, "fractionDigits": 2}, "not one of"),
    ({"currencyCode": "EUR", "centAmount": 1, "fractionDigits": 2}, "in EUR, the order in GBP"),
    (None, "not money"),
])
def test_unreadable_money_is_refused_with_the_field_named(bad, why):
    with pytest.raises(TranslationError, match=why) as err:
        money(bad, "lineItems[0].price.value", "GBP")
    assert "lineItems[0].price.value" in err.value.reason


@given(units=st.integers(min_value=-10**15, max_value=10**15), digits=st.integers(min_value=0, max_value=12),
       kind=st.sampled_from(["centPrecision", "highPrecision"]))
def test_money_is_the_integer_scaled_by_its_fraction_digits(units, digits, kind):
    field = "preciseAmount" if kind == "highPrecision" else "centAmount"
    value = {"type": kind, "currencyCode": "EUR", field: units, "fractionDigits": digits, **({"centAmount": 0} if kind == "highPrecision" else {})}
    got = money(value, "x")
    assert got == Decimal(units) / Decimal(10) ** digits
    assert got.as_tuple().exponent == -digits  # the stated precision is kept, never a float's


@given(st.decimals(min_value=Decimal("-99999999.99"), max_value=Decimal("99999999.99"), places=2, allow_nan=False, allow_infinity=False))
def test_money_built_as_commercetools_sends_it_reads_back_the_same(amount):
    assert money(ct_money(amount, "GBP"), "x", "GBP") == amount


# -- orders -------------------------------------------------------------------------------------
def test_an_inclusive_order_with_every_kind_of_money_adds_up_to_the_cent():
    raw = make_order("CT1001", [
        {"sku": "TEE", "quantity": 2, "price": "45.00", "product_discount": "5.00", "cart_discount": "2.50"},
        {"sku": "CAP", "quantity": 1, "price": "19.99"},
    ], shipping="4.95", shipping_discount="1.00", order_discount="10.00", custom_lines=[{"name": "Gift wrap", "amount": "3.50"}],
        created=WHEN, store="uk-store")
    order = translate(raw)
    assert order.channel_ref == "CT1001" and order.channel_id == raw["id"] and order.seller_ref == "uk-store"
    assert order.currency == "GBP" and order.tax_inclusive is True and order.placed_at == WHEN.replace(microsecond=0)
    tee, cap = order.lines
    assert (tee.unit_price, tee.discount, tee.line_total) == (Decimal("45.00"), Decimal("15.00"), Decimal("75.00"))
    assert (cap.unit_price, cap.discount, cap.line_total) == (Decimal("19.99"), Decimal("0"), Decimal("19.99"))
    kinds = [(c.kind, c.description, c.amount) for c in order.charges]
    assert kinds == [("fee", "Gift wrap", Decimal("3.50")), ("shipping", "Standard delivery", Decimal("4.95")),
                     ("discount", "Shipping discount", Decimal("-1.00")), ("discount", "Order discount", Decimal("-10.00"))]
    assert order.total == Decimal("92.44") == order_line_sum(order) + order_charge_sum(order)
    assert order.tax_total == money(raw["taxedPrice"]["totalTax"], "t") == sum((l.tax for l in order.lines), Decimal(0)) + sum((c.tax for c in order.charges), Decimal(0))
    assert order.customer.name == "Sam Lee" and order.customer.shipping_address.postcode == "W1D 1AN"


def test_an_exclusive_order_is_net_with_its_tax_beside_it():
    raw = make_order("CT2001", [{"sku": "TEE", "quantity": 3, "price": "37.50"}], currency="EUR", included=False, tax_rate="0.19", shipping="5.00")
    order = translate(raw)
    assert order.tax_inclusive is False and order.currency == "EUR"
    assert order.total == Decimal("117.50") == order_line_sum(order) + order_charge_sum(order)  # net, as totalPrice is
    assert order.tax_total == Decimal("22.33")  # 21.38 on the line, 0.95 on shipping


def test_a_missing_order_number_is_kept_as_none_for_the_gate():
    assert translate(make_order(None, [{"sku": "TEE", "quantity": 1, "price": "10.00"}])).channel_ref is None
    assert translate(make_order("", [{"sku": "TEE", "quantity": 1, "price": "10.00"}])).channel_ref is None


def test_tax_disabled_is_an_order_without_tax():
    order = translate(make_order("CT3001", [{"sku": "TEE", "quantity": 1, "price": "10.00"}], tax_mode="Disabled", shipping="2.00"))
    assert order.tax_inclusive is False and order.tax_total == 0 and order.total == Decimal("12.00")


def test_a_high_precision_unit_price_is_kept_exactly():
    raw = make_order("CT3002", [{"sku": "SCREW", "quantity": 1000, "precise": ("0.01235", 5)}])
    (line,) = translate(raw).lines
    assert line.unit_price == Decimal("0.01235") and line.line_total == Decimal("12.35")  # 12.350 to the cent


@pytest.mark.parametrize("breakage, reason", [
    (lambda o: o["lineItems"][1]["taxRate"].update(includedInPrice=False), "mixes tax-inclusive and tax-exclusive"),
    (lambda o: o.pop("taxedPrice"), "no taxedPrice"),
    (lambda o: [li.pop("taxRate") for li in o["lineItems"]] and o["shippingInfo"].pop("taxRate"), "no line states a tax rate"),
    (lambda o: o["taxedPrice"]["totalGross"].update(centAmount=o["taxedPrice"]["totalGross"]["centAmount"] + 1), "totalGross"),
    (lambda o: o["totalPrice"].update(currencyCode="EUR"), "in GBP, the order in EUR"),
    (lambda o: o["lineItems"][0]["price"]["value"].update(centAmount=12.5), "not a whole number"),
    (lambda o: o.update(lineItems=[]), "no line items"),
    (lambda o: o.update(createdAt="yesterday"), "createdAt"),
])
def test_an_order_that_cannot_be_read_unambiguously_is_refused(breakage, reason):
    raw = make_order("CT4001", [{"sku": "TEE", "quantity": 1, "price": "10.00"}, {"sku": "CAP", "quantity": 1, "price": "5.00"}], shipping="1.00")
    breakage(raw)
    with pytest.raises(TranslationError, match=reason) as err:
        translate(raw)
    assert err.value.record_key == raw["id"]


def test_a_total_off_by_a_cent_still_translates_so_the_gate_can_hold_it():
    raw = make_order("CT4002", [{"sku": "TEE", "quantity": 1, "price": "10.00"}], shipping="1.00")
    for m in (raw["totalPrice"], raw["taxedPrice"]["totalGross"], raw["taxedPrice"]["totalNet"]):
        m["centAmount"] += 1
    order = translate(raw)
    assert order.total - (order_line_sum(order) + order_charge_sum(order)) == Decimal("0.01")


line_spec = st.fixed_dictionaries({
    "sku": st.sampled_from(["TEE", "CAP", "SOCK"]),
    "quantity": st.integers(min_value=1, max_value=12),
    "price": st.decimals(min_value=Decimal("0.50"), max_value=Decimal("999.99"), places=2),
    "product_discount": st.sampled_from([None, "0.10", "0.25"]),
    "cart_discount": st.sampled_from([None, "0.05", "0.20"]),
    "tax_rate": st.sampled_from(["0.20", "0.05", "0", "0.19"]),
})


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(lines=st.lists(line_spec, min_size=1, max_size=5), included=st.booleans(), currency=st.sampled_from(["GBP", "EUR", "JPY"]),
       shipping=st.sampled_from([None, "0", "4.95", "12"]), order_discount=st.sampled_from([None, "0.30", "3"]))
def test_any_consistent_order_translates_to_lines_and_charges_that_make_its_total(lines, included, currency, shipping, order_discount):
    if currency == "JPY":  # no cents in yen
        lines = [{**l, "price": l["price"].to_integral_value(), "product_discount": None, "cart_discount": None} for l in lines]
        shipping = None if shipping is None else "5"
        order_discount = None if order_discount is None else "3"
    raw = make_order("CTP", lines, currency=currency, included=included, shipping=shipping, order_discount=order_discount)
    order = translate(raw)
    assert order.tax_inclusive is included
    assert order_line_sum(order) + order_charge_sum(order) == order.total == money(raw["totalPrice"], "t")
    for line in order.lines:
        assert line.unit_price * line.quantity - line.discount == line.line_total
    assert order.tax_total == money(raw["taxedPrice"]["totalTax"], "t")
    assert all(isinstance(v, Decimal) for line in order.lines for v in (line.unit_price, line.discount, line.line_total, line.tax))


def test_tax_portions_are_kept_by_scope_for_a_tax_rule_mapping():
    raw = make_order("CT5001", [{"sku": "TEE", "quantity": 1, "price": "12.00"}, {"sku": "BOOK", "quantity": 1, "price": "10.50", "tax_rate": "0.05"}],
                     shipping="6.00")
    portions = tax_portions(raw)
    order_level = sorted((p["rate"], p["amount"]) for p in portions if p["scope"] == "order")
    assert order_level == [(Decimal("0.05"), Decimal("0.50")), (Decimal("0.2"), Decimal("3.00"))]
    assert {p["scope"] for p in portions} == {"order", "shipping", *(li["id"] for li in raw["lineItems"])}
    assert sum(p["amount"] for p in portions if p["scope"] == "order") == translate(raw).tax_total


# -- refunds ------------------------------------------------------------------------------------
def refund_raw(order, tx, refunds_on_order=1):
    trimmed = {"id": order["id"], "orderNumber": order.get("orderNumber"), "currency": order["totalPrice"]["currencyCode"],
               "returnInfo": order.get("returnInfo") or [],
               "lineItems": [{"id": li["id"], "quantity": li["quantity"], "totalPrice": li["totalPrice"], "variant": {"sku": li["variant"]["sku"]}} for li in order["lineItems"]]}
    return {"id": "tx-1", "transaction": {"id": "tx-1", **tx, "amount": {**tx["amount"], "fractionDigits": 2, "type": "centPrecision"}},
            "payment": {"id": "p1"}, "refunds_on_order": refunds_on_order, "order": trimmed}


def returned(order, *pairs, tracking=None, payment_state="Refunded"):
    info = {"items": [{"type": "LineItemReturnItem", "id": f"ri-{i}", "lineItemId": order["lineItems"][idx]["id"], "quantity": qty,
                       "shipmentState": "Returned", "paymentState": payment_state, "createdAt": "2026-11-30T10:00:00.000Z",
                       "lastModifiedAt": "2026-11-30T10:00:00.000Z"} for i, (idx, qty) in enumerate(pairs)]}
    if tracking:
        info["returnTrackingId"] = tracking
    order.setdefault("returnInfo", []).append(info)


def test_a_refund_credits_the_returned_items_at_what_was_paid_for_them():
    order = make_order("CT6001", [{"sku": "TEE", "quantity": 2, "price": "45.00", "cart_discount": "5.00"}, {"sku": "CAP", "quantity": 1, "price": "19.99"}])
    returned(order, (0, 1))
    refund = refund_from(refund_raw(order, transaction("Refund", "40.00", at=WHEN)))
    assert refund.order_channel_ref == "CT6001" and refund.currency == "GBP" and refund.requested_at == WHEN.replace(microsecond=0)
    assert [(l.sku, l.quantity, l.amount) for l in refund.lines] == [("TEE", 1, Decimal("40.00"))]


def test_a_refund_is_matched_to_its_return_by_tracking_id_and_spread_exactly():
    order = make_order("CT6002", [{"sku": "TEE", "quantity": 3, "price": "10.00"}, {"sku": "CAP", "quantity": 3, "price": "10.00"}])
    returned(order, (0, 1), tracking="RET-1")
    returned(order, (0, 1), (1, 2), tracking="RET-2")
    refund = refund_from(refund_raw(order, transaction("Refund", "25.00", interaction_id="RET-2"), refunds_on_order=2))
    assert [(l.sku, l.quantity) for l in refund.lines] == [("TEE", 1), ("CAP", 2)]
    assert sum(l.amount for l in refund.lines) == Decimal("25.00") and [l.amount for l in refund.lines] == [Decimal("8.33"), Decimal("16.67")]


def test_a_refund_without_a_return_to_match_is_one_line_without_a_sku():
    order = make_order("CT6003", [{"sku": "TEE", "quantity": 1, "price": "10.00"}])
    refund = refund_from(refund_raw(order, transaction("Refund", "2.50")))  # goodwill: no return
    assert [(l.sku, l.amount) for l in refund.lines] == [(None, Decimal("2.50"))]
    returned(order, (0, 1), payment_state="NonRefundable")
    assert refund_from(refund_raw(order, transaction("Refund", "2.50"))).lines[0].sku is None  # kept money is not credited


@given(amount_cents=st.integers(min_value=1, max_value=10**7), quantities=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=4))
def test_a_refund_spread_over_items_sums_to_the_refund_exactly(amount_cents, quantities):
    order = make_order("CT6004", [{"sku": f"S{i}", "quantity": q + 1, "price": "9.99"} for i, q in enumerate(quantities)])
    returned(order, *[(i, q) for i, q in enumerate(quantities)], tracking="R")
    amount = Decimal(amount_cents) / 100
    refund = refund_from(refund_raw(order, transaction("Refund", amount, interaction_id="R")))
    assert sum(l.amount for l in refund.lines) == amount
    assert all(l.amount.as_tuple().exponent >= -2 for l in refund.lines)


# -- payouts ------------------------------------------------------------------------------------
def with_payments(*payments):
    return {"id": "order-1", "order": {"id": "order-1", "orderNumber": "CT7001", "currency": "GBP"},
            "payments": [{**p, "amountPlanned": {**p["amountPlanned"], "fractionDigits": 2},
                          "transactions": [{**t, "id": f"t{i}", "amount": {**t["amount"], "fractionDigits": 2}} for i, t in enumerate(p["transactions"])]}
                         for p in payments]}


def test_payout_is_what_was_captured_net_of_refunds_across_every_payment():
    raw = with_payments(
        payment("p1", "60.00", transactions=[transaction("Authorization", "60.00"), transaction("Charge", "60.00", at=WHEN)]),
        payment("p2", "34.95", transactions=[transaction("Charge", "34.95", at=WHEN), transaction("Refund", "10.00"),
                                             transaction("Charge", "5.00", state="Failure")]),
    )
    lines = {l.kind: l.amount for l in payout_lines_from(raw)}
    assert lines == {"payment": Decimal("84.95"), "refund": Decimal("10.00")}
    assert sum(lines.values()) == Decimal("94.95")  # what the customer was charged: the sale's total


def test_a_payment_never_captured_is_not_a_payout():
    with pytest.raises(TranslationError, match="nothing was captured"):
        payout_lines_from(with_payments(payment("p1", "10.00", transactions=[transaction("Authorization", "10.00")])))


def test_a_payment_in_another_currency_is_refused():
    raw = with_payments(payment("p1", "10.00", transactions=[transaction("Charge", "10.00", "EUR")]))
    with pytest.raises(TranslationError, match="in EUR, the order in GBP"):
        payout_lines_from(raw)


def test_translation_never_changes_the_payload():
    raw = make_order("CT8001", [{"sku": "TEE", "quantity": 1, "price": "10.00"}], shipping="1.00")
    before = copy.deepcopy(raw)
    translate(raw)
    tax_portions(raw)
    assert raw == before
