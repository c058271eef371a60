"""SFCC order -> canonical Order (pure): orders built with B2C Commerce's own arithmetic in both
taxation policies (sandbox/sfcc_builders.py), translated, and checked to the cent; hypothesis
generates the orders for the property tests."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce_sync.http import HttpClient
from commerce_sync.models import TranslationError, order_charge_sum, order_line_sum
from commerce_sync.ports import SaleInstructions
from commerce_sync.systems.cin7_core import Cin7CoreMaster
from commerce_sync.systems.sfcc import SfccChannel, split_channel_id
from sandbox.sfcc_builders import make_order

SITES = {"UK": {"currency": "GBP", "taxation": "gross", "order_prefix": "UK-", "label": "UK webshop"},
         "US": {"currency": "USD", "taxation": "net", "order_prefix": "US-"}}
CH = SfccChannel(HttpClient("http://127.0.0.1:9", system="sfcc"), organization_id="f_ecom_zzxy_prd", sites=SITES,
                 bookable={"status": ["new"], "confirmation_status": ["confirmed"], "payment_status": ["paid", "part_paid"]})


def _d(value) -> Decimal:
    return Decimal(str(value))


def test_a_gross_order_keeps_every_promotion_and_sfcc_totals_to_the_cent():
    raw = make_order("00001234", "UK", [
        {"sku": "TEE", "quantity": 2, "price": "45.00", "adjustments": [{"amount": "-9.00", "promotion": "TEES-10PCT"}]},
        {"sku": "CAP", "quantity": 1, "price": "19.99"},
    ], shipping="4.95", shipping_adjustments=[{"amount": "-4.95", "promotion": "FREE-SHIP"}], order_adjustments=[{"amount": "-10.00", "promotion": "WELCOME10"}])
    order = CH.to_order(raw)
    assert (order.channel_ref, order.channel_id, order.seller_ref, order.currency) == ("UK-00001234", "UK/00001234", "UK", "GBP")
    assert order.tax_inclusive is True and order.seller_name == "UK webshop"
    tee, cap = order.lines
    assert (tee.sku, tee.quantity, tee.unit_price, tee.discount, tee.line_total, tee.tax) == ("TEE", 2, _d("45.00"), _d("9.00"), _d("81.00"), _d("13.50"))
    assert (cap.line_total, cap.tax) == (_d("19.99"), _d("3.33"))
    assert [(c.kind, c.description, c.amount, c.tax) for c in order.charges] == [
        ("shipping", "Shipping", _d("4.95"), _d("0.83")),
        ("discount", "Shipping discount: Promotion", _d("-4.95"), _d("-0.83")),
        ("discount", "Order discount: Promotion", _d("-10.00"), _d("-1.67")),
    ]
    assert order.total == _d(raw["orderTotal"]) == _d("90.99")  # 81.00 + 19.99 + 4.95 - 4.95 - 10.00
    assert order.tax_total == _d(raw["taxTotal"]) == _d("15.16")
    assert order_line_sum(order) + order_charge_sum(order) == order.total  # the gate's rule holds for gross orders


def test_a_net_order_is_tax_exclusive_and_its_total_adds_the_tax_on_top():
    raw = make_order("00000042", "US", [{"sku": "CAP", "quantity": 3, "price": "20.00", "tax_rate": "0.0725"}], currency="USD", taxation="net", shipping="7.50")
    order = CH.to_order(raw)
    assert order.tax_inclusive is False and order.channel_ref == "US-00000042"
    assert [(l.line_total, l.tax) for l in order.lines] == [(_d("60.00"), _d("4.35"))]
    assert [(c.amount, c.tax) for c in order.charges] == [(_d("7.50"), _d("0.54"))]
    # the canonical total of a tax-exclusive order is without tax; SFCC's orderTotal adds it on top
    assert order.total == _d("67.50") and order.tax_total == _d("4.89") and order.total + order.tax_total == _d(raw["orderTotal"]) == _d("72.39")
    assert order_line_sum(order) + order_charge_sum(order) == order.total


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda o: o.update(currency="EUR"), "currency 'EUR' is not the currency site UK sells in (GBP)"),
        (lambda o: o.update(siteId="DE"), "site 'DE' is not one of the pairing's sites"),
        (lambda o: o.update(taxation="mixed"), "taxation 'mixed' is neither gross nor net"),
        (lambda o: o.update(giftCertificateItems=[{"giftCertificateItemId": "g1", "grossPrice": 50}]), "gift certificates"),
        (lambda o: o["productItems"][0].update(quantity=Decimal("1.5")), "quantity 1.5 is not a whole number"),
        (lambda o: o["productItems"][0].update(priceAfterItemDiscount=Decimal("1")), "priceAfterItemDiscount 1 is not its price"),
        (lambda o: o.update(productItems=[]), "no product items"),
        (lambda o: o.pop("orderTotal"), "orderTotal is missing"),
        (lambda o: o["productItems"][0].update(basePrice=45.1), "binary float"),
    ],
)
def test_an_order_the_adapter_cannot_book_exactly_is_refused_with_a_reason(change, reason):
    raw = make_order("00009999", "UK", [{"sku": "TEE", "quantity": 1, "price": "45.00"}])
    change(raw)
    with pytest.raises(TranslationError) as caught:
        CH.to_order(raw)
    assert reason in caught.value.reason and caught.value.record_key == f"{raw['siteId']}/00009999"


def test_the_order_states_its_taxation_and_a_site_policy_is_only_the_fallback():
    raw = make_order("00000007", "UK", [{"sku": "TEE", "quantity": 1, "price": "45.00"}])
    raw.pop("taxation")
    assert CH.to_order(raw).tax_inclusive is True  # the UK site is gross
    raw = make_order("00000008", "US", [{"sku": "TEE", "quantity": 1, "price": "45.00"}], currency="USD", taxation="gross")
    assert CH.to_order(raw).tax_inclusive is True  # the order's own policy wins over the site's


def test_bookable_means_every_listed_status_matches():
    ok = make_order("1", "UK", [{"sku": "TEE", "quantity": 1, "price": "1.00"}])
    assert CH.is_bookable(ok)
    assert not CH.is_bookable({**ok, "paymentStatus": "not_paid"})
    assert not CH.is_bookable({**ok, "confirmationStatus": "not_confirmed"})
    assert not CH.is_bookable({**ok, "status": "cancelled"})


def test_order_ids_keep_their_site():
    assert split_channel_id("UK/A/B-1") == ("UK", "A/B-1")
    with pytest.raises(ValueError):
        split_channel_id("00001234")


# -- properties -------------------------------------------------------------------------------
cents = lambda lo, hi: st.integers(lo, hi).map(lambda c: Decimal(c).scaleb(-2))  # noqa: E731
rates = st.sampled_from(["0", "0.05", "0.0725", "0.1", "0.2"])


@st.composite
def sfcc_orders(draw):
    taxation = draw(st.sampled_from(["gross", "net"]))
    lines = []
    for i in range(draw(st.integers(1, 4))):
        qty, price = draw(st.integers(1, 5)), draw(cents(0, 50_000))
        off = draw(st.lists(cents(1, 2_000), max_size=2))
        lines.append({"sku": f"SKU-{i}", "quantity": qty, "price": price, "tax_rate": draw(rates),
                      "adjustments": [{"amount": -a} for a in off]})
    shipping = draw(cents(0, 2_000))
    ship_off = [{"amount": -a} for a in draw(st.lists(cents(1, 500), max_size=1))] if shipping else []
    order_off = [{"amount": -a} for a in draw(st.lists(cents(1, 3_000), max_size=2))]
    site, currency = ("UK", "GBP") if taxation == "gross" else ("US", "USD")
    return make_order("P-1", site, lines, currency=currency, taxation=taxation, shipping=shipping,
                      shipping_adjustments=ship_off, order_adjustments=order_off)


def _exact(amount: Decimal) -> bool:
    return amount == amount.quantize(Decimal("0.01"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sfcc_orders())
def test_money_is_conserved_to_the_cent(raw):
    order = CH.to_order(raw)
    total, tax = _d(raw["orderTotal"]), _d(raw["taxTotal"])
    # passed through, never recomputed (a net order's canonical total is without its tax)
    assert order.total == (total if order.tax_inclusive else total - tax) and order.tax_total == tax
    goods = order_line_sum(order) + order_charge_sum(order)
    assert goods == order.total  # every line, charge and promotion kept
    assert sum((l.tax for l in order.lines), Decimal("0")) + sum((c.tax for c in order.charges), Decimal("0")) == tax
    for line in order.lines:
        assert line.unit_price * line.quantity - line.discount == line.line_total  # the gate's line rule
    amounts = [order.total, order.tax_total] + [a for l in order.lines for a in (l.unit_price, l.discount, l.line_total, l.tax)]
    assert all(_exact(a) for a in amounts + [a for c in order.charges for a in (c.amount, c.tax)])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sfcc_orders())
def test_an_order_books_in_cin7_at_sfcc_total_and_tax_in_its_own_tax_mode(raw):
    order = CH.to_order(raw)
    mode = "Inclusive" if raw["taxation"] == "gross" else "Exclusive"
    how = SaleInstructions(external_id=order.channel_ref, customer="Webshop", location="Main Warehouse", tax_rule="20% (VAT on Income)",
                           tax_calculation=mode, status="AUTHORISED", sku_map={l.sku: l.sku for l in order.lines}, source_channel="Webshop")
    sale = Cin7CoreMaster.sale_order("S1", order, how)
    # Cin7's Total is what the customer pays in either mode: SFCC's orderTotal, to the cent
    assert sale["Total"] == _d(raw["orderTotal"]) and sale["Tax"] == _d(raw["taxTotal"])
    goods = sum((l["Total"] for l in sale["Lines"]), Decimal("0")) + sum((c["Total"] for c in sale["AdditionalCharges"]), Decimal("0"))
    assert goods == order.total


def test_placed_at_is_the_creation_date():
    raw = make_order("1", "UK", [{"sku": "TEE", "quantity": 1, "price": "1.00"}], created=datetime(2026, 11, 30, 9, 15, tzinfo=timezone.utc))
    assert CH.to_order(raw).placed_at == datetime(2026, 11, 30, 9, 15, tzinfo=timezone.utc)
