"""End-to-end fixtures: both emulators on free loopback ports, Airflow connections to them, the
ledger in a fresh PostgreSQL database, and a private copy of the pairing's mapping files."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from commerce_sync import airflow_settings
from tests.conftest import copy_pairings

ROOT = Path(__file__).resolve().parents[2]
CIN7_PRODUCTS = [
    {"SKU": "CS-TEE-BLK-M", "Name": "Tee black M"},
    {"SKU": "CS-TEE-BLK-L", "Name": "Tee black L"},
    {"SKU": "CS-CAP-NVY", "Name": "Cap navy"},
    {"SKU": "CS-SOCK-WHT", "Name": "Socks white"},
]


def point_at(monkeypatch, pg_url: str, mailbox, connections: dict[str, dict]) -> None:
    """This test's wiring: airflow_settings.yaml's connections with `connections` patched in (as
    AIRFLOW_CONN_* variables), SMTP to `mailbox`, the ledger in `pg_url`."""
    env = airflow_settings.env(overrides={**connections, "smtp_default": {"host": "127.0.0.1", "port": mailbox.port}})
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", pg_url)


def latest_drift(ledger, pairing: str) -> list[tuple[str, str]]:
    """(type, key) of every finding in the drift monitor's latest report, sorted."""
    import csv
    import io

    latest = ledger.runs(pairing, "drift_monitor")[0]["run_id"]
    rows = csv.DictReader(io.StringIO(ledger.reports(pairing, "drift_monitor", period=latest)["drift.csv"]))
    return sorted((r["type"], r["key"]) for r in rows)


@dataclass
class Sandbox:
    cin7: str
    marketplacer: str

    def inject_invoices(self, invoices: list[dict]) -> list[dict]:
        r = requests.post(f"{self.marketplacer}/_sandbox/invoices", json={"invoices": invoices}, timeout=10)
        r.raise_for_status()
        return r.json()["invoices"] if isinstance(r.json(), dict) else r.json()

    def sales(self) -> list[dict]:
        r = requests.get(f"{self.cin7}/_sandbox/sales", timeout=10)
        r.raise_for_status()
        body = r.json()
        return body["sales"] if isinstance(body, dict) else body

    def cin7_calls(self) -> list[dict]:
        body = requests.get(f"{self.cin7}/_sandbox/calls", timeout=10).json()
        return body["calls"] if isinstance(body, dict) else body


@pytest.fixture
def sandbox():
    from sandbox import cin7, marketplacer
    from sandbox.server import start_server

    c = start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=6000))
    m = start_server(marketplacer.create_app(api_key="demo-marketplacer-key"))
    try:
        requests.post(
            f"{c.url}/_sandbox/seed",
            json={
                "products": CIN7_PRODUCTS,
                "locations": ["Main Warehouse"],
                "tax_rules": ["GST on Income"],
                "customers": [{"Name": n, "Currency": "AUD"} for n in ("Marketplacer", "Castore AU (Marketplacer)", "Lounge (Marketplacer)")],
            },
            timeout=10,
        ).raise_for_status()
        yield Sandbox(cin7=c.url, marketplacer=m.url)
    finally:
        c.stop()
        m.stop()


@pytest.fixture
def mappings(tmp_path, monkeypatch):
    """A private copy of include/mappings: a test may add a mapping without touching the repo."""
    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "include" / "mappings", target)
    monkeypatch.setenv("COMMERCE_SYNC_MAPPINGS_DIR", str(target))
    return target


class Mailbox:
    """A real SMTP server (aiosmtpd) on a loopback port; `messages` fills as mail arrives. It can
    be stopped and started again on the same port (an SMTP outage), keeping what it received."""

    def __init__(self, port: int):
        from aiosmtpd.handlers import Message

        self.port = port
        self.messages: list = []
        messages = self.messages

        class Collect(Message):
            def handle_message(self, message):
                messages.append(message)

        self._handler = Collect()
        self._controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        if self._controller is None:
            # an aiosmtpd controller cannot start twice: a fresh one on the same port
            self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def mailbox():
    from tests.conftest import free_port

    box = Mailbox(free_port())
    box.start()
    yield box
    box.stop()


@pytest.fixture
def wired(sandbox, pg_url, mappings, mailbox, monkeypatch, airflow_db):
    """Connections from airflow_settings.yaml, re-pointed at this test's emulators; ledger in PostgreSQL."""
    point_at(monkeypatch, pg_url, mailbox, {
        "cin7_marketplacer__cin7": {"host": f"{sandbox.cin7}/ExternalApi/v2"},
        "cin7_marketplacer__marketplacer": {"host": sandbox.marketplacer},
    })
    sandbox.mailbox = mailbox
    return sandbox


@pytest.fixture(autouse=True)
def fresh_rate_limiters():
    """Each test is a fresh start of the API budget, as each Airflow task process is; otherwise
    the 60-calls-a-minute Cin7 limiter, shared in this one pytest process, would make later tests
    wait for the calls of earlier ones."""
    from commerce_sync.http import RateLimiter

    RateLimiter._shared.clear()
    yield
    RateLimiter._shared.clear()


# -- John Lewis (Mirakl) -------------------------------------------------------------------------
JL_CARRIERS = [
    {"code": "ROYAL_MAIL", "label": "Royal Mail", "standard_code": "RM", "tracking_url": "https://www.royalmail.com/track/{trackingId}"},
    {"code": "DPD", "label": "DPD UK", "tracking_url": "https://track.dpd.co.uk/{trackingId}"},
    {"code": "EVRI", "label": "Evri"},
]


