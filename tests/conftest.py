"""Shared fixtures: a fresh PostgreSQL database per test, free loopback ports, ledger URLs.

In CI (CI=true) a PostgreSQL that cannot be reached fails the tests that need it; locally it skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import hypothesis  # noqa: F401 - loaded before Airflow: its lazy import at session end trips on Airflow's AST hooks
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Airflow reads its configuration when first imported: point it at a throw-away home, this
# project's dags/ and plugins/, before any test imports it. Deadlines are left off for in-process
# runs (dag.test() crashes after a successful run of a DAG with a deadline: apache/airflow#73428).
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="commerce_sync_airflow_"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["COMMERCE_SYNC_DEADLINES"] = "off"
os.environ["COMMERCE_SYNC_HOME"] = str(ROOT)
os.environ["GX_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("PYTHONPATH", str(ROOT / "plugins"))
# the ledger seals buyers' personal data (ledger/sealing.py): one key for the session and the
# worker processes the crash tests start
if not os.environ.get("COMMERCE_SYNC_SEAL_KEY"):
    from cryptography.fernet import Fernet

    os.environ["COMMERCE_SYNC_SEAL_KEY"] = Fernet.generate_key().decode()

PG_ADMIN_URL = os.environ.get("COMMERCE_SYNC_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_pairings(target: Path) -> Path:
    """This test's copy of the pairing files, with the daily full-resync hours off: a test run
    at 03:00 or 04:00 UTC must not turn an incremental push into a full one."""
    import yaml

    target.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "include" / "pairings").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for section in ("stock", "catalogue"):
            if isinstance(data.get(section), dict) and "full_resync_hour_utc" in data[section]:
                data[section]["full_resync_hour_utc"] = None
        (target / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def _pg_admin_engine():
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def _require_pg():
    from sqlalchemy import text

    try:
        eng = _pg_admin_engine()
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        return eng
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no PostgreSQL"
        msg = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def pg_url():
    """A brand-new, empty PostgreSQL database for this test; dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = _require_pg()
    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name)
    rendered = url.render_as_string(hide_password=False)
    try:
        yield rendered
    finally:
        from commerce_sync.ledger.db import dispose

        dispose(rendered)  # close the pooled connections before the database goes
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    """The ledger URL on both back-ends: every ledger test runs twice."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def loopback_port():
    return free_port()


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata DB (SQLite in the throw-away home), migrated once per session."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


# -- the fault matrix's table (tests/reliability/cells.py) ------------------------------------------
# collected from the reports, so it is whole when the cells ran in pytest-xdist's workers
_MATRIX: dict[tuple[str, str, str], str] = {}


def pytest_runtest_logreport(report):
    if report.when == "call":
        for name, value in getattr(report, "user_properties", ()):
            if name == "fault_matrix":
                pairing, flow, fault, verdict = value
                _MATRIX[(pairing, flow, fault)] = verdict


def pytest_terminal_summary(terminalreporter):
    if _MATRIX:
        from tests.reliability.matrix import table

        terminalreporter.write_sep("=", "fault matrix: flow x fault -> held / broken")
        terminalreporter.write_line(table(_MATRIX))

