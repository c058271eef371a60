"""Centra translation, property-tested: a channel order becomes an Order API body priced exactly as
sold (every line's total and tax to the cent, the order's total to the cent); SKUs translate both
ways in both forms the mapping allows; Centra's answers become canonical models or the typed
TranslationError, never another exception; webhook signatures made by the emulator verify."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce_sync.models import Charge, Customer, Order, OrderLine, SaleRef, TranslationError
from commerce_sync.money import from_minor, quantize
from commerce_sync.ports import SaleInstructions
from commerce_sync.systems.centra import CentraMaster, order_body, priced_items, verify_webhook
from commerce_sync.systems.marketplacer import MarketplacerChannel
from tests.builders import marketplacer_invoice, with_relay_ids

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(SETTINGS, max_examples=60)  # junk and crypto: each example is dear, a few dozen find the holes
COMPOSITE, SIZE_NUMBER = CentraMaster(None, sku_form="composite"), CentraMaster(None, sku_form="size_number")
MKP = MarketplacerChannel(client=None, currency="AUD")
NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def _how(sku_map, customer="Marketplacer AUD"):
    return SaleInstructions(external_id="MKP-1", customer=customer, location="-", tax_rule="-", tax_calculation="Inclusive", status="-",
                            sku_map=sku_map, source_channel="Marketplacer")


@st.composite
def lines(draw):
    qty = draw(st.integers(min_value=1, max_value=60))
    unit = draw(st.integers(min_value=0, max_value=500_000))
    discount = draw(st.integers(min_value=0, max_value=qty * unit))
    total = qty * unit - discount
    tax = draw(st.integers(min_value=0, max_value=total))
    currency = draw(st.sampled_from(["AUD", "JPY", "KWD"]))
    return OrderLine(line_ref="l", sku="S", quantity=qty, unit_price=from_minor(unit, currency), discount=from_minor(discount, currency),
                     line_total=from_minor(total, currency), tax=from_minor(tax, currency)), currency


@SETTINGS
@given(lines())
def test_a_line_is_priced_exactly_as_sold_in_at_most_two_items(drawn):
    line, currency = drawn
    items = priced_items("CT-X", line, currency)
    assert 1 <= len(items) <= 2
    assert sum(i["qty"] for i in items) == line.quantity
    assert sum(i["price"] * i["qty"] for i in items) == line.line_total
    assert sum(i["tax"] for i in items) == line.tax
    for item in items:
        assert quantize(item["price"], currency) == item["price"] and item["price"] >= 0  # a price the currency can hold
        assert quantize(item["tax"], currency) == item["tax"]
        assert item["sku"] == "CT-X" and item["originalPrice"] == line.unit_price


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["MKP-A", "MKP-B", "MKP-C"]), st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=900_000)),
                min_size=1, max_size=6), st.integers(min_value=0, max_value=50_000), st.integers(min_value=0, max_value=5_000))
def test_an_invoice_becomes_an_order_api_body_whose_totals_are_the_invoices(invoice_lines, postage, invoice_discount):
    raw = with_relay_ids(marketplacer_invoice(7, invoice_lines, postage_cents=postage))
    raw["discountCents"], raw["totalCents"] = -invoice_discount, raw["totalCents"] - invoice_discount
    order = MKP.to_order(raw)
    body = order_body(order, _how({"MKP-A": "a", "MKP-B": "b", "MKP-C": "c"}), {"a": "CT-A", "b": "CT-B", "c": "CT-C"}, market="Marketplacer")
    # what Centra books as the grand total (the emulator sums the same way)
    gross = sum((i["price"] * i["qty"] for i in body["products"]), Decimal("0")) + body["shippingValue"] - body["discountValue"]
    assert gross == order.total
    assert sum((i["tax"] for i in body["products"]), Decimal("0")) + body["shippingTax"] == order.tax_total
    assert [i["sku"] for i in body["products"]] == [i["sku"] for line in order.lines for i in priced_items({"MKP-A": "CT-A", "MKP-B": "CT-B", "MKP-C": "CT-C"}[line.sku], line, "AUD")]
    assert body["currency"] == "AUD" and body["externalId"] == "MKP-1" and body["pricelist"] == "Marketplacer AUD" and body["market"] == "Marketplacer"
    assert body["country"] == "AU" and body["email"] == "alex.buyer@example.com" and body["pricesIncludingTax"] is True


def test_a_charge_centra_has_no_place_for_is_refused_not_dropped():
    order = Order(channel="c", channel_ref="1", channel_id="1", placed_at=NOW, currency="AUD", customer=Customer(email="a@b.c"),
                  lines=[OrderLine(line_ref="1", sku="S", quantity=1, unit_price=Decimal("5"), line_total=Decimal("5"))],
                  charges=[Charge(kind="fee", description="Gift wrap", amount=Decimal("2"))], total=Decimal("7"), tax_inclusive=True)
    with pytest.raises(ValueError, match="fee"):
        order_body(order, _how({"S": "s"}), {"s": "CT-S"}, default_country="AU")


SIZE = {"id": 5, "SKU": "CT-TEE-BLK-M", "sizeNumber": "7350000000011"}


def test_both_sku_forms_the_mapping_allows():
    assert COMPOSITE.master_sku(SIZE) == "CT-TEE-BLK-M"
    assert SIZE_NUMBER.master_sku(SIZE) == "7350000000011"
    for master in (COMPOSITE, SIZE_NUMBER):
        with pytest.raises(TranslationError):
            master.master_sku({"id": 5, "SKU": "", "sizeNumber": None})
    with pytest.raises(ValueError, match="sku_form"):
        CentraMaster(None, sku_form="ean")


def _shipment(lines, **over):
    return {"id": 9, "number": "1001-1", "isShipped": True, "shippedAt": "2026-11-01T10:00:00+00:00", "trackingNumber": "AP1",
            "carrierInformation": {"carrierName": "Australia Post", "serviceName": "Express"},
            "lines": [{"id": i, "quantity": q, "orderLine": {"id": 100 + i, "productSize": size}} for i, (size, q) in enumerate(lines)], **over}


@pytest.mark.parametrize("master", [COMPOSITE, SIZE_NUMBER], ids=["composite", "size_number"])
def test_a_completed_shipment_becomes_a_canonical_shipment_in_the_mappings_form(master):
    sale = SaleRef(master_id="1001", external_id="MKP-1")
    shipment = master.to_shipment(sale, _shipment([(SIZE, 2)]), "1001:1001-1")
    assert shipment.carrier == "Australia Post" and shipment.tracking_number == "AP1" and shipment.master_ref == "1001"
    assert [(line.sku, line.quantity) for line in shipment.lines] == [(master.master_sku(SIZE), 2)]
    assert shipment.shipped_at == datetime(2026, 11, 1, 10, tzinfo=timezone.utc)


@FEWER
@given(st.dictionaries(st.sampled_from(["id", "number", "isShipped", "shippedAt", "trackingNumber", "carrierInformation", "lines"]), junk))
def test_any_shipment_translates_or_raises_the_typed_error(raw):
    from commerce_sync.systems.common import translating

    try:
        with translating("k"):
            COMPOSITE.to_shipment(SaleRef(master_id="1", external_id=None), raw, "k")
    except TranslationError as exc:
        assert exc.reason


@FEWER
@given(st.dictionaries(st.sampled_from(["id", "status", "updatedAt", "returnReason", "refundValue", "order", "lines"]), junk))
def test_any_return_translates_or_raises_the_typed_error(raw):
    try:
        COMPOSITE.to_refund(raw)
    except TranslationError as exc:
        assert exc.reason


def test_a_completed_return_becomes_a_refund_keyed_by_the_orders_external_id():
    raw = {"id": 31, "status": "COMPLETED", "updatedAt": "2026-11-02T09:00:00Z", "returnReason": "too small",
           "refundValue": {"value": Decimal("45.0"), "currency": {"code": "AUD"}}, "order": {"number": 1001, "externalId": "MKP-7"},
           "lines": [{"id": 1, "quantity": 1, "lineValue": {"value": Decimal("45.0")}, "shipmentLine": {"orderLine": {"id": 3, "productSize": SIZE}}}]}
    refund = SIZE_NUMBER.to_refund(raw)
    assert refund.order_channel_ref == "MKP-7" and refund.refund_ref == "31" and refund.currency == "AUD"
    assert [(line.sku, line.quantity, line.amount) for line in refund.lines] == [("7350000000011", 1, Decimal("45.00"))]


def test_a_product_becomes_its_sellable_sizes_with_prices():
    raw = {"id": 1, "name": "Tee", "productNumber": "CT-TEE-", "status": "ACTIVE", "variants": [
        {"id": 2, "name": "Black", "variantNumber": "BLK-", "prices": [{"pricelist": {"name": "Marketplacer AUD"}, "price": {"value": Decimal("45"), "currency": {"code": "AUD"}}}],
         "productSizes": [{**SIZE, "EAN": "7350000000011", "size": {"name": "M"}}]}]}
    (item,) = COMPOSITE.to_catalogue_items(raw)
    assert item["master_sku"] == "CT-TEE-BLK-M" and item["size"] == "M" and item["prices"] == {"Marketplacer AUD": (Decimal("45.00"), "AUD")}


@FEWER
@given(st.binary(max_size=500), st.text(min_size=1, max_size=40))
def test_webhook_signatures_made_by_the_emulator_verify_and_nothing_else_does(body, secret):
    from sandbox.centra import sign

    stamp = int(NOW.timestamp())
    header = sign(secret, stamp, body)
    assert verify_webhook(secret, header, body, now=stamp + 10)
    assert not verify_webhook(secret + "x", header, body, now=stamp + 10)
    assert not verify_webhook(secret, header, body + b"!", now=stamp + 10)
    assert not verify_webhook(secret, header, body, now=stamp + int(timedelta(minutes=10).total_seconds()))  # replayed late
    assert not verify_webhook(secret, None, body) and not verify_webhook(secret, "v1=abc", body)
