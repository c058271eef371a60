"""cin7_commercetools end to end (dag.test; Cin7 and commercetools emulators over real HTTP; ledger
in PostgreSQL; real SMTP): orders_in with sync info, dispatch_back, stock_out per supply
channel, refunds, payout_reconciliation, drift_monitor; and two writers racing on one entry."""

from __future__ import annotations

import csv
import io
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from commerce_sync.ledger import Ledger
from sandbox.commercetools_builders import make_order, payment, transaction
from tests.e2e.conftest import latest_drift
from tests.e2e.ct_helpers import PAIRING, STORE, SUPPLY, THREE_PL, dagbag, run, storefront  # noqa: F401 - storefront is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]

TEE = {"sku": "CS-TEE-BLK-M", "quantity": 2, "price": "45.00", "cart_discount": "5.00"}
CAP = {"sku": "CS-CAP-NVY", "quantity": 1, "price": "19.99"}


def held(ledger: Ledger, flow: str) -> dict[str, set[str]]:
    return {q.record_key: {r["check"] for r in q.reasons} for q in ledger.open_quarantine(PAIRING, flow)}


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def book(sf, orders: list[dict], at: datetime, n: int = 0) -> dict[str, dict]:
    stored = {o["orderNumber"]: o for o in sf.seed("orders", orders) if o.get("orderNumber")}
    assert run("orders_in", at - timedelta(hours=1), at + timedelta(minutes=1), n).state == "success"
    return stored


def test_orders_are_booked_once_with_sync_info_once_and_unbookable_ones_held(storefront, pg_url):
    sf = storefront
    t = now()
    orders = [
        make_order("CT1001", [TEE, CAP], shipping="4.95", order_discount="10.00", created=t - timedelta(minutes=20)),
        make_order("CT1002", [CAP], created=t - timedelta(minutes=19)),
        make_order(None, [CAP], created=t - timedelta(minutes=18), order_id="no-number"),
        make_order("CT1003", [CAP], created=t - timedelta(minutes=17), order_id="off-by-a-cent"),
        make_order("CT1004", [CAP], created=t - timedelta(minutes=16), payment_state="Pending"),  # not paid: not bookable
        make_order("CT1005", [{**CAP, "sku": "CT-UNKNOWN"}], created=t - timedelta(minutes=15), order_id="unmapped"),
    ]
    for m in (orders[3]["totalPrice"], orders[3]["taxedPrice"]["totalGross"], orders[3]["taxedPrice"]["totalNet"]):
        m["centAmount"] += 1  # the grand total says a cent more than its lines
    stored = book(sf, orders, t)

    sales = sf.sales()
    assert set(sales) == {"CT1001", "CT1002"}
    sale = sales["CT1001"]
    # 2 x 45.00 less 2 x 5.00 + 19.99 + 4.95 delivery - 10.00 off the total: 94.94, VAT inside as commercetools stated it
    assert Decimal(str(sale["Order"]["Total"])) == Decimal("94.94") and Decimal(str(sale["Order"]["Tax"])) == Decimal("15.82")
    assert sale["SourceChannel"] == "Storefront" and sale["Customer"] == "Storefront GBP" and sale["CustomerReference"] == "CT1001"
    ledger = Ledger.from_url(pg_url)
    assert held(ledger, "orders_in") == {"no-number": {"channel_ref_present"}, "off-by-a-cent": {"order_total_adds_up"}, "unmapped": {"sku_mapped"}}

    # the order says where it went: one SyncInfo for the Cin7 channel, naming the Cin7 sale
    order = sf.order(stored["CT1001"]["id"])
    channel = sf.api("GET", "/channels/key=cin7-core")
    assert "OrderExport" in channel["roles"]
    assert [(s["channel"]["id"], s["externalId"]) for s in order["syncInfo"]] == [(channel["id"], sale["ID"])]

    # a second run over the same window books nothing twice and writes no second SyncInfo
    assert run("orders_in", t - timedelta(hours=1), t + timedelta(minutes=1), 1).state == "success"
    assert len(sf.sales()) == 2 and len(sf.order(stored["CT1001"]["id"])["syncInfo"]) == 1
    assert len([c for c in sf.calls("POST", "/orders/") if c["path"].endswith(stored["CT1001"]["id"])]) == 1

    # the shop gives the held order its number: the next run books it, exactly once
    sf.change_order("no-number", [{"action": "setOrderNumber", "orderNumber": "CT1006"}])  # a change: the next window sees it
    assert run("orders_in", t - timedelta(hours=1), now() + timedelta(minutes=1), 2).state == "success"
    assert "CT1006" in sf.sales() and len(sf.order("no-number")["syncInfo"]) == 1
    assert "no-number" not in held(ledger, "orders_in")
    ledger.dispose()


