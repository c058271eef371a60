"""Channel payload -> canonical Order -> Cin7 sale payload: exact money, typed errors."""

from decimal import Decimal

import pytest

from commerce_sync.models import TranslationError, order_charge_sum, order_line_sum
from commerce_sync.ports import SaleInstructions
from commerce_sync.systems.cin7_core import Cin7CoreMaster
from commerce_sync.systems.marketplacer import MarketplacerChannel
from tests.builders import marketplacer_invoice, with_relay_ids

CH = MarketplacerChannel(client=None, currency="AUD")


def _how(**kw):
    base = dict(
        external_id="MKP-1",
        customer="Marketplacer",
        location="Main Warehouse",
        tax_rule="GST on Income",
        tax_calculation="Inclusive",
        status="AUTHORISED",
        sku_map={"CS-TEE-BLK-M": "TEE-BLK-M", "CS-CAP-NVY": "CAP-NVY"},
        source_channel="Marketplacer",
        seller_label="Castore AU",
    )
    base.update(kw)
    return SaleInstructions(**base)


def test_marketplacer_invoice_becomes_an_order_with_exact_money():
    raw = with_relay_ids(marketplacer_invoice(42, [("CS-TEE-BLK-M", 3, 3333), ("CS-CAP-NVY", 1, 2501)], postage_cents=995))
    order = CH.to_order(raw)
    assert order.channel_ref == "42"
    assert order.seller_ref == "1"
    assert order.lines[0].unit_price == Decimal("33.33")
    assert order.lines[0].line_total == Decimal("99.99")
    assert order.total == Decimal("99.99") + Decimal("25.01") + Decimal("9.95")
    assert order_line_sum(order) + order_charge_sum(order) == order.total
    assert order.placed_at.tzinfo is not None


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda r: r.pop("totalCents"), "totalCents is missing"),
        (lambda r: r["lineItems"][0].update(quantity=1.5), "quantity"),
        (lambda r: r["lineItems"][0].update(quantity="2"), "quantity"),
        (lambda r: r["lineItems"][0].update(unitPriceCents="12.00"), "unitPriceCents"),
        (lambda r: r.update(createdAt="yesterday"), "createdAt"),
        (lambda r: r.update(lineItems=[]), "no line items"),
        (lambda r: r.update(currency="dollars"), "currency"),
    ],
)
def test_unreadable_invoices_raise_a_typed_error_naming_the_field(breakage, message):
    raw = with_relay_ids(marketplacer_invoice(7, [("CS-CAP-NVY", 1, 2500)]))
    breakage(raw)
    with pytest.raises(TranslationError, match=message):
        CH.to_order(raw)


def test_cin7_sale_order_lines_and_charges_add_up_to_the_channel_total():
    raw = with_relay_ids(marketplacer_invoice(42, [("CS-TEE-BLK-M", 3, 3333), ("CS-CAP-NVY", 1, 2501)], postage_cents=995))
    raw["lineItems"][1]["discountCents"] = -501
    raw["lineItems"][1]["totalCents"] = 2000
    raw["totalCents"] -= 501
    order = CH.to_order(raw)
    body = Cin7CoreMaster.sale_order("sale-1", order, _how())
    assert [l["SKU"] for l in body["Lines"]] == ["TEE-BLK-M", "CAP-NVY"]  # mapped to Cin7 SKUs
    assert body["Lines"][0]["Total"] == Decimal("99.99")
    charges = {c["Description"]: c["Total"] for c in body["AdditionalCharges"]}
    assert charges == {"Shipping": Decimal("9.95"), "Discount": Decimal("-5.01")}
    assert body["Total"] == order.total
    assert all(isinstance(l["Price"], Decimal) for l in body["Lines"])


