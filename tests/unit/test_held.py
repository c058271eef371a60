"""A held record is named by the order people know, found through the channel adapter's own
translation (or what the flow staged beside it), for every flow that holds orders and both
pairings; personal data is masked as in the payload log."""

from __future__ import annotations

from commerce_sync.held import masked, order_number
from commerce_sync.jsonutil import dumps, loads
from commerce_sync.pairing import get_pairing
from sandbox.mirakl_builders import make_order
from tests.builders import marketplacer_invoice, with_relay_ids

MKP = get_pairing("cin7_marketplacer")
JL = get_pairing("cin7_john_lewis")


def jl_order(order_id: str, commercial_id: str | None, **kw) -> dict:
    """An OR11 order as the ledger hands it back (amounts as Decimal, as read from JSON)."""
    return loads(dumps(make_order(order_id, commercial_id, [{"offer_sku": "JL-1", "quantity": 1, "price_unit": "25.00"}], **kw)))


def test_orders_are_named_by_the_erp_external_id_or_the_customer_order_number():
    invoice = with_relay_ids(marketplacer_invoice(10014, [("CS-TEE-BLK-M", 1, 4500)]))
    jl = jl_order("JL7001-A", "JL-CO-7001", state="SHIPPING")
    assert order_number(MKP, "orders_in", invoice) == "MKP-10014"  # the prefix comes from the pairing file
    assert order_number(JL, "orders_in", jl) == "JL-CO-7001"
    assert order_number(JL, "order_acceptance", jl_order("JL7002-A", "JL-CO-7002")) == "JL-CO-7002"


def test_other_flows_name_the_order_their_record_belongs_to():
    refund = {"id": "UmVmdW5k", "legacyId": 77, "status": "REFUNDED", "createdAt": "2026-11-23T09:30:00Z", "invoice": {"legacyId": 10014, "currency": "AUD"},
              "lineItems": [{"id": "r1", "amountCents": 1500, "quantity": 1, "lineItem": {"variantSku": "CS-SOCK-WHT"}}]}
    payout = {"id": "UmVt", "legacyId": 5, "amountCents": 4000, "commissionAmountCents": 500, "invoice": {"legacyId": 10014},
              "advice": {"paidAt": "2026-11-23T09:30:00Z", "currency": "AUD"}}
    assert order_number(MKP, "refunds", refund) == "MKP-10014"
    assert order_number(MKP, "payout_reconciliation", payout) == "MKP-10014"
    assert order_number(MKP, "dispatch_back", {"shipment_ref": "S1:1", "order_channel_ref": "10014"}) == "MKP-10014"


def test_no_order_number_where_there_is_none_or_the_record_cannot_be_read():
    assert order_number(MKP, "stock_out", {"sku": "MKP-GIFT-50"}) is None  # a listing, known by its SKU
    assert order_number(MKP, "orders_in", {"id": "x", "lineItems": "not a list"}) is None
    assert order_number(MKP, "orders_in", {"unreadable": "cut-off JSON"}) is None
    assert order_number(None, "orders_in", {"legacyId": 1}) is None  # a pairing whose file is gone
    assert order_number(JL, "orders_in", jl_order("JL7003-A", None, state="SHIPPING")) is None


def test_masked_hides_buyers_data_and_keeps_what_ops_need():
    invoice = marketplacer_invoice(10014, [("CS-TEE-BLK-M", 2, 4500)])
    shown = masked(invoice)
    text = str(shown)
    assert "alex.buyer@example.com" not in text and "1 Test St" not in text and "+61 400 000 000" not in text
    assert shown["lineItems"][0]["variantSku"] == "CS-TEE-BLK-M" and shown["totalCents"] == invoice["totalCents"]
