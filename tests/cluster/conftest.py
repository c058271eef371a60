"""A real Airflow (`airflow standalone`: api-server, scheduler, dag-processor, triggerer) against
the emulators, the ledger in its own PostgreSQL database and a real SMTP server. Deadlines and
backfills only happen with a scheduler and a triggerer, so these tests need all of it.

One cluster for the package (the scheduler tests and the console's browser test share it):
starting Airflow takes ~20-40 s on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from commerce_sync import airflow_settings
from tests.conftest import PG_ADMIN_URL, ROOT, _require_pg, free_port
from tests.e2e.conftest import CIN7_PRODUCTS

BIN = Path(sys.executable).parent


@dataclass
class Cluster:
    env: dict[str, str]
    home: Path
    ui: str
    cin7: str
    marketplacer: str
    ledger_url: str
    messages: list = field(default_factory=list)

    def airflow(self, *args: str, check: bool = True) -> str:
        out = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            errors = [line for line in out.stderr.splitlines() if "Error" in line or "error" in line]
            raise AssertionError(f"airflow {' '.join(args)} failed: {errors[-5:]} {out.stderr[-600:]}")
        return out.stdout

    def runs(self, dag_id: str) -> list[dict]:
        text = self.airflow("dags", "list-runs", dag_id, "-o", "json", check=False)
        # log lines may come first; the JSON document is the line that starts with '[' and parses
        for line in text.splitlines():
            if line.startswith("["):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        return []

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """The REST API as the UI calls it: a JWT from the login, Bearer on every call."""
        if not getattr(self, "_token", None):
            password = json.loads((self.home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
            r = requests.post(f"{self.ui}/auth/token", json={"username": "admin", "password": password}, timeout=120)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return requests.request(method, f"{self.ui}{path}", headers={"Authorization": f"Bearer {self._token}"}, timeout=120, **kwargs)

    def wait(self, what, predicate, timeout: float = 180, every: float = 2.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _pairings(tmp: Path) -> Path:
    """The shipped pairing, made quick to observe: a 5-second payout deadline, one quick retry.
    orders_in keeps its shipped deadline: Clear and backfills must work with it on."""
    folder = tmp / "pairings"
    shutil.copytree(ROOT / "include" / "pairings", folder)
    path = folder / "cin7_marketplacer.yaml"
    data = yaml.safe_load(path.read_text())
    for flow in data["flows"].values():
        flow["retries"] = 0
    data["flows"]["orders_in"].update(retries=1, retry_delay_seconds=1)  # one quick retry before the failure alert
    data["flows"]["payout_reconciliation"]["deadline_minutes"] = 5 / 60
    path.write_text(yaml.safe_dump(data))
    return folder


@pytest.fixture(scope="package")
def cluster():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message
    from sqlalchemy import text

    from sandbox import cin7, marketplacer
    from sandbox.server import start_server

    admin = _require_pg()
    db = f"cs_cluster_{uuid.uuid4().hex[:10]}"
    meta_db = f"{db}_airflow"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
        conn.execute(text(f'CREATE DATABASE "{meta_db}"'))
    from sqlalchemy.engine import make_url

    ledger_url = make_url(PG_ADMIN_URL).set(database=db).render_as_string(hide_password=False)
    # Airflow's metadata in PostgreSQL too, as in production: on SQLite a CLI command (a backfill)
    # meets "database is locked" while the scheduler writes, on a busy 2-core machine
    meta_url = make_url(PG_ADMIN_URL).set(database=meta_db).render_as_string(hide_password=False)

    messages: list = []

    class Collect(Message):
        def handle_message(self, message):
            messages.append(message)

    smtp = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    c7 = start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=6000))
    mkp = start_server(marketplacer.create_app(api_key="demo-marketplacer-key"))
    requests.post(f"{c7.url}/_sandbox/seed", json={"products": CIN7_PRODUCTS, "locations": ["Main Warehouse"], "tax_rules": ["GST on Income"],
                                                    "customers": ["Marketplacer", "Castore AU (Marketplacer)", "Lounge (Marketplacer)"]}, timeout=10)

    tmp = Path(tempfile.mkdtemp(prefix="commerce_sync_cluster_"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        airflow_settings.env(
            overrides={
                "cin7_marketplacer__cin7": {"host": f"{c7.url}/ExternalApi/v2"},
                "cin7_marketplacer__marketplacer": {"host": mkp.url},
                "smtp_default": {"host": "127.0.0.1", "port": smtp.port},
            }
        )
    )
    env.update(
        {
            "PATH": f"{BIN}:{env.get('PATH', '')}",
            "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
            "AIRFLOW_HOME": str(tmp / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "COMMERCE_SYNC_DEADLINES": "on",
            "COMMERCE_SYNC_HOME": str(ROOT),
            "COMMERCE_SYNC_LEDGER_URL": ledger_url,
            "COMMERCE_SYNC_PAIRINGS_DIR": str(_pairings(tmp)),
            # a copy: the ops console's mapping apply (test_console_browser.py) writes the pairing's file
            "COMMERCE_SYNC_MAPPINGS_DIR": str(shutil.copytree(ROOT / "include" / "mappings", tmp / "mappings")),
            "COMMERCE_SYNC_UI_URL": f"http://127.0.0.1:{port}",
        }
    )
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    # pools as the project applies them: a task naming a pool that does not exist never runs
    subprocess.run([sys.executable, "-m", "commerce_sync.airflow_settings", "apply", "--pools-only"], env=env, check=True, capture_output=True, timeout=300)
    log = open(tmp / "standalone.log", "w")
    proc = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cl = Cluster(env=env, home=tmp, ui=f"http://127.0.0.1:{port}", cin7=c7.url, marketplacer=mkp.url, ledger_url=ledger_url, messages=messages)
    try:
        def healthy():
            try:
                return urllib.request.urlopen(f"{cl.ui}/api/v2/monitor/health", timeout=2).status == 200
            except OSError:
                return proc.poll() is not None and pytest.fail(f"airflow standalone exited; see {tmp / 'standalone.log'}")

        cl.wait("the Airflow API server", healthy, timeout=240)
        cl.wait("the DAGs to be parsed", lambda: "cin7_marketplacer__orders_in" in cl.airflow("dags", "list", "-o", "plain", check=False), timeout=240)
        yield cl
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        c7.stop()
        mkp.stop()
        smtp.stop()
        from commerce_sync.ledger.db import dispose

        dispose(ledger_url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{meta_db}" WITH (FORCE)'))
        shutil.rmtree(tmp, ignore_errors=True)
