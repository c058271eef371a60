"""The demo's event-driven wiring (scripts/demo_webhooks.py, run by `make demo`): the emulators
that can push are subscribed to the receiver with the proof each webhook connection expects, and
a new Cin7 shipment, Marketplacer invoice or Mirakl order reaches the receiver over real HTTP
and is recorded as a webhook event of the right pairing and system."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import requests

from commerce_sync import airflow_settings
from tests.conftest import ROOT, copy_pairings

pytestmark = [pytest.mark.airflow, pytest.mark.pg]

PAIRINGS = ("cin7_marketplacer", "cin7_john_lewis")  # Centra's push has its own tests (test_webhooks.py)


@pytest.fixture
def demo(airflow_db, pg_url, tmp_path, monkeypatch):
    from fastapi import FastAPI

    from commerce_sync import webhooks
    from sandbox import cin7, marketplacer, mirakl
    from sandbox.server import start_server

    pairings = copy_pairings(tmp_path / "all")
    only = tmp_path / "pairings"
    only.mkdir()
    for key in PAIRINGS:
        shutil.copy(pairings / f"{key}.yaml", only)
    receiver = FastAPI()
    receiver.mount(webhooks.URL_PREFIX, webhooks.create_app())  # as the plugin mounts it in the api-server
    mkp = marketplacer.create_app()
    servers = {"cin7": start_server(cin7.create_app()), "marketplacer": start_server(mkp),
               "mirakl": start_server(mirakl.create_app()), "receiver": start_server(receiver)}
    base = {k: f"http://127.0.0.1:{s.port}" for k, s in servers.items()}
    hosts = {"cin7_marketplacer__cin7": f"{base['cin7']}/ExternalApi/v2", "cin7_john_lewis__cin7": f"{base['cin7']}/ExternalApi/v2",
             "cin7_marketplacer__marketplacer": base["marketplacer"], "cin7_john_lewis__mirakl": base["mirakl"]}
    env = airflow_settings.env(overrides={k: {"host": v} for k, v in hosts.items()})
    for k, v in {**env, "COMMERCE_SYNC_PAIRINGS_DIR": str(only), "COMMERCE_SYNC_LEDGER_URL": pg_url}.items():
        monkeypatch.setenv(k, v)
    try:
        yield base, mkp.state.data
    finally:
        for s in servers.values():
            s.stop()


def _events(ledger, n):
    for _ in range(100):  # the pushes run on the emulators' threads: wait for them, not for a time
        events = ledger.webhook_events()
        if len(events) >= n:
            return events
        time.sleep(0.1)
    return ledger.webhook_events()


def _deliveries(emulator, n):
    for _ in range(100):
        deliveries = requests.get(f"{emulator}/_sandbox/webhooks", timeout=10).json()["deliveries"]
        if len(deliveries) >= n:
            return deliveries
        time.sleep(0.1)
    return deliveries


def test_the_demo_subscribes_every_pushing_emulator_and_each_push_records_an_event(demo, pg_url):
    from commerce_sync.ledger import Ledger

    base, marketplacer_data = demo
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_webhooks.py"), base["receiver"]], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("pushes to") == 4  # two pairings, two sides each
    for name, value in os.environ.items():
        if name.endswith("_WEBHOOK"):  # the webhook connections' secrets are never printed
            assert json.loads(value)["password"] not in done.stdout + done.stderr

    ledger = Ledger.from_url(pg_url)
    # a shipment in Cin7 (one account, subscribed by both pairings), an order on each channel
    requests.post(f"{base['cin7']}/_sandbox/sales", json={"sales": [{"ExternalID": "W-1", "Customer": "Web", "Lines": [{"SKU": "A", "Quantity": 1, "Price": "10"}]}]}, timeout=10).raise_for_status()
    requests.post(f"{base['cin7']}/_sandbox/fulfilments", json={"ExternalID": "W-1", "pack": [{"SKU": "A", "Quantity": 1, "Box": "1"}],
                                                                 "ship": [{"Box": "1", "Carrier": "DPD", "TrackingNumber": "T1"}]}, timeout=10).raise_for_status()
    marketplacer_data.add_invoice({"createdAt": "2026-01-01T00:00:00Z", "lineItems": []})
    requests.post(f"{base['mirakl']}/_sandbox/orders", json={"orders": [{"order_id": "JL-1"}]}, timeout=10).raise_for_status()

    events = _events(ledger, 4)
    assert sorted((e["pairing"], e["system"]) for e in events) == [
        ("cin7_john_lewis", "cin7_core"), ("cin7_john_lewis", "mirakl"), ("cin7_marketplacer", "cin7_core"), ("cin7_marketplacer", "marketplacer")]
    # each emulator saw its receiver accept every push (an emulator notes a delivery once the
    # receiver has answered, a moment after the receiver recorded the event: wait for it)
    for name, pushes in {"cin7": 2, "marketplacer": 1, "mirakl": 1}.items():  # Cin7: one push per subscribed pairing
        deliveries = _deliveries(base[name], pushes)
        assert len(deliveries) == pushes and all(d["status"] == 202 for d in deliveries), deliveries


def test_a_push_with_the_wrong_secret_is_refused_and_records_nothing(demo, pg_url):
    from commerce_sync.ledger import Ledger

    base, _ = demo
    url = f"{base['receiver']}/commerce-sync/webhooks/cin7_john_lewis/mirakl"
    requests.post(f"{base['mirakl']}/_sandbox/webhooks", json={"url": url, "headers": {"X-Webhook-Secret": "guessed"}}, timeout=10).raise_for_status()
    requests.post(f"{base['mirakl']}/_sandbox/orders", json={"orders": [{"order_id": "JL-2"}]}, timeout=10).raise_for_status()
    for _ in range(100):
        deliveries = requests.get(f"{base['mirakl']}/_sandbox/webhooks", timeout=10).json()["deliveries"]
        if deliveries:
            break
        time.sleep(0.1)
    assert [d["status"] for d in deliveries] == [401]  # logged by the emulator, the order still stored
    assert requests.get(f"{base['mirakl']}/_sandbox/orders/JL-2", timeout=10).status_code == 200
    assert Ledger.from_url(pg_url).webhook_events() == []
