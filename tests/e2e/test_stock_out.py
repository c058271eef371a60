"""cin7_marketplacer__stock_out end to end through Airflow (dag.test) against both emulators, the
ledger in PostgreSQL: buffers, only-changed pushes, unmapped listings and bad ERP quantities."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from commerce_sync.ledger import Ledger

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]

DAG_ID = "cin7_marketplacer__stock_out"
N = 500


def run_dag(n: int, conf: dict | None = None):
    from airflow.dag_processing.dagbag import DagBag

    from commerce_sync.pairing import project_root

    dag = DagBag(dag_folder=str(project_root() / "dags")).get_dag(DAG_ID)
    # 12:00 UTC: away from the 03:00 full resync, so only changes are pushed
    return dag.test(run_conf=conf or {}, logical_date=datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc) + timedelta(minutes=15 * n))


def seed(wired, mappings):
    skus = [f"SKU-{i:04d}" for i in range(N)]
    rows = ["channel_sku,master_sku,name"] + [f"{s},{s},Item {s}" for s in skus] + ["CS-CAP-NVY,CS-CAP-NVY,Cap", "CS-FRACTION,CS-FRACTION,Half", "CS-NEGATIVE,CS-NEGATIVE,Minus"]
    (mappings / "cin7_marketplacer" / "skus.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    availability = [{"SKU": s, "Location": "Main Warehouse", "OnHand": 10 + i % 5, "Allocated": 0} for i, s in enumerate(skus)]
    availability += [{"SKU": s, "Location": "Sydney Store", "OnHand": 100, "Allocated": 0} for s in skus[:10]]  # not a pairing location
    availability += [
        {"SKU": "SKU-0000", "Location": "Main Warehouse", "OnHand": 1, "Allocated": 0},  # 1 available, buffer 1 -> 0
        {"SKU": "CS-CAP-NVY", "Location": "Main Warehouse", "OnHand": 11, "Allocated": 0},  # 10% buffer rounded up -> 9
        {"SKU": "CS-FRACTION", "Location": "Main Warehouse", "OnHand": 2.5, "Allocated": 0},
        {"SKU": "CS-NEGATIVE", "Location": "Main Warehouse", "OnHand": 1, "Allocated": 3},
    ]
    products = [{"SKU": s} for s in skus + ["CS-CAP-NVY", "CS-FRACTION", "CS-NEGATIVE"]]
    requests.post(f"{wired.cin7}/_sandbox/seed", json={"products": products, "availability": availability}, timeout=30).raise_for_status()
    adverts = [{"title": s, "variants": [{"sku": s, "countOnHand": 0}]} for s in skus + ["CS-CAP-NVY", "CS-FRACTION", "CS-NEGATIVE", "MKP-GIFT-50"]]
    requests.post(f"{wired.marketplacer}/_sandbox/adverts", json={"adverts": adverts}, timeout=30).raise_for_status()


def hand_edit(wired, sku: str, quantity: int) -> None:
    headers = {"marketplacer-api-key": "demo-marketplacer-key"}
    adverts = requests.post(f"{wired.marketplacer}/graphql", json={"query": "{ allAdverts(first: 500) { nodes { variants { nodes { id sku } } } } }"}, headers=headers, timeout=10).json()
    vid = next(v["id"] for a in adverts["data"]["allAdverts"]["nodes"] for v in a["variants"]["nodes"] if v["sku"] == sku)
    mutation = "mutation($v: ID!, $q: Int!) { variantUpdate(input: {variantId: $v, attributes: {countOnHand: $q}}) { errors { field } } }"
    requests.post(f"{wired.marketplacer}/graphql", json={"query": mutation, "variables": {"v": vid, "q": quantity}}, headers=headers, timeout=10).raise_for_status()


def stock(wired):
    return requests.get(f"{wired.marketplacer}/_sandbox/stock_updates", timeout=10).json()


def test_stock_out_pushes_buffered_stock_and_then_only_what_changed(wired, pg_url, mappings):
    seed(wired, mappings)

    assert run_dag(1).state == "success"
    first = stock(wired)
    shown = first["stock"]
    assert shown["SKU-0000"] == 0  # the buffer took it to zero
    assert shown["SKU-0001"] == 10 and shown["SKU-0003"] == 12  # OnHand 11 / 13 less one unit
    assert shown["SKU-0009"] == 13  # Sydney Store's 100 is not this pairing's to sell
    assert shown["CS-CAP-NVY"] == 9
    assert shown["MKP-GIFT-50"] == 0 and shown["CS-FRACTION"] == 0 and shown["CS-NEGATIVE"] == 0  # never given stock
    assert len(first["updates"]) == N + 1  # every good listing once (first run: nothing pushed before)

    ledger = Ledger.from_url(pg_url)
    held = {q.record_key: {r["check"] for r in q.reasons} for q in ledger.open_quarantine("cin7_marketplacer", "stock_out")}
    assert held == {"MKP-GIFT-50": {"listing_mapped"}, "CS-FRACTION": {"available_whole"}, "CS-NEGATIVE": {"available_not_negative"}}

    # three SKUs change in Cin7: exactly three updates go out, in one batched request
    changed = {"SKU-0100": 40, "SKU-0200": 0, "SKU-0300": 7}
    requests.post(f"{wired.cin7}/_sandbox/seed", json={"availability": [{"SKU": s, "Location": "Main Warehouse", "OnHand": q, "Allocated": 0} for s, q in changed.items()]}, timeout=10)
    calls_before = len(requests.get(f"{wired.marketplacer}/_sandbox/calls", timeout=10).json()["calls"])
    assert run_dag(2).state == "success"
    second = stock(wired)
    new = second["updates"][len(first["updates"]) :]
    assert sorted((u["sku"], u["countOnHand"]) for u in new) == [("SKU-0100", 39), ("SKU-0200", 0), ("SKU-0300", 6)]
    calls = requests.get(f"{wired.marketplacer}/_sandbox/calls", timeout=10).json()["calls"][calls_before:]
    # reading the listings (1 page of 100 adverts per call: 504 adverts) + the orders captured and
    # not booked yet (one page, none here) + one mutation request
    assert len(calls) == 6 + 1 + 1

    # nothing changed: nothing is sent
    assert run_dag(3).state == "success"
    assert len(stock(wired)["updates"]) == len(second["updates"])

    # the channel drifted (someone set SKU-0005 by hand in the seller portal): a changes-only run
    # cannot see it, the full resync puts it back
    hand_edit(wired, "SKU-0005", 999)
    assert run_dag(4, {"full": True}).state == "success"
    assert stock(wired)["stock"]["SKU-0005"] == shown["SKU-0005"]
    assert len(stock(wired)["updates"]) == len(second["updates"]) + 1 + N + 1
    runs = ledger.runs("cin7_marketplacer", "stock_out")
    assert [r["loaded"] for r in runs] == [N + 1, 0, 3, N + 1]  # newest first
    ledger.dispose()
