"""One flow in a process of its own, for the crash tests to kill:
python -m tests.reliability.worker PAIRING FLOW RUN_ID WINDOW_START WINDOW_END"""

from __future__ import annotations

import sys
from datetime import datetime

from tests.reliability.matrix import run_flow

if __name__ == "__main__":
    pairing, flow, run_id, start, end = sys.argv[1:6]
    print(run_flow(pairing, flow, run_id, datetime.fromisoformat(start), datetime.fromisoformat(end)), flush=True)
