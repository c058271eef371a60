"""Finance opens the CSV reports in a spreadsheet: a channel value that a spreadsheet would run as a
formula (=HYPERLINK(...), +SUM(...), @SUM(...), -2+3, a leading tab) is written as text, in every
CSV the flows write (drift.csv, exceptions.csv, and the exceptions.csv e-mailed to finance), while
amounts stay numbers. The values come from where a seller or buyer types them: the customer order
number, the SKU, the buyer's name, the carrier, the billing cycle."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from commerce_sync.reports import safe_cell, to_csv
from tests.reliability.matrix import JL, World, _seed_cin7, run_flow, window

FORMULA = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?")

ORDER = '=HYPERLINK("http://evil.example/x","click")'
ORPHAN = "-2+3"
UNKNOWN = "@SUM(1+1)"
SKU = "+SUM(1,1)"
CARRIER = "=cmd|' /C calc'!A0"
BUYER = "\t=1+1"
CYCLE = "-1+1"


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def formula_cells(text: str) -> list[str]:
    """Cells a spreadsheet would evaluate: starting (after spaces and line breaks) with a formula
    character, numbers excepted (a negative amount is a number, not a formula)."""
    return [c for c in cells(text) if c.lstrip(" \n").startswith(FORMULA) and not NUMBER.fullmatch(c)]


@pytest.mark.parametrize("value", [ORDER, ORPHAN, UNKNOWN, SKU, CARRIER, BUYER, CYCLE, "\rx", " =1+1", "\n@x", "＝1+1", "－2"])
def test_a_text_cell_that_starts_a_formula_is_written_as_text(value):
    text = to_csv([{"key": value}], ["key"])
    assert cells(text) == ["key", "'" + value]
    assert formula_cells(text) == []


def test_numbers_stay_numbers_and_plain_text_stays_as_it_is():
    text = to_csv([{"a": Decimal("-2.50"), "b": -3, "c": "JL-100", "d": "2-3", "e": None, "f": 1.5}], ["a", "b", "c", "d", "e", "f"])
    assert cells(text)[6:] == ["-2.50", "-3", "JL-100", "2-3", "", "1.5"]
    assert safe_cell(True) == "True" and safe_cell("-2+3") == "'-2+3" and safe_cell(Decimal("-1")) == Decimal("-1")
    assert formula_cells("x,=1\n") == ["=1"]  # the check below can fail


def test_the_header_goes_through_the_same_rule():
    assert cells(to_csv([], ["=evil"])) == ["'=evil"]


def _append(path, row):
    with path.open("a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(row)


def attachments(messages) -> dict[str, str]:
    out = {}
    for message in messages:
        for part in message.walk():
            if part.get_filename():
                out[part.get_filename()] = part.get_payload(decode=True).decode("utf-8")
    return out


def test_hostile_values_through_every_csv_writing_flow(world: World, mappings, smtp):
    """John Lewis: a customer order number, a SKU, a buyer's name, a carrier and a billing cycle
    chosen to run as formulas reach drift.csv and exceptions.csv (stored and e-mailed): no cell
    of any of them starts a formula, the hostile values are there (as text), amounts are numbers."""
    from sandbox.mirakl import make_offer, make_order, make_transaction

    smtp.messages.clear()
    _append(mappings / "cin7_john_lewis" / "skus.csv", [SKU, "CS-CAP-NVY", "hostile cap"])
    _seed_cin7(world)
    world.post("cin7", "/_sandbox/seed", {"availability": [{"SKU": "CS-CAP-NVY", "Location": "Main Warehouse", "OnHand": 20, "Allocated": 0}]})
    world.post("mirakl", "/_sandbox/offers", [make_offer(SKU, 99)])  # shows more than Cin7 allows: stock drift on the hostile SKU
    placed = world.now - timedelta(hours=2)
    hostile_buyer = {"firstname": BUYER, "lastname": "=2+2", "shipping_address": {"firstname": BUYER, "lastname": "@x", "street_1": "-1 Street", "city": "London",
                                                                                  "zip_code": "SW1", "country_iso_code": "GBR"}}
    world.post("mirakl", "/_sandbox/orders", [make_order("JL8001-A", ORDER, [{"offer_sku": SKU, "quantity": 2, "price_unit": "19.99", "tax": "6.66"}],
                                                         state="SHIPPING", created=placed, customer=hostile_buyer)])
    start, end = window(world)
    start -= timedelta(hours=2)
    assert run_flow(JL, "orders_in", "csv-orders", start, end) == "success"
    assert [s["ExternalID"] for s in world.sales()] == [ORDER]

    # shipped in Cin7 two days ago with a hostile carrier and never sent; an order nobody booked
    shipped = (world.now - timedelta(days=2)).isoformat()
    world.post("cin7", "/_sandbox/fulfilments", {"ExternalID": ORDER, "pack": [{"SKU": "CS-CAP-NVY", "Quantity": 2, "Box": "1"}],
                                                 "ship": [{"Box": "1", "Carrier": CARRIER, "TrackingNumber": "+44", "ShipmentDate": shipped}]})
    world.post("mirakl", "/_sandbox/orders", [make_order("JL8002-A", ORPHAN, [{"offer_sku": SKU, "quantity": 1, "price_unit": "19.99", "tax": "3.33"}],
                                                         state="SHIPPING", created=placed, customer=hostile_buyer)])
    assert run_flow(JL, "drift_monitor", "csv-drift", start, end) == "success"

    # payouts: the booked order paid short (a negative variance), an unknown order unmatched
    paid = world.now - timedelta(minutes=10)
    tx = lambda i, kind, amount, order_id, ref: make_transaction(f"T{i}", kind, amount, order_id=order_id, commercial_id=ref, cycle=CYCLE, transaction_date=paid)  # noqa: E731
    world.post("mirakl", "/_sandbox/transactions", [tx(1, "ORDER_AMOUNT", "40.00", "JL8001-A", ORDER), tx(2, "COMMISSION_FEE", "-4.80", "JL8001-A", ORDER),
                                                    tx(3, "ORDER_AMOUNT", "9.00", "JL8999-A", UNKNOWN)])
    assert run_flow(JL, "payout_reconciliation", "csv-payout", start, end) == "success"

    led = world.ledger()
    try:
        drift = led.reports(JL, "drift_monitor", "csv-drift")["drift.csv"]
        exceptions = next(v for k, v in led.reports(JL, "payout_reconciliation").items() if k == "exceptions.csv")
    finally:
        led.dispose()
    mailed = attachments(smtp.messages)
    files = {"drift.csv": drift, "exceptions.csv": exceptions, "exceptions.csv (e-mailed)": mailed["exceptions.csv"]}
    for name, text in files.items():
        assert formula_cells(text) == [], name

    drift_rows = {(r["type"], r["key"]) for r in csv.DictReader(io.StringIO(drift))}
    assert {("stock_drift", "'" + SKU), ("shipped_not_synced", "'" + ORDER), ("orphaned_order", "'" + ORPHAN)} <= drift_rows, drift_rows
    assert CARRIER in drift  # inside a detail sentence, not at a cell's start
    rows = {r["type"]: r for r in csv.DictReader(io.StringIO(exceptions))}
    assert rows["unmatched"]["order"] == "'" + UNKNOWN and rows["unmatched"]["payout"] == f"'{CYCLE}-JL8999-A"
    assert rows["variance"]["order"] == "'" + ORDER
    assert rows["variance"]["variance"] == "-0.02"  # 39.98 sold - (35.20 paid + 4.80 kept): a number, unquoted
    assert mailed["exceptions.csv"] == exceptions
