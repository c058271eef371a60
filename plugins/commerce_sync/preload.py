"""Great Expectations imported once, in the Airflow process that forks the task processes.

On Linux every task process is forked: by the scheduler's LocalExecutor workers (`airflow
standalone`, `make demo`), which the scheduler forks at its start, and by a Celery worker's pool
processes (`airflow celery worker`). A module imported in that parent before it forks is already
in every task process; one imported by the task costs it seconds each time (GX: about 3-5 s of a
gate task's 4-5 s on the 2-core machine, bench/task_overhead.py). So the parent imports GX once
(its gates still validate every batch with rows in the task, as before; this only moves the
import), at the cost of GX's memory (≈200 MB, shared copy-on-write with the forks) in that one
process. Every other process (api-server, dag-processor, triggerer, CLI, tests) is left as it was:
DAG parse stays free of GX (tests/dags/test_dag_integrity.py).

Called from plugins/airflow_local_settings.py, which Airflow imports at start in every process;
`COMMERCE_SYNC_PRELOAD_GX=off` turns it off.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence


def forks_tasks(argv: Sequence[str], executor: str) -> bool:
    """Whether this Airflow command is the parent of task processes: a Celery worker, or a
    scheduler whose executor is the LocalExecutor (possibly among others)."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    if words[:2] == ["celery", "worker"]:
        return True
    return words[:1] == ["scheduler"] and "LocalExecutor" in executor


def preload_for_tasks(argv: Sequence[str] | None = None, executor: str | None = None) -> bool:
    """Import GX (and the gate engine) if this process forks tasks; True if it did."""
    if os.environ.get("COMMERCE_SYNC_PRELOAD_GX", "on").lower() in {"off", "0", "false", "no"}:
        return False
    if executor is None:
        from airflow.configuration import conf

        executor = conf.get("core", "executor", fallback="") or ""
    if not forks_tasks(sys.argv if argv is None else argv, executor):
        return False
    started = time.perf_counter()
    try:
        from commerce_sync.gates import engine

        engine.load_gx()
    except Exception as exc:  # noqa: BLE001 - never stop the scheduler or worker: a gate task imports GX itself (and says what is wrong)
        print(f"commerce_sync: Great Expectations not preloaded ({type(exc).__name__}: {exc}); each gate task imports it", file=sys.stderr, flush=True)
        return False
    # Airflow has not set its logging up yet when it imports its local settings: stderr, its log
    print(f"commerce_sync: Great Expectations preloaded for the forked tasks in {time.perf_counter() - started:.1f} s "
          "(COMMERCE_SYNC_PRELOAD_GX=off turns it off)", file=sys.stderr, flush=True)
    return True
