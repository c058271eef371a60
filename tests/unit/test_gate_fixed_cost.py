"""What a gate task pays before it validates: GX is imported for a batch with rows only, and once
in the Airflow process that forks the tasks (commerce_sync/preload.py)."""

import subprocess
import sys

import pytest

from commerce_sync.preload import forks_tasks, preload_for_tasks
from tests.conftest import ROOT

# A fresh interpreter: this test process has GX loaded already by the other gate tests.
EMPTY_BATCHES = """
import sys
from decimal import Decimal as D
from commerce_sync.gates.orders import gate_orders
from commerce_sync.gates.stock import gate_stock
from commerce_sync.gates.shipments import gate_shipments
from commerce_sync.gates.refunds import gate_refunds
from commerce_sync.gates.catalogue import gate_catalogue

share = dict(max_bad_share=D("0.5"), min_records_for_share=1)
bad = {"junk": [{"check": "payload_readable", "detail": "not JSON"}]}
orders = gate_orders({}, unreadable=bad, mapped_skus=set(), mapped_sellers=set(), currencies=["AUD"], max_bad_share=D("1"), min_records_for_share=1)
assert orders.passed == [] and list(orders.failed) == ["junk"] and orders.checks_run == 0, orders
assert gate_stock([], unreadable={}, known_bad=set(), **share).passed == []
assert gate_shipments({}, unreadable={}, mapped_carriers=set(), mapped_skus=set(), known_bad=set(), **share).passed == []
assert gate_refunds({}, linked_orders=set(), unreadable={}, mapped_skus=set(), known_bad=set(), **share).passed == []
assert gate_catalogue({}, unreadable={}, fields=["sku"], price_list=None, categories=set(), master="M", channel="C", known_bad=set(), **share).passed == []
assert "great_expectations" not in sys.modules, "an empty batch imported GX"
print("ok")
"""


def test_an_empty_batch_passes_every_gate_without_importing_gx():
    out = subprocess.run([sys.executable, "-c", EMPTY_BATCHES], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}", "GX_ANALYTICS_ENABLED": "False"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_batch_with_rows_is_still_validated_by_gx():
    from decimal import Decimal

    from commerce_sync.gates.stock import gate_stock

    result = gate_stock([{"channel_sku": "A", "master_sku": "A", "available": Decimal("2")}, {"channel_sku": "B", "master_sku": None, "available": Decimal("1")}],
                        unreadable={}, max_bad_share=Decimal("1"), min_records_for_share=1, known_bad=set())
    assert result.passed == ["A"] and [r["check"] for r in result.failed["B"]] == ["listing_mapped"]
    assert result.checks_run > 0 and "great_expectations" in sys.modules


@pytest.mark.parametrize(("argv", "executor", "forks"), [
    (["airflow", "scheduler"], "LocalExecutor", True),
    (["/venv/bin/airflow", "scheduler", "--pid", "x"], "airflow.executors.local_executor.LocalExecutor", True),
    (["airflow", "scheduler"], "CeleryExecutor", False),  # Celery's tasks fork from the workers
    (["airflow", "scheduler"], "CeleryExecutor,LocalExecutor", True),
    (["airflow", "celery", "worker", "--queues", "default"], "CeleryExecutor", True),
    (["airflow", "dag-processor"], "LocalExecutor", False),  # DAG parse stays free of GX
    (["airflow", "api-server"], "LocalExecutor", False),
    (["airflow", "triggerer"], "LocalExecutor", False),
    (["airflow", "standalone"], "LocalExecutor", False),  # starts the scheduler as its own process
    (["airflow", "celery", "flower"], "CeleryExecutor", False),
    (["pytest", "tests"], "LocalExecutor", False),
])
def test_only_the_process_that_forks_tasks_preloads_gx(argv, executor, forks):
    assert forks_tasks(argv, executor) is forks


def test_the_preload_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("COMMERCE_SYNC_PRELOAD_GX", "off")
    assert preload_for_tasks(["airflow", "scheduler"], "LocalExecutor") is False


def test_a_failed_preload_leaves_the_process_running(monkeypatch, capsys):
    from commerce_sync.gates import engine

    def broken():
        raise ImportError("no module named great_expectations")

    monkeypatch.setattr(engine, "load_gx", broken)
    assert preload_for_tasks(["airflow", "scheduler"], "LocalExecutor") is False
    assert "not preloaded (ImportError: no module named great_expectations)" in capsys.readouterr().err


def test_a_scheduler_of_the_local_executor_preloads_gx(capsys):
    assert preload_for_tasks(["airflow", "scheduler"], "LocalExecutor") is True
    assert "great_expectations.expectations" in sys.modules
    assert "Great Expectations preloaded for the forked tasks" in capsys.readouterr().err