def test_a_sync_info_that_fails_leaves_the_order_booked_once_says_which_and_the_retry_of_the_run_writes_it(storefront, pg_url):
    """Acknowledgements run beside the Cin7 calls (orders_in._Acknowledgements): one refused on
    every try leaves its order booked and linked, the rest of the batch booked and synced, the
    run failed naming the order, with the count in its run report; once commercetools takes it,
    the retry of that run writes the Sync info, and no sale twice."""
    import logging

    from tests.reliability.matrix import run_flow

    sf = storefront
    t = now()
    start, end = t - timedelta(hours=1), t + timedelta(minutes=1)
    sf.seed("orders", [make_order(f"CT300{i}", [CAP], created=t - timedelta(minutes=20 - i), order_id=f"ack-{i}") for i in (1, 2, 3)])
    # commercetools applies no update to order ack-2 (HTTP 500, unprocessed): every try of its Sync info fails
    requests.post(f"{sf.ct}/_sandbox/faults", json={"status_burst": {"path": "/orders/ack-2", "method": "POST", "status": 500, "count": None}},
                  timeout=10).raise_for_status()
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())  # Airflow's log setup keeps caplog out
    flow_log = logging.getLogger("commerce_sync.flows.orders_in")
    flow_log.addHandler(handler)
    try:
        assert run_flow(PAIRING, "orders_in", "ack-run", start, end).startswith("failed after 4 tries: TransientError")
    finally:
        flow_log.removeHandler(handler)
    assert sorted(sf.sales()) == ["CT3001", "CT3002", "CT3003"]  # the batch went on past the failure
    assert len([c for c in requests.get(f"{sf.cin7}/_sandbox/calls", timeout=10).json()["calls"] if c["method"] == "POST" and c["path"].endswith("/sale")]) == 3
    assert [len(sf.order(f"ack-{i}").get("syncInfo") or []) for i in (1, 2, 3)] == [1, 0, 1]
    refused = sf.calls("POST", "/orders/ack-2")
    assert len(refused) == 8 and all(c["status"] == 500 for c in refused)  # each of the 4 tries: in the background, then once more at the end
    assert len(lines) == 4 and all("order CT3002 is booked as" in line and "but commercetools was not told" in line for line in lines)
    ledger = Ledger.from_url(pg_url)
    assert list(ledger.links(PAIRING, "order", ["CT3002"])) == ["CT3002"]
    (report,) = [r for r in ledger.runs(PAIRING, "orders_in") if r["run_id"] == "ack-run"]
    assert report["details"]["load"]["acknowledgement_failed"] == 1 and report["details"]["load"]["already_loaded"] == 3  # the last try's

    requests.delete(f"{sf.ct}/_sandbox/faults", timeout=10).raise_for_status()
    assert run_flow(PAIRING, "orders_in", "ack-run", start, end) == "success"
    assert [len(sf.order(f"ack-{i}")["syncInfo"]) for i in (1, 2, 3)] == [1, 1, 1]
    assert sf.order("ack-2")["syncInfo"][0]["externalId"] == sf.sales()["CT3002"]["ID"]
    assert sorted(sf.sales()) == ["CT3001", "CT3002", "CT3003"]
    (report,) = [r for r in ledger.runs(PAIRING, "orders_in") if r["run_id"] == "ack-run"]
    assert report["details"]["load"]["acknowledged_again"] == 3 and "acknowledgement_failed" not in report["details"]["load"]

    # another run (another run id) finds them booked and synced: it books nothing and tells nothing
    posts = len(sf.calls("POST", "/orders/"))
    assert run_flow(PAIRING, "orders_in", "next-run", start, now() + timedelta(minutes=1)) == "success"
    assert len(sf.sales()) == 3 and len(sf.calls("POST", "/orders/")) == posts
    ledger.dispose()


