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


@dataclass
class Databases:
    """The ledger's and Airflow's metadata databases of one cluster, in the test PostgreSQL."""

    admin: object
    ledger: str
    meta: str

    def url(self, name: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    @property
    def ledger_url(self) -> str:
        return self.url(self.ledger)

    @property
    def meta_url(self) -> str:
        return self.url(self.meta)

    @classmethod
    def create(cls) -> "Databases":
        from sqlalchemy import text

        admin = _require_pg()
        db = f"cs_cluster_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
            conn.execute(text(f'CREATE DATABASE "{db}_airflow"'))
        return cls(admin, db, f"{db}_airflow")

    def drop(self) -> None:
        from sqlalchemy import text

        from commerce_sync.ledger.db import dispose

        dispose(self.ledger_url)
        with self.admin.connect() as conn:
            for name in (self.ledger, self.meta):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def airflow_env(tmp: Path, port: int, dbs: Databases, pairings: Path, connections: dict[str, dict], **settings: str) -> dict[str, str]:
    """What every Airflow component of a test cluster is started with: this project's DAGs and
    plugins, the metadata in PostgreSQL (as in production: on SQLite a CLI command meets "database
    is locked" while the scheduler writes, on a busy 2-core machine), connections as AIRFLOW_CONN_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(airflow_settings.env(overrides=connections))
    env.update(
        {
            "PATH": f"{BIN}:{env.get('PATH', '')}",
            "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
            "AIRFLOW_HOME": str(tmp / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dbs.meta_url,
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
            "COMMERCE_SYNC_LEDGER_URL": dbs.ledger_url,
            "COMMERCE_SYNC_PAIRINGS_DIR": str(pairings),
            # a copy: the ops console's mapping apply (test_console_browser.py) writes the pairing's file
            "COMMERCE_SYNC_MAPPINGS_DIR": str(shutil.copytree(ROOT / "include" / "mappings", tmp / "mappings", dirs_exist_ok=True)),
            "COMMERCE_SYNC_UI_URL": f"http://127.0.0.1:{port}",
            **settings,
        }
    )
    return env


class Processes:
    """Airflow components of one test cluster, each in its own process group, logging to tmp."""

    def __init__(self, env: dict[str, str], tmp: Path):
        self.env, self.tmp, self.procs = env, tmp, {}
        self._logs = []

    def prepare(self) -> None:
        subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=300)
        # pools as the project applies them: a task naming a pool that does not exist never runs
        subprocess.run([sys.executable, "-m", "commerce_sync.airflow_settings", "apply", "--pools-only"], env=self.env, check=True, capture_output=True, timeout=300)

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")
        self._logs.append(log)
        proc = subprocess.Popen([str(BIN / "airflow"), *args], env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        """The component and everything it started (a Celery worker's pool processes, say)."""
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def wait_ready(self, cl: "Cluster", timeout: float = 240) -> None:
        def healthy():
            try:
                return urllib.request.urlopen(f"{cl.ui}/api/v2/monitor/health", timeout=2).status == 200
            except OSError:
                dead = [n for n, p in self.procs.items() if p.poll() is not None]
                return dead and pytest.fail(f"{', '.join(dead)} exited; see {self.tmp}/*.log")

        cl.wait("the Airflow API server", healthy, timeout=timeout)
        cl.wait("the DAGs to be parsed", lambda: cl.api("GET", "/api/v2/dags/cin7_marketplacer__orders_in").status_code == 200, timeout=timeout, every=1)

    def stop(self, sig=signal.SIGTERM) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for log in self._logs:
            log.close()


def seeded_sandbox(*marketplacer_keys: str):
    """Cin7 (seeded with the demo products) and one Marketplacer emulator per API key."""
    from sandbox import cin7, marketplacer
    from sandbox.server import start_server

    c7 = start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=6000))
    requests.post(f"{c7.url}/_sandbox/seed", json={"products": CIN7_PRODUCTS, "locations": ["Main Warehouse"], "tax_rules": ["GST on Income"],
                                                    "customers": ["Marketplacer", "Castore AU (Marketplacer)", "Lounge (Marketplacer)"]}, timeout=10)
    return c7, [start_server(marketplacer.create_app(api_key=key)) for key in marketplacer_keys]


