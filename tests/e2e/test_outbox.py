"""An alert that cannot be sent never undoes nor repeats the work: it waits in the ledger's outbox
and is delivered, once, when the SMTP server answers again (real aiosmtpd, stopped and started;
ledger in PostgreSQL)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from commerce_sync.ledger import Ledger
from commerce_sync.ledger.schema import outbox
from tests.e2e.jl_helpers import PAIRING, run

pytestmark = [pytest.mark.e2e, pytest.mark.pg]


def _health(capsys) -> dict:
    from commerce_sync.cli import main

    capsys.readouterr()
    assert main(["health", "--pairing", PAIRING, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["outbox"]


@pytest.mark.airflow
def test_smtp_down_the_run_succeeds_nothing_is_loaded_twice_and_the_alert_arrives_once_after(john_lewis, pg_url, capsys):
    from sandbox.mirakl import make_order

    jl = john_lewis
    now = datetime.now(timezone.utc).replace(microsecond=0)
    placed = now - timedelta(minutes=20)
    jl.post("/_sandbox/orders", [
        make_order("JL9001-A", "JL9001", [{"offer_sku": "JL-TEE-BLK-M", "quantity": 1, "price_unit": "45.00", "tax": "7.50"}], state="SHIPPING", created=placed),
        # unmapped: held, and ops must hear of it before John Lewis's deadline
        make_order("JL9002-A", "JL9002", [{"offer_sku": "JL-SOCK-WHT", "quantity": 1, "price_unit": "9.00"}], state="WAITING_ACCEPTANCE", created=placed),
    ])
    jl.mailbox.stop()  # the SMTP server is down for the whole first run

    assert run("orders_in", now - timedelta(hours=1), now + timedelta(minutes=1), 1).state == "success"
    assert [s["ExternalID"] for s in jl.sales()] == ["JL9001"]
    ledger = Ledger.from_url(pg_url)
    (queued,) = ledger.emails()
    assert queued["status"] == "queued" and "to accept by hand or map" in queued["subject"] and "Connection" in queued["last_error"]
    box = _health(capsys)
    assert box["undelivered"] == 1 and box["oldest_undelivered_minutes"] == 0 and "Connection" in box["last_error"]
    report = ledger.runs(PAIRING, "orders_in", limit=1)[0]["details"]
    assert report["outbox"]["undelivered"] == 1

    jl.mailbox.start()
    assert run("orders_in", now - timedelta(hours=1), now + timedelta(minutes=1), 2).state == "success"
    (mail,) = jl.mailbox.messages
    assert "to accept by hand or map" in mail["Subject"] and mail["To"] == "ops@example.com"
    assert [s["ExternalID"] for s in jl.sales()] == ["JL9001"]  # nothing re-loaded
    assert [e["status"] for e in ledger.emails()] == ["sent"] and _health(capsys)["undelivered"] == 0

    assert run("orders_in", now - timedelta(hours=1), now + timedelta(minutes=1), 3).state == "success"
    assert len(jl.mailbox.messages) == 1 and [s["ExternalID"] for s in jl.sales()] == ["JL9001"]
    ledger.dispose()


@pytest.fixture
def smtp_env(mailbox, pg_url, monkeypatch, airflow_db):
    from commerce_sync import airflow_settings

    for k, v in airflow_settings.env(overrides={"smtp_default": {"host": "127.0.0.1", "port": mailbox.port}}).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", pg_url)
    return mailbox


def test_runs_delivering_at_once_send_each_queued_alert_exactly_once(smtp_env, pg_url, capsys):
    from commerce_sync.alerts import deliver_outbox, send_email
    from commerce_sync.cli import main

    smtp_env.stop()
    for i in range(6):
        send_email(["ops@example.com"], f"alert {i}", f"<p>{i}</p>", {"report.csv": f"n\n{i}\n"} if i == 0 else None)
    ledger = Ledger.from_url(pg_url)
    assert [e["status"] for e in ledger.emails()] == ["queued"] * 6
    capsys.readouterr()
    assert main(["health", "--pairing", PAIRING]) == 0
    assert "! 6 alert e-mail(s) not delivered, the oldest for 0 minutes ('alert 0'); last error: ConnectionRefusedError" in capsys.readouterr().out
    smtp_env.start()

    start = threading.Barrier(4)
    results = []

    def deliver():
        start.wait()
        results.append(deliver_outbox(Ledger.from_url(pg_url)))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(m["Subject"] for m in smtp_env.messages) == [f"alert {i}" for i in range(6)]  # each once, none twice
    assert sum(r["delivered"] for r in results) == 6
    assert {e["status"] for e in ledger.emails()} == {"sent"}
    first = smtp_env.messages[[m["Subject"] for m in smtp_env.messages].index("alert 0")]
    assert any(part.get_filename() == "report.csv" for part in first.walk())  # attachments kept through the queue
    ledger.dispose()


def test_an_alert_undelivered_for_an_hour_is_an_error_in_the_runs_log_and_a_failure_alert_is_never_lost(smtp_env, pg_url, caplog):
    from commerce_sync.alerts import deliver_outbox, task_failed

    smtp_env.stop()
    ti = type("TI", (), {"dag_id": f"{PAIRING}__orders_in", "task_id": "load", "try_number": 4})()
    task_failed(PAIRING, "orders_in", {"ti": ti, "run_id": "manual__1", "exception": RuntimeError("Cin7 said no")})  # must not raise
    ledger = Ledger.from_url(pg_url)
    (queued,) = ledger.emails()
    assert queued["status"] == "queued" and "orders_in failed" in queued["subject"]

    with caplog.at_level(logging.WARNING, logger="commerce_sync.alerts"):
        deliver_outbox(ledger)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # minutes old: a warning, not yet an error
    with ledger.engine.begin() as conn:
        conn.execute(update(outbox).values(created_at=datetime.now(timezone.utc) - timedelta(minutes=61)))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="commerce_sync.alerts"):
        state = deliver_outbox(ledger)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert state["undelivered"] == 1 and state["oldest_undelivered_minutes"] >= 61
    assert len(errors) == 1 and "undelivered, the oldest for 61 minutes" in errors[0]

    smtp_env.start()
    assert deliver_outbox(ledger)["delivered"] == 1
    (mail,) = smtp_env.messages
    assert "orders_in failed: RuntimeError" in mail["Subject"]
    ledger.dispose()
