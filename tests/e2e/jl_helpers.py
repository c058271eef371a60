"""Running a pairing's DAGs in tests (cin7_john_lewis unless told): dag.test with a run conf window, distinct logical dates."""

from __future__ import annotations

from datetime import datetime, timedelta

from commerce_sync.ledger import Ledger

PAIRING = "cin7_john_lewis"


def run(flow: str, start: datetime, end: datetime, n: int, pairing: str = PAIRING, **conf):
    from airflow.dag_processing.dagbag import DagBag

    from commerce_sync.pairing import project_root

    dag = DagBag(dag_folder=str(project_root() / "dags")).get_dag(f"{pairing}__{flow}")
    # distinct logical dates: each call is its own run, as a re-run or backfill would be
    return dag.test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat(), **conf}, logical_date=end + timedelta(seconds=n))


def drift_findings(ledger: Ledger, logical_date: datetime, pairing: str = PAIRING) -> list[tuple[str, str]]:
    """Run the pairing's drift monitor as its DAG; (type, key) of each finding in its report."""
    import csv
    import io

    from airflow.dag_processing.dagbag import DagBag

    from commerce_sync.pairing import project_root

    dag = DagBag(dag_folder=str(project_root() / "dags")).get_dag(f"{pairing}__drift_monitor")
    assert dag.test(logical_date=logical_date).state == "success"
    latest = ledger.runs(pairing, "drift_monitor")[0]["run_id"]
    rows = csv.DictReader(io.StringIO(ledger.reports(pairing, "drift_monitor", period=latest)["drift.csv"]))
    return sorted((r["type"], r["key"]) for r in rows)


def held(ledger: Ledger, flow: str, pairing: str = PAIRING) -> dict[str, set[str]]:
    return {q.record_key: {r["check"] for r in q.reasons} for q in ledger.open_quarantine(pairing, flow)}


def mail_body(message) -> str:
    if message.is_multipart():
        return message.get_payload(0).get_payload(decode=True).decode()
    return message.get_payload(decode=True).decode()
