"""With a real scheduler and triggerer: a missed payout deadline e-mails finance (again after a
Clear), the UI's Clear re-runs a failed run of a DAG with a deadline, and a backfill of failed runs
after an outage fills the gap with every order present exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import subprocess

import pytest
import requests

from tests.builders import marketplacer_invoice
from tests.cluster.conftest import BIN

pytestmark = [pytest.mark.airflow, pytest.mark.pg, pytest.mark.e2e]


def _body(message) -> str:
    return (message.get_payload(0) if message.is_multipart() else message).get_payload(decode=True).decode()


def _deadline_mails(cluster, run_id: str) -> list:
    return [m for m in cluster.messages if "deadline" in (m["Subject"] or "") and run_id in _body(m)]


def test_a_missed_payout_deadline_e_mails_finance_and_a_cleared_run_is_watched_again(cluster):
    # every Marketplacer call takes 10 s: the run cannot finish inside its 5-second deadline
    requests.post(f"{cluster.marketplacer}/_sandbox/faults", json={"latency_ms": 10_000}, timeout=10)
    dag = "cin7_marketplacer__payout_reconciliation"
    try:
        cluster.airflow("dags", "unpause", dag)
        r = cluster.api("POST", f"/api/v2/dags/{dag}/dagRuns", json={"logical_date": None})
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]
        mail = cluster.wait("the deadline e-mail", lambda: _deadline_mails(cluster, run_id), timeout=300)
        assert len(mail) == 1
        assert mail[0]["To"] == "finance@example.com"  # payouts: finance, as the pairing file says
        assert mail[0]["Subject"] == f"[Commerce Sync] cin7_marketplacer payout_reconciliation missed its {5 / 60}-minute deadline"

        # Clear, as the UI's button does: the run starts again, and its deadline with it
        cluster.wait("the slow run to end", lambda: cluster.api("GET", f"/api/v2/dags/{dag}/dagRuns/{run_id}").json()["state"] in ("success", "failed"), timeout=300)
        r = cluster.api("POST", f"/api/v2/dags/{dag}/dagRuns/{run_id}/clear", json={"dry_run": False})
        assert r.status_code == 200, r.text
        cluster.wait("a second deadline e-mail for the cleared run", lambda: len(_deadline_mails(cluster, run_id)) == 2, timeout=300)
    finally:
        cluster.airflow("dags", "pause", dag)
        requests.delete(f"{cluster.marketplacer}/_sandbox/faults", timeout=10)


def test_the_ui_clear_button_re_runs_a_failed_orders_in_run_and_books_each_order_once(cluster):
    """orders_in keeps its deadline; Clear (the REST call the UI makes) must not answer 500 (it did
    with DAGRUN_QUEUED_AT on 3.3.2, apache/airflow#70368) and the re-run books each order once."""
    dag = "cin7_marketplacer__orders_in"
    placed = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)  # outside every scheduled window
    invoices = [marketplacer_invoice(6200 + i, [("CS-TEE-BLK-M", 1, 4500)], created_at=placed + timedelta(minutes=i)) for i in range(2)]
    requests.post(f"{cluster.marketplacer}/_sandbox/invoices", json={"invoices": invoices}, timeout=10).raise_for_status()
    requests.post(f"{cluster.marketplacer}/_sandbox/faults", json={"status_burst": {"status": 500, "count": 100_000}}, timeout=10)
    try:
        cluster.airflow("dags", "unpause", dag)
        conf = {"window_start": (placed - timedelta(minutes=5)).isoformat(), "window_end": (placed + timedelta(minutes=10)).isoformat()}
        r = cluster.api("POST", f"/api/v2/dags/{dag}/dagRuns", json={"logical_date": None, "conf": conf})
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]
        state = lambda: cluster.api("GET", f"/api/v2/dags/{dag}/dagRuns/{run_id}").json()["state"]  # noqa: E731
        cluster.wait("the run to fail while the marketplace is down", lambda: state() == "failed", timeout=300)
        assert not [s for s in requests.get(f"{cluster.cin7}/_sandbox/sales", timeout=10).json()["sales"] if s["ExternalID"].startswith("MKP-620")]
    finally:
        requests.delete(f"{cluster.marketplacer}/_sandbox/faults", timeout=10)

    r = cluster.api("POST", f"/api/v2/dags/{dag}/dagRuns/{run_id}/clear", json={"dry_run": False, "only_failed": True})
    assert r.status_code == 200, r.text
    cluster.wait("the cleared run to succeed", lambda: state() == "success", timeout=300)
    # and Clear once more (an impatient double click): still each order once
    r = cluster.api("POST", f"/api/v2/dags/{dag}/dagRuns/{run_id}/clear", json={"dry_run": False})
    assert r.status_code == 200, r.text
    cluster.wait("the second re-run to succeed", lambda: state() == "success", timeout=300, every=3)
    ext = sorted(s["ExternalID"] for s in requests.get(f"{cluster.cin7}/_sandbox/sales", timeout=10).json()["sales"] if s["ExternalID"].startswith("MKP-620"))
    assert ext == ["MKP-6200", "MKP-6201"]


