"""Property tests for every translation: channel payload -> canonical model -> ERP payload.

For any input: it translates, or it raises the project's typed TranslationError (never another
exception); money is conserved (lines + charges - discounts = total, to the cent, no rounding);
SKUs, names and references come through whole (nothing trimmed or truncated).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce_sync.models import Charge, Order, OrderLine, Refund, RefundLine, SaleRef, TranslationError, order_charge_sum, order_line_sum
from commerce_sync.ports import SaleInstructions
from commerce_sync.systems.cin7_core import Cin7CoreMaster, shipments_of_fulfilment
from commerce_sync.systems.marketplacer import MarketplacerChannel
from commerce_sync.systems.mirakl import MiraklChannel
from tests.builders import marketplacer_invoice, with_relay_ids

MKP = MarketplacerChannel(client=None, currency="AUD")
JL = MiraklChannel(None, seller_ref="john_lewis")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

skus = st.text(min_size=1, max_size=40)  # any text: quotes, spaces, unicode, SQL
cents = st.integers(min_value=0, max_value=10_000_000)
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def _typed_or_ok(fn, raw):
    try:
        return fn(raw)
    except TranslationError as exc:
        assert exc.reason  # a reason a person can read
        return None


# -- Marketplacer -----------------------------------------------------------------------------------
@SETTINGS
@given(st.lists(st.tuples(skus, st.integers(min_value=1, max_value=99), cents), min_size=1, max_size=6), cents)
def test_marketplacer_invoice_conserves_money_and_keeps_skus_whole(lines, postage):
    raw = with_relay_ids(marketplacer_invoice(42, lines, postage_cents=postage))
    order = MKP.to_order(raw)
    assert order_line_sum(order) + order_charge_sum(order) == order.total
    assert [line.sku for line in order.lines] == [sku for sku, _, _ in lines]
    assert order.total == Decimal(sum(q * p for _, q, p in lines) + postage) / 100


@SETTINGS
@given(st.dictionaries(st.sampled_from(["id", "legacyId", "createdAt", "currency", "lineItems", "totalCents", "taxCents", "postageCents", "discountCents", "seller", "shippingAddress"]), junk))
def test_marketplacer_any_invoice_translates_or_raises_the_typed_error(raw):
    _typed_or_ok(MKP.to_order, raw)


@SETTINGS
@given(junk)
def test_marketplacer_any_refund_or_payout_translates_or_raises_the_typed_error(raw):
    if isinstance(raw, dict):
        _typed_or_ok(MKP.to_refund, raw)
        _typed_or_ok(MKP.to_payout_lines, raw)


# -- Mirakl --------------------------------------------------------------------------------------------
@SETTINGS
@given(junk)
def test_mirakl_any_refund_or_payout_translates_or_raises_the_typed_error(raw):
    if isinstance(raw, dict):
        _typed_or_ok(JL.to_refund, raw)
        _typed_or_ok(JL.to_payout_lines, raw)
        _typed_or_ok(JL.to_order, raw)


# -- canonical -> Cin7 -------------------------------------------------------------------------------
money = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999.99"), places=2, allow_nan=False, allow_infinity=False)


@st.composite
def orders(draw):
    lines = []
    for i in range(draw(st.integers(min_value=1, max_value=5))):
        qty = draw(st.integers(min_value=1, max_value=50))
        unit = draw(money)
        discount = draw(st.decimals(min_value=Decimal("0"), max_value=unit * qty, places=2))
        lines.append(OrderLine(line_ref=str(i), sku=draw(skus), name=draw(st.text(max_size=300)), quantity=qty, unit_price=unit,
                               discount=discount, line_total=unit * qty - discount, tax=draw(money)))
    charges = [Charge(kind="shipping", description="Shipping", amount=draw(money), tax=draw(money))]
    if draw(st.booleans()):
        charges.append(Charge(kind="discount", description="Voucher", amount=-draw(money)))
    total = sum((line.line_total for line in lines), Decimal("0")) + sum((c.amount for c in charges), Decimal("0"))
    return Order(channel="x", channel_ref=draw(st.text(min_size=1, max_size=60)), channel_id="x", placed_at=datetime(2026, 11, 1, tzinfo=timezone.utc),
                 currency="GBP", lines=lines, charges=charges, total=total, tax_total=draw(money), tax_inclusive=draw(st.booleans()))


@SETTINGS
@given(orders())
def test_cin7_sale_conserves_money_tax_and_keeps_names_whole(order):
    how = SaleInstructions(external_id=order.channel_ref, customer="C", location="L", tax_rule="T",
                           tax_calculation="Inclusive" if order.tax_inclusive else "Exclusive", status="AUTHORISED",
                           sku_map={line.sku: f"M-{line.sku}" for line in order.lines}, source_channel="X")
    body = Cin7CoreMaster.sale_order("sale-1", order, how)
    lines_total = sum((line["Total"] for line in body["Lines"]), Decimal("0"))
    charges_total = sum((c["Total"] for c in body["AdditionalCharges"]), Decimal("0"))
    assert lines_total + charges_total == order.total  # lines + charges - discounts = total, exactly
    # Cin7's arithmetic: an exclusive sale's Total adds its tax; an inclusive one's holds it
    assert body["Total"] == (order.total if order.tax_inclusive else order.total + order.tax_total)
    assert body["Tax"] == order.tax_total
    assert [line["SKU"] for line in body["Lines"]] == [f"M-{line.sku}" for line in order.lines]
    assert [line["Name"] for line in body["Lines"]] == [line.name for line in order.lines]  # never truncated
    assert Cin7CoreMaster.sale_header(order, how)["ExternalID"] == order.channel_ref


@SETTINGS
@given(st.lists(st.tuples(skus, st.integers(min_value=0, max_value=20), st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2)), min_size=1, max_size=5))
def test_cin7_credit_note_credits_exactly_the_refunded_amounts(lines):
    refund = Refund(refund_ref="R1", order_channel_ref="1", currency="GBP", requested_at=datetime(2026, 11, 1, tzinfo=timezone.utc),
                    lines=[RefundLine(sku=sku, quantity=q, amount=a) for sku, q, a in lines])
    body = Cin7CoreMaster.credit_note("sale-1", refund, {sku: sku for sku, _, _ in lines}, "T")
    assert sum((line["Total"] for line in body["Lines"]), Decimal("0")) == sum((a for _, _, a in lines), Decimal("0"))
    assert all(line["Price"] * line["Quantity"] == line["Total"] for line in body["Lines"])  # unit prices never rounded away
    assert body["Restock"] == []


@SETTINGS
@given(junk)
def test_cin7_any_fulfilment_gives_shipments_or_typed_errors(raw):
    if not isinstance(raw, dict):
        return
    try:
        items = shipments_of_fulfilment(SaleRef(master_id="s1", external_id="e"), raw)
    except TranslationError:
        return
    except (AttributeError, TypeError, ValueError, KeyError) as exc:  # pragma: no cover - the property under test
        raise AssertionError(f"untyped error {type(exc).__name__}: {exc}") from exc
    assert all(not isinstance(i, Exception) or isinstance(i, TranslationError) for i in items)


pack_line = st.fixed_dictionaries({}, optional={"SKU": st.one_of(skus, junk), "Quantity": st.one_of(st.integers(-3, 9), st.decimals(allow_nan=True), st.text(max_size=4), st.none()),
                                                "Box": st.one_of(st.sampled_from(["1", "2", "1,2"]), junk)})
ship_line = st.fixed_dictionaries({}, optional={"Boxes": st.one_of(st.sampled_from(["1", "2", "1,2"]), junk), "IsShipped": st.one_of(st.booleans(), junk),
                                                "Carrier": st.one_of(st.text(max_size=10), junk), "TrackingNumber": st.one_of(st.text(max_size=10), junk),
                                                "ShipmentDate": st.one_of(st.just("2026-11-20T10:00:00Z"), junk)})


@SETTINGS
@given(st.fixed_dictionaries({"TaskID": st.text(max_size=5), "Pack": st.fixed_dictionaries({"Lines": st.lists(pack_line, max_size=4)}),
                              "Ship": st.fixed_dictionaries({"Lines": st.lists(ship_line, max_size=3)})}))
def test_cin7_any_shaped_fulfilment_gives_shipments_or_typed_errors(raw):
    test_cin7_any_fulfilment_gives_shipments_or_typed_errors.hypothesis.inner_test(raw)
