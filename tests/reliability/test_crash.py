"""Crash tests: the worker killed (SIGKILL) in the middle of a load, and PostgreSQL restarted during
a run. The next run of the same DAG run (what Airflow does when a task's worker dies: the task
instance is retried under its run id) completes, and the fault matrix's invariants hold."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.reliability.matrix import SCENARIOS, run_flow, window
from tests.reliability.worker import kill_when

pytestmark = [pytest.mark.e2e, pytest.mark.pg, pytest.mark.reliability]
# cin7_sfcc's kill (between the booking and the export status) is in tests/e2e/test_sfcc_flows.py;
# its mid-load kill would repeat the Cin7 pairings' at 20 s
LOADS = {(s.pairing, s.flow): s for s in SCENARIOS if s.flow in ("orders_in", "dispatch_back") and s.pairing != "cin7_sfcc"}


def _slow_writes(world, target, seconds=0.7):
    """Every write the flow makes commits at once and is answered `seconds` later: a kill in
    that gap leaves a record in the target that the ledger has not heard of."""
    where = {k: target[k] for k in ("path", "operation", "method") if target.get(k)}
    world.post(target["emulator"], "/_sandbox/faults", {"hang": {**where, "seconds": seconds, "count": None}})


def _committed_unanswered(world, target) -> int:
    calls = world.get(target["emulator"], "/_sandbox/calls")["calls"]
    return sum(1 for c in calls if "hang:after_commit" in (c.get("fault") or []))


@pytest.mark.parametrize("key", list(LOADS), ids=lambda k: f"{k[0]}/{k[1]}")
def test_worker_killed_mid_load_then_the_retry_completes_exactly_once(world, key):
    scenario = LOADS[key]
    scenario.setup(world)
    target = scenario.targets["write"]
    _slow_writes(world, target)
    start, end = window(world)
    # the second write: one answered in full, one committed with its answer on the way
    kill_when(scenario.pairing, scenario.flow, "crashed-run", start, end, lambda: _committed_unanswered(world, target) >= 2, "the load's second write")
    requests.delete(f"{world.url(target['emulator'])}/_sandbox/faults", timeout=10)
    time.sleep(1)  # the answer the dead worker was waiting for goes nowhere

    assert run_flow(scenario.pairing, scenario.flow, "crashed-run", start, end) == "success"
    assert scenario.check(world) == []


# -- PostgreSQL restarted during a run ----------------------------------------------------------
class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb in /tmp), so restarting it disturbs nobody:
    the shared server at 5432 serves every other test."""

    def __init__(self):
        from tests.conftest import free_port

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        assert bins, "PostgreSQL's server binaries (pg_ctl, initdb) are needed for the restart test"
        self.bin = Path(bins[-1]).parent
        self.base = Path(tempfile.mkdtemp(prefix="cs-pg-", dir="/tmp"))
        self.data = self.base / "data"
        self.port = free_port()
        # initdb refuses root: run the server as the postgres user when the tests run as root
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_pg:
            shutil.chown(self.base, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.as_pg, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{tool} {' '.join(args)}: {done.stdout}{done.stderr}"

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.base / "server.log"), *args)

    def start(self) -> None:
        self._ctl("start", "-o", f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1")

    def crash_restart(self) -> None:
        """Stop without a clean shutdown (as a crash or an OOM kill would), then start again."""
        self._ctl("stop", "-m", "immediate")
        time.sleep(0.5)
        self.start()

    def close(self) -> None:
        try:
            self._ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def private_pg():
    pg = PrivatePostgres()
    yield pg
    pg.close()


@pytest.mark.parametrize("key", [k for k in LOADS if k[1] == "orders_in"], ids=lambda k: k[0])
def test_postgres_restarted_during_a_run_then_the_retry_completes_exactly_once(world, private_pg, monkeypatch, key):
    from commerce_sync.ledger.db import dispose

    dispose(private_pg.url)
    from sqlalchemy import create_engine, text

    admin = create_engine(private_pg.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = f"ledger_{key[0]}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = private_pg.url.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", url)
    world.ledger_url = url

    scenario = LOADS[key]
    scenario.setup(world)
    target = scenario.targets["write"]
    _slow_writes(world, target, seconds=0.5)
    start, end = window(world)
    outcome: dict[str, str] = {}
    runner = threading.Thread(target=lambda: outcome.update(first=run_flow(scenario.pairing, scenario.flow, "restarted-run", start, end)))
    runner.start()
    deadline = time.monotonic() + 120
    while _committed_unanswered(world, target) < 2:
        assert runner.is_alive(), f"the run ended before the restart: {outcome}"
        assert time.monotonic() < deadline, "the load never reached its second write"
        time.sleep(0.02)
    private_pg.crash_restart()
    runner.join(timeout=180)
    assert not runner.is_alive()
    requests.delete(f"{world.url(target['emulator'])}/_sandbox/faults", timeout=10)

    print("first run, through the restart:", outcome.get("first"))
    assert run_flow(scenario.pairing, scenario.flow, "restarted-run", start, end) == "success", outcome
    assert scenario.check(world) == []
    dispose(url)
