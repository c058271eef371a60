"""cin7_commercetools end to end: the Cin7 and commercetools emulators on free loopback ports, the
pairing's connections pointed at them, the ledger in a fresh PostgreSQL database, real SMTP.
Import the `storefront` fixture into a test module to use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import pytest
import requests

from tests.e2e.conftest import point_at

PAIRING = "cin7_commercetools"
PROJECT, CLIENT_ID, CLIENT_SECRET = "demo-shop", "demo-client", "demo-secret"
SUPPLY = "cin7-main-warehouse"
STORE, THREE_PL = "cin7-store-london", "cin7-3pl-northampton"  # the pairing's other supply channels (stock.regions)
CIN7_PRODUCTS = [{"SKU": s, "Name": n} for s, n in (("CS-TEE-BLK-M", "Tee black M"), ("CS-TEE-BLK-L", "Tee black L"), ("CS-CAP-NVY", "Cap navy"), ("CS-SOCK-WHT", "Socks white"))]


@dataclass
class Storefront:
    cin7: str
    ct: str
    mailbox: object = None
    _token: str | None = field(default=None, repr=False)

    def seed(self, what: str, items) -> list[dict]:
        r = requests.post(f"{self.ct}/_sandbox/{what}", json=items, timeout=10)
        r.raise_for_status()
        return r.json().get("created") or r.json().get("orders")

    def order(self, order_id: str) -> dict:
        return requests.get(f"{self.ct}/_sandbox/orders/{order_id}", timeout=10).json()

    def orders(self) -> dict[str, dict]:
        return {o.get("orderNumber") or o["id"]: o for o in requests.get(f"{self.ct}/_sandbox/orders", timeout=10).json()["items"]}

    def change_order(self, order_id: str, actions: list[dict]) -> dict:
        r = requests.post(f"{self.ct}/_sandbox/orders/{order_id}/update", json=actions, timeout=10)
        r.raise_for_status()
        return r.json()

    def api(self, method: str, path: str, body=None, params=None):
        """The API as another client would call it (the merchant center, a PSP integration)."""
        if self._token is None:
            self._token = requests.post(f"{self.ct}/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data={"grant_type": "client_credentials"}, timeout=10).json()["access_token"]
        r = requests.request(method, f"{self.ct}/{PROJECT}{path}", json=body, params=params, headers={"Authorization": f"Bearer {self._token}"}, timeout=10)
        r.raise_for_status()
        return r.json()

    def inventory(self) -> list[dict]:
        return requests.get(f"{self.ct}/_sandbox/inventory", timeout=10).json()["items"]

    def calls(self, method: str | None = None, path_part: str = "") -> list[dict]:
        calls = requests.get(f"{self.ct}/_sandbox/calls", timeout=10).json()["calls"]
        return [c for c in calls if (method is None or c["method"] == method) and path_part in c["path"]]

    def sales(self) -> dict[str, dict]:
        body = requests.get(f"{self.cin7}/_sandbox/sales", timeout=10).json()
        return {s["ExternalID"]: s for s in (body["sales"] if isinstance(body, dict) else body)}

    def in_cin7(self, path: str, body) -> None:
        requests.post(f"{self.cin7}/_sandbox/{path}", json=body, timeout=10).raise_for_status()


@pytest.fixture
def storefront(pg_url, mappings, mailbox, monkeypatch, airflow_db):
    from sandbox import cin7, commercetools
    from sandbox.server import start_server

    c = start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=6000))
    t = start_server(commercetools.create_app(project_key=PROJECT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    try:
        requests.post(f"{c.url}/_sandbox/seed", json={"products": CIN7_PRODUCTS, "locations": ["Main Warehouse", "London Store", "3PL Northampton"], "tax_rules": ["20% (VAT on Income)"],
                                                      "customers": [{"Name": "Storefront GBP", "Currency": "GBP"}]}, timeout=10).raise_for_status()
        requests.post(f"{t.url}/_sandbox/channels", json=[{"key": k, "roles": ["InventorySupply"]} for k in (SUPPLY, STORE, THREE_PL)], timeout=10).raise_for_status()
        extra = {"project_key": PROJECT, "auth_url": t.url, "scopes": ["manage_orders", "view_payments", "manage_products", "manage_channels"]}
        point_at(monkeypatch, pg_url, mailbox, {f"{PAIRING}__cin7": {"host": f"{c.url}/ExternalApi/v2"}, f"{PAIRING}__commercetools": {"host": t.url, "extra": extra}})
        yield Storefront(cin7=c.url, ct=t.url, mailbox=mailbox)
    finally:
        c.stop()
        t.stop()


@lru_cache(maxsize=1)
def dagbag():
    """Parsed once per test process: the DAGs do not change between runs."""
    from airflow.dag_processing.dagbag import DagBag

    from commerce_sync.pairing import project_root

    return DagBag(dag_folder=str(project_root() / "dags"))


def run(flow: str, start: datetime, end: datetime, n: int, **conf):
    dag = dagbag().get_dag(f"{PAIRING}__{flow}")
    return dag.test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat(), **conf}, logical_date=end + timedelta(seconds=n))
