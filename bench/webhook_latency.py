"""Order-to-ERP latency: webhook-driven vs polling, through a real Airflow.

    .venv/bin/python bench/webhook_latency.py [--executor standalone|celery] [--orders 24] [--every 5] [--burst 50] [--poll-cron "* * * * *"]
        [--designs webhook,polling] [--preload on|off]

Starts Airflow (`airflow standalone`, or the CeleryExecutor cluster of tests/cluster: api-server,
scheduler, dag-processor, triggerer, two workers) with two copies of cin7_marketplacer, each with
its own Marketplacer and Cin7 emulators (Cin7 at its real limit, 60 calls a minute) and its own
pool:
- `hook_marketplacer`: orders_in woken by its webhooks (its cron set to yearly: nothing else wakes it);
- `poll_marketplacer`: orders_in on a cron only (--poll-cron; the shipped pairing polls every 5 min).
Two loads per design: a steady rate (--orders orders, one every --every seconds, each with its
webhook) and a burst (--burst orders and webhooks at once). An order's latency is from its
placing (injection into the channel, webhook posted at once) to its sale first seen in Cin7
(the emulator polled every 0.25 s). Printed: p50, p95, max per design and load, beside the floor
Cin7's rate limit sets (2 calls per order at 60 a minute, the batch's first lookup aside);
for each design's steady phase, each order's latency and where its runs' time went (Airflow's
own timestamps from the metadata DB: event to run, task by task).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402
import yaml  # noqa: E402

from harness import table  # noqa: E402

PAIRINGS = {"hook_marketplacer": "HK-", "poll_marketplacer": "PL-"}
SECRET = "bench-hook-secret"
CIN7_LIMIT = 60  # calls a minute: Cin7 Core's real limit


def _pairings(tmp: Path, poll_cron: str) -> tuple[Path, Path]:
    from tests.conftest import ROOT

    folder, maps = tmp / "pairings", tmp / "mappings"
    folder.mkdir()
    shutil.copytree(ROOT / "include" / "mappings", maps)
    base = yaml.safe_load((ROOT / "include" / "pairings" / "cin7_marketplacer.yaml").read_text())
    for key, prefix in PAIRINGS.items():
        shutil.copytree(maps / "cin7_marketplacer", maps / key)
        data = json.loads(json.dumps(base))
        data["channel"].update(connection=f"{key}__marketplacer", reference_prefix=prefix)
        data["master"].update(connection=f"{key}__cin7", pool=f"bench_{key}_cin7")
        data["flows"] = {"orders_in": {**data["flows"]["orders_in"], "schedule": "0 0 1 1 *" if key.startswith("hook") else poll_cron}}
        data["webhooks"] = {"channel": {"connection": f"{key}__marketplacer_webhook", "wakes": ["orders_in"]}} if key.startswith("hook") else {}
        (folder / f"{key}.yaml").write_text(yaml.safe_dump(data))
    return folder, maps


class Watch:
    """First time each sale is seen in a Cin7 emulator."""

    def __init__(self, url: str):
        self.url, self.seen, self._stop = url, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            now = time.time()
            try:
                for s in requests.get(f"{self.url}/_sandbox/sales", timeout=10).json()["sales"]:
                    self.seen.setdefault(s["ExternalID"], now)
            except requests.RequestException:
                pass
            self._stop.wait(0.25)

    def stop(self):
        self._stop.set()


def place(ui: str, mkp: str, key: str, ids: list[int], hook: bool) -> dict[int, float]:
    from commerce_sync.webhooks import URL_PREFIX
    from tests.builders import marketplacer_invoice

    placed = {}
    invoices = [marketplacer_invoice(i, [("CS-TEE-BLK-M", 1, 4500)], created_at=datetime.now(timezone.utc)) for i in ids]
    requests.post(f"{mkp}/_sandbox/invoices", json={"invoices": invoices}, timeout=30).raise_for_status()
    for i in ids:
        placed[i] = time.time()

    def post(_):
        r = requests.post(f"{ui}{URL_PREFIX}/{key}/marketplacer", data=b"{}", headers={"X-Webhook-Secret": SECRET}, timeout=60)
        assert r.status_code == 202, r.text

    if hook:
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(post, ids))
    return placed


def latencies(watch: Watch, prefix: str, placed: dict[int, float], timeout: float) -> list[float]:
    end = time.time() + timeout
    while time.time() < end and not all(f"{prefix}{i}" in watch.seen for i in placed):
        time.sleep(0.5)
    missing = [i for i in placed if f"{prefix}{i}" not in watch.seen]
    if missing:
        raise SystemExit(f"{len(missing)} orders not booked within {timeout:.0f} s")
    return [watch.seen[f"{prefix}{i}"] - placed[i] for i in placed]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--executor", choices=["standalone", "celery"], default="standalone")
    ap.add_argument("--orders", type=int, default=24)
    ap.add_argument("--every", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--poll-cron", default="* * * * *")
    ap.add_argument("--designs", default="webhook,polling", help="which designs to run (webhook, polling or both)")
    ap.add_argument("--preload", choices=["on", "off"], default="on",
                    help="GX preloaded in the process that forks the tasks (commerce_sync/preload.py); off: each gate task imports it")
    args = ap.parse_args()
    designs = {d.strip() for d in args.designs.split(",")}

    from sandbox import cin7, marketplacer
    from sandbox.server import start_server
    from tests.cluster.conftest import CIN7_PRODUCTS, Cluster, Databases, Processes, airflow_env, celery_settings, start_celery
    from tests.conftest import free_port

    tmp = Path(tempfile.mkdtemp(prefix="commerce_sync_bench_hooks_"))
    dbs = Databases.create()
    servers, env_extra, cin7s, mkps = [], {}, {}, {}
    for n, key in enumerate(PAIRINGS):
        c7 = start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=CIN7_LIMIT))
        requests.post(f"{c7.url}/_sandbox/seed", json={"products": CIN7_PRODUCTS, "locations": ["Main Warehouse"], "tax_rules": ["GST on Income"],
                                                        "customers": ["Marketplacer", "Castore AU (Marketplacer)", "Lounge (Marketplacer)"]}, timeout=10)
        mk = start_server(marketplacer.create_app(api_key=f"key-{n}"))
        servers += [c7, mk]
        cin7s[key], mkps[key] = c7.url, mk.url
        env_extra[f"AIRFLOW_CONN_{key.upper()}__CIN7"] = json.dumps({"conn_type": "http", "host": f"{c7.url}/ExternalApi/v2", "login": "demo-account", "password": "demo-key"})
        env_extra[f"AIRFLOW_CONN_{key.upper()}__MARKETPLACER"] = json.dumps({"conn_type": "http", "host": mk.url, "password": f"key-{n}"})
        env_extra[f"AIRFLOW_CONN_{key.upper()}__MARKETPLACER_WEBHOOK"] = json.dumps({"conn_type": "generic", "password": SECRET, "extra": {"scheme": "header", "header": "X-Webhook-Secret"}})
    pairings, maps = _pairings(tmp, args.poll_cron)
    port = free_port()
    settings = {**env_extra, "COMMERCE_SYNC_MAPPINGS_DIR": str(maps), "COMMERCE_SYNC_DEADLINES": "off",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2", "COMMERCE_SYNC_PRELOAD_GX": args.preload}
    redis_db = None
    if args.executor == "celery":
        from tests.cluster.conftest import _free_redis_db

        redis_db = _free_redis_db()
        settings.update(celery_settings(dbs, redis_db))
    env = airflow_env(tmp, port, dbs, pairings, {}, **settings)
    procs = Processes(env, tmp)
    procs.prepare()
    if args.executor == "celery":
        start_celery(procs, port, ["default"])
    else:
        procs.start("standalone", "standalone")
    cl = Cluster(env=env, home=tmp, ui=f"http://127.0.0.1:{port}", cin7="", marketplacer="", ledger_url=dbs.ledger_url)
    rows = []
    try:
        ready = time.time()
        cl.wait("the API server", lambda: _up(cl.ui), timeout=240)
        cl.wait("the DAGs", lambda: all(cl.api("GET", f"/api/v2/dags/{k}__orders_in").status_code == 200 for k in PAIRINGS), timeout=240, every=1)
        print(f"Airflow ({args.executor}) up in {time.time() - ready:.0f} s", flush=True)
        for key in PAIRINGS:
            cl.api("POST", "/api/v2/pools", json={"name": f"bench_{key}_cin7", "slots": 2}).raise_for_status()
            cl.api("PATCH", f"/api/v2/dags/{key}__orders_in", json={"is_paused": False}).raise_for_status()
        time.sleep(10)  # the unpaused DAGs' first (empty) runs
        next_id = 10000
        phases: dict[str, tuple[float, float]] = {}  # the steady phase of each design, for the timeline
        for key, prefix in PAIRINGS.items():
            hook = key.startswith("hook")
            if ("webhook" if hook else "polling") not in designs:
                continue
            watch = Watch(cin7s[key])
            # steady: one order every --every seconds
            placed = {}
            for _ in range(args.orders):
                placed.update(place(cl.ui, mkps[key], key, [next_id], hook))
                next_id += 1
                time.sleep(args.every)
            steady = latencies(watch, prefix, placed, timeout=300)
            phases[key] = (min(placed.values()), time.time())
            print(f"{key} steady, each order's latency in placing order: {' '.join(f'{v:.0f}' for v in steady)}", flush=True)
            # burst: --burst orders at once
            ids = list(range(next_id, next_id + args.burst))
            next_id += args.burst
            burst = latencies(watch, prefix, place(cl.ui, mkps[key], key, ids, hook), timeout=600)
            watch.stop()
            design = "webhook" if hook else f"polling ({args.poll_cron})"
            rows.append([design, f"steady, 1 per {args.every:g} s ({args.orders})", f"{pct(steady, 50):.1f}", f"{pct(steady, 95):.1f}", f"{max(steady):.1f}",
                         f"{2 * 60 / CIN7_LIMIT:.0f} s per order"])
            rows.append([design, f"burst of {args.burst}", f"{pct(burst, 50):.1f}", f"{pct(burst, 95):.1f}", f"{max(burst):.1f}",
                         f"{2 * args.burst * 60 / CIN7_LIMIT:.0f} s for the last"])
            print(rows[-2], rows[-1], flush=True)
        for key, (begun, ended) in phases.items():
            print(f"\nWhere {key}'s orders_in runs went, steady phase (medians over its runs, seconds; metadata DB)", flush=True)
            print(timeline(dbs.meta_url, f"{key}__orders_in", begun, ended), flush=True)
    finally:
        procs.stop()
        for s in servers:
            s.stop()
        if redis_db is not None:
            import redis

            redis.Redis(host="127.0.0.1", port=6379, db=redis_db).flushdb()
        dbs.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nOrder-to-ERP latency, seconds ({args.executor}, GX preload {args.preload}; Cin7 at {CIN7_LIMIT} calls/min)")
    print(table(rows, ["design", "load", "p50", "p95", "max", "rate-limit floor"]))


def timeline(meta_url: str, dag_id: str, begun: float, ended: float) -> str:
    """Where the runs' time went, from Airflow's own timestamps: the asset event that woke a run
    to its creation, creation to start, and per task: upstream done (or run start) to scheduled,
    scheduled to queued, queued to started (executor pick-up and process start), running."""
    from sqlalchemy import create_engine, text

    eng = create_engine(meta_url)
    since, until = datetime.fromtimestamp(begun, timezone.utc), datetime.fromtimestamp(ended, timezone.utc)
    with eng.connect() as conn:
        runs = conn.execute(text(
            "SELECT r.id, r.run_id, r.created_at, r.queued_at, r.start_date, r.end_date, "
            "(SELECT min(e.timestamp) FROM dagrun_asset_event x JOIN asset_event e ON e.id = x.event_id WHERE x.dag_run_id = r.id) AS first_event, "
            "(SELECT count(*) FROM dagrun_asset_event x WHERE x.dag_run_id = r.id) AS events "
            "FROM dag_run r WHERE r.dag_id = :d AND r.start_date >= :s AND r.end_date <= :u ORDER BY r.start_date"),
            {"d": dag_id, "s": since, "u": until}).mappings().all()
        tis = conn.execute(text(
            "SELECT run_id, task_id, scheduled_dttm, queued_dttm, start_date, end_date FROM task_instance "
            "WHERE dag_id = :d AND run_id = ANY(:r)"), {"d": dag_id, "r": [r["run_id"] for r in runs]}).mappings().all()
    eng.dispose()
    if not runs:
        return "(no finished runs in the phase)"
    med = lambda xs: f"{statistics.median(xs):.1f} ({max(xs):.1f})" if xs else ""  # noqa: E731
    secs = lambda a, b: (b - a).total_seconds() if a and b else None  # noqa: E731
    rows = [["run: woken (first asset event) to created", med([v for r in runs if (v := secs(r["first_event"], r["created_at"])) is not None])],
            ["run: created to started", med([v for r in runs if (v := secs(r["created_at"], r["start_date"])) is not None])],
            ["run: started to ended", med([secs(r["start_date"], r["end_date"]) for r in runs])],
            ["run: gap to the next run's start", med([secs(a["end_date"], b["start_date"]) for a, b in zip(runs, runs[1:])])],
            ["runs (asset events consumed, median)", f"{len(runs)} ({med([r['events'] for r in runs])})"]]
    by_run: dict[str, dict[str, dict]] = {}
    for ti in tis:
        by_run.setdefault(ti["run_id"], {})[ti["task_id"]] = ti
    from commerce_sync.factory import FLOW_STEPS

    start_of = {r["run_id"]: r["start_date"] for r in runs}
    for step in FLOW_STEPS["orders_in"]:
        ready, sched, queued, running = [], [], [], []
        for run_id, tasks in by_run.items():
            ti = tasks.get(step.name)
            if not ti:
                continue
            ups = [tasks[u]["end_date"] for u in step.after if u in tasks and tasks[u]["end_date"]]
            if (v := secs(max(ups) if ups else start_of.get(run_id), ti["scheduled_dttm"])) is not None:
                ready.append(v)
            for bucket, a, b in ((sched, "scheduled_dttm", "queued_dttm"), (queued, "queued_dttm", "start_date"), (running, "start_date", "end_date")):
                if (v := secs(ti[a], ti[b])) is not None:
                    bucket.append(v)
        rows.append([f"task {step.name}: upstream done to scheduled / to queued / queued to started / running",
                     " / ".join(med(x) for x in (ready, sched, queued, running))])
    return table(rows, ["what", "s: median (max)"])


def _up(ui: str) -> bool:
    try:
        return requests.get(f"{ui}/api/v2/monitor/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    main()
