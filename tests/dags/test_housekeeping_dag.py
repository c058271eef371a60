"""The housekeeping DAG: one per deployment, built by the factory, run through Airflow itself;
its failure alert reaches the recipients the settings name (no pairing owns it)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from commerce_sync import airflow_settings
from tests.e2e.conftest import mailbox  # noqa: F401 - a real SMTP server on loopback

pytestmark = [pytest.mark.airflow, pytest.mark.pg]
DAG_ID = "commerce_sync__housekeeping"


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from commerce_sync.pairing import project_root

    return DagBag(dag_folder=str(project_root() / "dags")).get_dag(DAG_ID)


def test_one_daily_dag_for_the_deployment_with_the_settings_policy(dag):
    from commerce_sync.housekeeping.settings import load_settings

    settings = load_settings()
    order = [t.task_id for t in dag.topological_sort()]
    assert order == ["prune", "erase", "report"]
    assert dag.max_active_runs == 1 and not dag.catchup
    assert dag.timetable.expression == settings.dag.schedule == "17 2 * * *"
    for t in dag.tasks:
        assert t.retries == settings.dag.retries and t.retry_policy is not None and t.on_failure_callback
        assert t.pool == "default_pool"  # no API account: it touches the ledger only
    assert {"commerce_sync", "housekeeping"} <= set(dag.tags)


def test_the_dag_runs_through_airflow_and_reports_under_the_deployment_key(dag, pg_url, monkeypatch, airflow_db):
    from commerce_sync.ledger import Ledger

    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", pg_url)
    ledger = Ledger.from_url(pg_url)
    try:
        old = datetime.now(timezone.utc) - timedelta(days=45)
        ledger.log_payload({"system": "cin7_core", "method": "GET", "url": "https://x/old", "status": 200, "logged_at": old})
        ledger.log_payload({"system": "cin7_core", "method": "GET", "url": "https://x/new", "status": 200})
        run = dag.test(logical_date=datetime.now(timezone.utc))
        assert run.state == "success"
        assert [p["url"] for p in ledger.payloads()] == ["https://x/new"]
        (report,) = ledger.runs("commerce_sync", "housekeeping")
        assert report["run_id"] == run.run_id and report["finished_at"] is not None
        assert report["details"]["prune"]["deleted"]["payload_log"] == 1
        assert {e["table"] for e in report["details"]["sizes"]} >= {"payload_log", "order_link"}
    finally:
        ledger.dispose()


def test_a_failed_housekeeping_task_e_mails_the_settings_recipients(dag, mailbox, monkeypatch):
    for k, v in airflow_settings.env(overrides={"smtp_default": {"host": "127.0.0.1", "port": mailbox.port}}).items():
        monkeypatch.setenv(k, v)
    callback = dag.get_task("prune").on_failure_callback
    callback = callback[0] if isinstance(callback, list) else callback
    callback({"exception": TimeoutError("ledger unreachable"), "run_id": "scheduled__2026-11-30T02:17:00+00:00"})
    (message,) = mailbox.messages
    assert message["To"] == "ops@example.com"
    assert "commerce_sync housekeeping failed" in message["Subject"]
