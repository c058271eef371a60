"""A CeleryExecutor cluster on this machine (tests/cluster/conftest.py, `celery_cluster`): two
pairings' orders_in, stock_out and dispatch_back run across two Celery workers, each pairing's
tasks on its own queue, every record once; a worker killed mid-task loses nothing and books
nothing twice. Webhooks through the real api-server: orders placed while no webhook arrives are
booked by the schedule; a burst of 50 verified webhooks books 50 orders, each once.

One cluster for the module, the tests in order (each leaves what the next one builds on)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests

from commerce_sync.ledger import Ledger
from commerce_sync.webhooks import URL_PREFIX
from tests.builders import marketplacer_invoice
from tests.cluster.conftest import CELERY_PAIRINGS, WORKERS

pytestmark = [pytest.mark.airflow, pytest.mark.pg, pytest.mark.e2e]

PREFIX = {"cin7_marketplacer": "MKP-", "lounge_marketplacer": "LNG-"}
SKUS = ["CS-TEE-BLK-M", "CS-TEE-BLK-L", "CS-CAP-NVY"]


def _booked(cl, prefix: str) -> list[str]:
    sales = requests.get(f"{cl.cin7}/_sandbox/sales", timeout=10).json()["sales"]
    return [s["ExternalID"] for s in sales if s["ExternalID"].startswith(prefix)]


def _inject(cl, pairing: str, ids, placed: datetime) -> None:
    invoices = [marketplacer_invoice(i, [("CS-TEE-BLK-M", 1, 4500)], created_at=placed) for i in ids]
    requests.post(f"{cl.marketplacers[pairing]}/_sandbox/invoices", json={"invoices": invoices}, timeout=30).raise_for_status()


def _in_the_last_cron_interval() -> datetime:
    """A placing time the run for the latest 5-minute interval reads (catchup off: the one run an
    unpaused DAG gets at once), whatever minute the test runs in."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    return now.replace(minute=now.minute - now.minute % 5) - timedelta(minutes=3)


def _runs(cl, dag: str) -> list[dict]:
    return cl.api("GET", f"/api/v2/dags/{dag}/dagRuns", params={"limit": 100}).json()["dag_runs"]


def _settled(cl, dag: str) -> bool:
    runs = _runs(cl, dag)
    return bool(runs) and all(r["state"] in ("success", "failed") for r in runs)


def _hook(cl, pairing: str, secret: str | None) -> int:
    headers = {"X-Webhook-Secret": secret} if secret is not None else {}
    return requests.post(f"{cl.ui}{URL_PREFIX}/{pairing}/marketplacer", data=b'{"type": "invoice.created"}', headers=headers, timeout=60).status_code


def _unpause(cl, *dags: str) -> None:
    for dag in dags:
        cl.api("PATCH", f"/api/v2/dags/{dag}", json={"is_paused": False}).raise_for_status()


def test_a_burst_of_50_webhooks_books_50_orders_once_and_the_schedule_books_orders_no_webhook_announced(celery_cluster):
    cl = celery_cluster
    # the second brand's receiver is down: three orders and no webhook; its orders_in cron books them
    _inject(cl, "lounge_marketplacer", range(9200, 9203), _in_the_last_cron_interval())
    # the first brand's orders_in has a yearly cron here: whatever books its orders is a webhook's run
    dag = "cin7_marketplacer__orders_in"
    _unpause(cl, "lounge_marketplacer__orders_in", dag)

    # a forged webhook wakes nothing
    assert _hook(cl, "cin7_marketplacer", "guessed") == 401
    assert _hook(cl, "cin7_marketplacer", None) == 401

    # a burst: 50 orders and their 50 webhooks within a second or two
    _inject(cl, "cin7_marketplacer", range(9100, 9150), datetime.now(timezone.utc))
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda _: _hook(cl, "cin7_marketplacer", "demo-marketplacer-hook-secret"), range(50)))
    assert statuses == [202] * 50
    ledger = Ledger.from_url(cl.ledger_url)
    assert len([e for e in ledger.webhook_events("cin7_marketplacer") if e["asset_event_id"]]) == 50

    # events posted together may share one run and leave the rest for the next
    # (apache/airflow#56050): the runs they woke book every order, each once
    def loaded_by_woken_runs():
        woken = {r["dag_run_id"] for r in _runs(cl, dag) if r["run_type"] == "asset_triggered"}
        return sum(r["loaded"] or 0 for r in ledger.runs("cin7_marketplacer", "orders_in", limit=100) if r["run_id"] in woken)

    cl.wait("the woken runs to book the 50 orders", lambda: loaded_by_woken_runs() >= 50, timeout=150, every=1)
    booked = Counter(_booked(cl, "MKP-91"))
    assert sorted(booked) == [f"MKP-{i}" for i in range(9100, 9150)] and set(booked.values()) == {1}
    assert loaded_by_woken_runs() == 50 and "failed" not in {r["state"] for r in _runs(cl, dag)}

    cl.wait("the schedule to book the second brand's orders", lambda: len(_booked(cl, "LNG-920")) == 3, timeout=90)
    assert {r["run_type"] for r in _runs(cl, "lounge_marketplacer__orders_in")} == {"scheduled"}
    assert ledger.webhook_events("lounge_marketplacer") == []


