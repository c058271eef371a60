"""The Airflow plugin stays light to import (every Airflow component loads it), and the console's
small tables agree with the flows and gates they describe."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("pandas", "great_expectations", "numpy", "commerce_sync.console", "commerce_sync.flows", "fastapi")


def test_the_plugin_module_imports_nothing_heavy():
    code = ("import json, sys; import commerce_sync_plugin as p; "
            f"print(json.dumps({{'loaded': [m for m in {HEAVY!r} if m in sys.modules], "
            "'apps': [a['url_prefix'] for a in p.CommerceSyncPlugin.fastapi_apps], "
            "'views': [v['destination'] for v in p.CommerceSyncPlugin.external_views]}))")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["loaded"] == []
    assert found["apps"] == ["/commerce-sync/webhooks", "/commerce-sync"] and sorted(found["views"]) == ["dag", "nav"]


def test_quarantine_flows_replay_through_the_dag_that_holds_them():
    from commerce_sync.console.service import QUARANTINE_DAG_FLOW
    from commerce_sync.flows import catalogue_out, orders_in

    assert QUARANTINE_DAG_FLOW == {orders_in.ACCEPT_FLOW: "orders_in", catalogue_out.CHECK_FLOW: "catalogue_out"}


def test_every_plain_reason_has_a_meaning_and_an_action():
    from commerce_sync.reasons import REASONS, UNKNOWN, explain, plain

    assert all(meaning.strip() and action.strip() for meaning, action in REASONS.values())
    assert explain("no_such_check") == UNKNOWN
    assert plain({"check": "sku_mapped", "detail": "x"})["action"] == REASONS["sku_mapped"][1]


def test_each_dag_documents_its_flow_as_a_runbook_from_the_pairing_file(tmp_path):
    import yaml

    from commerce_sync.factory import runbook
    from commerce_sync.pairing import load_pairings
    from tests.conftest import copy_pairings

    folder = copy_pairings(tmp_path / "pairings")
    path = folder / "cin7_marketplacer.yaml"
    data = yaml.safe_load(path.read_text())
    data["flows"]["payout_reconciliation"].update(deadline_minutes=45, schedule="0 7 * * *")
    data["recipients"]["finance"] = ["books@example.org"]
    path.write_text(yaml.safe_dump(data))
    pairing = load_pairings(folder)["cin7_marketplacer"]
    doc = runbook(pairing, "payout_reconciliation", pairing.flow("payout_reconciliation"))
    assert "`0 7 * * *`" in doc and "deadline 45 minutes" in doc
    assert "- the run missed its 45-minute deadline: books@example.org (finance)" in doc
    assert "- the exception report: books@example.org (finance)" in doc
    orders = runbook(pairing, "orders_in", pairing.flow("orders_in"))
    assert "| `sku_mapped` |" in orders and "Add the SKU" in orders and "/commerce-sync/pairing/cin7_marketplacer" in orders