def _states(cluster, dag_id, start, end):
    return {r["logical_date"][:16]: r["state"] for r in cluster.runs(dag_id) if start <= r["logical_date"][:16] <= end}


def test_backfill_after_an_outage_fills_the_gap_once(cluster):
    dag = "cin7_marketplacer__orders_in"
    day = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
    # one order in each of three 5-minute intervals, yesterday 09:00-09:15
    invoices = [marketplacer_invoice(6100 + i, [("CS-CAP-NVY", 1, 2500)], created_at=day + timedelta(minutes=5 * i + 1)) for i in range(3)]
    requests.post(f"{cluster.marketplacer}/_sandbox/invoices", json={"invoices": invoices}, timeout=10).raise_for_status()
    # the marketplace is down (every call answers 500) while those intervals run
    requests.post(f"{cluster.marketplacer}/_sandbox/faults", json={"status_burst": {"status": 500, "count": 100_000}}, timeout=10)
    from_date, to_date = (day + timedelta(minutes=5)).isoformat(), (day + timedelta(minutes=15)).isoformat()
    lo, hi = from_date[:16], to_date[:16]
    cluster.airflow("dags", "unpause", dag)  # the scheduler runs no run, backfill or not, of a paused DAG
    cluster.airflow("backfill", "create", "--dag-id", dag, "--from-date", from_date, "--to-date", to_date)
    cluster.wait("the outage runs to fail", lambda: (s := _states(cluster, dag, lo, hi)) and len(s) == 3 and set(s.values()) == {"failed"}, timeout=300)
    assert [s for s in requests.get(f"{cluster.cin7}/_sandbox/sales", timeout=10).json()["sales"] if s["ExternalID"].startswith("MKP-610")] == []
    # ops heard of each failure after its retry, told it is transient (not a data problem)
    failures = cluster.wait("the failure alerts", lambda: (m := [x for x in cluster.messages if "orders_in failed" in (x["Subject"] or "")]) and len(m) >= 3 and m, timeout=300)
    for message in failures:
        assert message["To"] == "ops@example.com" and message["Subject"].endswith("failed: TransientError")
        body = (message.get_payload(0) if message.is_multipart() else message).get_payload(decode=True).decode()
        assert "after 2 tries" in body and "transient" in body and f"{cluster.ui}/dags/{dag}/runs/" in body

    # the marketplace is back: backfill the failed runs
    requests.delete(f"{cluster.marketplacer}/_sandbox/faults", timeout=10)
    # one backfill per DAG at a time: the scheduler closes the first one shortly after its runs end
    def backfill_failed_runs():
        out = subprocess.run([str(BIN / "airflow"), "backfill", "create", "--dag-id", dag, "--from-date", from_date, "--to-date", to_date,
                              "--reprocess-behavior", "failed"], env=cluster.env, capture_output=True, text=True, timeout=120)
        assert "AlreadyRunningBackfill" in out.stderr or out.returncode == 0, [l for l in out.stderr.splitlines() if "Error" in l or "Exception" in l][-3:]
        return out.returncode == 0

    cluster.wait("the first backfill to close", backfill_failed_runs, timeout=300, every=5)
    cluster.wait("the backfill to succeed", lambda: (s := _states(cluster, dag, lo, hi)) and set(s.values()) == {"success"}, timeout=300)

    # the third interval's overlap re-read the first two orders: still each once
    ext = sorted(s["ExternalID"] for s in requests.get(f"{cluster.cin7}/_sandbox/sales", timeout=10).json()["sales"] if s["ExternalID"].startswith("MKP-610"))
    assert ext == ["MKP-6100", "MKP-6101", "MKP-6102"]
