"""cin7_john_lewis: dispatch_back, stock_out, payout_reconciliation and refunds end to end
(dag.test; Cin7 and Mirakl emulators over real HTTP; ledger in PostgreSQL; real SMTP)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from commerce_sync.ledger import Ledger
from tests.e2e.jl_helpers import PAIRING, drift_findings, held, mail_body, run

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]

TEE_M = {"offer_sku": "JL-TEE-BLK-M", "quantity": 2, "price_unit": "45.00", "tax": "15.00"}
CAP = {"offer_sku": "JL-CAP-NVY", "quantity": 1, "price_unit": "19.99", "tax": "3.33"}
TEE_L = {"offer_sku": "JL-TEE-BLK-L", "quantity": 1, "price_unit": "45.00", "tax": "7.50"}


def book(jl, orders: list[tuple[str, list[dict]]], now: datetime, **kw) -> None:
    """Paid (SHIPPING) John Lewis orders, booked into Cin7 by orders_in."""
    from sandbox.mirakl import make_order

    jl.post("/_sandbox/orders", [make_order(f"{c}-A", c, lines, state="SHIPPING", created=now - timedelta(minutes=20), **kw) for c, lines in orders])
    assert run("orders_in", now - timedelta(hours=1), now + timedelta(minutes=1), 0).state == "success"
    assert {s["ExternalID"] for s in jl.sales()} >= {c for c, _ in orders}


def test_dispatch_whole_partial_and_unmapped_carrier_with_packing_slips(john_lewis, pg_url):
    jl = john_lewis
    now = datetime.now(timezone.utc).replace(microsecond=0)
    book(jl, [("JL2001", [TEE_M, CAP]), ("JL2002", [CAP]), ("JL2003", [TEE_L])], now)

    # JL2001 leaves in two boxes; JL2002 whole in one; JL2003 with a carrier nobody mapped
    jl.ship_in_cin7("JL2001", [{"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "1"}, {"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "2"}, {"SKU": "CS-CAP-NVY", "Quantity": 1, "Box": "2"}],
                    [{"Box": "1", "Carrier": "Royal Mail Tracked 24", "TrackingNumber": "RM111"}, {"Box": "2", "Carrier": "DPD Next Day", "TrackingNumber": "DPD222"}])
    jl.ship_in_cin7("JL2002", [{"SKU": "CS-CAP-NVY", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "Royal Mail Tracked 48", "TrackingNumber": "RM333"}])
    jl.ship_in_cin7("JL2003", [{"SKU": "CS-TEE-BLK-L", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "Parcelforce", "TrackingNumber": "PF444"}])

    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert run("dispatch_back", now - timedelta(minutes=5), later, 1).state == "success"

    # partial: two ST01 shipments with the order line ids and the quantities in each box
    shipments = {s["tracking"]["tracking_number"]: s for s in jl.get("/_sandbox/shipments")["shipments"]}
    assert set(shipments) == {"RM111", "DPD222"}
    assert [(l["order_line_id"], l["quantity"]) for l in shipments["RM111"]["shipment_lines"]] == [("JL2001-A-1", 1)]
    assert sorted((l["order_line_id"], l["quantity"]) for l in shipments["DPD222"]["shipment_lines"]) == [("JL2001-A-1", 1), ("JL2001-A-2", 1)]
    assert shipments["RM111"]["tracking"]["carrier_code"] == "ROYAL_MAIL" and shipments["DPD222"]["tracking"]["carrier_code"] == "DPD"
    assert jl.get("/_sandbox/orders/JL2001-A")["order_state"] == "SHIPPED"
    # whole order: tracking (OR23) then ship (OR24)
    o2002 = jl.get("/_sandbox/orders/JL2002-A")
    assert o2002["order_state"] == "SHIPPED" and o2002["shipping_tracking"] == "RM333" and o2002["shipping_carrier_code"] == "ROYAL_MAIL"
    assert [c["method"] for c in jl.calls(path_part="/api/orders/JL2002-A/")] == ["PUT", "PUT"]
    # unmapped carrier: held, alerted, nothing sent
    assert jl.calls(path_part="JL2003-A/") == [] and jl.get("/_sandbox/orders/JL2003-A")["order_state"] == "SHIPPING"
    ledger = Ledger.from_url(pg_url)
    assert list(held(ledger, "dispatch_back").values()) == [{"carrier_mapped"}]
    (alert,) = jl.mailbox.messages
    assert "1 shipment(s) held" in alert["Subject"] and "Parcelforce" in mail_body(alert) and "JL2003" in mail_body(alert)

    # a packing slip per box sent, from the Cin7 fulfilment, linked from the run
    from pypdf import PdfReader

    files = ledger.files(PAIRING, "dispatch_back")
    assert len(files) == 3
    texts = {name: "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages) for name, data in files.items()}
    box2 = next(t for t in texts.values() if "DPD222" in t)
    assert "JL2001" in box2 and "John Lewis" in box2 and "CS-CAP-NVY" in box2 and "35 days" in box2
    assert "CS-TEE-BLK-M" in box2
    sales = {s["ExternalID"]: s for s in jl.sales()}
    assert sales["JL2001"]["Order"]["SaleOrderNumber"] in box2
    # the ship-to, as Cin7 holds it for the sale (the buyer as its Contact)
    assert "Ship to" in box2 and "Ada Lovelace" in box2 and "171 Victoria Street" in box2 and "London SW1E 5NN" in box2
    assert "packing_slips_unprintable" not in str(ledger.runs(PAIRING, "dispatch_back")[0]["details"])

    # a re-run sends nothing twice
    st01 = len(jl.calls("POST", "/api/shipments"))
    assert run("dispatch_back", now - timedelta(minutes=5), later, 2).state == "success"
    assert len(jl.calls("POST", "/api/shipments")) == st01
    assert len(jl.mailbox.messages) == 1
    ledger.dispose()


def test_stock_goes_by_stock_import_with_error_report_lines_quarantined(john_lewis, pg_url):
    from sandbox.mirakl import make_offer

    jl = john_lewis
    jl.post("/_sandbox/offers", [make_offer("JL-TEE-BLK-M", 0), make_offer("JL-CAP-NVY", 5), make_offer("JL-TEE-BLK-L", 3)])
    requests.post(f"{jl.cin7}/_sandbox/seed", json={"availability": [
        {"SKU": "CS-TEE-BLK-M", "Location": "Main Warehouse", "OnHand": 10}, {"SKU": "CS-CAP-NVY", "Location": "Main Warehouse", "OnHand": 7},
        {"SKU": "CS-TEE-BLK-L", "Location": "Main Warehouse", "OnHand": 4}]}, timeout=10).raise_for_status()
    jl.post("/_sandbox/config", {"stock_import_errors": {"JL-TEE-BLK-L": "The offer is inactive"}})
    # windows in the past: a logical date ahead of the clock is not a run an operator can make
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)

    assert run("stock_out", now - timedelta(minutes=15), now, 1).state == "success"
    posts = jl.calls("POST", "/offers/stock/imports")
    assert len(posts) == 1  # one import for the whole run: Mirakl allows one a minute
    assert not [c for c in jl.calls("POST") if c["path"] in ("/api/offers", "/api/offers/imports")]  # never OF24 nor OF01
    (imp,) = jl.get("/_sandbox/stock_imports")["imports"]
    sent = {l["offer-sku"]: l["quantity"] for l in imp["lines"]}
    assert sent == {"JL-TEE-BLK-M": "8", "JL-CAP-NVY": "5", "JL-TEE-BLK-L": "2"}  # two units held back on each
    offers = {o["shop_sku"]: o["quantity"] for o in jl.get("/_sandbox/offers")["offers"]}
    assert offers["JL-TEE-BLK-M"] == 8 and offers["JL-TEE-BLK-L"] == 3  # the refused line changed nothing

    ledger = Ledger.from_url(pg_url)
    (q,) = ledger.open_quarantine(PAIRING, "stock_out")
    assert q.record_key == "JL-TEE-BLK-L" and "The offer is inactive" in q.reasons[0]["detail"]

    # unchanged stock is not sent again; the refused line is retried
    assert run("stock_out", now - timedelta(minutes=15), now + timedelta(seconds=50), 2).state == "success"
    second = jl.get("/_sandbox/stock_imports")["imports"][-1]
    assert [l["offer-sku"] for l in second["lines"]] == ["JL-TEE-BLK-L"]
    ledger.dispose()


def test_payouts_reconcile_to_the_cent_and_commission_vat_is_journaled_once(john_lewis, pg_url):
    from sandbox.mirakl import make_transaction

    jl = john_lewis
    now = datetime.now(timezone.utc).replace(microsecond=0)
    book(jl, [("JL3001", [TEE_M])], now, shipping_price="4.95")  # 90.00 + 4.95 delivery = 94.95
    paid = now - timedelta(minutes=10)
    tx = lambda i, kind, amount, order="JL3001": make_transaction(  # noqa: E731
        f"T{i}", kind, amount, order_id=f"{order}-A", commercial_id=order, cycle="2026-11", transaction_date=paid)
    jl.post("/_sandbox/transactions", [
        tx(1, "ORDER_AMOUNT", "90.00"), tx(2, "ORDER_SHIPPING_AMOUNT", "4.95"), tx(3, "COMMISSION_FEE", "-11.39"), tx(4, "COMMISSION_VAT", "-2.28"),
        tx(5, "ORDER_AMOUNT", "20.00", order="JL3999"), tx(6, "COMMISSION_FEE", "-2.00", order="JL3999"),
    ])

    assert run("payout_reconciliation", now - timedelta(hours=1), now, 1).state == "success"
    assert run("payout_reconciliation", now - timedelta(hours=1), now, 2).state == "success"

    journals = requests.get(f"{jl.cin7}/_sandbox/journals", timeout=10).json()["journals"]
    mine = [j for j in journals if "JL3001" in j["Lines"][0]["Reference"]]
    assert len(mine) == 1  # once, although the flow ran twice
    assert [(l["Debit"], l["Credit"], Decimal(str(l["Amount"]))) for l in mine[0]["Lines"]] == [("6100", "1220", Decimal("11.39")), ("2201", "1220", Decimal("2.28"))]

    ledger = Ledger.from_url(pg_url)
    matches = {m["order_channel_ref"]: m for m in ledger.payout_matches(PAIRING)}
    m = matches["JL3001"]
    assert m["status"] == "matched" and Decimal(m["variance"]) == 0
    assert Decimal(m["net"]) == Decimal("81.28") and Decimal(m["commission_tax"]) == Decimal("2.28")
    assert matches["JL3999"]["status"] == "unmatched"
    rows = list(csv.DictReader(io.StringIO(ledger.reports(PAIRING, "payout_reconciliation")["exceptions.csv"])))
    assert [(r["type"], r["order"]) for r in rows] == [("unmatched", "JL3999")]
    ledger.dispose()


def test_refunds_and_cancelations_become_credit_notes_without_restock(john_lewis, pg_url):
    jl = john_lewis
    now = datetime.now(timezone.utc).replace(microsecond=0)
    book(jl, [("JL4001", [TEE_M, CAP])], now)
    requests.post(f"{jl.cin7}/_sandbox/invoice", json={"ExternalID": "JL4001"}, timeout=10).raise_for_status()
    jl.post("/_sandbox/orders/JL4001-A/refunds", [{"order_line_id": "JL4001-A-1", "quantity": 1, "amount": "45.00", "shipping_amount": "0", "reason_code": "34"}])
    jl.post("/_sandbox/orders/JL4001-A/cancelations", [{"order_line_id": "JL4001-A-2", "quantity": 1, "amount": "19.99", "shipping_amount": "0", "reason_code": "2"}])

    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert run("refunds", now - timedelta(hours=1), later, 1).state == "success"
    assert run("refunds", now - timedelta(hours=1), later, 2).state == "success"

    (sale,) = [s for s in jl.sales() if s["ExternalID"] == "JL4001"]
    notes = sale["_credit_notes"]
    assert len(notes) == 2 and all(n["Restock"] == [] for n in notes)
    assert sorted((l["SKU"], l["Quantity"], Decimal(str(l["Total"]))) for n in notes for l in n["Lines"]) == [("CS-CAP-NVY", 1, Decimal("19.99")), ("CS-TEE-BLK-M", 1, Decimal("45"))]
    ledger = Ledger.from_url(pg_url)
    assert held(ledger, "refunds") == {}
    ledger.dispose()


def test_drift_monitor_watches_the_dispatch_window(john_lewis, pg_url):
    """John Lewis's dispatch window, seen two ways: an order past Mirakl's shipping deadline that
    still awaits dispatch there, and a box Cin7 shipped a day ago that never reached John Lewis."""
    from sandbox.mirakl import make_offer

    jl = john_lewis
    now = datetime.now(timezone.utc).replace(microsecond=0)
    jl.post("/_sandbox/offers", [make_offer("JL-TEE-BLK-M", 0), make_offer("JL-CAP-NVY", 0)])  # stock in step: 0 on both sides
    book(jl, [("JL5001", [CAP])], now, shipping_deadline=now - timedelta(hours=1))
    book(jl, [("JL5002", [CAP])], now, shipping_deadline=now + timedelta(days=2))
    jl.ship_in_cin7("JL5002", [{"SKU": "CS-CAP-NVY", "Quantity": 1, "Box": "1"}],
                    [{"Box": "1", "Carrier": "DPD", "TrackingNumber": "DPD9", "ShipmentDate": (now - timedelta(hours=25)).isoformat()}])

    ledger = Ledger.from_url(pg_url)
    assert drift_findings(ledger, now) == [("dispatch_overdue", "JL5001"), ("shipped_not_synced", "JL5002")]
    (alert,) = jl.mailbox.messages
    assert "drift found (2)" in alert["Subject"]
    ledger.dispose()