def test_dispatch_back_partial_then_whole_with_carrier_and_tracking(storefront, pg_url):
    sf = storefront
    t = now()
    stored = book(sf, [make_order("CT2001", [TEE, CAP], shipping="4.95", created=t - timedelta(minutes=20)),
                       make_order("CT2002", [CAP], shipping="4.95", created=t - timedelta(minutes=20))], t)
    ship = lambda ext, pack, lines: sf.in_cin7("fulfilments", {"ExternalID": ext, "pack": pack, "ship": lines})  # noqa: E731
    ship("CT2001", [{"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "Royal Mail Tracked 24", "TrackingNumber": "RM1"}])
    ship("CT2002", [{"SKU": "CS-CAP-NVY", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "Parcelforce", "TrackingNumber": "PF1"}])  # unmapped carrier
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert run("dispatch_back", t - timedelta(minutes=5), later, 1).state == "success"

    o1 = sf.order(stored["CT2001"]["id"])
    (delivery,) = o1["shippingInfo"]["deliveries"]
    tee_line = next(li["id"] for li in o1["lineItems"] if li["variant"]["sku"] == "CS-TEE-BLK-M")
    assert delivery["items"] == [{"id": tee_line, "quantity": 1}] and o1["shipmentState"] == "Partial"
    assert delivery["parcels"][0]["trackingData"] == {"trackingId": "RM1", "carrier": "Royal Mail"}
    assert "deliveries" not in sf.order(stored["CT2002"]["id"])["shippingInfo"] or not sf.order(stored["CT2002"]["id"])["shippingInfo"]["deliveries"]
    ledger = Ledger.from_url(pg_url)
    assert list(held(ledger, "dispatch_back").values()) == [{"carrier_mapped"}]
    assert "1 shipment(s) held" in sf.mailbox.messages[-1]["Subject"]

    # the rest of CT2001 leaves: Shipped; a re-run sends nothing twice
    ship("CT2001", [{"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "2"}, {"SKU": "CS-CAP-NVY", "Quantity": 1, "Box": "2"}],
         [{"Box": "2", "Carrier": "DPD", "TrackingNumber": "DPD2"}])
    assert run("dispatch_back", t - timedelta(minutes=5), later, 2).state == "success"
    o1 = sf.order(stored["CT2001"]["id"])
    assert len(o1["shippingInfo"]["deliveries"]) == 2 and o1["shipmentState"] == "Shipped"
    writes = len(sf.calls("POST", f"/orders/{stored['CT2001']['id']}"))
    assert run("dispatch_back", t - timedelta(minutes=5), later, 3).state == "success"
    assert len(sf.calls("POST", f"/orders/{stored['CT2001']['id']}")) == writes
    ledger.dispose()


def test_stock_out_sets_the_supply_channel_entries_changed_only(storefront, pg_url):
    """Each supply channel is a stock region (cin7_commercetools.yaml stock.regions): its entries
    get the Cin7 availability of its own locations less its own buffer; only entries that differ
    are written, on the first run and after one location's stock moves."""
    sf = storefront
    main, store, tpl = ({"typeId": "channel", "key": k} for k in (SUPPLY, STORE, THREE_PL))
    entries = sf.seed("inventory", [
        {"sku": "CS-TEE-BLK-M", "quantityOnStock": 0, "supplyChannel": main}, {"sku": "CS-CAP-NVY", "quantityOnStock": 6, "supplyChannel": main},
        {"sku": "CS-TEE-BLK-L", "quantityOnStock": 3, "supplyChannel": main}, {"sku": "NOT-IN-CIN7", "quantityOnStock": 2, "supplyChannel": main},
        {"sku": "CS-TEE-BLK-M", "quantityOnStock": 0, "supplyChannel": store}, {"sku": "CS-CAP-NVY", "quantityOnStock": 5, "supplyChannel": store},
        {"sku": "CS-TEE-BLK-M", "quantityOnStock": 0, "supplyChannel": tpl}, {"sku": "CS-CAP-NVY", "quantityOnStock": 0, "supplyChannel": tpl},
        {"sku": "CS-TEE-BLK-M", "quantityOnStock": 40}])  # no supply channel: not this pairing's
    key_of = {sf.api("GET", f"/channels/key={k}")["id"]: k for k in (SUPPLY, STORE, THREE_PL)}
    entry_id = {(key_of.get((e.get("supplyChannel") or {}).get("id")), e["sku"]): e["id"] for e in entries}
    on_hand = {("Main Warehouse", "CS-TEE-BLK-M"): 10, ("Main Warehouse", "CS-CAP-NVY"): 7, ("Main Warehouse", "CS-TEE-BLK-L"): 4,
               ("London Store", "CS-TEE-BLK-M"): 5, ("London Store", "CS-CAP-NVY"): 7, ("3PL Northampton", "CS-TEE-BLK-M"): 100, ("3PL Northampton", "CS-CAP-NVY"): 20}
    sf.in_cin7("seed", {"availability": [{"SKU": sku, "Location": loc, "OnHand": n} for (loc, sku), n in on_hand.items()]})

    def shown() -> dict[tuple[str | None, str], int]:
        return {(key_of.get((e.get("supplyChannel") or {}).get("id")), e["sku"]): e["quantityOnStock"] for e in sf.inventory()}

    def written() -> list[str]:
        return [c["path"].rsplit("/", 1)[-1] for c in sf.calls("POST", "/inventory/")]

    t = now() - timedelta(minutes=1)
    assert run("stock_out", t - timedelta(minutes=15), t, 1).state == "success"
    # main: less 1 unit; London store: less 2; 3PL: less 5 % rounded up (100 -> 95, 20 -> 19)
    assert shown() == {(SUPPLY, "CS-TEE-BLK-M"): 9, (SUPPLY, "CS-CAP-NVY"): 6, (SUPPLY, "CS-TEE-BLK-L"): 3, (SUPPLY, "NOT-IN-CIN7"): 2,
                       (STORE, "CS-TEE-BLK-M"): 3, (STORE, "CS-CAP-NVY"): 5, (THREE_PL, "CS-TEE-BLK-M"): 95, (THREE_PL, "CS-CAP-NVY"): 19,
                       (None, "CS-TEE-BLK-M"): 40}
    # the entries already showing what their channel's locations allow are not written
    assert sorted(written()) == sorted(entry_id[k] for k in ((SUPPLY, "CS-TEE-BLK-M"), (STORE, "CS-TEE-BLK-M"), (THREE_PL, "CS-TEE-BLK-M"),
                                                             (THREE_PL, "CS-CAP-NVY")))
    ledger = Ledger.from_url(pg_url)
    assert held(ledger, "stock_out") == {f"{SUPPLY}:NOT-IN-CIN7": {"listing_mapped"}}

    # nothing changed in Cin7: nothing is written; then the London store's caps move and only
    # that supply channel's entry is written (the same SKU in the other channels is left alone)
    writes = written()
    assert run("stock_out", t - timedelta(minutes=15), t + timedelta(seconds=20), 2).state == "success"
    assert written() == writes
    sf.in_cin7("seed", {"availability": [{"SKU": "CS-CAP-NVY", "Location": "London Store", "OnHand": 4}]})
    assert run("stock_out", t - timedelta(minutes=15), t + timedelta(seconds=40), 3).state == "success"
    assert written() == writes + [entry_id[(STORE, "CS-CAP-NVY")]]
    after = shown()
    assert (after[(STORE, "CS-CAP-NVY")], after[(SUPPLY, "CS-CAP-NVY")], after[(THREE_PL, "CS-CAP-NVY")]) == (2, 6, 19)
    ledger.dispose()


def test_two_writers_racing_on_one_inventory_entry_lose_no_update(storefront):
    """Each writer adds or removes units at the version it read; every 409 is re-read and
    recomputed, never replayed. Both finish, and the entry holds exactly the sum of their changes."""
    from commerce_sync.http import HttpClient, OAuth2ClientCredentials
    from commerce_sync.systems.commercetools import CommercetoolsChannel
    from tests.e2e.ct_helpers import CLIENT_ID, CLIENT_SECRET, PROJECT

    sf = storefront
    (entry,) = sf.seed("inventory", [{"sku": "CS-TEE-BLK-M", "quantityOnStock": 100, "supplyChannel": {"typeId": "channel", "key": SUPPLY}}])
    # every write is slowed before it is applied, so the other writer's read goes stale meanwhile
    requests.post(f"{sf.ct}/_sandbox/faults", json={"hang": {"seconds": 0.02, "when": "before", "method": "POST", "path": f"/inventory/{entry['id']}", "count": None}},
                  timeout=10).raise_for_status()

    def writer(delta: int, times: int, errors: list) -> None:
        auth = OAuth2ClientCredentials(f"{sf.ct}/oauth/token", CLIENT_ID, CLIENT_SECRET, [f"manage_products:{PROJECT}"])
        ch = CommercetoolsChannel(HttpClient(f"{sf.ct}/{PROJECT}", system="commercetools", auth=auth), conflict_retries=50)
        start.wait()
        try:
            for _ in range(times):
                ch.adjust_stock(entry["id"], delta)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    start, errors = threading.Event(), []
    threads = [threading.Thread(target=writer, args=(2, 20, errors)), threading.Thread(target=writer, args=(-1, 20, errors))]
    for th in threads:
        th.start()
    start.set()
    for th in threads:
        th.join(timeout=120)
    requests.delete(f"{sf.ct}/_sandbox/faults", timeout=10)
    assert errors == []
    final = next(e for e in sf.inventory() if e["id"] == entry["id"])
    assert final["quantityOnStock"] == 100 + 20 * 2 - 20 * 1
    writes = sf.calls("POST", f"/inventory/{entry['id']}")
    assert len([c for c in writes if c["status"] == 200]) == 40
    assert [c for c in writes if c["status"] == 409], "the writers never met: the race proved nothing"


def test_refunds_of_returned_items_become_credit_notes_once(storefront, pg_url):
    sf = storefront
    t = now()
    sf.seed("payments", [payment("pay-3001", "104.94", transactions=[transaction("Charge", "104.94", at=t - timedelta(minutes=20))])])
    stored = book(sf, [make_order("CT3001", [TEE, CAP], shipping="4.95", created=t - timedelta(minutes=20), payments=["pay-3001"])], t)
    sf.in_cin7("invoice", {"ExternalID": "CT3001"})
    order = stored["CT3001"]
    tee_line = next(li["id"] for li in order["lineItems"] if li["variant"]["sku"] == "CS-TEE-BLK-M")
    # the customer sends one tee back; the PSP refunds it; then a goodwill refund with nothing returned
    sf.api("POST", f"/orders/{order['id']}", {"version": sf.order(order["id"])["version"], "actions": [
        {"action": "addReturnInfo", "returnTrackingId": "RET-1", "items": [{"lineItemId": tee_line, "quantity": 1, "shipmentState": "Returned"}]}]})
    pay = sf.api("GET", "/payments/pay-3001")
    pay = sf.api("POST", "/payments/pay-3001", {"version": pay["version"], "actions": [
        {"action": "addTransaction", "transaction": {"type": "Refund", "amount": {"currencyCode": "GBP", "centAmount": 4000}, "state": "Success", "interactionId": "RET-1"}},
        {"action": "addTransaction", "transaction": {"type": "Refund", "amount": {"currencyCode": "GBP", "centAmount": 500}, "state": "Success", "interactionId": "goodwill"}}]})
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert run("refunds", t - timedelta(hours=1), later, 1).state == "success"
    assert run("refunds", t - timedelta(hours=1), later, 2).state == "success"

    (note,) = sf.sales()["CT3001"]["_credit_notes"]
    assert note["Restock"] == [] and [(l["SKU"], l["Quantity"], Decimal(str(l["Total"]))) for l in note["Lines"]] == [("CS-TEE-BLK-M", 1, Decimal("40"))]
    ledger = Ledger.from_url(pg_url)
    goodwill = next(tx["id"] for tx in pay["transactions"] if tx.get("interactionId") == "goodwill")
    assert list(held(ledger, "refunds")) == [goodwill] and "sku_present" in held(ledger, "refunds")[goodwill]  # no item to credit: a person decides
    ledger.dispose()


def test_payouts_match_captured_payments_to_the_sales_to_the_cent(storefront, pg_url):
    sf = storefront
    t = now()
    sf.seed("payments", [payment("pay-4001", "94.94", transactions=[transaction("Authorization", "94.94", at=t - timedelta(minutes=30)),
                                                                    transaction("Charge", "94.94", at=t - timedelta(minutes=20))]),
                         payment("pay-4002", "19.99", transactions=[transaction("Charge", "19.98", at=t - timedelta(minutes=20))]),  # a cent short
                         payment("pay-4003", "19.99", transactions=[transaction("Charge", "19.99", at=t - timedelta(minutes=20))])])
    book(sf, [make_order("CT4001", [TEE, CAP], shipping="4.95", order_discount="10.00", created=t - timedelta(minutes=25), payments=["pay-4001"]),
              make_order("CT4002", [CAP], created=t - timedelta(minutes=25), payments=["pay-4002"])], t)
    sf.seed("orders", [make_order("CT4003", [CAP], created=t - timedelta(minutes=25), payments=["pay-4003"], order_state="Cancelled")])  # never booked
    assert run("payout_reconciliation", t - timedelta(hours=1), t + timedelta(minutes=1), 1).state == "success"

    ledger = Ledger.from_url(pg_url)
    matches = {m["order_channel_ref"]: m for m in ledger.payout_matches(PAIRING)}
    assert matches["CT4001"]["status"] == "matched" and Decimal(matches["CT4001"]["variance"]) == 0 and Decimal(matches["CT4001"]["net"]) == Decimal("94.94")
    assert matches["CT4002"]["status"] == "variance" and Decimal(matches["CT4002"]["variance"]) == Decimal("0.01")
    assert matches["CT4003"]["status"] == "unmatched"
    rows = list(csv.DictReader(io.StringIO(ledger.reports(PAIRING, "payout_reconciliation")["exceptions.csv"])))
    assert sorted((r["type"], r["order"]) for r in rows) == [("unmatched", "CT4003"), ("variance", "CT4002")]
    assert requests.get(f"{sf.cin7}/_sandbox/journals", timeout=10).json()["journals"] == []  # a storefront keeps no commission
    assert any("payouts" in m["Subject"] for m in sf.mailbox.messages)
    ledger.dispose()


def test_drift_monitor_finds_stock_drift_and_orphaned_orders(storefront, pg_url):
    sf = storefront
    t = now()
    channel = {"typeId": "channel", "key": SUPPLY}
    sf.seed("inventory", [{"sku": "CS-TEE-BLK-M", "quantityOnStock": 9, "supplyChannel": channel}, {"sku": "CS-CAP-NVY", "quantityOnStock": 5, "supplyChannel": channel}])
    sf.in_cin7("seed", {"availability": [{"SKU": "CS-TEE-BLK-M", "Location": "Main Warehouse", "OnHand": 10}, {"SKU": "CS-CAP-NVY", "Location": "Main Warehouse", "OnHand": 2}]})
    sf.seed("orders", [make_order("CT5001", [CAP], created=t - timedelta(hours=2))])  # paid two hours ago, never booked

    assert dagbag().get_dag(f"{PAIRING}__drift_monitor").test(logical_date=t).state == "success"
    ledger = Ledger.from_url(pg_url)
    assert latest_drift(ledger, PAIRING) == [("orphaned_order", "CT5001"), ("stock_drift", f"{SUPPLY}:CS-CAP-NVY")]
    (alert,) = sf.mailbox.messages
    assert "drift found (2)" in alert["Subject"]
    ledger.dispose()
