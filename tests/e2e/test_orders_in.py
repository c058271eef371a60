"""cin7_marketplacer__orders_in end to end: Airflow runs the DAG (dag.test) against both emulators
over real HTTP, with the ledger in PostgreSQL.

Seeded: good orders plus one each of an unmapped SKU, a lower-case SKU, an unknown seller, a total
off by one cent and a missing reference. Exactly the good ones reach Cin7, once; each bad one is
in quarantine with its reason; a second run creates nothing; adding the missing mappings lands
the held orders, once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from commerce_sync.ledger import Ledger
from tests.builders import marketplacer_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]

DAG_ID = "cin7_marketplacer__orders_in"


def run_dag(window_start: datetime, window_end: datetime, n: int):
    from airflow.dag_processing.dagbag import DagBag

    from commerce_sync.pairing import project_root

    dag = DagBag(dag_folder=str(project_root() / "dags")).get_dag(DAG_ID)
    conf = {"window_start": window_start.isoformat(), "window_end": window_end.isoformat()}
    # distinct logical dates: each call is its own run, as a re-run or backfill would be
    return dag.test(run_conf=conf, logical_date=window_end + timedelta(seconds=n))


def _quarantine(ledger: Ledger):
    return {q.payload.get("legacyId"): q for q in ledger.open_quarantine("cin7_marketplacer", "orders_in")}


def test_orders_in_loads_good_orders_once_and_quarantines_each_bad_one(wired, pg_url, mappings):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    placed = now - timedelta(minutes=30)
    good = [
        marketplacer_invoice(1001, [("CS-TEE-BLK-M", 2, 4500), ("CS-CAP-NVY", 1, 2500)], created_at=placed),
        marketplacer_invoice(1002, [("CS-TEE-BLK-L", 1, 4500)], seller_id=2, seller_name="Lounge", created_at=placed),
        marketplacer_invoice(1003, [("CS-CAP-NVY", 3, 2499)], postage_cents=0, created_at=placed),
    ]
    bad = {
        "unmapped_sku": marketplacer_invoice(2001, [("CS-SOCK-WHT", 1, 1500)], created_at=placed),
        "lowercase_sku": marketplacer_invoice(2002, [("cs-tee-blk-m", 1, 4500)], created_at=placed),
        "unknown_seller": marketplacer_invoice(2003, [("CS-CAP-NVY", 1, 2500)], seller_id=77, seller_name="New Seller", created_at=placed),
        "off_by_a_cent": marketplacer_invoice(2004, [("CS-CAP-NVY", 1, 2500)], total_adjust_cents=-1, created_at=placed),
        "missing_reference": marketplacer_invoice(None, [("CS-CAP-NVY", 1, 2500)], created_at=placed),
    }
    # and one outside the window, which this run must not touch
    late = marketplacer_invoice(3001, [("CS-CAP-NVY", 1, 2500)], created_at=now + timedelta(hours=2))
    wired.inject_invoices(good + list(bad.values()) + [late])

    dr = run_dag(now - timedelta(hours=1), now, 1)
    assert dr.state == "success"

    sales = wired.sales()
    ext_ids = sorted(s["ExternalID"] for s in sales)
    assert ext_ids == ["MKP-1001", "MKP-1002", "MKP-1003"]
    by_ext = {s["ExternalID"]: s for s in sales}
    s1001 = by_ext["MKP-1001"]
    assert s1001["TaxRule"] == "GST on Income" and s1001["Location"] == "Main Warehouse"
    assert s1001["Customer"] == "Castore AU (Marketplacer)"
    assert "Castore AU" in (s1001.get("Note") or "")
    assert by_ext["MKP-1002"]["Customer"] == "Lounge (Marketplacer)"

    ledger = Ledger.from_url(pg_url)
    q = _quarantine(ledger)
    assert set(q) == {2001, 2002, 2003, 2004, None}
    checks = {k: {r["check"] for r in v.reasons} for k, v in q.items()}
    assert "sku_mapped" in checks[2001]
    assert "sku_mapped" in checks[2002] and "sku_near_match" in checks[2002]
    assert checks[2003] == {"seller_mapped"}
    assert checks[2004] == {"order_total_adds_up"}
    assert checks[None] == {"channel_ref_present"}
    assert all(r["detail"] for v in q.values() for r in v.reasons)
    runs = ledger.runs("cin7_marketplacer", "orders_in")
    assert runs[0]["extracted"] == 8 and runs[0]["loaded"] == 3 and runs[0]["quarantined"] == 5
    assert wired.mailbox.messages == []  # five held orders are under the pairing's threshold: no e-mail

    # a re-run over the same window creates nothing new
    dr = run_dag(now - timedelta(hours=1), now, 2)
    assert dr.state == "success"
    assert sorted(s["ExternalID"] for s in wired.sales()) == ext_ids

    # ops add the missing SKU and seller mappings: the held orders land, once
    with open(mappings / "cin7_marketplacer" / "skus.csv", "a", encoding="utf-8") as fh:
        fh.write("CS-SOCK-WHT,CS-SOCK-WHT,Socks white\n")
    with open(mappings / "cin7_marketplacer" / "sellers.csv", "a", encoding="utf-8") as fh:
        fh.write("77,New Seller,Marketplacer\n")
    # a later window: the held orders come back from quarantine, not from the channel
    dr = run_dag(now, now + timedelta(minutes=5), 3)
    assert dr.state == "success"
    dr = run_dag(now, now + timedelta(minutes=5), 4)
    assert dr.state == "success"
    final = sorted(s["ExternalID"] for s in wired.sales())
    assert final == ["MKP-1001", "MKP-1002", "MKP-1003", "MKP-2001", "MKP-2003"]
    assert set(_quarantine(ledger)) == {2002, 2004, None}
    history = ledger.engine.connect().exec_driver_sql(
        "select kind, key, action from mapping_history where pairing = 'cin7_marketplacer' and action = 'added' and key in ('CS-SOCK-WHT', '77')"
    ).fetchall()
    assert sorted(tuple(r) for r in history) == [("sellers", "77", "added"), ("skus", "CS-SOCK-WHT", "added")]
    ledger.dispose()


def test_a_systemically_bad_batch_fails_the_run_at_once_without_retries(wired, pg_url):
    """Twelve orders, all with SKUs nobody mapped: a lost mapping file, not twelve bad orders.
    The gate task fails on its first try (the retry policy's FAIL rule), nothing is loaded and
    nothing is quarantined, so fixing the cause and re-running is all it takes."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    wired.inject_invoices([marketplacer_invoice(6000 + i, [(f"UNKNOWN-{i}", 1, 1000)], created_at=now - timedelta(minutes=10)) for i in range(12)])
    dr = run_dag(now - timedelta(hours=1), now, 1)
    assert dr.state == "failed"
    states = {ti.task_id: (ti.state, ti.try_number) for ti in dr.get_task_instances()}
    assert states["extract"][0] == "success"
    assert states["gate"] == ("failed", 1)  # not up_for_retry: retries=3 were not spent on data
    assert states["load"][0] == "upstream_failed"
    assert wired.sales() == []
    ledger = Ledger.from_url(pg_url)
    assert ledger.open_quarantine("cin7_marketplacer") == []
    ledger.dispose()
    # ops are told, once, with what kind of failure it is and where to look
    (alert,) = wired.mailbox.messages
    assert alert["To"] == "ops@example.com"
    assert alert["Subject"] == "[Commerce Sync] cin7_marketplacer orders_in failed: GateBatchError"
    body = (alert.get_payload(0) if alert.is_multipart() else alert).get_payload(decode=True).decode()
    assert "data error" in body and "12 of 12 new records failed" in body
    assert f"/dags/{DAG_ID}/runs/" in body


def test_a_quarantine_over_the_threshold_e_mails_ops(wired, monkeypatch, tmp_path):
    """Same run, a stricter pairing: over two held orders is worth an e-mail."""
    import shutil

    import yaml

    from commerce_sync.pairing import pairings_dir

    folder = tmp_path / "pairings"
    shutil.copytree(pairings_dir(), folder)
    path = folder / "cin7_marketplacer.yaml"
    data = yaml.safe_load(path.read_text())
    data["alerts"] = {"open_quarantine_over": 2, "quarantine_older_than_hours": 24}
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("COMMERCE_SYNC_PAIRINGS_DIR", str(folder))

    now = datetime.now(timezone.utc).replace(microsecond=0)
    wired.inject_invoices([marketplacer_invoice(7100 + i, [(f"UNMAPPED-{i}", 1, 1000)], created_at=now - timedelta(minutes=5)) for i in range(3)])
    assert run_dag(now - timedelta(hours=1), now, 1).state == "success"
    (alert,) = wired.mailbox.messages
    assert alert["Subject"] == "[Commerce Sync] cin7_marketplacer orders_in: 1 threshold(s) breached"
    body = (alert.get_payload(0) if alert.is_multipart() else alert).get_payload(decode=True).decode()
    assert "3 records wait in the orders_in quarantine (threshold 2)" in body