@pytest.fixture(scope="package")
def cluster():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    dbs = Databases.create()
    messages: list = []

    class Collect(Message):
        def handle_message(self, message):
            messages.append(message)

    smtp = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    c7, (mkp,) = seeded_sandbox("demo-marketplacer-key")
    tmp = Path(tempfile.mkdtemp(prefix="commerce_sync_cluster_"))
    port = free_port()
    env = airflow_env(tmp, port, dbs, _pairings(tmp), {
        "cin7_marketplacer__cin7": {"host": f"{c7.url}/ExternalApi/v2"},
        "cin7_marketplacer__marketplacer": {"host": mkp.url},
        "smtp_default": {"host": "127.0.0.1", "port": smtp.port},
    })
    procs = Processes(env, tmp)
    procs.prepare()
    procs.start("standalone", "standalone")
    cl = Cluster(env=env, home=tmp, ui=f"http://127.0.0.1:{port}", cin7=c7.url, marketplacer=mkp.url, ledger_url=dbs.ledger_url, messages=messages)
    try:
        procs.wait_ready(cl)
        yield cl
    finally:
        procs.stop()
        c7.stop()
        mkp.stop()
        smtp.stop()
        dbs.drop()
        shutil.rmtree(tmp, ignore_errors=True)


# -- the CeleryExecutor cluster ------------------------------------------------------------------
CELERY_PAIRINGS = ("cin7_marketplacer", "lounge_marketplacer")  # two brands, one Cin7 account, own marketplaces
WORKERS = ("worker-a", "worker-b")


@dataclass
class CeleryCluster(Cluster):
    marketplacers: dict = field(default_factory=dict)  # pairing -> its Marketplacer emulator's URL
    procs: object = None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        r = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        r.raise_for_status()
        return r.json()["task_instances"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]


def _free_redis_db() -> int:
    """A Redis database index nobody uses on the machine's Redis (the broker's queues live there)."""
    import redis

    for db in range(15, 0, -1):
        if redis.Redis(host="127.0.0.1", port=6379, db=db).dbsize() == 0:
            return db
    pytest.skip("no empty Redis database index for the Celery broker")


def _celery_pairings(tmp: Path) -> tuple[Path, Path]:
    """cin7_marketplacer as shipped, plus a second brand on the same systems (a copy: a pairing is
    data), each on its own Celery queue; one quick retry, so a task lost with its worker runs again."""
    folder, maps = tmp / "pairings", tmp / "mappings"
    folder.mkdir()
    shutil.copytree(ROOT / "include" / "mappings", maps)
    shutil.copytree(maps / "cin7_marketplacer", maps / "lounge_marketplacer")
    base = yaml.safe_load((ROOT / "include" / "pairings" / "cin7_marketplacer.yaml").read_text())
    for key in CELERY_PAIRINGS:
        data = json.loads(json.dumps(base))
        data["queue"] = key
        for flow in data["flows"].values():
            flow.update(retries=1, retry_delay_seconds=1)
        data["stock"]["full_resync_hour_utc"] = None  # incremental at any hour the test runs
        # Cin7's budget lifted (60 calls a minute shared by both brands would make this a test of
        # the throttle, which bench/order_burst.py measures): here, distribution and exactly-once
        data["master"]["rate_limit_per_minute"] = 6000
        if key == "cin7_marketplacer":
            data["flows"]["orders_in"]["schedule"] = "0 0 1 1 *"  # yearly: every orders_in run in the tests is a webhook's
        else:
            data["channel"]["connection"], data["master"]["connection"] = f"{key}__marketplacer", f"{key}__cin7"
            data["channel"]["reference_prefix"] = "LNG-"
            data["webhooks"] = {side: {**hook, "connection": hook["connection"].replace("cin7_marketplacer", key)} for side, hook in data["webhooks"].items()}
        (folder / f"{key}.yaml").write_text(yaml.safe_dump(data))
    return folder, maps


