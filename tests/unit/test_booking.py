"""Which ERP customer and which tax mode a channel order is booked under (flows/booking.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from commerce_sync.flows.booking import customer_for, tax_inclusive, tax_mode_note
from commerce_sync.models import Order, OrderLine
from commerce_sync.pairing import PairingError, load_pairings, parse_pairing


def _pairing(tax_calculation="Inclusive"):
    base = load_pairings()["cin7_marketplacer"].model_dump(exclude={"key"}, mode="json")
    base["policies"]["tax_calculation"] = tax_calculation
    return parse_pairing("brand", base)


def _order(currency="AUD", seller="1", inclusive=True):
    line = OrderLine(line_ref="1", sku="A", quantity=1, unit_price=Decimal("10"), line_total=Decimal("10"))
    return Order(channel="t", channel_ref="1", channel_id="1", placed_at=datetime(2026, 11, 30, tzinfo=timezone.utc), currency=currency,
                 seller_ref=seller, lines=[line], total=Decimal("10"), tax_inclusive=inclusive)


MAPS = {
    "sellers": {"1": {"master_customer": "Castore AU"}, "2": {"master_customer": "Lounge"}},
    "customers": {
        "NZD": {"currency": "NZD", "master_customer": "Marketplace NZ", "seller_ref": ""},
        "NZD:2": {"currency": "NZD", "master_customer": "Lounge NZ", "seller_ref": "2"},
        "GBP:1": {"currency": "GBP", "master_customer": "Castore UK", "seller_ref": "1"},
    },
}


@pytest.mark.parametrize(
    "currency, seller, customer",
    [
        ("NZD", "2", "Lounge NZ"),  # the (seller, currency) row wins
        ("NZD", "1", "Marketplace NZ"),  # then the currency's row
        ("GBP", "1", "Castore UK"),
        ("GBP", "2", "Lounge"),  # a currency row for another seller does not apply: sellers.csv's customer
        ("AUD", "9", "Marketplacer"),  # nothing names one: the pairing's policies.customer
        ("NZD", None, "Marketplace NZ"),
    ],
)
def test_the_customer_is_chosen_per_currency_then_seller_then_pairing(currency, seller, customer):
    assert customer_for(_pairing(), _order(currency, seller), MAPS) == customer


def test_the_orders_own_tax_mode_wins_and_a_difference_is_named():
    inclusive_default, exclusive_default = _pairing("Inclusive"), _pairing("Exclusive")
    assert tax_inclusive(exclusive_default, _order(inclusive=True)) is True
    assert tax_inclusive(inclusive_default, _order(inclusive=False)) is False
    assert tax_inclusive(exclusive_default, _order(inclusive=None)) is False  # no mode stated: the pairing's
    assert tax_mode_note(exclusive_default, _order(inclusive=True)) == "differs"
    assert tax_mode_note(inclusive_default, _order(inclusive=None)) == "defaulted"
    assert tax_mode_note(inclusive_default, _order(inclusive=True)) is None


def test_the_pairings_tax_calculation_and_unbookable_policy_are_checked():
    with pytest.raises(PairingError, match="tax_calculation"):
        _pairing("inclusive-ish")
    base = load_pairings()["cin7_john_lewis"]
    assert base.acceptance.unbookable == "hold"
    data = base.model_dump(exclude={"key"}, mode="json")
    data["acceptance"]["unbookable"] = "cancel"
    with pytest.raises(PairingError, match="unbookable"):
        parse_pairing("brand", data)


def test_an_order_must_state_its_tax_mode():
    with pytest.raises(ValueError, match="tax_inclusive"):
        Order(channel="t", channel_ref="1", channel_id="1", placed_at=datetime(2026, 11, 30, tzinfo=timezone.utc), currency="AUD",
              lines=[], total=Decimal("0"))


def test_each_named_tax_maps_one_to_one_to_an_erp_rule_and_an_unmapped_one_is_named():
    from commerce_sync.flows.booking import tax_rules, unmapped_taxes
    from commerce_sync.models import Charge
    from commerce_sync.ports import SaleInstructions

    rules = tax_rules({"tax_codes": {"VAT 20%:0.20": {"channel_tax_code": "VAT 20%", "rate": "0.20", "master_tax_rule": "20% (VAT on Income)"},
                                     "VAT 5%:0.05": {"channel_tax_code": "VAT 5%", "rate": "0.05", "master_tax_rule": "5% (VAT on Income)"}}})
    order = _order("GBP")
    line = order.lines[0].model_copy(update={"tax_name": "VAT 20%", "tax_rate": Decimal("0.2")})  # 0.2 == 0.20
    ship = Charge(kind="shipping", description="Delivery", amount=Decimal("4"), tax_name="VAT 5%", tax_rate=Decimal("0.050"))
    odd = Charge(kind="fee", description="Wrap", amount=Decimal("1"), tax_name="VAT 20%", tax_rate=Decimal("0.21"))  # known name, other rate
    named = order.model_copy(update={"lines": [line], "charges": [ship]})
    assert unmapped_taxes(named, rules) == []
    assert unmapped_taxes(named.model_copy(update={"charges": [ship, odd]}), rules) == ["VAT 20% at 0.21"]
    assert unmapped_taxes(named.model_copy(update={"charges": [odd]}), {}) == []  # no tax_codes.csv: the pairing's tax_rule
    how = SaleInstructions(external_id="1", customer="c", location="l", tax_rule="Default", tax_calculation="Inclusive", status="s",
                           sku_map={}, source_channel="x", tax_rules=rules)
    assert [how.tax_rule_for(i) for i in (line, ship, order.lines[0])] == ["20% (VAT on Income)", "5% (VAT on Income)", "Default"]
