"""Many rows into one ledger table at once.

On PostgreSQL rows go in through COPY: a 100,000-SKU catalogue's first mapping import and its
first stock push write 100,000 rows each, which took SQLAlchemy's multi-row INSERT about 10 s a
table and take COPY about 1 s. Statements are composed with psycopg2's `sql` module (quoted
identifiers, no formatted text) and values travel as COPY data, never as SQL. Elsewhere (SQLite
in unit tests) the same calls fall back to SQLAlchemy's executemany.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Table
from sqlalchemy.engine import Connection

from commerce_sync.jsonutil import dumps

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text_of(column) -> Callable[[Any], str]:
    """How one column's values are written in COPY's text format (NULL is handled by the caller)."""
    if isinstance(column.type, JSON):
        return lambda value: dumps(value).translate(_ESCAPES)
    if isinstance(column.type, Boolean):
        return lambda value: "t" if value else "f"
    if isinstance(column.type, DateTime):
        return lambda value: value.isoformat() if isinstance(value, (datetime, date)) else str(value).translate(_ESCAPES)
    return lambda value: str(value).translate(_ESCAPES)


def _with_defaults(table: Table, rows: list[dict]) -> tuple[list, list[dict]]:
    """The columns to send (those any row names, plus those with a Python-side default, which
    COPY would not apply) and the rows with those defaults filled in."""
    named = {key for row in rows for key in row}
    defaults = {
        c.name: c.default
        for c in table.columns
        if c.name not in named and c.default is not None and (c.default.is_scalar or c.default.is_callable)
    }
    if defaults:
        filled = []
        for row in rows:
            row = dict(row)
            for name, default in defaults.items():
                row[name] = default.arg if default.is_scalar else default.arg(None)
            filled.append(row)
        rows = filled
    columns = [c for c in table.columns if c.name in named or c.name in defaults]
    return columns, rows


def _copy_into(cursor, table_name: str, columns: list, rows: list[dict]) -> None:
    from psycopg2 import sql

    data = io.StringIO()
    texts = [(c.name, _text_of(c)) for c in columns]
    for row in rows:
        data.write("\t".join(r"\N" if (value := row.get(name)) is None else text(value) for name, text in texts))
        data.write("\n")
    data.seek(0)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table_name), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns))
    cursor.copy_expert(statement, data)


def insert_rows(conn: Connection, table: Table, rows: list[dict]) -> None:
    """INSERT every row, inside `conn`'s transaction."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    columns, rows = _with_defaults(table, rows)
    with conn.connection.driver_connection.cursor() as cursor:
        _copy_into(cursor, table.name, columns, rows)


def upsert_rows(conn: Connection, table: Table, rows: list[dict], keys: list[str], update_cols: Iterable[str]) -> None:
    """Insert every row; where `keys` clash, update `update_cols`. When several rows share a key,
    the last one wins (as it would row by row)."""
    if not rows:
        return
    rows = list({tuple(row[k] for k in keys): row for row in rows}.values())
    update_cols = list(update_cols)
    if conn.dialect.name != "postgresql":
        from sqlalchemy.dialects import sqlite

        stmt = sqlite.insert(table)
        stmt = (stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update_cols}) if update_cols
                else stmt.on_conflict_do_nothing(index_elements=keys))
        for start in range(0, len(rows), 5000):
            conn.execute(stmt, rows[start : start + 5000])
        return
    from psycopg2 import sql

    columns, rows = _with_defaults(table, rows)
    scratch = f"bulk_{table.name}_{uuid.uuid4().hex[:8]}"
    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    with conn.connection.driver_connection.cursor() as cursor:
        # a scratch table shaped like the target, gone at commit: COPY cannot upsert by itself
        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(sql.Identifier(scratch), sql.Identifier(table.name))
        )
        _copy_into(cursor, scratch, columns, rows)
        conflict = sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in update_cols)
        ) if update_cols else sql.SQL("DO NOTHING")
        cursor.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
                sql.Identifier(table.name), names, names, sql.Identifier(scratch), sql.SQL(", ").join(sql.Identifier(k) for k in keys), conflict
            )
        )


def update_rows(conn: Connection, table: Table, rows: list[dict], key: str = "id") -> None:
    """UPDATE many rows by `key`, each with its own values (every row names the same columns).
    On PostgreSQL the values go in by COPY and one UPDATE ... FROM applies them: a 100,000-row
    settlement month is one statement, not 100,000."""
    if not rows:
        return
    cols = [c for c in rows[0] if c != key]
    if conn.dialect.name != "postgresql":
        from sqlalchemy import bindparam, update

        stmt = update(table).where(table.c[key] == bindparam("_key")).values({c: bindparam(c) for c in cols})
        conn.execute(stmt, [{**{c: row[c] for c in cols}, "_key": row[key]} for row in rows])
        return
    from psycopg2 import sql

    scratch = f"bulk_{table.name}_{uuid.uuid4().hex[:8]}"
    names = [key, *cols]
    with conn.connection.driver_connection.cursor() as cursor:
        # CREATE TABLE AS copies the column types but not NOT NULL: the scratch rows name only some columns
        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                sql.Identifier(scratch), sql.SQL(", ").join(sql.Identifier(n) for n in names), sql.Identifier(table.name))
        )
        _copy_into(cursor, scratch, [table.c[n] for n in names], rows)
        cursor.execute(
            sql.SQL("UPDATE {} AS t SET {} FROM {} AS s WHERE t.{} = s.{}").format(
                sql.Identifier(table.name),
                sql.SQL(", ").join(sql.SQL("{} = s.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in cols),
                sql.Identifier(scratch), sql.Identifier(key), sql.Identifier(key),
            )
        )
