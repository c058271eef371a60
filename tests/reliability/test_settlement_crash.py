"""settlement_reconciliation killed mid-batch: the worker dies (SIGKILL) after Cin7 committed a fee
journal (or a credit note) and before the ledger heard of it. The retry of the same run (what
Airflow does when a task's worker dies) and a later run post each journal once and credit each
refund once, and every row ends matched or reported, as without the crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from sandbox.settlement_builders import month
from tests.e2e.conftest import ROOT
from tests.reliability.matrix import run_flow
from tests.settlement_world import FLOW, PAIRING, settlement_world, window  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.pg, pytest.mark.reliability]


def _committed_unanswered(world, path: str) -> int:
    return sum(1 for c in world.calls() if c["method"] == "POST" and c["path"].endswith(path) and "hang:after_commit" in (c.get("fault") or []))


def _notes_made(world) -> Counter:
    return Counter(n["Memo"] for s in world.sales() for n in s.get("_credit_notes", []) if "refunds flow" not in (n.get("Memo") or ""))


@pytest.mark.parametrize("path", ["/journal", "/sale/creditnote"], ids=["fee journal", "credit note"])
def test_worker_killed_between_an_erp_write_and_the_ledger_then_each_is_booked_once(settlement_world, path):
    world = settlement_world
    m = month(start=datetime(2026, 10, 1, tzinfo=timezone.utc), prefix="WEB-", batches=4, payments=80, unbalanced=None, seed=11)
    assert m.created_refunds >= 2
    world.seed(m)
    world.drop_files(m)
    # every such write commits at once and is answered 0.7 s later: a kill in that gap leaves
    # a journal (or credit note) in Cin7 that the ledger has not heard of
    world.faults({"hang": {"path": path, "method": "POST", "when": "after_commit", "seconds": 0.7, "count": None}})
    start, end = window()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.worker", PAIRING, FLOW, "crashed-run", start.isoformat(), end.isoformat()],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while _committed_unanswered(world, path) < 2:  # one answered in full, the next committed with its answer on the way
            assert worker.poll() is None, f"the worker ended before the kill: {worker.stdout.read()!r}"
            assert time.monotonic() < deadline, "the run never reached its second write"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
    world.faults(None)
    time.sleep(1)  # the answer the dead worker was waiting for goes nowhere
    journals_at_kill = len(world.journals())

    assert run_flow(PAIRING, FLOW, "crashed-run", start, end) == "success"  # the task retried under its run
    assert run_flow(PAIRING, FLOW, "next-run", start, end) == "success"  # and a later run on top

    refs = Counter(j["Lines"][0]["Reference"] for j in world.journals())
    assert refs == Counter({f"ADYEN-{batch}-GBP": 1 for batch in m.fees}), "a fee journal was posted twice or not at all"
    assert journals_at_kill >= (2 if path == "/journal" else 0)
    made = _notes_made(world)
    assert len(made) == m.created_refunds and set(made.values()) == {1}, "a refund was credited twice or not at all"
    outcomes = world.outcomes()
    wrong = {k: (outcomes.get(k), want) for k, want in m.expected.items() if outcomes.get(k) != want}
    assert len(outcomes) == m.rows and not wrong, list(wrong.items())[:5]