def test_cin7_sale_header_carries_reference_seller_tax_rule_and_location():
    order = CH.to_order(with_relay_ids(marketplacer_invoice(42, [("CS-CAP-NVY", 1, 2500)])))
    header = Cin7CoreMaster.sale_header(order, _how())
    assert header["ExternalID"] == "MKP-1"
    assert header["CustomerReference"] == "42"
    assert header["TaxRule"] == "GST on Income" and header["Location"] == "Main Warehouse"
    assert header["SkipQuote"] is True
    assert "Castore AU" in header["Note"]
    assert header["AdditionalAttributes"] == {"AdditionalAttribute1": "Castore AU"}


def test_the_ship_to_goes_to_cin7_with_the_buyer_and_comes_back_with_each_box():
    """The sale's shipping address carries the buyer as its Contact (ShipToOther: not added to
    the channel customer's address book); a fulfilment's Ship.ShippingAddress comes back on each
    shipped box, for the packing slip."""
    from commerce_sync.models import SaleRef, ShipTo
    from commerce_sync.systems.cin7_core import shipments_of_fulfilment

    order = CH.to_order(with_relay_ids(marketplacer_invoice(42, [("CS-CAP-NVY", 1, 2500)])))
    address = Cin7CoreMaster.sale_header(order, _how())["ShippingAddress"]
    assert address == {"Line1": "1 Test St", "Line2": None, "City": "Sydney", "State": "NSW", "Postcode": "2000", "Country": "AU",
                       "Contact": "Alex Buyer", "ShipToOther": True}
    fulfilment = {"TaskID": "T1", "Pack": {"Lines": [{"SKU": "CAP-NVY", "Quantity": 1, "Box": "1"}]},
                  "Ship": {"ShippingAddress": {**address, "Company": "", "Contact": "Αθηνά 山田"},
                           "Lines": [{"Box": "1", "IsShipped": True, "Carrier": "DHL", "TrackingNumber": "D1", "ShipmentDate": "2026-11-22T10:00:00"}]}}
    (shipment,) = shipments_of_fulfilment(SaleRef(master_id="S1", external_id="MKP-42"), fulfilment)
    assert shipment.shipping_address == ShipTo(name="Αθηνά 山田", line1="1 Test St", city="Sydney", state="NSW", postcode="2000", country="AU")
    assert shipment.shipping_address.lines() == ["Αθηνά 山田", "1 Test St", "Sydney NSW 2000", "AU"]
    assert "shipping_address" in shipment.model_dump(mode="json")  # a key the ledger seals
    fulfilment["Ship"].pop("ShippingAddress")
    assert shipments_of_fulfilment(SaleRef(master_id="S1", external_id="MKP-42"), fulfilment)[0].shipping_address is None


def test_marketplacer_prices_are_tax_inclusive_and_the_invoice_tax_beyond_its_lines_is_the_postages():
    raw = with_relay_ids(marketplacer_invoice(42, [("CS-TEE-BLK-M", 2, 4500)], postage_cents=995))
    raw["taxCents"] += 90  # the postage's GST: in the invoice's tax, on no line
    order = CH.to_order(raw)
    assert order.tax_inclusive is True
    assert [(c.kind, c.amount, c.tax) for c in order.charges] == [("shipping", Decimal("9.95"), Decimal("0.90"))]
    assert sum(line.tax for line in order.lines) + order.charges[0].tax == order.tax_total == Decimal("9.08")


def test_cin7_books_each_sale_in_its_own_tax_mode():
    order = CH.to_order(with_relay_ids(marketplacer_invoice(42, [("CS-CAP-NVY", 2, 2500)], postage_cents=0)))
    exclusive = order.model_copy(update={"tax_inclusive": False})
    how_in, how_ex = _how(tax_calculation="Inclusive"), _how(tax_calculation="Exclusive")
    assert Cin7CoreMaster.sale_header(order, how_in)["TaxCalculation"] == "Inclusive"
    assert Cin7CoreMaster.sale_header(exclusive, how_ex)["TaxCalculation"] == "Exclusive"
    assert Cin7CoreMaster.sale_order("s", order, how_in)["Total"] == Decimal("50.00")  # the tax is inside
    assert Cin7CoreMaster.sale_order("s", exclusive, how_ex)["Total"] == Decimal("54.55")  # 50.00 + 4.55 on top
