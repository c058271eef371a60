"""One flow in a process of its own, for the crash tests to kill:
python -m tests.reliability.worker PAIRING FLOW RUN_ID WINDOW_START WINDOW_END"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tests.reliability.matrix import run_flow

ROOT = Path(__file__).resolve().parents[2]


def kill_when(pairing: str, flow: str, run_id: str, start: datetime, end: datetime, ready: Callable[[], bool], waiting_for: str) -> None:
    """Run the flow in a worker process and SIGKILL it the moment `ready()` holds (polled every
    20 ms): what a worker machine dying at that point leaves behind."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    worker = subprocess.Popen([sys.executable, "-m", "tests.reliability.worker", pairing, flow, run_id, start.isoformat(), end.isoformat()],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert worker.poll() is None, f"the worker ended before the kill: {worker.stdout.read()!r}"
            assert time.monotonic() < deadline, f"the worker never got there: {waiting_for}"
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()


if __name__ == "__main__":
    pairing, flow, run_id, start, end = sys.argv[1:6]
    print(run_flow(pairing, flow, run_id, datetime.fromisoformat(start), datetime.fromisoformat(end)), flush=True)
