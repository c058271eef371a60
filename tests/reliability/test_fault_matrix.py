"""The fault matrix (see matrix.py): every flow of both pairings x every injectable fault.

`make fault-matrix` runs it and prints the table; in the suite each cell is one test, and the
table is printed at the end of the session (conftest's terminal summary)."""

from __future__ import annotations

import shutil

import pytest
import requests
import yaml

from commerce_sync import airflow_settings
from tests.e2e.conftest import ROOT
from tests.reliability.matrix import FAULTS, SCENARIOS, World, run_cell

pytestmark = [pytest.mark.e2e, pytest.mark.pg, pytest.mark.reliability]
RESULTS: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module")
def emulators():
    from sandbox import cin7, marketplacer, mirakl
    from sandbox.server import start_server

    servers = {
        "cin7": start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=100_000)),
        "marketplacer": start_server(marketplacer.create_app(api_key="demo-marketplacer-key")),
        "mirakl": start_server(mirakl.create_app(api_key="demo-mirakl-key", shop_id=2001)),
    }
    yield {k: s.url for k, s in servers.items()}
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="module")
def smtp():
    """Alerts and payout reports go through a real SMTP server, as everywhere in the tests."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    from tests.conftest import free_port

    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture(scope="module")
def matrix_env(emulators, smtp, tmp_path_factory, airflow_db):
    """Pairing files with small pages (so paging faults have pages to shift), no API budget wait
    and a 1-second read timeout (so a hung server is a timeout, not a stuck test); connections to
    the module's emulators."""
    home = tmp_path_factory.mktemp("matrix")
    pairings = home / "pairings"
    shutil.copytree(ROOT / "include" / "pairings", pairings)
    for path in pairings.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for side in ("channel", "master"):
            data[side]["rate_limit_per_minute"] = 100_000
            data[side].setdefault("options", {})["page_size"] = 2
        data["channel"]["options"].update({"import_poll_seconds": 0.05, "transactions_page_size": 4})
        path.write_text(yaml.safe_dump(data))
    timeouts = {"extra": {"read_timeout": 1, "connect_timeout": 2}}
    env = airflow_settings.env(overrides={
        "cin7_marketplacer__cin7": {"host": f"{emulators['cin7']}/ExternalApi/v2", **timeouts},
        "cin7_marketplacer__marketplacer": {"host": emulators["marketplacer"], **timeouts},
        "cin7_john_lewis__cin7": {"host": f"{emulators['cin7']}/ExternalApi/v2", **timeouts},
        "cin7_john_lewis__mirakl": {"host": emulators["mirakl"], **timeouts},
        "smtp_default": {"host": "127.0.0.1", "port": smtp.port},
    })
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    mp.setenv("COMMERCE_SYNC_PAIRINGS_DIR", str(pairings))
    yield
    mp.undo()


@pytest.fixture
def world(emulators, matrix_env, pg_url, mappings, monkeypatch):
    from commerce_sync.http import RateLimiter

    for url in emulators.values():
        requests.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
    requests.post(f"{emulators['mirakl']}/_sandbox/carriers", json=[{"code": c, "label": c} for c in ("DPD", "EVRI", "ROYAL_MAIL")], timeout=10)
    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", pg_url)
    RateLimiter._shared.clear()
    return World(cin7=emulators["cin7"], marketplacer=emulators["marketplacer"], mirakl=emulators["mirakl"], ledger_url=pg_url)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.pairing}/{s.flow}")
def test_cell(world, scenario, fault):
    verdict, details = run_cell(world, scenario, fault)
    RESULTS[(scenario.pairing, scenario.flow, fault.name)] = verdict
    assert verdict == "held", "\n".join(details)
