"""Deletes and rewrites in small batches that never lock the flows out.

Each batch is its own short transaction. On PostgreSQL the batch's rows are picked with
FOR UPDATE SKIP LOCKED (a row a flow is writing right now is left for the next run, never waited
for) and a lock_timeout bounds any other wait (a batch gives up rather than queue behind a flow:
waiting in the lock queue would make the flows queue behind it). On SQLite, where one writer
holds the file at a time, a batch is the longest a flow waits, and housekeeping pauses between
batches so the flows' writes get in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Table, delete, func, select, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)


class Batching:
    def __init__(self, rows: int = 500, pause_seconds: float = 0.02, lock_timeout_ms: int = 2000):
        self.rows, self.pause_seconds, self.lock_timeout_ms = rows, pause_seconds, lock_timeout_ms

    @classmethod
    def of(cls, settings) -> Batching:
        return cls(settings.batch_rows, settings.pause_seconds, settings.lock_timeout_ms)

    def begin(self, engine: Engine):
        """A transaction for one batch (a context manager yielding the connection)."""
        return _Batch(engine, self.lock_timeout_ms)

    def pause(self) -> None:
        if self.pause_seconds:
            time.sleep(self.pause_seconds)


class _Batch:
    def __init__(self, engine: Engine, lock_timeout_ms: int):
        self.engine, self.lock_timeout_ms = engine, lock_timeout_ms

    def __enter__(self) -> Connection:
        self._cm = self.engine.begin()
        conn = self._cm.__enter__()
        if conn.dialect.name == "postgresql":
            # set_config(..., is_local => true) is SET LOCAL with the value bound
            conn.execute(select(func.set_config("lock_timeout", f"{int(self.lock_timeout_ms)}ms", True)))
        return conn

    def __exit__(self, *exc) -> bool | None:
        return self._cm.__exit__(*exc)


def pick(table: Table, where, limit: int, columns: Iterable | None = None):
    """SELECT of up to `limit` rows matching `where`, skipping rows another transaction holds."""
    cols = list(columns) if columns is not None else list(table.primary_key.columns)
    return select(*cols).where(where).limit(limit).with_for_update(of=table, skip_locked=True)


def _lock_timed_out(exc: OperationalError) -> bool:
    return getattr(exc.orig, "pgcode", None) == "55P03"  # lock_not_available


def delete_in_batches(engine: Engine, table: Table, where, batching: Batching) -> int:
    """Delete every row matching `where`, a batch at a time; the number deleted."""
    pk = list(table.primary_key.columns)
    total = 0
    while True:
        chosen = pick(table, where, batching.rows)
        target = pk[0].in_(chosen.scalar_subquery()) if len(pk) == 1 else tuple_(*pk).in_(chosen)
        try:
            with batching.begin(engine) as conn:
                n = conn.execute(delete(table).where(target)).rowcount
        except OperationalError as exc:
            if not _lock_timed_out(exc):
                raise
            log.warning("housekeeping: %s is locked; its remaining rows wait for the next run", table.name)
            return total
        total += n
        if n < batching.rows:
            return total
        batching.pause()


def rewrite_in_batches(engine: Engine, table: Table, where, columns: Iterable[str], change: Callable[[Any], dict | None], batching: Batching) -> int:
    """For every row matching `where` (walked by primary key, each seen once), change(row) gives
    the new values of some columns, or None to leave the row as it is; the number changed."""
    (pk,) = table.primary_key.columns
    cols = [pk, *(table.c[c] for c in columns if c != pk.name)]
    last = None
    changed = 0
    while True:
        cond = where if last is None else (where & (pk > last))
        query = pick(table, cond, batching.rows, cols).order_by(pk)
        try:
            with batching.begin(engine) as conn:
                rows = conn.execute(query).all()
                in_batch = 0
                for row in rows:
                    values = change(row)
                    if values:
                        conn.execute(update(table).where(pk == row[0]).values(values))
                        in_batch += 1
            changed += in_batch
        except OperationalError as exc:
            if not _lock_timed_out(exc):
                raise
            log.warning("housekeeping: %s is locked; its remaining rows wait for the next run", table.name)
            return changed
        if len(rows) < batching.rows:
            return changed
        last = rows[-1][0]
        batching.pause()
