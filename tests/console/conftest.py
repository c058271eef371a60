"""The ops console in Airflow's own api-server app (airflow.api_fastapi.app.create_app, with this
project's plugin mounted), its metadata DB the session's SQLite, the ledger a PostgreSQL database
of its own, the pairing and mapping files copies (applying a mapping writes the file)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, ROOT, _require_pg, copy_pairings

USERS = "admin:admin,viewer:viewer,ops:user"  # SimpleAuthManager's roles: viewer reads, user edits DAGs


@pytest.fixture(scope="module")
def console_env(airflow_db, tmp_path_factory):
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = _require_pg()
    db = f"cs_console_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    url = make_url(PG_ADMIN_URL).set(database=db).render_as_string(hide_password=False)
    tmp = tmp_path_factory.mktemp("console")
    shutil.copytree(ROOT / "include" / "mappings", tmp / "mappings")
    env = {
        "COMMERCE_SYNC_LEDGER_URL": url,
        "COMMERCE_SYNC_PAIRINGS_DIR": str(copy_pairings(tmp / "pairings")),
        "COMMERCE_SYNC_MAPPINGS_DIR": str(tmp / "mappings"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS,
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield {"ledger_url": url, "mappings": tmp / "mappings", "tmp": tmp}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        from commerce_sync.console import service
        from commerce_sync.ledger.db import dispose

        service._cached_ledger.cache_clear()
        dispose(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


def serialize_dags(dag_ids: list[str]) -> None:
    """Put these DAGs in Airflow's database as the dag-processor would, so runs can be triggered."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    from commerce_sync.factory import build_dag
    from commerce_sync.pairing import load_pairings

    pairings = load_pairings()
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(Path(os.devnull)), collect_dags=False)
    for dag_id in dag_ids:
        key, flow = dag_id.split("__", 1)
        bag.bag_dag(build_dag(pairings[key], flow))
    sync_bag_to_db(bag, "dags-folder", None)
