"""The ledger's settlement operations: which provider files were read (name and checksum), their
rows, and what reconciliation made of each row. Part of `Ledger` (store.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from commerce_sync.ledger.bulk import insert_rows, update_rows
from commerce_sync.ledger.schema import settlement_file, settlement_line, utcnow

IN_CHUNK = 500


class SettlementLedger:
    engine: Engine

    def settlement_files(self, pairing: str) -> list[dict[str, Any]]:
        t = settlement_file
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.id, t.c.name, t.c.checksum, t.c.size, t.c.modified, t.c.status).where(t.c.pairing == pairing).order_by(t.c.id))
            return [dict(r._mapping) for r in rows]

    def record_settlement_file(self, pairing: str, *, name: str, checksum: str, size: int | None, modified: str | None, status: str,
                               period: str, run_id: str, detail: str | None = None, lines: Iterable[dict[str, Any]] = ()) -> int | None:
        """Record one version of a file, with its rows, in one transaction: a file is read whole or
        not at all. Returns its id, or None when that version was recorded already (another run
        read it first). An unreadable version is recorded again with the latest reason."""
        from commerce_sync.ledger.store import _insert

        t = settlement_file
        values = {"pairing": pairing, "name": name, "checksum": checksum, "size": size, "modified": modified, "status": status,
                  "detail": detail, "period": period, "run_id": run_id, "recorded_at": utcnow()}
        with self.engine.begin() as conn:
            found = conn.execute(select(t.c.id, t.c.status).where(t.c.pairing == pairing, t.c.name == name, t.c.checksum == checksum)).first()
            if found is not None and found.status != "unreadable":
                return None
            if found is not None:
                conn.execute(update(t).where(t.c.id == found.id).values(**{k: v for k, v in values.items() if k not in ("pairing", "name", "checksum")}))
                file_id = found.id
            else:
                stmt = _insert(conn, t).values(**values).on_conflict_do_nothing(index_elements=["pairing", "name", "checksum"]).returning(t.c.id)
                file_id = conn.execute(stmt).scalar()
                if file_id is None:
                    return None  # a run beside this one recorded it between our look and our insert
            rows = [{**line, "pairing": pairing, "file_id": file_id, "status": line.get("status", "new"), "updated_at": utcnow()} for line in lines]
            insert_rows(conn, settlement_line, rows)
            conn.execute(update(t).where(t.c.id == file_id).values(lines=len(rows)))
        return file_id

    def settlement_lines(self, pairing: str, *, status: str | None = None, period: str | None = None, reasons: Iterable[str] | None = None,
                         merchant_refs: Iterable[str] | None = None) -> list[dict[str, Any]]:
        t = settlement_line
        q = select(t).where(t.c.pairing == pairing)
        if status is not None:
            q = q.where(t.c.status == status)
        if reasons is not None:
            q = q.where(t.c.reason.in_(list(reasons)))
        if period is not None:
            q = q.where(t.c.period == period)
        with self.engine.connect() as conn:
            if merchant_refs is None:
                return [dict(r._mapping) for r in conn.execute(q.order_by(t.c.file_id, t.c.line_no))]
            refs = [r for r in dict.fromkeys(merchant_refs) if r]
            out: list[dict[str, Any]] = []
            for i in range(0, len(refs), IN_CHUNK):
                out += [dict(r._mapping) for r in conn.execute(q.where(t.c.merchant_ref.in_(refs[i : i + IN_CHUNK])))]
            return out

    def update_settlement_lines(self, rows: list[dict[str, Any]]) -> None:
        """Write what reconciliation made of each row ({"id", "status", "reason", ...}, every row
        naming the same fields)."""
        now = utcnow()
        with self.engine.begin() as conn:
            update_rows(conn, settlement_line, [{**row, "updated_at": now} for row in rows])

    def settlement_file_events(self, pairing: str, period: str) -> list[dict[str, Any]]:
        """Files recorded in `period`, for its report: read, changed, duplicate or unreadable."""
        t = settlement_file
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.pairing == pairing, t.c.period == period).order_by(t.c.id))
            return [dict(r._mapping) for r in rows]
