"""Book exactly what was sold (dag.test; emulators over real HTTP; ledger in PostgreSQL; real SMTP).

- An order is accepted on the channel only if it can be booked: the accept step runs the orders
  gate's own rules; what fails is held (or refused, if the pairing says so), never accepted.
- Each sale is booked in its order's own tax mode, its total, tax and lines to the cent.
- Each sale is booked to a customer trading in the order's currency, or held saying why.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
import yaml

from commerce_sync.ledger import Ledger
from tests.e2e.jl_helpers import PAIRING, held, mail_body, run
from tests.e2e.test_orders_in import run_dag as run_marketplacer

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]

D = Decimal


def _dec(value) -> Decimal:
    return D(str(value))


def _order(order_id, commercial_id, lines, state, created, **kw):
    from sandbox.mirakl import make_order

    return make_order(order_id, commercial_id, lines, state=state, created=created, **kw)


def _edit_pairing(folder, key: str, change) -> None:
    path = folder / f"{key}.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_an_order_that_could_not_be_booked_is_never_accepted_held_or_refused(john_lewis, pg_url, fast_pairings):
    jl = john_lewis
    now = datetime.now(timezone.utc).replace(microsecond=0)
    placed = now - timedelta(minutes=20)
    cap = {"offer_sku": "JL-CAP-NVY", "quantity": 1, "price_unit": "19.99", "tax": "3.33"}
    jl.post("/_sandbox/orders", [
        _order("JL7001-A", "JL7001", [cap], "WAITING_ACCEPTANCE", placed),  # bookable: accepted
        _order("JL7002-A", "JL7002", [cap], "WAITING_ACCEPTANCE", placed, currency="USD"),  # a currency John Lewis GBP does not trade
        _order("JL7003-A", None, [cap], "WAITING_ACCEPTANCE", placed),  # no customer order number
    ])

    assert run("orders_in", now - timedelta(hours=1), now + timedelta(minutes=1), 1).state == "success"

    assert [c["path"] for c in jl.calls("PUT", "/accept")] == ["/api/orders/JL7001-A/accept"]  # no OR21 for the others
    assert {o: jl.get(f"/_sandbox/orders/{o}")["order_state"] for o in ("JL7002-A", "JL7003-A")} == {"JL7002-A": "WAITING_ACCEPTANCE", "JL7003-A": "WAITING_ACCEPTANCE"}
    ledger = Ledger.from_url(pg_url)
    # every reason: USD is not traded here, and the GBP customer it would go to cannot take a USD sale
    assert held(ledger, "order_acceptance") == {"JL7002-A": {"currency_allowed", "customer_currency"}, "JL7003-A": {"channel_ref_present"}}
    (alert,) = jl.mailbox.messages
    body = mail_body(alert)
    assert "to accept by hand or map" in alert["Subject"]
    assert "JL7002-A" in body and "JL7003-A" in body and "currency_allowed" in body and "channel_ref_present" in body
    assert f"{placed + timedelta(hours=24):%Y-%m-%d %H:%M} UTC" in body  # the accept-by time

    # the pairing now says: refuse what cannot be booked. The next run refuses both, line by line.
    _edit_pairing(fast_pairings, PAIRING, lambda d: d["acceptance"].update(unbookable="refuse"))
    assert run("orders_in", now - timedelta(hours=1), now + timedelta(minutes=1), 2).state == "success"
    assert sorted(c["path"] for c in jl.calls("PUT", "/accept")) == [f"/api/orders/JL700{n}-A/accept" for n in (1, 2, 3)]
    for order_id in ("JL7002-A", "JL7003-A"):
        order = jl.get(f"/_sandbox/orders/{order_id}")
        assert order["order_state"] == "REFUSED" and {line["order_line_state"] for line in order["order_lines"]} == {"REFUSED"}
    assert held(ledger, "order_acceptance") == {}
    closed = ledger.quarantine_by_key(PAIRING, "order_acceptance", "JL7002-A")
    assert closed.status == "discarded" and closed.resolution_note.startswith("refused on the channel: currency_allowed")
    refused_mail = jl.mailbox.messages[-1]
    assert len(jl.mailbox.messages) == 2 and "refused" in refused_mail["Subject"] and "JL7003-A" in mail_body(refused_mail)
    assert jl.sales() == []  # nothing of it was booked either
    ledger.dispose()


def test_each_john_lewis_order_is_booked_in_its_own_tax_mode_to_the_cent_and_an_exclusive_payout_matches(john_lewis, pg_url):
    from sandbox.mirakl import make_transaction

    jl = john_lewis
    now = datetime.now(timezone.utc).replace(microsecond=0)
    placed = now - timedelta(minutes=20)
    # TAX_EXCLUDED: 2 x 37.50 + 4.13 delivery, VAT 15.00 + 0.82 on top; TAX_INCLUDED: 19.99 holding 3.33 VAT
    exclusive = {"offer_sku": "JL-TEE-BLK-M", "quantity": 2, "price_unit": "37.50", "tax": "15.00", "shipping_price": "4.13", "shipping_tax": "0.82"}
    inclusive = {"offer_sku": "JL-CAP-NVY", "quantity": 1, "price_unit": "19.99", "tax": "3.33"}
    jl.post("/_sandbox/orders", [
        _order("JL8001-A", "JL8001", [exclusive], "SHIPPING", placed, tax_mode="TAX_EXCLUDED"),
        _order("JL8002-A", "JL8002", [inclusive], "SHIPPING", placed, tax_mode="TAX_INCLUDED"),
    ])
    assert run("orders_in", now - timedelta(hours=1), now + timedelta(minutes=1), 1).state == "success"

    sales = {s["ExternalID"]: s for s in jl.sales()}
    assert set(sales) == {"JL8001", "JL8002"}
    for ext, mode in (("JL8001", "Exclusive"), ("JL8002", "Inclusive")):
        sale, channel = sales[ext], jl.get(f"/_sandbox/orders/{ext}-A")
        assert sale["TaxCalculation"] == mode and sale["CustomerCurrency"] == "GBP" == channel["currency_iso_code"]
        taxes = sum((_dec(t["amount"]) for line in channel["order_lines"] for t in line["taxes"] + line["shipping_taxes"]), D(0))
        order = sale["Order"]
        assert _dec(order["Tax"]) == taxes
        # what the customer paid: John Lewis's total, plus its tax where its prices exclude it
        assert _dec(order["Total"]) == _dec(channel["total_price"]) + (taxes if mode == "Exclusive" else 0)
        booked = [(l["SKU"], _dec(l["Price"]), l["Quantity"], _dec(l["Tax"]), _dec(l["Total"])) for l in order["Lines"]]
        sent = [(f"CS-{l['offer_sku'][3:]}", _dec(l["price_unit"]), l["quantity"], sum((_dec(t["amount"]) for t in l["taxes"]), D(0)), _dec(l["price"]))
                for l in channel["order_lines"]]
        assert booked == sent
    assert _dec(sales["JL8001"]["Order"]["Total"]) == D("94.95") and _dec(sales["JL8001"]["Order"]["TotalBeforeTax"]) == D("79.13")
    assert [(c["Description"], _dec(c["Total"]), _dec(c["Tax"])) for c in sales["JL8001"]["Order"]["AdditionalCharges"]] == [("Delivery", D("4.13"), D("0.82"))]

    # John Lewis pays for the exclusive order: amounts and their VAT, less commission. It matches to the cent.
    paid = now - timedelta(minutes=10)
    tx = lambda i, kind, amount: make_transaction(f"T8{i}", kind, amount, order_id="JL8001-A", commercial_id="JL8001", cycle="2026-11",  # noqa: E731
                                                  transaction_date=paid)
    jl.post("/_sandbox/transactions", [tx(1, "ORDER_AMOUNT", "75.00"), tx(2, "ORDER_AMOUNT_TAX", "15.00"), tx(3, "ORDER_SHIPPING_AMOUNT", "4.13"),
                                       tx(4, "ORDER_SHIPPING_AMOUNT_TAX", "0.82"), tx(5, "COMMISSION_FEE", "-9.50"), tx(6, "COMMISSION_VAT", "-1.90")])
    assert run("payout_reconciliation", now - timedelta(hours=1), now, 2).state == "success"
    ledger = Ledger.from_url(pg_url)
    match = {m["order_channel_ref"]: m for m in ledger.payout_matches(PAIRING)}["JL8001"]
    assert match["status"] == "matched" and D(match["variance"]) == 0 and D(match["sale_total"]) == D("94.95")
    ledger.dispose()


def test_marketplacer_orders_book_inclusive_to_the_cent_in_their_customers_currency(wired, pg_url, mappings, tmp_path, monkeypatch):
    from tests.builders import marketplacer_invoice

    from commerce_sync.pairing import pairings_dir

    pairings = tmp_path / "pairings"
    shutil.copytree(pairings_dir(), pairings)
    # the pairing's default says Exclusive: Marketplacer's orders say inclusive, and theirs wins (and is reported)
    _edit_pairing(pairings, "cin7_marketplacer", lambda d: d["policies"].update(tax_calculation="Exclusive"))
    monkeypatch.setenv("COMMERCE_SYNC_PAIRINGS_DIR", str(pairings))
    # Lounge's AUD orders go to a customer Cin7 keeps in NZD: a sale would be read as NZD
    (mappings / "cin7_marketplacer" / "customers.csv").write_text("currency,master_customer,seller_ref\nAUD,Lounge NZ,2\n", encoding="utf-8")
    requests.post(f"{wired.cin7}/_sandbox/seed", json={"customers": [{"Name": "Lounge NZ", "Currency": "NZD"}]}, timeout=10).raise_for_status()

    now = datetime.now(timezone.utc).replace(microsecond=0)
    placed = now - timedelta(minutes=30)
    castore = marketplacer_invoice(9001, [("CS-TEE-BLK-M", 2, 4500), ("CS-CAP-NVY", 1, 2499)], postage_cents=995, created_at=placed)
    castore["taxCents"] += 90  # the postage's GST, in the invoice's tax only
    lounge = marketplacer_invoice(9002, [("CS-CAP-NVY", 1, 2500)], seller_id=2, seller_name="Lounge", created_at=placed)
    wired.inject_invoices([castore, lounge])

    assert run_marketplacer(now - timedelta(hours=1), now, 1).state == "success"
    (sale,) = wired.sales()
    assert sale["ExternalID"] == "MKP-9001" and sale["TaxCalculation"] == "Inclusive" and sale["CustomerCurrency"] == "AUD"
    order = sale["Order"]
    assert _dec(order["Total"]) == D(castore["totalCents"]) / 100 and _dec(order["Tax"]) == D(castore["taxCents"]) / 100
    assert [(_dec(l["Price"]), l["Quantity"], _dec(l["Tax"]), _dec(l["Total"])) for l in order["Lines"]] == [
        (D(i["unitPriceCents"]) / 100, i["quantity"], D(i["taxCents"]) / 100, D(i["totalCents"]) / 100) for i in castore["lineItems"]]
    assert [(c["Description"], _dec(c["Total"]), _dec(c["Tax"])) for c in order["AdditionalCharges"]] == [("Shipping", D("9.95"), D("0.90"))]

    ledger = Ledger.from_url(pg_url)
    (q,) = ledger.open_quarantine("cin7_marketplacer", "orders_in")
    assert q.payload["legacyId"] == 9002 and [r["check"] for r in q.reasons] == ["customer_currency"]
    assert "'Lounge NZ' trades in NZD" in q.reasons[0]["detail"]
    report = ledger.runs("cin7_marketplacer", "orders_in", limit=1)[0]["details"]
    assert report["load"]["tax_mode_differs"] == 1  # the order's mode differed from the pairing's default: said, not hidden

    # ops name Lounge's AUD customer: the next run books the held order, in AUD
    (mappings / "cin7_marketplacer" / "customers.csv").write_text("currency,master_customer,seller_ref\nAUD,Lounge (Marketplacer),2\n", encoding="utf-8")
    assert run_marketplacer(now - timedelta(hours=1), now, 2).state == "success"
    booked = {s["ExternalID"]: s for s in wired.sales()}
    assert set(booked) == {"MKP-9001", "MKP-9002"}
    assert booked["MKP-9002"]["Customer"] == "Lounge (Marketplacer)" and booked["MKP-9002"]["CustomerCurrency"] == "AUD"
    assert ledger.open_quarantine("cin7_marketplacer", "orders_in") == []
    ledger.dispose()
