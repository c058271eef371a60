"""The DAG folder parses cleanly, cheaply, and every DAG carries the pairing's policy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ("orders_in", "stock_out", "dispatch_back", "refunds", "payout_reconciliation", "drift_monitor")
EXPECTED = {f"{pairing}__{flow}" for pairing in ("cin7_marketplacer", "cin7_john_lewis", "cin7_commercetools") for flow in FLOWS}
# Centra declares no general ledger and no credit notes: refunds run the other way round, journals go to a file
EXPECTED |= {f"centra_marketplacer__{flow}" for flow in ("orders_in", "stock_out", "dispatch_back", "drift_monitor", "refunds", "payout_reconciliation")}
# cin7_sfcc has no refunds or payouts DAG: its sites settle through a payment provider, whose
# settlement report settlement_reconciliation reads (the pairing's flows_off says so)
SFCC_FLOWS = ("orders_in", "stock_out", "dispatch_back", "drift_monitor", "settlement_reconciliation")
EXPECTED |= {f"cin7_sfcc__{flow}" for flow in SFCC_FLOWS}
EXPECTED |= {"commerce_sync__housekeeping"}  # one per deployment, not per pairing
# catalogue_out runs where the master owns the product record and the pairing asks for it:
# cin7_marketplacer does not (its sellers list their own products)
CATALOGUE_PAIRINGS = ("cin7_commercetools", "cin7_sfcc", "centra_marketplacer")
EXPECTED |= {f"{pairing}__catalogue_out" for pairing in CATALOGUE_PAIRINGS}
# D2C pairings reconcile their payment provider's settlement files
EXPECTED |= {"cin7_commercetools__settlement_reconciliation"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors_and_exactly_the_expected_dags(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == EXPECTED


def test_each_dag_has_retries_pool_and_tags(dagbag):
    dag = dagbag.dags["cin7_marketplacer__orders_in"]
    order = [t.task_id for t in dag.topological_sort()]
    assert sorted(order) == ["accept", "extract", "gate", "load", "report"]
    assert order.index("extract") < order.index("gate") < order.index("load") < order.index("report")
    assert order.index("accept") < order.index("report")
    assert dag.get_task("accept").pool == "default_pool"  # Marketplacer's channel names no pool
    load = dag.get_task("load")
    assert load.pool == "cin7_core__demo_account"
    for t in dag.tasks:
        assert t.retries == 3
        assert t.retry_exponential_backoff
        assert t.retry_policy is not None
    assert {"commerce_sync", "cin7_marketplacer", "orders_in"} <= set(dag.tags)
    assert dag.max_active_runs == 1


def test_parsing_imports_neither_pandas_nor_great_expectations_and_has_a_deadline(tmp_path):
    """Parse in a fresh interpreter, deadlines on, as the dag-processor would."""
    code = (
        "import sys, json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"b = DagBag(dag_folder={str(ROOT / 'dags')!r})\n"
        "d = b.dags['cin7_marketplacer__orders_in']\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in b.import_errors.items()},"
        " 'pandas': 'pandas' in sys.modules, 'gx': 'great_expectations' in sys.modules,"
        " 'deadlines': [a.name for a in (d.deadline or [])],"
        " 'housekeeping': [a.name for a in (b.dags['commerce_sync__housekeeping'].deadline or [])]}))\n"
    )
    env = {**os.environ, "COMMERCE_SYNC_DEADLINES": "on"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["pandas"] is False, "a DAG file pulled pandas in at parse time"
    assert result["gx"] is False, "a DAG file pulled Great Expectations in at parse time"
    assert result["deadlines"] == ["cin7_marketplacer__orders_in__deadline"]
    assert result["housekeeping"] == ["commerce_sync__housekeeping__deadline"]  # one per deployment, like every flow


def test_the_deadline_counts_from_when_the_run_became_due_and_survives_serialization(tmp_path):
    """Every flow's deadline uses our own reference (not DAGRUN_QUEUED_AT, whose clear path is broken
    on 3.3.2: apache/airflow#70368); the scheduler can read it back only if the plugin registers it."""
    code = (
        "import json\n"
        "from airflow import plugins_manager\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "from airflow.serialization.decoders import decode_deadline_reference\n"
        "from airflow.serialization.encoders import encode_deadline_reference\n"
        f"b = DagBag(dag_folder={str(ROOT / 'dags')!r})\n"
        "refs = {i: [type(a.reference).__name__ for a in (d.deadline or [])] for i, d in b.dags.items()}\n"
        "d = b.dags['cin7_john_lewis__orders_in']\n"
        "# what the dag-processor stores and the scheduler reads back\n"
        "decoded = decode_deadline_reference(encode_deadline_reference(d.deadline[0].reference))\n"
        "print(json.dumps({'refs': refs, 'registered': sorted(plugins_manager.get_deadline_references_plugins()),"
        " 'decoded': type(decoded).__name__, 'inner': type(getattr(decoded, 'inner_ref', None)).__name__}))\n"
    )
    env = {**os.environ, "COMMERCE_SYNC_DEADLINES": "on", "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    with_deadline = {k: v for k, v in result["refs"].items() if v}
    assert with_deadline and all(v == ["RunDueDeadline"] for v in with_deadline.values()), result["refs"]
    assert "commerce_sync.deadlines.RunDueDeadline" in result["registered"]
    assert (result["decoded"], result["inner"]) == ("SerializedCustomReference", "RunDueDeadline")

    # the switch back to Airflow's own reference, for when the upstream fix is released
    env["COMMERCE_SYNC_DEADLINE_REFERENCE"] = "queued_at"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    refs = json.loads(out.stdout.strip().splitlines()[-1])["refs"]
    assert all(v == ["DagRunQueuedAtDeadline"] for v in refs.values() if v)


def test_both_pairings_run_the_same_steps(dagbag):
    """The John Lewis pairing was added as data: same flows, same tasks, no pairing-only step."""
    for flow in FLOWS:
        tasks = {p: sorted(t.task_id for t in dagbag.dags[f"{p}__{flow}"].tasks) for p in ("cin7_marketplacer", "cin7_john_lewis", "cin7_commercetools")}
        assert tasks["cin7_marketplacer"] == tasks["cin7_john_lewis"] == tasks["cin7_commercetools"], flow
    for flow in set(SFCC_FLOWS) & set(FLOWS):  # the SFCC pairing too, for the flows it shares with them
        assert sorted(t.task_id for t in dagbag.dags[f"cin7_sfcc__{flow}"].tasks) == sorted(t.task_id for t in dagbag.dags[f"cin7_marketplacer__{flow}"].tasks), flow
    jl = dagbag.dags["cin7_john_lewis__orders_in"]
    assert jl.get_task("accept").pool == "mirakl__john_lewis_shop"
    assert jl.get_task("load").pool == "cin7_core__demo_account"  # one Cin7 budget shared with Marketplacer


def test_the_catalogue_dags_run_the_same_steps_whatever_the_channel_can_do(dagbag):
    """Create-and-check and check-only are the same DAG: what differs is what the channel declares."""
    steps = {p: [t.task_id for t in dagbag.dags[f"{p}__catalogue_out"].topological_sort()] for p in CATALOGUE_PAIRINGS}
    assert all(order == steps["cin7_commercetools"] for order in steps.values()), steps
    order = steps["cin7_commercetools"]
    assert order.index("extract") < order.index("gate") < order.index("load") < order.index("check") < order.index("report")
    dag = dagbag.dags["cin7_commercetools__catalogue_out"]
    assert dag.get_task("extract").pool == "cin7_core__demo_account" and dag.get_task("load").pool == "commercetools__demo_shop"
    assert dag.get_task("check").pool == "commercetools__demo_shop"
    assert {"commerce_sync", "cin7_commercetools", "catalogue_out"} <= set(dag.tags)
    assert "cin7_marketplacer__catalogue_out" not in dagbag.dags


def test_dag_files_do_not_import_heavy_modules_at_top_level():
    for path in (ROOT / "dags").glob("*.py"):
        text = path.read_text()
        for heavy in ("import pandas", "import great_expectations", "from pandas", "from great_expectations"):
            assert heavy not in text, f"{path.name} imports {heavy.split()[-1]}"


def test_every_pool_a_pairing_names_is_defined_in_airflow_settings():
    """A task whose pool does not exist waits forever without an error: catch it here."""
    from commerce_sync import airflow_settings
    from commerce_sync.pairing import load_pairings

    defined = {p["pool_name"] for p in airflow_settings.read()["pools"]}
    named = {ref.pool for p in load_pairings().values() for ref in (p.master, p.channel) if ref.pool}
    assert named <= defined, f"pools named by pairings but not defined in airflow_settings.yaml: {named - defined}"