@dataclass
class ChannelSandbox:
    """A pairing's two emulators in a test: the Cin7 one and the channel's (`url`)."""

    cin7: str
    url: str
    mailbox: object = None

    def post(self, path: str, body) -> dict:
        r = requests.post(f"{self.url}{path}", json=body, timeout=10)
        r.raise_for_status()
        return r.json() if r.content else {}

    def get(self, path: str):
        r = requests.get(f"{self.url}{path}", timeout=10)
        r.raise_for_status()
        return r.json()

    def calls(self, method: str | None = None, path_part: str = "") -> list[dict]:
        calls = self.get("/_sandbox/calls")["calls"]
        return [c for c in calls if (method is None or c["method"] == method) and path_part in c["path"]]

    def sales(self) -> list[dict]:
        body = requests.get(f"{self.cin7}/_sandbox/sales", timeout=10).json()
        return body["sales"] if isinstance(body, dict) else body

    def ship_in_cin7(self, external_id: str, pack: list[dict], ship_lines: list[dict]) -> None:
        requests.post(f"{self.cin7}/_sandbox/fulfilments", json={"ExternalID": external_id, "pack": pack, "ship": ship_lines}, timeout=10).raise_for_status()


class JohnLewis(ChannelSandbox):
    @property  # the name the John Lewis tests knew it by
    def mirakl(self) -> str:
        return self.url


@contextmanager
def emulated_pairing(pairing: str, channel_app, customers: list, tax_rule: str, monkeypatch, mailbox, pg_url, conn_extra=None):
    """Cin7 and the channel's emulator on free ports, seeded; the pairing's connections pointed
    at them (`<pairing>__cin7` and the pairing's channel connection, whose extra is
    `conn_extra(channel URL)` when given), the ledger in PostgreSQL, alerts to the test's SMTP
    server. Yields (Cin7 URL, channel URL)."""
    from sandbox import cin7
    from sandbox.server import start_server

    from commerce_sync.pairing import load_pairing_file, pairings_dir

    c = start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=6000))
    ch = start_server(channel_app)
    try:
        requests.post(
            f"{c.url}/_sandbox/seed",
            json={"products": CIN7_PRODUCTS, "locations": ["Main Warehouse"], "tax_rules": [tax_rule], "customers": customers},
            timeout=10,
        ).raise_for_status()
        channel_conn = load_pairing_file(pairings_dir() / f"{pairing}.yaml").channel.connection
        point_at(monkeypatch, pg_url, mailbox, {
            f"{pairing}__cin7": {"host": f"{c.url}/ExternalApi/v2"},
            channel_conn: {"host": ch.url, **({"extra": conn_extra(ch.url)} if conn_extra else {})},
        })
        yield c.url, ch.url
    finally:
        c.stop()
        ch.stop()


@pytest.fixture
def fast_pairings(tmp_path, monkeypatch):
    """A private copy of the pairing files with stock imports polled every 0.1 s, not 10-15 s."""
    import yaml

    target = tmp_path / "pairings"
    copy_pairings(target)
    for name in ("cin7_john_lewis.yaml", "cin7_sfcc.yaml"):
        path = target / name
        data = yaml.safe_load(path.read_text())
        data["channel"]["options"]["import_poll_seconds"] = 0.1
        path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("COMMERCE_SYNC_PAIRINGS_DIR", str(target))
    return target


@pytest.fixture
def john_lewis(pg_url, mappings, mailbox, monkeypatch, airflow_db, fast_pairings):
    """Cin7 and Mirakl emulators on free ports, the cin7_john_lewis connections pointed at them,
    the ledger in a fresh PostgreSQL database, a real SMTP server catching alerts."""
    from sandbox import mirakl

    app = mirakl.create_app(api_key="demo-mirakl-key", shop_id=2001)
    with emulated_pairing("cin7_john_lewis", app, [{"Name": "John Lewis Marketplace", "Currency": "GBP"}], "20% (VAT on Income)", monkeypatch, mailbox, pg_url) as (cin7_url, url):
        requests.post(f"{url}/_sandbox/carriers", json=JL_CARRIERS, timeout=10).raise_for_status()
        yield JohnLewis(cin7=cin7_url, url=url, mailbox=mailbox)


# -- Salesforce Commerce Cloud ---------------------------------------------------------------------
SFCC_CUSTOMERS = [{"Name": "Webshop UK (SFCC)", "Currency": "GBP"}, {"Name": "Webshop EU (SFCC)", "Currency": "EUR"},
                  {"Name": "Webshop US (SFCC)", "Currency": "USD"}]


class Sfcc(ChannelSandbox):
    def post(self, path: str, body) -> dict:
        from sandbox.sfcc_builders import plain

        return super().post(path, plain(body))  # orders hold Decimals

    def order(self, site: str, order_no: str) -> dict:
        return self.get(f"/_sandbox/orders/{site}/{order_no}")


@pytest.fixture
def sfcc(pg_url, mappings, mailbox, monkeypatch, airflow_db, fast_pairings):
    """Cin7 and SFCC emulators on free ports, the cin7_sfcc connections pointed at them (the
    Account Manager token URL too), the ledger in a fresh PostgreSQL database, a real SMTP server."""
    from sandbox import sfcc as sfcc_emulator

    extra = lambda url: {"tenant": "zzxy_prd", "token_url": f"{url}/dwsso/oauth2/access_token"}  # noqa: E731
    with emulated_pairing("cin7_sfcc", sfcc_emulator.create_app(), SFCC_CUSTOMERS, "20% (VAT on Income)", monkeypatch, mailbox, pg_url, extra) as (cin7_url, url):
        yield Sfcc(cin7=cin7_url, url=url, mailbox=mailbox)
