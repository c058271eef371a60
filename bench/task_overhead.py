"""The fixed cost of a run, per task: where a flow's run on `airflow standalone` goes.

    .venv/bin/python bench/task_overhead.py --imports-only          # 1. only (about 30 s)
    .venv/bin/python bench/task_overhead.py --executor standalone   # 1. and 2. (about 3 min)
    .venv/bin/python bench/task_overhead.py --executor celery
    .venv/bin/python bench/task_overhead.py --executor standalone --orders 1 [--preload off]
    .venv/bin/python bench/task_overhead.py --runs-only --flow orders_in stock_out dispatch_back

1. Imports: what a task would pay before its code runs were it a fresh interpreter (it is not:
   Airflow forks it from a process that has Airflow loaded, see README), each in a fresh
   interpreter (median of 3): the Task SDK, the DAG file (a task process parses its DAG file:
   here every pairing's DAGs), Great Expectations (the gate task), the ledger.
2. Runs: a cin7_marketplacer flow (--flow, orders_in unless told; several flows are measured one
   after the other in the same Airflow) triggered --runs times, one after the other, over
   emulators with nothing new (an empty window: only fixed cost; stock_out's warm-up run reads
   all the seeded stock, as a first run does, its counted runs only what Cin7 says changed:
   nothing; drift_monitor compares what there is), on the named executor with the settings
   bench/webhook_latency.py used; per task from Airflow's metadata (REST API): when it was
   queued (seconds after the run started; extract and accept run side by side), queued to
   started (the executor picking it up) and running (start to end, in the task process:
   imports, DAG parse, the work), medians over the runs; and the run end to end.
   --orders N (orders_in only) places N new orders before each run, so the gate validates a
   batch with rows (an empty batch passes without GX); --preload off starts Airflow without GX preloaded in the
   process that forks the tasks (commerce_sync/preload.py), to compare.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from harness import ROOT, table

PAIRING = "cin7_marketplacer"
# every flow the shipped pairing runs: each is a DAG <pairing>__<flow>
FLOWS = tuple(yaml.safe_load((ROOT / "include" / "pairings" / f"{PAIRING}.yaml").read_text())["flows"])

IMPORTS = {
    "Task SDK (airflow.sdk)": "import airflow.sdk",
    "task runner (airflow.sdk.execution_time.task_runner)": "import airflow.sdk.execution_time.task_runner",
    "DAG file: every pairing's DAGs": "import runpy; runpy.run_path('dags/commerce_sync_dags.py')",
    "Great Expectations (gate task)": "import great_expectations, great_expectations.expectations",
    "gate engine (commerce_sync.gates.engine; GX is imported on a batch with rows)": "import commerce_sync.gates.engine",
    "ledger (commerce_sync.ledger)": "import commerce_sync.ledger",
}


def import_times() -> list[list[str]]:
    rows = []
    env_path = f"{ROOT / 'plugins'}:{ROOT}"
    for name, code in IMPORTS.items():
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, env={**_env(), "PYTHONPATH": env_path})
            runs.append(time.perf_counter() - t)
        rows.append([name, f"{statistics.median(runs):.2f}"])
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    rows.append(["bare interpreter", f"{time.perf_counter() - t:.2f}"])
    return rows


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def _t(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def run_times(executor: str, runs: int, orders: int = 0, preload: str = "on",
              flows: tuple[str, ...] = ("orders_in",)) -> dict[str, tuple[list[list[str]], list[float], int]]:
    """Per flow: (rows of task, queued at, queued to started, running; the runs' end-to-end
    seconds; how many of the counted runs failed)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    from tests.cluster.conftest import Cluster, Databases, Processes, _free_redis_db, _pairings, airflow_env, celery_settings, seeded_sandbox, start_celery
    from tests.conftest import free_port

    dbs = Databases.create()
    c7, (mkp,) = seeded_sandbox("demo-marketplacer-key")
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())  # a flow that mails (a report, an alert) finds a server
    smtp.start()
    tmp = Path(tempfile.mkdtemp(prefix="commerce_sync_bench_overhead_"))
    port = free_port()
    settings = {"COMMERCE_SYNC_DEADLINES": "off", "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2", "COMMERCE_SYNC_PRELOAD_GX": preload}
    redis_db = None
    if executor == "celery":
        redis_db = _free_redis_db()
        settings.update(celery_settings(dbs, redis_db))
    env = airflow_env(tmp, port, dbs, _pairings(tmp), {"cin7_marketplacer__cin7": {"host": f"{c7.url}/ExternalApi/v2"},
                                                      "cin7_marketplacer__marketplacer": {"host": mkp.url},
                                                      "smtp_default": {"host": "127.0.0.1", "port": smtp.port}}, **settings)
    procs = Processes(env, tmp)
    procs.prepare()
    if executor == "celery":
        start_celery(procs, port, ["default"])
    else:
        procs.start("standalone", "standalone")
    cl = Cluster(env=env, home=tmp, ui=f"http://127.0.0.1:{port}", cin7=c7.url, marketplacer=mkp.url, ledger_url=dbs.ledger_url)
    results = {}
    try:
        procs.wait_ready(cl)
        for flow in flows:
            results[flow] = _measure(cl, f"{PAIRING}__{flow}", runs, mkp.url if orders else None, orders)
    finally:
        procs.stop()
        c7.stop()
        mkp.stop()
        smtp.stop()
        if redis_db is not None:
            import redis

            redis.Redis(host="127.0.0.1", port=6379, db=redis_db).flushdb()
        dbs.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def _measure(cl, dag: str, runs: int, mkp: str | None, orders: int) -> tuple[list[list[str]], list[float], int]:
    """One flow's DAG triggered runs + 1 times (the first a warm-up), one run after the other."""
    per_task: dict[str, dict[str, list[float]]] = {}
    totals = []
    cl.wait(f"{dag} to be parsed", lambda: cl.api("GET", f"/api/v2/dags/{dag}").status_code == 200, timeout=120, every=1)
    cl.api("PATCH", f"/api/v2/dags/{dag}", json={"is_paused": False}).raise_for_status()
    failed = 0
    for n in range(runs + 1):  # the first run warms up (the DAG's first parse by a task); not counted
        run_id = f"bench_{n}_{int(time.time())}"
        if mkp:
            _place(mkp, range(1000 * (n + 1), 1000 * (n + 1) + orders))
        cl.api("POST", f"/api/v2/dags/{dag}/dagRuns", json={"dag_run_id": run_id, "logical_date": None}).raise_for_status()
        run = cl.wait(f"run {run_id}", lambda: (r := cl.api("GET", f"/api/v2/dags/{dag}/dagRuns/{run_id}").json()).get("state") in ("success", "failed") and r,
                      timeout=300, every=1)
        if n == 0:
            print(f"{dag} warm-up run: {run['state']}", flush=True)
            continue
        tis = cl.api("GET", f"/api/v2/dags/{dag}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        tis.sort(key=lambda ti: ti["start_date"] or "")
        begun = _t(run["start_date"])
        for ti in tis:
            queued, start, end = _t(ti.get("queued_when")), _t(ti["start_date"]), _t(ti["end_date"])
            if not (queued and start and end):
                continue
            row = per_task.setdefault(ti["task_id"], {"wait": [], "queued": [], "run": []})
            row["wait"].append((queued - begun).total_seconds())
            row["queued"].append((start - queued).total_seconds())
            row["run"].append((end - start).total_seconds())
        totals.append((_t(run["end_date"]) - _t(run["start_date"])).total_seconds())
        failed += run["state"] != "success"
        print(f"{dag} run {n}: {run['state']} in {totals[-1]:.1f} s", flush=True)
    # paused again: its cron must not run beside the next flow's measured runs
    cl.api("PATCH", f"/api/v2/dags/{dag}", json={"is_paused": True}).raise_for_status()
    rows = [[task, *(f"{statistics.median(v[k]):.1f}" for k in ("wait", "queued", "run"))] for task, v in per_task.items()]
    return rows, totals, failed


def _place(mkp: str, ids) -> None:
    """New Marketplacer orders of mapped SKUs: the run's gate has rows to validate."""
    import requests

    from tests.builders import marketplacer_invoice

    invoices = [marketplacer_invoice(i, [("CS-TEE-BLK-M", 1, 4500)], created_at=datetime.now(timezone.utc)) for i in ids]
    requests.post(f"{mkp}/_sandbox/invoices", json={"invoices": invoices}, timeout=30).raise_for_status()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--executor", choices=["standalone", "celery"], default="standalone")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--imports-only", action="store_true")
    ap.add_argument("--runs-only", action="store_true", help="skip the imports table")
    ap.add_argument("--flow", nargs="+", choices=FLOWS, default=["orders_in"],
                    help=f"the {PAIRING} flow(s) to run, one after the other in the same Airflow")
    ap.add_argument("--orders", type=int, default=0, help="orders_in only: new orders placed before each run (0: an empty window)")
    ap.add_argument("--preload", choices=["on", "off"], default="on", help="GX preloaded in the process that forks the tasks")
    args = ap.parse_args()
    if args.orders and args.flow != ["orders_in"]:
        ap.error("--orders places Marketplacer orders: it goes with --flow orders_in only")
    if not args.runs_only:
        print("Imports in a fresh interpreter, seconds (median of 3)")
        print(table(import_times(), ["what", "s"]))
    if args.imports_only:
        return
    results = run_times(args.executor, args.runs, args.orders, args.preload, tuple(args.flow))
    what = f"{args.orders} new order(s) a run" if args.orders else "an empty window"
    summary = []
    for flow, (rows, totals, failed) in results.items():
        print(f"\n{flow} over {what} on {args.executor} (GX preload {args.preload}), median of {len(totals)} runs, seconds")
        print(table(rows, ["task", "queued at (since run start)", "queued to started", "running"]))
        print(f"run end to end: median {statistics.median(totals):.1f} s ({', '.join(f'{t:.1f}' for t in totals)})"
              + (f"; {failed} of the runs FAILED (see the task logs)" if failed else ""))
        summary.append([flow, " / ".join(f"{r[0]} {r[3]}" for r in rows), f"{sum(float(r[3]) for r in rows):.1f}",
                        f"{statistics.median(totals):.1f} ({min(totals):.1f}-{max(totals):.1f})" + (f", {failed} failed" if failed else "")])
    if len(results) > 1:
        print("\nPer flow: each task's median running s, their sum, the run end to end (median, range)")
        print(table(summary, ["flow", "tasks, running s", "sum", "run end to end s"]))


if __name__ == "__main__":
    main()
