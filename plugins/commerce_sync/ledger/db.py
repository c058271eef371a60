"""Where the ledger lives, and bringing its schema up to date.

Resolution order for the URL: COMMERCE_SYNC_LEDGER_URL; the Airflow connection `integration_db`
(PostgreSQL in production); else an SQLite file in AIRFLOW_HOME (the quick start's embedded default).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from sqlalchemy import create_engine, event, func, inspect, select
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
_engines: dict[str, Engine] = {}
_lock = threading.Lock()
_migrated: set[str] = set()
MIGRATION_LOCK = 0x636F6D6D  # pg advisory lock key of the ledger's migrations ("comm")


def ledger_url(conn_id: str = "integration_db") -> str:
    url = os.environ.get("COMMERCE_SYNC_LEDGER_URL")
    if url:
        return url
    conn = _airflow_connection(conn_id)
    if conn is not None:
        extra = conn.extra_dejson or {}
        if extra.get("sqlalchemy_url"):
            return extra["sqlalchemy_url"]
        if conn.conn_type in ("postgres", "postgresql"):
            from sqlalchemy.engine import URL

            return URL.create(
                "postgresql+psycopg2",
                username=conn.login,
                password=conn.password,
                host=conn.host,
                port=conn.port,
                database=conn.schema,
            ).render_as_string(hide_password=False)
        raise ValueError(f"connection {conn_id!r} has type {conn.conn_type!r}; use postgres or extra.sqlalchemy_url")
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return f"sqlite:///{home / 'commerce_sync_ledger.db'}"


def _airflow_connection(conn_id: str):
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # the ledger works without Airflow (CLI, unit tests)
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - "not defined" comes in several exception types
        return None


def get_engine(url: str | None = None) -> Engine:
    url = url or ledger_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            from commerce_sync.jsonutil import loads
            from commerce_sync.redact import scrubbed_json

            # payloads keep their money exact through the JSON columns, and every JSON value
            # written passes the redaction boundary (known secrets cut out) as it is serialised
            engine = create_engine(url, pool_pre_ping=True, json_serializer=scrubbed_json, json_deserializer=loads)
            if engine.dialect.name == "sqlite":
                _tune_sqlite(engine)
            _engines[url] = engine
        return engine


def _tune_sqlite(engine: Engine) -> None:
    # several Airflow task processes share the file: WAL lets readers and one writer coexist
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()


def migrate(url: str | None = None) -> None:
    """Bring the ledger to the newest schema; cheap when it is already there."""
    from alembic import command
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    engine = get_engine(url)
    key = engine.url.render_as_string(hide_password=False)
    if key in _migrated:
        return
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    with engine.connect() as conn:
        current = MigrationContext.configure(conn, opts={"version_table": "ledger_alembic_version"}).get_current_revision()
    if current != head:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line of ours says what happened
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # a fresh deployment's first tasks start side by side (extract and accept, two
                # workers): one migrates, the others wait here and then find the schema done
                conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
                current = MigrationContext.configure(conn, opts={"version_table": "ledger_alembic_version"}).get_current_revision()
            if current != head:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                log.info("ledger migrated from %s to %s", current, head)
    _migrated.add(key)


def dispose(url: str) -> None:
    with _lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        _migrated.discard(engine.url.render_as_string(hide_password=False))
        engine.dispose()


def tables(url: str | None = None) -> set[str]:
    return set(inspect(get_engine(url)).get_table_names())
