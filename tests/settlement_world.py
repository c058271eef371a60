"""What the settlement tests share: the test-only D2C pairing (tests/pairings/cin7_d2c_settlement.yaml)
pointed at a drop folder of the test's own, the Cin7 emulator over HTTP, the ledger in a fresh
PostgreSQL database and a real SMTP server (`mailbox`, from tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml

from commerce_sync import airflow_settings
from sandbox.settlement_builders import REFUND_SKU, SKU, Month

ROOT = Path(__file__).resolve().parents[1]
PAIRING = "cin7_d2c_settlement"
FLOW = "settlement_reconciliation"


@dataclass
class SettlementWorld:
    cin7: str
    drop: Path
    ledger_url: str
    mailbox: object
    pairings: Path

    def configure(self, **settlement) -> None:
        """Change the test pairing's `settlement:` section (another format, another folder...)."""
        path = self.pairings / f"{PAIRING}.yaml"
        data = yaml.safe_load(path.read_text())
        data["settlement"].update(settlement)
        path.write_text(yaml.safe_dump(data))

    def seed(self, month: Month) -> None:
        requests.post(f"{self.cin7}/_sandbox/sales", json={"sales": month.sales}, timeout=120).raise_for_status()

    def drop_files(self, month: Month) -> None:
        for name, data in month.files.items():
            (self.drop / name).write_bytes(data)

    def journals(self) -> list[dict]:
        return requests.get(f"{self.cin7}/_sandbox/journals", timeout=30).json()["journals"]

    def sales(self) -> list[dict]:
        return requests.get(f"{self.cin7}/_sandbox/sales", timeout=60).json()["sales"]

    def calls(self) -> list[dict]:
        return requests.get(f"{self.cin7}/_sandbox/calls", timeout=30).json()["calls"]

    def faults(self, body: dict | None) -> None:
        if body is None:
            requests.delete(f"{self.cin7}/_sandbox/faults", timeout=10).raise_for_status()
        else:
            requests.post(f"{self.cin7}/_sandbox/faults", json=body, timeout=10).raise_for_status()

    def ledger(self):
        from commerce_sync.ledger import Ledger

        return Ledger.from_url(self.ledger_url)

    def outcomes(self) -> dict[tuple[str, int], tuple[str, str | None]]:
        """(file, line) -> (status, reason) for every settlement row in the ledger."""
        ledger = self.ledger()
        names = {f["id"]: f["name"] for f in ledger.settlement_files(PAIRING)}
        return {(names[r["file_id"]], r["line_no"]): (r["status"], r["reason"]) for r in ledger.settlement_lines(PAIRING)}


def window() -> tuple[datetime, datetime]:
    end = datetime.now(timezone.utc).replace(microsecond=0)
    return end - timedelta(days=1), end


@pytest.fixture
def settlement_world(tmp_path, pg_url, mailbox, monkeypatch, airflow_db):
    from sandbox import cin7
    from sandbox.server import start_server

    from commerce_sync.http import RateLimiter

    server = start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=100_000))
    try:
        requests.post(f"{server.url}/_sandbox/seed", json={"products": [{"SKU": SKU, "Name": "Web item"}, {"SKU": REFUND_SKU, "Name": "Refund by the payment provider"}]},
                      timeout=10).raise_for_status()
        drop = tmp_path / "drop"
        drop.mkdir()
        pairings = tmp_path / "pairings"
        pairings.mkdir()
        data = yaml.safe_load((ROOT / "tests" / "pairings" / f"{PAIRING}.yaml").read_text())
        data["settlement"]["location"] = str(drop)
        (pairings / f"{PAIRING}.yaml").write_text(yaml.safe_dump(data))
        monkeypatch.setenv("COMMERCE_SYNC_PAIRINGS_DIR", str(pairings))
        monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", pg_url)
        conn = {"conn_type": "http", "host": f"{server.url}/ExternalApi/v2", "login": "demo-account", "password": "demo-key"}
        monkeypatch.setenv(f"AIRFLOW_CONN_{PAIRING.upper()}__CIN7", json.dumps(conn))
        smtp = airflow_settings.env(overrides={"smtp_default": {"host": "127.0.0.1", "port": mailbox.port}})["AIRFLOW_CONN_SMTP_DEFAULT"]
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp)
        RateLimiter._shared.clear()
        yield SettlementWorld(cin7=server.url, drop=drop, ledger_url=pg_url, mailbox=mailbox, pairings=pairings)
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "drop", ignore_errors=True)


def run_dag(start: datetime, end: datetime, n: int):
    """The pairing's settlement DAG through Airflow itself (dag.test), for the window [start, end)."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag(f"{PAIRING}__{FLOW}")
    return dag.test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat()}, logical_date=end + timedelta(seconds=n))
