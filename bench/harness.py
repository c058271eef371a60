"""What the benchmarks share: the environment a flow needs outside Airflow's scheduler, the
emulators in a process of their own (so their work does not share the measured process's GIL),
a throw-away PostgreSQL ledger, tuned pairing copies and the figures table."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT / "plugins"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

PG_ADMIN = os.environ.get("COMMERCE_SYNC_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def setup_env() -> Path:
    """Airflow in a throw-away home (connections come from AIRFLOW_CONN_* variables), deadlines
    off, a sealing key: what tests/conftest.py does for the suite."""
    home = Path(tempfile.mkdtemp(prefix="commerce_sync_bench_"))
    os.environ.update({
        "AIRFLOW_HOME": str(home / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"), "COMMERCE_SYNC_DEADLINES": "off", "COMMERCE_SYNC_HOME": str(ROOT),
        "GX_ANALYTICS_ENABLED": "False", "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
    })
    if not os.environ.get("COMMERCE_SYNC_SEAL_KEY"):
        from cryptography.fernet import Fernet

        os.environ["COMMERCE_SYNC_SEAL_KEY"] = Fernet.generate_key().decode()
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulators:
    def __init__(self, cin7_rate_limit: int, only: tuple[str, ...] = ("cin7", "marketplacer", "mirakl")):
        self.ports = {k: free_port() for k in only}
        # one process per emulator: they are separate servers, and must not share one GIL
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "sandbox", "--only", name, *(a for k, p in self.ports.items() for a in (f"--{k}-port", str(p))),
                 "--cin7-rate-limit", str(cin7_rate_limit)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for name in self.ports
        ]
        self.url = {k: f"http://127.0.0.1:{p}" for k, p in self.ports.items()}
        import requests

        deadline = time.monotonic() + 30
        for url in self.url.values():
            while True:
                try:
                    requests.get(f"{url}/_sandbox/calls", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                        raise RuntimeError("the emulators did not start") from None
                    time.sleep(0.2)

    def post(self, emulator: str, path: str, body: Any) -> Any:
        import requests

        r = requests.post(f"{self.url[emulator]}{path}", json=body, timeout=300)
        r.raise_for_status()
        return r.json() if r.content else None

    def get(self, emulator: str, path: str) -> Any:
        import requests

        r = requests.get(f"{self.url[emulator]}{path}", timeout=300)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def pg_ledger():
    """A fresh PostgreSQL database for the ledger; dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"cs_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    os.environ["COMMERCE_SYNC_LEDGER_URL"] = url
    try:
        yield url
    finally:
        from commerce_sync.ledger.db import dispose

        dispose(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wire(emu: Emulators, home: Path, *, rates: dict[str, int] | None = None, options: dict[str, dict] | None = None, smtp_port: int | None = None) -> None:
    """Connections to the emulators; pairing copies with the given rate limits
    ({"cin7_core": 600}) and adapter options ({"mirakl": {"page_size": 100}})."""
    import yaml

    from commerce_sync import airflow_settings

    env = airflow_settings.env(overrides={
        "cin7_marketplacer__cin7": {"host": f"{emu.url['cin7']}/ExternalApi/v2"},
        "cin7_marketplacer__marketplacer": {"host": emu.url.get("marketplacer", "http://127.0.0.1:9")},
        "cin7_john_lewis__cin7": {"host": f"{emu.url['cin7']}/ExternalApi/v2"},
        "cin7_john_lewis__mirakl": {"host": emu.url.get("mirakl", "http://127.0.0.1:9")},
        # without a mail sink nobody listens: alerts fail quietly, as logged
        "smtp_default": {"host": "127.0.0.1", "port": smtp_port or free_port()},
        **({"cin7_commercetools__cin7": {"host": f"{emu.url['cin7']}/ExternalApi/v2"},
            "cin7_commercetools__commercetools": {"host": emu.url["commercetools"], "login": "demo-client", "password": "demo-secret",
                                                  "extra": {"project_key": "demo-shop", "auth_url": emu.url["commercetools"],
                                                            "scopes": ["manage_orders", "view_payments", "manage_products", "manage_channels"]}}}
           if "commercetools" in emu.url else {}),
    })
    os.environ.update(env)
    pairings = home / "pairings"
    if pairings.exists():
        shutil.rmtree(pairings)
    shutil.copytree(ROOT / "include" / "pairings", pairings)
    for path in pairings.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for side in ("channel", "master"):
            system = data[side]["system"]
            if rates and system in rates:
                data[side]["rate_limit_per_minute"] = rates[system]
            if options and system in options:
                data[side].setdefault("options", {}).update(options[system])
        path.write_text(yaml.safe_dump(data))
    os.environ["COMMERCE_SYNC_PAIRINGS_DIR"] = str(pairings)


def table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: " | ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(head), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows])


def max_in_window(stamps: list[float], window: float = 60.0) -> int:
    """The most calls in any `window` seconds (what an API's rolling limit counts)."""
    stamps = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while t - stamps[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def sku_mappings(home: Path, pairing: str, n: int, channel_prefix: str) -> None:
    """A private copy of the mappings with `n` generated SKUs for `pairing` (channel SKU
    `<channel_prefix>-000001`, master `CS-000001`), pointed at by COMMERCE_SYNC_MAPPINGS_DIR."""
    import csv

    target = home / "mappings"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ROOT / "include" / "mappings", target)
    with (target / pairing / "skus.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["channel_sku", "master_sku", "name"])
        w.writerows([f"{channel_prefix}-{i:06d}", f"CS-{i:06d}", f"Product {i}"] for i in range(n))
    os.environ["COMMERCE_SYNC_MAPPINGS_DIR"] = str(target)


def stock_run(pairing: str, run_id: str, *, full: bool = False) -> dict:
    """One stock_out run through its steps, each timed: {times, pushed, listings}."""
    from commerce_sync.flows import stock_out
    from commerce_sync.runtime import FlowContext

    times = {}
    with FlowContext.for_pairing(pairing) as ctx:
        t = time.perf_counter()
        extracted = stock_out.extract(ctx, run_id)
        times["extract"] = time.perf_counter() - t
        t = time.perf_counter()
        gated = stock_out.gate(ctx, run_id, extracted)
        times["gate"] = time.perf_counter() - t
        t = time.perf_counter()
        pushed = stock_out.push(ctx, run_id, gated, full=full)
        times["push"] = time.perf_counter() - t
    times["total"] = sum(times.values())
    return {"times": times, "pushed": pushed, "listings": extracted["listings"]}

