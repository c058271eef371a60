"""cin7_john_lewis__orders_in end to end (dag.test; Cin7 and Mirakl emulators over real HTTP;
ledger in PostgreSQL; alerts through a real SMTP server).

Mirakl's order life: the shop accepts lines (OR21) while the order waits for acceptance; the
customer is debited; only then (SHIPPING) does the order become a Cin7 sale, under the customer
order number. An order with an unmapped line is held and ops are told while there is still time;
an order without a customer order number is quarantined; tax and totals pass through untouched.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from commerce_sync.ledger import Ledger
from tests.e2e.jl_helpers import PAIRING, held, mail_body, run

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]


def _order(order_id, commercial_id, lines, state, created, **kw):
    from sandbox.mirakl import make_order

    return make_order(order_id, commercial_id, lines, state=state, created=created, **kw)


def test_accept_then_book_only_paid_orders_with_their_customer_order_number(john_lewis, pg_url, mappings):
    jl = john_lewis
    now = datetime.now(timezone.utc).replace(microsecond=0)
    placed = now - timedelta(minutes=20)
    tee = {"offer_sku": "JL-TEE-BLK-M", "quantity": 2, "price_unit": "45.00", "tax": "15.00", "shipping_price": "4.95", "shipping_tax": "0.82"}
    cap = {"offer_sku": "JL-CAP-NVY", "quantity": 1, "price_unit": "19.99", "tax": "3.33"}
    jl.post(
        "/_sandbox/orders",
        [
            _order("JL1001-A", "JL1001", [tee, cap], "WAITING_ACCEPTANCE", placed),  # mapped: accepted
            _order("JL1002-A", "JL1002", [cap, {"offer_sku": "JL-SOCK-WHT", "quantity": 1, "price_unit": "9.00"}], "WAITING_ACCEPTANCE", placed),
            _order("JL1003-A", "JL1003", [tee], "SHIPPING", placed),  # paid: becomes a Cin7 sale
            _order("JL1004-A", None, [cap], "SHIPPING", placed),  # no customer order number
            _order("JL1005-A", "JL1005", [cap], "WAITING_DEBIT_PAYMENT", placed),  # accepted, not paid: not booked
        ],
    )

    assert run("orders_in", now - timedelta(hours=1), now + timedelta(minutes=1), 1).state == "success"

    # acceptance: JL1001 accepted line by line; JL1002 (unmapped sock) neither accepted nor refused
    accepts = jl.calls("PUT", "/accept")
    assert [c["path"] for c in accepts] == ["/api/orders/JL1001-A/accept"]
    o1001 = jl.get("/_sandbox/orders/JL1001-A")
    assert o1001["order_state"] == "WAITING_DEBIT_PAYMENT"
    assert {line["order_line_state"] for line in o1001["order_lines"]} == {"WAITING_DEBIT_PAYMENT"}
    assert jl.get("/_sandbox/orders/JL1002-A")["order_state"] == "WAITING_ACCEPTANCE"

    ledger = Ledger.from_url(pg_url)
    assert held(ledger, "order_acceptance") == {"JL1002-A": {"sku_mapped"}}
    (alert,) = jl.mailbox.messages
    assert alert["To"] == "ops@example.com" and "to accept by hand or map" in alert["Subject"]
    body = mail_body(alert)
    accept_by = placed + timedelta(hours=24)
    assert "JL-SOCK-WHT" in body and "JL1002" in body and f"{accept_by:%Y-%m-%d %H:%M} UTC" in body

    # booking: only the paid order, under its customer order number, tax and totals as sent
    sales = jl.sales()
    assert [s["ExternalID"] for s in sales] == ["JL1003"]
    sale = sales[0]
    assert sale["Customer"] == "John Lewis Marketplace" and sale["SourceChannel"] == "John Lewis"
    assert sale["TaxRule"] == "20% (VAT on Income)"
    order = sale["Order"]
    assert Decimal(str(order["Total"])) == Decimal("94.95")  # 2 x 45.00 + 4.95 delivery, as John Lewis sent it
    assert Decimal(str(order["Tax"])) == Decimal("15.82")  # line VAT + delivery VAT, not recalculated
    delivery = [c for c in order["AdditionalCharges"] if c["Description"] == "Delivery"]
    assert [(Decimal(str(c["Total"])), Decimal(str(c["Tax"]))) for c in delivery] == [(Decimal("4.95"), Decimal("0.82"))]
    assert held(ledger, "orders_in") == {"JL1004-A": {"channel_ref_present"}}

    # the customer pays for JL1001; ops map the sock; the next run accepts JL1002 and books JL1001
    jl.post("/_sandbox/orders/JL1001-A/debit", {})
    with open(mappings / PAIRING / "skus.csv", "a", encoding="utf-8") as fh:
        fh.write("JL-SOCK-WHT,CS-SOCK-WHT,Socks white\n")
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert run("orders_in", now - timedelta(hours=1), later, 2).state == "success"
    assert sorted(s["ExternalID"] for s in jl.sales()) == ["JL1001", "JL1003"]
    assert jl.get("/_sandbox/orders/JL1002-A")["order_state"] != "WAITING_ACCEPTANCE"
    assert held(ledger, "order_acceptance") == {}
    assert len(jl.mailbox.messages) == 1  # the hold was told once

    # a third run over the same window books nothing twice
    assert run("orders_in", now - timedelta(hours=1), later, 3).state == "success"
    assert sorted(s["ExternalID"] for s in jl.sales()) == ["JL1001", "JL1003"]
    ledger.dispose()
