"""Every reason a person reads is a sentence: plain numbers, money as the channel wrote it, never
a library's value (`np.int64(-1)`) or a Python type name. Every rule of every gate is triggered
here and every reason it gives is scanned."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd
import pytest

from commerce_sync.errors import GateBatchError
from commerce_sync.gates.engine import RECORD_KEY, Check, expect, run_gate
from commerce_sync.flows.booking import unmapped_taxes
from commerce_sync.gates.orders import gate_orders, orders_checks
from commerce_sync.gates.refunds import gate_refunds
from commerce_sync.gates.shipments import gate_shipments, shipment_checks
from commerce_sync.gates.stock import gate_stock, stock_checks
from commerce_sync.models import Charge, Order, OrderLine, Refund, RefundLine

# what a leaked value looks like: numpy's repr, Decimal's repr, pandas' missing markers, type names
LEAK = re.compile(r"np\.|numpy|Decimal\(|\bint(8|16|32|64)?\b|\bfloat(32|64)?\b|\bstr\b|\bbool\b|NoneType|<class|\bdtype\b|"
                  r"Timestamp\(|\bnan\b|\bNaN\b|\bNone\b|\bTrue\b|\bFalse\b|\bpd\.|\bNA\b")
T = datetime(2026, 11, 30, tzinfo=timezone.utc)
D = Decimal


def _scan(reasons: dict[str, list[dict[str, str]]]) -> set[str]:
    seen = set()
    for key, rs in reasons.items():
        for r in rs:
            assert r["detail"], f"{key}: {r['check']} has no sentence"
            assert not LEAK.search(r["detail"]), f"{key}: {r['check']}: {r['detail']!r} shows a library value or type name"
            seen.add(r["check"])
    return seen


def _line(sku="SKU-A", qty=1, unit="10.00", total=None, tax="0", discount="0"):
    total = D(unit) * qty - D(discount) if total is None else D(total)
    return OrderLine(line_ref=f"{sku}-{qty}", sku=sku, quantity=qty, unit_price=D(unit), discount=D(discount), line_total=total, tax=D(tax))


def _order(ref="1", lines=None, *, currency="GBP", seller="s1", total=None, tax_total=None, charges=()):
    lines = lines or [_line()]
    charges = list(charges)
    if total is None:
        total = sum((line.line_total for line in lines), D(0)) + sum((c.amount for c in charges), D(0))
    if tax_total is None:
        tax_total = sum((line.tax for line in lines), D(0)) + sum((c.tax for c in charges), D(0))
    return Order(channel="test", channel_ref=ref, channel_id=f"id-{ref}", placed_at=T, currency=currency, seller_ref=seller,
                 lines=lines, charges=charges, total=D(total), tax_total=D(tax_total), tax_inclusive=True)


def test_every_orders_rule_reads_as_a_sentence_with_money_as_the_channel_wrote_it():
    orders = {
        "no_ref": _order(None),
        "unmapped": _order("2", [_line("SKU-X")]),
        "near": _order("3", [_line("sku-a")]),
        "seller": _order("4", seller="s9"),
        "no_seller": _order("5", seller=None),
        "qty": _order("6", [_line(qty=0, total="0.00")]),
        "neg_unit": _order("7", [_line(unit="-5.00")]),
        "neg_total": _order("8", [_line(unit="0.00", total="-1.00")]),
        "usd": _order("9", currency="USD"),
        "line_off": _order("10", [_line(unit="10.00", total="10.01")]),
        "total_off": _order("11", total="10.01"),
        "tax_off": _order("12", [_line(tax="1.67")], tax_total="1.66"),
        "aud_customer": _order("13", seller="s2"),
        "tax_unmapped": _order("14", [_line().model_copy(update={"tax_name": "VAT 21%", "tax_rate": D("0.21")})]),
    }
    customers = {"s1": ("UK customer", "GBP"), "s2": ("AU customer", "AUD"), "s9": ("UK customer", "GBP"), None: ("UK customer", "GBP")}
    result = gate_orders(
        orders,
        unreadable={"garbled": [{"check": "payload_readable", "detail": "field 'price' is missing"}]},
        mapped_skus={"SKU-A"},
        mapped_sellers={"s1", "s2"},
        currencies=["GBP"],
        max_bad_share=D("1"),
        min_records_for_share=1,
        customer_of=lambda o: customers[o.seller_ref],
        unmapped_taxes=lambda o: unmapped_taxes(o, {("VAT 20%", D("0.2")): "20% (VAT on Income)"}),
    )
    seen = _scan(result.failed)
    rules = {c.name for c in orders_checks(mapped_skus=set(), mapped_sellers=set(), currencies=["GBP"]) if not c.batch_level}
    assert rules | {"sku_near_match", "payload_readable"} <= seen, sorted(rules - seen)
    detail = {k: "; ".join(r["detail"] for r in rs) for k, rs in result.failed.items()}
    # lines and charges are a cent under the total the channel sent
    assert detail["total_off"] == "line totals + charges differ from the order total by -0.01 GBP"
    assert "(-5.00 GBP)" in detail["neg_unit"] and "(got 'USD')" in detail["usd"] and "(got 0)" in detail["qty"]
    assert "by -0.01 GBP" in detail["line_off"] and "by +0.01 GBP" in detail["tax_off"]
    assert "'AU customer' trades in AUD" in detail["aud_customer"]
    assert detail["tax_unmapped"].startswith("tax VAT 21% at 0.21 is not mapped to an ERP tax rule")


def test_every_stock_shipment_and_refund_rule_reads_as_a_sentence():
    stock = gate_stock(
        [{"channel_sku": "A", "master_sku": None, "available": D("3")}, {"channel_sku": "B", "master_sku": "B", "available": D("2.5")},
         {"channel_sku": "C", "master_sku": "C", "available": D("-3")}],
        unreadable={}, max_bad_share=D("1"), min_records_for_share=1, known_bad=set(),
    )
    seen = _scan(stock.failed)
    assert {c.name for c in stock_checks() if not c.batch_level} <= seen
    assert "2.5 available" in stock.failed["B"][0]["detail"] and "-3 available" in stock.failed["C"][0]["detail"]

    ship = lambda **kw: {"order_channel_id": "o1", "carrier": "DPD", "tracking_number": "T1", "lines": [{"sku": "M-A", "quantity": 1}], **kw}  # noqa: E731
    shipments = gate_shipments(
        {"carrier": ship(carrier="Pigeon Post"), "no_carrier": ship(carrier=None), "no_tracking": ship(tracking_number=None),
         "sku": ship(lines=[{"sku": "M-X", "quantity": 1}]), "qty": ship(lines=[{"sku": "M-A", "quantity": 0}]), "unlinked": ship(order_channel_id=None)},
        unreadable={}, mapped_carriers={"DPD"}, mapped_skus={"M-A"}, max_bad_share=D("1"), min_records_for_share=1, known_bad=set(),
    )
    seen = _scan(shipments.failed)
    assert {c.name for c in shipment_checks(mapped_carriers=set(), mapped_skus=set()) if not c.batch_level} <= seen

    refund = lambda ref, order="o1", **line: Refund(refund_ref=ref, order_channel_ref=order, currency="AUD", requested_at=T,  # noqa: E731
                                                    lines=[RefundLine(**{"sku": "A", "quantity": 1, "amount": D("25.00"), **line})])
    refunds = gate_refunds(
        {"unknown": refund("r1", order="o9"), "sku": refund("r2", sku="X"), "no_sku": refund("r3", sku=None), "qty": refund("r4", quantity=-1),
         "amount": refund("r5", amount=D("0.00"))},
        linked_orders={"o1"}, unreadable={}, mapped_skus={"A"}, max_bad_share=D("1"), min_records_for_share=1, known_bad=set(),
    )
    seen = _scan(refunds.failed)
    assert {"order_known", "sku_mapped", "sku_present", "quantity_not_negative", "amount_positive"} <= seen
    assert "(0.00 AUD)" in refunds.failed["amount"][0]["detail"]


def test_batch_failures_read_as_sentences_too():
    frame = pd.DataFrame([{RECORD_KEY: "k", "n": 1}])
    checks = [Check("batch_columns", "the frame lost a column", expect.ExpectTableColumnsToMatchSet(column_set=["x"], exact_match=True), batch_level=True)]
    with pytest.raises(GateBatchError) as err:
        run_gate("t", frame, checks, max_bad_share=D("1"))
    assert not LEAK.search(str(err.value))
    bad = {str(i): _order(str(i), [_line("SKU-X")]) for i in range(4)}
    with pytest.raises(GateBatchError) as err:
        gate_orders(bad, unreadable={}, mapped_skus={"SKU-A"}, mapped_sellers={"s1"}, currencies=["GBP"], max_bad_share=D("0.5"), min_records_for_share=1)
    assert "4 of 4" in str(err.value) and not LEAK.search(str(err.value))


def test_the_scan_sees_what_it_looks_for():
    for leaked in ("(got np.int64(-1))", "(got Decimal('1.50'))", "(got None)", "(got nan)", "<class 'int'>", "(got True)"):
        assert LEAK.search(leaked), leaked
    assert not LEAK.search("line totals + charges differ from the order total by -0.01 GBP")


def test_a_reason_shows_a_line_charge_tax_difference_in_the_channels_money():
    # a charge's tax counts: the order's tax must be its lines' and charges' to the cent
    order = _order("1", [_line(tax="1.00")], charges=[Charge(kind="shipping", description="Delivery", amount=D("4.95"), tax=D("0.82"))], tax_total="1.00")
    result = gate_orders({"k": order}, unreadable={}, mapped_skus={"SKU-A"}, mapped_sellers={"s1"}, currencies=["GBP"], max_bad_share=D("1"), min_records_for_share=1)
    assert [r["detail"] for r in result.failed["k"]] == ["the tax of the lines and charges differs from the order's tax by +0.82 GBP"]