def celery_settings(dbs: Databases, redis_db: int) -> dict[str, str]:
    """The CeleryExecutor settings docker-compose.yaml gives every component: one broker, results
    in PostgreSQL, one Fernet key, JWT secret and API secret for all of them."""
    from cryptography.fernet import Fernet

    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + dbs.meta_url,
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",  # a worker holds no task another one could run
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.cluster.worker_name.hostname",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
    }


def start_celery(procs: Processes, port: int, queues: list[str]) -> None:
    """api-server, scheduler, dag-processor, triggerer and the two workers (each its own log-server port)."""
    procs.start("api-server", "api-server", "--port", str(port))
    for component in ("scheduler", "dag-processor", "triggerer"):
        procs.start(component, component)
    for name in WORKERS:
        procs.start(name, "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", ",".join(queues), "--concurrency", "2",
                    COMMERCE_SYNC_TEST_WORKER=name, AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))


@pytest.fixture(scope="module")
def celery_cluster():
    """api-server, scheduler, dag-processor, triggerer and two `airflow celery worker`s (Redis
    broker, PostgreSQL metadata and results), against Cin7 and two Marketplacer emulators."""
    dbs = Databases.create()
    c7, mkps = seeded_sandbox("demo-marketplacer-key", "lounge-marketplacer-key")
    tmp = Path(tempfile.mkdtemp(prefix="commerce_sync_celery_"))
    port, redis_db = free_port(), _free_redis_db()
    pairings, maps = _celery_pairings(tmp)
    lounge = {"AIRFLOW_CONN_LOUNGE_MARKETPLACER__CIN7": json.dumps({"conn_type": "http", "host": f"{c7.url}/ExternalApi/v2", "login": "demo-account", "password": "demo-key"}),
              "AIRFLOW_CONN_LOUNGE_MARKETPLACER__MARKETPLACER": json.dumps({"conn_type": "http", "host": mkps[1].url, "password": "lounge-marketplacer-key"}),
              "AIRFLOW_CONN_LOUNGE_MARKETPLACER__MARKETPLACER_WEBHOOK": json.dumps({"conn_type": "generic", "password": "lounge-hook-secret", "extra": {"scheme": "header", "header": "X-Webhook-Secret"}}),
              "AIRFLOW_CONN_LOUNGE_MARKETPLACER__CIN7_WEBHOOK": json.dumps({"conn_type": "generic", "login": "lounge", "password": "lounge-cin7-secret", "extra": {"scheme": "basic"}})}
    env = airflow_env(tmp, port, dbs, pairings, {
        "cin7_marketplacer__cin7": {"host": f"{c7.url}/ExternalApi/v2"},
        "cin7_marketplacer__marketplacer": {"host": mkps[0].url},
    }, **lounge, **celery_settings(dbs, redis_db),
        COMMERCE_SYNC_MAPPINGS_DIR=str(maps),
        COMMERCE_SYNC_DEADLINES="off",  # deadlines are the standalone cluster's subject
        # a worker that dies takes its tasks' heartbeats with it: after 20 s the scheduler fails the
        # try and the retry goes to a live worker (production keeps the 300 s default)
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="20",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="3",
    )
    procs = Processes(env, tmp)
    procs.prepare()
    start_celery(procs, port, ["default", *CELERY_PAIRINGS])
    cl = CeleryCluster(env=env, home=tmp, ui=f"http://127.0.0.1:{port}", cin7=c7.url, marketplacer=mkps[0].url, ledger_url=dbs.ledger_url,
                       marketplacers=dict(zip(CELERY_PAIRINGS, (m.url for m in mkps))), procs=procs)
    try:
        procs.wait_ready(cl)
        yield cl
    finally:
        procs.stop(signal.SIGKILL)  # a throw-away cluster: no warm shutdown to wait for
        c7.stop()
        for m in mkps:
            m.stop()
        import redis

        redis.Redis(host="127.0.0.1", port=6379, db=redis_db).flushdb()  # only the index this cluster took
        dbs.drop()
        if not os.environ.get("COMMERCE_SYNC_KEEP_CLUSTER_LOGS"):  # set it to read the components' logs after a failure
            shutil.rmtree(tmp, ignore_errors=True)
