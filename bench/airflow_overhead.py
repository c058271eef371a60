"""Airflow overhead: how long dags/ takes to parse, and what a flow run over an empty window costs.

    .venv/bin/python bench/airflow_overhead.py             # everything
    .venv/bin/python bench/airflow_overhead.py --console   # parse and api-server start only

1. Parse: a fresh interpreter fills a DagBag from dags/ (every pairing's DAGs), as the
   dag-processor does; measured five times, median. Baseline: the same parse with Great
   Expectations imported at module level (what a DAG file that imports the gate code would pay).
2. The ops console (issue 19): the same parse with each DAG's doc_md back to the one-line
   pointer it replaced (the runbook is the console's only parse-time cost), and the api-server's
   start (spawn to a healthy /api/v2/monitor/health) with the plugin as shipped and with the
   plugin minus the console (median of 3); plus the console's first request, which builds its app.
3. Empty run: every flow of the Marketplacer pairing over a window with nothing in it, through
   Airflow (`dag.test`, in-process) and as bare steps (the same functions the tasks call), against
   empty emulators; the difference is Airflow's own share.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from harness import ROOT, Emulators, free_port, pg_ledger, setup_env, table, wire

PARSE = """
import sys, time
t0 = time.perf_counter()
{extra}
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
t2 = time.perf_counter()
assert not bag.import_errors, bag.import_errors
print(len(bag.dags), t2 - t1, t2 - t0)
"""


def parse(extra: str = "") -> tuple[int, float, float]:
    runs = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", PARSE.format(extra=extra), str(ROOT / "dags")], capture_output=True, text=True, check=True, cwd=ROOT)
        n, parse_s, total_s = out.stdout.split()[-3:]
        runs.append((int(n), float(parse_s), float(total_s)))
    return runs[0][0], statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)


# the plugin as it was before the console: deadlines and the listener only
PLUGIN_WITHOUT_CONSOLE = """
from airflow.plugins_manager import AirflowPlugin
from commerce_sync import deadlines
class CommerceSyncPlugin(AirflowPlugin):
    name = "commerce_sync"
    deadline_references = [deadlines.RunDueDeadline]
    listeners = [deadlines]
"""
ONE_LINE_DOC = "import commerce_sync.factory as f; f.runbook = lambda p, flow, cfg: f'**{p.key} / {flow}**: {p.description}. See docs/operations.md.'"


def api_server_start(plugins: Path) -> tuple[float, float]:
    """Seconds from spawning `airflow api-server` to a healthy answer, and of the console's
    first request (401 without a login: the app is built before the login is checked)."""
    import os
    import urllib.error
    import urllib.request

    port = free_port()
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins), "AIRFLOW__API__PORT": str(port)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2).status == 200:
                    break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 180:
                    raise RuntimeError("the api-server did not start")
                time.sleep(0.1)
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/commerce-sync/", timeout=60)
        except urllib.error.HTTPError:
            pass
        return started, time.perf_counter() - t1
    finally:
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def console_figures(home: Path) -> None:
    # interleaved, so a busy machine weighs on both alike
    pairs = [(parse(), parse(ONE_LINE_DOC)) for _ in range(2)]
    n = pairs[0][0][0]
    with_s = statistics.median(x for a, _ in pairs for x in [a[1]])
    without_s = statistics.median(x for _, b in pairs for x in [b[1]])
    print("\nThe console's cost at parse: each DAG's runbook doc_md (median of 2 x 5, interleaved)")
    print(table([["runbook doc_md (as shipped)", n, f"{with_s:.2f} s"], ["one-line doc_md (before)", n, f"{without_s:.2f} s"]],
                ["", "DAGs", "DagBag fill"]))
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, cwd=ROOT)
    bare = home / "plugins_without_console"
    bare.mkdir(exist_ok=True)
    (bare / "commerce_sync_plugin.py").write_text(PLUGIN_WITHOUT_CONSOLE)
    runs = [(api_server_start(ROOT / "plugins"), api_server_start(bare)) for _ in range(3)]  # interleaved, as the parse
    rows = [["with the console", f"{statistics.median(w[0] for w, _ in runs):.2f} s", f"{statistics.median(w[1] for w, _ in runs):.2f} s"],
            ["without the console", f"{statistics.median(b[0] for _, b in runs):.2f} s", "-"]]
    print("\napi-server start, spawn to healthy (median of 3, interleaved)")
    print(table(rows, ["plugin", "start", "console's first request"]))


def empty_runs() -> list[list[str]]:
    from airflow.dag_processing.dagbag import DagBag

    from tests.reliability.matrix import run_flow

    rows = []
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    start = end - timedelta(minutes=15)
    for n, flow in enumerate(("orders_in", "dispatch_back", "refunds", "payout_reconciliation", "stock_out", "drift_monitor")):
        dag = bag.get_dag(f"cin7_marketplacer__{flow}")
        t = time.perf_counter()
        state = dag.test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat()}, logical_date=end + timedelta(seconds=n)).state
        through_airflow = time.perf_counter() - t
        t = time.perf_counter()
        bare = run_flow("cin7_marketplacer", flow, f"bare-{flow}", start, end)
        steps = time.perf_counter() - t
        rows.append([flow, state, f"{through_airflow:.2f}", bare, f"{steps:.2f}", f"{through_airflow - steps:.2f}"])
    return rows


def main() -> None:
    home = setup_env()
    if "--console" in sys.argv:
        console_figures(home)
        return
    n, parse_s, total_s = parse()
    _, gx_parse_s, gx_total_s = parse("import great_expectations")
    print("\nDAG parse of dags/ in a fresh interpreter (median of 5)")
    print(table([
        ["design (GX imported inside the gate task only)", n, f"{parse_s:.2f} s (target < 2 s)", f"{total_s:.2f} s"],
        ["baseline: GX imported at parse", n, f"{gx_parse_s:.2f} s + GX import", f"{gx_total_s:.2f} s"],
    ], ["", "DAGs", "DagBag fill", "with interpreter and imports"]))

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, cwd=ROOT)
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    # a mail sink: a run's report e-mail must go somewhere, or the report task fails and retries
    mail = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    mail.start()
    emu = Emulators(cin7_rate_limit=60)
    try:
        wire(emu, home, smtp_port=mail.port)
        emu.post("cin7", "/_sandbox/seed", {"locations": ["Main Warehouse"], "tax_rules": ["GST on Income"], "customers": ["Marketplacer"]})
        with pg_ledger():
            rows = empty_runs()
    finally:
        emu.stop()
        mail.stop()
    print("\nA flow run over an empty window (Marketplacer pairing; seconds)")
    print(table(rows, ["flow", "dag.test", "through Airflow s", "bare steps", "bare steps s", "Airflow's share s"]))
    console_figures(home)


if __name__ == "__main__":
    main()
