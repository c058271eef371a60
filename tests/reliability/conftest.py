"""Reliability tests share the end-to-end fixtures (PostgreSQL ledger, mappings), and add one set
of emulators per module with pairing files tuned to make faults bite (small pages, short read
timeout)."""


import pytest
import requests
import yaml

from commerce_sync import airflow_settings
from tests.e2e.conftest import *  # noqa: F401,F403 - fixtures: sandbox, mappings, mailbox, wired, john_lewis, fast_pairings, ...
from tests.e2e.conftest import ROOT
from tests.conftest import copy_pairings
from tests.reliability.matrix import World



@pytest.fixture(scope="module")
def emulators():
    from sandbox import centra, cin7, marketplacer, mirakl
    from sandbox.server import start_server

    servers = {
        "cin7": start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=100_000)),
        "marketplacer": start_server(marketplacer.create_app(api_key="demo-marketplacer-key")),
        "mirakl": start_server(mirakl.create_app(api_key="demo-mirakl-key", shop_id=2001)),
        "centra": start_server(centra.create_app()),
    }
    yield {k: s.url for k, s in servers.items()}
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="module")
def smtp():
    """Alerts and payout reports go through a real SMTP server, as everywhere in the tests;
    `messages` keeps what arrived (the leak tests read it)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    from tests.conftest import free_port

    messages = []

    class Collect(Message):
        def handle_message(self, message):
            messages.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.messages = messages
    yield controller
    controller.stop()


@pytest.fixture(scope="module")
def matrix_env(emulators, smtp, tmp_path_factory, airflow_db):
    """Pairing files with small pages (so paging faults have pages to shift), no API budget wait
    and a 1-second read timeout (so a hung server is a timeout, not a stuck test); connections to
    the module's emulators."""
    home = tmp_path_factory.mktemp("matrix")
    pairings = home / "pairings"
    copy_pairings(pairings)
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
        "centra_marketplacer__centra": {"host": emulators["centra"], "extra": {"order_api_secret": "demo-centra-order-secret", **timeouts["extra"]}},
        "centra_marketplacer__marketplacer": {"host": emulators["marketplacer"], **timeouts},
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
    return World(cin7=emulators["cin7"], marketplacer=emulators["marketplacer"], mirakl=emulators["mirakl"], ledger_url=pg_url, centra=emulators["centra"])
