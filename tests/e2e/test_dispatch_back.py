"""cin7_marketplacer__dispatch_back end to end (dag.test, both emulators, ledger in PostgreSQL):
a two-box partial shipment becomes two Marketplacer shipments with the right quantities; an
unmapped carrier and a missing tracking number are held, not sent; nothing is sent twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from commerce_sync.ledger import Ledger
from tests.builders import marketplacer_invoice
from tests.e2e.test_orders_in import run_dag as run_orders_in

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]


def run_dispatch(start: datetime, end: datetime, n: int):
    from airflow.dag_processing.dagbag import DagBag

    from commerce_sync.pairing import project_root

    dag = DagBag(dag_folder=str(project_root() / "dags")).get_dag("cin7_marketplacer__dispatch_back")
    return dag.test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat()}, logical_date=end + timedelta(seconds=n))


def ship(wired, external_id: str, pack: list[dict], ship_lines: list[dict]) -> None:
    requests.post(f"{wired.cin7}/_sandbox/fulfilments", json={"ExternalID": external_id, "pack": pack, "ship": ship_lines}, timeout=10).raise_for_status()


def invoice_shipments(wired, legacy_id: int) -> list[dict]:
    invoices = requests.get(f"{wired.marketplacer}/_sandbox/invoices", timeout=10).json()["invoices"]
    inv = next(i for i in invoices if i["legacyId"] == legacy_id)
    sku_of = {li["id"]: li["variantSku"] for li in inv["lineItems"]}
    return [
        {"tracking": s["trackingNumber"], "carrier": s["carrier"], "items": sorted((sku_of[i["lineItem"]["id"]], i["quantity"]) for i in s["shippedItems"])}
        for s in inv["shipments"]
    ]


def test_partial_shipments_unmapped_carriers_and_missing_tracking(wired, pg_url):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    placed = now - timedelta(minutes=30)
    wired.inject_invoices(
        [
            marketplacer_invoice(7001, [("CS-TEE-BLK-M", 2, 4500), ("CS-CAP-NVY", 1, 2500)], created_at=placed),
            marketplacer_invoice(7002, [("CS-CAP-NVY", 1, 2500)], created_at=placed),
            marketplacer_invoice(7003, [("CS-TEE-BLK-L", 1, 4500)], created_at=placed),
        ]
    )
    assert run_orders_in(now - timedelta(hours=1), now, 1).state == "success"

    # 7001 leaves in two boxes: one tee in box 1 by Australia Post, one tee and the cap in box 2 by DHL
    ship(
        wired,
        "MKP-7001",
        [{"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "1"}, {"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "2"}, {"SKU": "CS-CAP-NVY", "Quantity": 1, "Box": "2"}],
        [{"Box": "1", "Carrier": "Australia Post", "TrackingNumber": "AP111"}, {"Box": "2", "Carrier": "DHL", "TrackingNumber": "DHL222"}],
    )
    ship(wired, "MKP-7002", [{"SKU": "CS-CAP-NVY", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "Fastway", "TrackingNumber": "FW333"}])
    ship(wired, "MKP-7003", [{"SKU": "CS-TEE-BLK-L", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "StarTrack", "TrackingNumber": ""}])

    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert run_dispatch(now - timedelta(minutes=5), later, 1).state == "success"
    assert sorted(invoice_shipments(wired, 7001), key=lambda s: s["tracking"]) == [
        {"tracking": "AP111", "carrier": "Australia Post", "items": [("CS-TEE-BLK-M", 1)]},
        {"tracking": "DHL222", "carrier": "DHL Express", "items": [("CS-CAP-NVY", 1), ("CS-TEE-BLK-M", 1)]},
    ]
    assert invoice_shipments(wired, 7002) == [] and invoice_shipments(wired, 7003) == []

    ledger = Ledger.from_url(pg_url)
    held = {q.payload["order_channel_ref"]: {r["check"] for r in q.reasons} for q in ledger.open_quarantine("cin7_marketplacer", "dispatch_back")}
    assert held == {"7002": {"carrier_mapped"}, "7003": {"tracking_present"}}
    (alert,) = wired.mailbox.messages  # ops hear of the held shipments once, when they are first held
    assert alert["To"] == "ops@example.com" and "2 shipment(s) held" in alert["Subject"]
    body = alert.get_payload(0).get_payload(decode=True).decode() if alert.is_multipart() else alert.get_payload(decode=True).decode()
    assert "7002" in body and "Fastway" in body and "7003" in body

    # a re-run over the same window sends nothing twice
    assert run_dispatch(now - timedelta(minutes=5), later, 2).state == "success"
    assert len(invoice_shipments(wired, 7001)) == 2

    # ops map Fastway (to a carrier Marketplacer knows): the held shipment goes, once
    from commerce_sync.pairing import mappings_dir

    with open(mappings_dir() / "cin7_marketplacer" / "carriers.csv", "a", encoding="utf-8") as fh:
        fh.write("Fastway,Couriers Please\n")
    assert run_dispatch(now - timedelta(minutes=5), later, 3).state == "success"
    assert invoice_shipments(wired, 7002) == [{"tracking": "FW333", "carrier": "Couriers Please", "items": [("CS-CAP-NVY", 1)]}]
    assert {q.payload["order_channel_ref"] for q in ledger.open_quarantine("cin7_marketplacer", "dispatch_back")} == {"7003"}
    assert len(wired.mailbox.messages) == 1  # re-runs do not repeat the alert for the same holds
    ledger.dispose()
