"""The ledger's size per table and the age of its oldest row (for `health` and the run report)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime, MetaData, column, func, select, table
from sqlalchemy.engine import Connection, Engine

# the column that dates a row, where the first timestamp column is not the right one
AGE_COLUMNS = {
    "quarantine": "first_seen",
    "run_report": "started_at",
    "api_call_slot": "slot",  # epoch seconds
    "api_budget": "last_slot",
    "erasure_log": "done_at",
}
SKIP = ("ledger_alembic_version",)


# the catalogues read as Core tables, so every value is bound and no SQL is written as text
_PG_CLASS = table("pg_class", column("oid"), column("relname"), column("relkind"), column("relnamespace"))
_PG_NAMESPACE = table("pg_namespace", column("oid"), column("nspname"))
_DBSTAT = table("dbstat", column("name"), column("pgsize"))
_SQLITE_MASTER = table("sqlite_master", column("name"), column("tbl_name"), column("type"))


def _bytes_postgresql(conn: Connection, names: list[str]) -> dict[str, int]:
    c, n = _PG_CLASS.c, _PG_NAMESPACE.c
    rows = conn.execute(
        select(c.relname, func.pg_total_relation_size(c.oid))
        .select_from(_PG_CLASS.join(_PG_NAMESPACE, n.oid == c.relnamespace))
        .where(c.relkind == "r", n.nspname == func.current_schema(), c.relname.in_(names))
    )
    return {name: int(size) for name, size in rows}


def _bytes_sqlite(conn: Connection, names: list[str]) -> dict[str, int]:
    """Pages of each table and its indexes (the dbstat table, in every stock SQLite build
    Python ships with; without it, no figure rather than a wrong one)."""
    try:
        pages = dict(conn.execute(select(_DBSTAT.c.name, func.sum(_DBSTAT.c.pgsize)).group_by(_DBSTAT.c.name)).all())
    except Exception:  # noqa: BLE001 - SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
        return {}
    m = _SQLITE_MASTER.c
    owner = dict(conn.execute(select(m.name, m.tbl_name).where(m.type.in_(("table", "index")))).all())
    out: dict[str, int] = {}
    for name, size in pages.items():
        table = owner.get(name)
        if table in names:
            out[table] = out.get(table, 0) + int(size or 0)
    return out


def _age_column(table):
    name = AGE_COLUMNS.get(table.name)
    if name is not None and name in table.c:
        return table.c[name]
    stamps = [c for c in table.columns if isinstance(c.type, DateTime)]
    return next((c for c in stamps if not c.nullable), stamps[0] if stamps else None)


def _as_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)  # SQLite keeps no zone


def ledger_sizes(engine: Engine) -> list[dict[str, Any]]:
    """One entry per table, biggest first: rows, bytes on disk (table, indexes and TOAST; None
    where the database cannot say) and the oldest row's time."""
    meta = MetaData()
    meta.reflect(engine)
    tables = [t for name, t in meta.tables.items() if name not in SKIP]
    out = []
    with engine.connect() as conn:
        sizes = (_bytes_postgresql if conn.dialect.name == "postgresql" else _bytes_sqlite)(conn, [t.name for t in tables])
        for table in tables:
            age = _age_column(table)
            if age is not None:
                count, oldest = conn.execute(select(func.count(), func.min(age)).select_from(table)).one()
            else:
                count, oldest = conn.execute(select(func.count()).select_from(table)).scalar_one(), None
            out.append({"table": table.name, "rows": int(count), "bytes": sizes.get(table.name), "oldest": _as_time(oldest)})
    return sorted(out, key=lambda e: (-(e["bytes"] or 0), -e["rows"], e["table"]))


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def format_sizes(entries: list[dict[str, Any]]) -> list[str]:
    total = sum(e["bytes"] or 0 for e in entries)
    lines = [f"Ledger: {human_bytes(total)} in {len(entries)} tables"]
    for e in entries:
        oldest = f"oldest {e['oldest']:%Y-%m-%d %H:%M}" if e["oldest"] else "empty" if not e["rows"] else ""
        lines.append(f"  {e['table']:<18} {e['rows']:>10,} rows {human_bytes(e['bytes']):>10}  {oldest}".rstrip())
    return lines