def test_two_pairings_flows_run_across_both_workers_on_their_queues_each_record_once(celery_cluster):
    cl = celery_cluster
    requests.post(f"{cl.cin7}/_sandbox/seed", json={"availability": [{"SKU": s, "Location": "Main Warehouse", "OnHand": 10 + i, "Allocated": 0}
                                                                     for i, s in enumerate(SKUS)]}, timeout=10).raise_for_status()
    for url in cl.marketplacers.values():
        requests.post(f"{url}/_sandbox/adverts", json={"adverts": [{"title": s, "variants": [{"sku": s, "countOnHand": 0}]} for s in SKUS]}, timeout=10).raise_for_status()
    # one order of each brand leaves the warehouse
    for ext in ("MKP-9100", "LNG-9200"):
        requests.post(f"{cl.cin7}/_sandbox/fulfilments", json={"ExternalID": ext, "pack": [{"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "1"}],
                                                               "ship": [{"Box": "1", "Carrier": "Australia Post", "TrackingNumber": f"AP{ext[-4:]}"}]},
                      timeout=10).raise_for_status()
    dags = [f"{p}__{f}" for p in CELERY_PAIRINGS for f in ("stock_out", "dispatch_back")]
    _unpause(cl, *dags)
    dags += ["cin7_marketplacer__orders_in", "lounge_marketplacer__orders_in"]
    cl.wait("every run to end", lambda: all(_settled(cl, d) for d in dags), timeout=180, every=2)

    hosts = set()
    for dag in dags:
        pairing = dag.split("__")[0]
        for run in _runs(cl, dag):
            assert run["state"] == "success", (dag, run["dag_run_id"])
            for ti in cl.task_instances(dag, run["dag_run_id"]):
                assert ti["state"] == "success" and ti["queue"] == pairing, (dag, ti["task_id"], ti["queue"])
                hosts.add(ti["hostname"])
    assert hosts == set(WORKERS)  # both workers took tasks

    # each record once: a sale per order, a shipment per box, one stock push per SKU and brand
    for pairing, url in cl.marketplacers.items():
        invoices = requests.get(f"{url}/_sandbox/invoices", timeout=10).json()["invoices"]
        shipped = {i["legacyId"]: len(i["shipments"]) for i in invoices if i["shipments"]}
        assert shipped == {9100 if pairing == "cin7_marketplacer" else 9200: 1}
        updates = Counter(u["sku"] for u in requests.get(f"{url}/_sandbox/stock_updates", timeout=10).json()["updates"])
        assert set(updates) == set(SKUS) and set(updates.values()) == {1}
    assert set(Counter(_booked(cl, "LNG-")).values()) == {1}
    assert set(Counter(_booked(cl, "MKP-")).values()) == {1}


def test_a_worker_killed_mid_task_the_retry_runs_on_the_other_and_books_nothing_twice(celery_cluster):
    cl = celery_cluster
    dag = "lounge_marketplacer__orders_in"
    placed = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)  # outside every scheduled window
    _inject(cl, "lounge_marketplacer", range(9300, 9304), placed)
    requests.post(f"{cl.cin7}/_sandbox/faults", json={"latency_ms": 2000}, timeout=10).raise_for_status()  # a slow ERP: load takes a while
    try:
        conf = {"window_start": (placed - timedelta(minutes=5)).isoformat(), "window_end": (placed + timedelta(minutes=5)).isoformat()}
        r = cl.api("POST", f"/api/v2/dags/{dag}/dagRuns", json={"logical_date": None, "conf": conf})
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]

        def loading():
            ti = next(t for t in cl.task_instances(dag, run_id) if t["task_id"] == "load")
            return ti["state"] == "running" and ti["hostname"] and ti

        first = cl.wait("load to start", loading, timeout=120, every=0.5)
        # let it book some of the orders, then the worker dies with the task (and its pool)
        cl.wait("load to book an order", lambda: _booked(cl, "LNG-930"), timeout=60, every=0.5)
        cl.procs.kill(first["hostname"])
        cl.wait("the run to end", lambda: cl.run_state(dag, run_id) in ("success", "failed"), timeout=150)
    finally:
        requests.delete(f"{cl.cin7}/_sandbox/faults", timeout=10)
    assert cl.run_state(dag, run_id) == "success"
    load = next(t for t in cl.task_instances(dag, run_id) if t["task_id"] == "load")
    assert load["try_number"] == 2 and load["hostname"] == ({*WORKERS} - {first["hostname"]}).pop()
    booked = Counter(_booked(cl, "LNG-930"))
    assert sorted(booked) == [f"LNG-{i}" for i in range(9300, 9304)] and set(booked.values()) == {1}
