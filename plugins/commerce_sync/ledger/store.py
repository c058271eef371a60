"""The ledger's operations, each its own short transaction. All SQL is built by SQLAlchemy with
bound parameters; upserts go through one helper that picks the dialect's ON CONFLICT.

What is written passes `commerce_sync.redact` on the way in (a boundary): texts (reasons, run
details, reports, the payload log, notes) through `scrub`, which also masks the value after a
credential's name; records kept as data through `scrub_data` (payout matches, cached reference
lists) or, in the JSON columns (staged and quarantined payloads), the engine's serializer
(`redact.scrubbed_json`, db.py): known secret values cut out, for one substring search when none
is there."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from commerce_sync.ledger.bulk import upsert_rows
from commerce_sync.redact import register_secrets, scrub, scrub_data, scrub_text
from commerce_sync.ledger.db import get_engine, ledger_url, migrate
from commerce_sync.ledger.settlements import SettlementLedger
from commerce_sync.ledger.schema import (
    RUN_FIELDS,
    api_budget,
    api_call_slot,
    catalogue_sku,
    mapping,
    mapping_history,
    order_link,
    outbox,
    payload_log,
    payout_match,
    operator_action,
    personal_data_access,
    report_file,
    quarantine,
    run_report,
    staged_record,
    stock_snapshot,
    utcnow,
    watermark,
    webhook_event,
    work_claim,
)

IN_CHUNK = 500  # keeps IN (...) lists well inside every driver's parameter limit


@dataclass(frozen=True)
class StagedRecord:
    record_key: str
    payload: Any


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    pairing: str
    flow: str
    record_key: str
    payload: Any
    reasons: list[dict[str, str]]
    status: str
    first_seen: datetime
    last_seen: datetime
    attempts: int
    last_run_id: str | None
    resolved_at: datetime | None
    resolution_note: str | None
    resolved_by: str | None


def _insert(conn: Connection, table):
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def upsert(conn: Connection, table, values: dict, keys: list[str], update_cols: Iterable[str] | None = None) -> bool:
    """Insert `values`; on a clash of `keys` update `update_cols` (or do nothing). True if inserted."""
    stmt = _insert(conn, table).values(**values)
    cols = list(update_cols or [])
    if cols:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in cols})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    return conn.execute(stmt).rowcount > 0


def relaxed_commit(conn: Connection) -> None:
    """For rows that are a witness or a budget, never a booking (payload log, API call slots):
    PostgreSQL commits them without waiting for the disk. Other sessions see them at once; a
    crash of PostgreSQL itself could lose the last fraction of a second of them, which costs a
    log line or one call too many (answered 429 and retried), never a sale. Saves the flush that
    made each of a stock run's 1,300 page reads wait."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def _chunks(items: list, size: int = IN_CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Ledger(SettlementLedger):
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def from_url(cls, url: str | None = None, *, migrate_schema: bool = True) -> Ledger:
        url = url or ledger_url()
        from sqlalchemy.engine import make_url

        register_secrets([make_url(url).password])  # a driver's error may quote its connection string
        if migrate_schema:
            migrate(url)
        return cls(get_engine(url))

    def dispose(self) -> None:
        from commerce_sync.ledger.db import dispose

        dispose(self.engine.url.render_as_string(hide_password=False))

    # -- staging ----------------------------------------------------------------------------
    def stage(self, pairing: str, flow: str, run_id: str, items: Iterable[tuple[str, Any]]) -> int:
        count = 0
        with self.engine.begin() as conn:
            for key, payload in items:
                upsert(
                    conn,
                    staged_record,
                    {"pairing": pairing, "flow": flow, "run_id": run_id, "record_key": key, "payload": payload, "staged_at": utcnow()},
                    ["pairing", "flow", "run_id", "record_key"],
                    ["payload", "staged_at"],
                )
                count += 1
        return count

    def staged(self, pairing: str, flow: str, run_id: str) -> list[StagedRecord]:
        t = staged_record
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.record_key, t.c.payload).where(t.c.pairing == pairing, t.c.flow == flow, t.c.run_id == run_id).order_by(t.c.id)
            )
            return [StagedRecord(r.record_key, r.payload) for r in rows]

    def staged_since(self, pairing: str, flow: str, since: datetime) -> list[StagedRecord]:
        """Every record of `flow` staged since `since`, whatever the run (oldest first)."""
        t = staged_record
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.record_key, t.c.payload).where(t.c.pairing == pairing, t.c.flow == flow, t.c.staged_at >= since).order_by(t.c.id))
            return [StagedRecord(r.record_key, r.payload) for r in rows]

    def clear_staged(self, pairing: str, flow: str, older_than: datetime) -> int:
        t = staged_record
        with self.engine.begin() as conn:
            return conn.execute(delete(t).where(t.c.pairing == pairing, t.c.flow == flow, t.c.staged_at < older_than)).rowcount

    # -- links ------------------------------------------------------------------------------
    def link_mark(self, pairing: str, kind: str) -> int:
        """The newest link's sequence number now (0 for none): with `links(..., up_to=mark)`, the
        links that were there when it was read (stock_out reads it before the master's stock, so
        a sale linked later may not be in that stock yet)."""
        t = order_link
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(t.c.id), 0)).where(t.c.pairing == pairing, t.c.kind == kind)).scalar_one())

    def links(self, pairing: str, kind: str, channel_refs: Iterable[str], up_to: int | None = None, made_by: str | None = None) -> dict[str, str]:
        """Master ids of those of `channel_refs` that are linked; with `up_to`, only links up to
        that link_mark; with `made_by`, only links that run wrote (what an earlier attempt of the
        same run booked: its acknowledgement may never have reached the channel)."""
        refs = [r for r in dict.fromkeys(channel_refs) if r is not None]
        t = order_link
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(refs):
                query = select(t.c.channel_ref, t.c.master_id).where(t.c.pairing == pairing, t.c.kind == kind, t.c.channel_ref.in_(chunk))
                if up_to is not None:
                    query = query.where(t.c.id <= up_to)
                if made_by is not None:
                    query = query.where(t.c.run_id == made_by)
                rows = conn.execute(query)
                found.update({r.channel_ref: r.master_id for r in rows})
        return found

    def add_link(
        self, pairing: str, kind: str, channel_ref: str, master_id: str, master_ref: str | None = None, run_id: str | None = None, channel_id: str | None = None
    ) -> bool:
        with self.engine.begin() as conn:
            return upsert(
                conn,
                order_link,
                {"pairing": pairing, "kind": kind, "channel_ref": channel_ref, "master_id": master_id, "master_ref": master_ref,
                 "run_id": run_id, "channel_id": channel_id, "created_at": utcnow()},
                ["pairing", "kind", "channel_ref"],
            )

    def links_by_master(self, pairing: str, kind: str, master_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """master_id -> {channel_ref, channel_id, master_ref}: from an ERP record back to the channel's."""
        ids = [m for m in dict.fromkeys(master_ids) if m is not None]
        t = order_link
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids):
                rows = conn.execute(select(t.c.master_id, t.c.channel_ref, t.c.channel_id, t.c.master_ref).where(t.c.pairing == pairing, t.c.kind == kind, t.c.master_id.in_(chunk)))
                found.update({r.master_id: {"channel_ref": r.channel_ref, "channel_id": r.channel_id, "master_ref": r.master_ref} for r in rows})
        return found

    def linked_master_ids(self, pairing: str, kind: str) -> set[str]:
        t = order_link
        with self.engine.connect() as conn:
            return set(conn.execute(select(t.c.master_id).where(t.c.pairing == pairing, t.c.kind == kind)).scalars())

    # -- claims: one run at a time may create a given record ---------------------------------
    def claim(self, pairing: str, kind: str, keys: Iterable[str], run_id: str, stale_after: timedelta = timedelta(minutes=30)) -> set[str]:
        """Claim `keys` for `run_id`; returns those this run now holds.

        Runs overlap (windows overlap, backfills run several at once): without a claim two runs
        can both find an order missing and both create it. A claim is this run's if it inserts
        it, already held it (a retry of the same run), or takes over one older than
        `stale_after` (its run died; the ERP lookup that follows still prevents a duplicate).
        """
        t = work_claim
        now = utcnow()
        held: set[str] = set()
        with self.engine.begin() as conn:
            for key in dict.fromkeys(keys):
                if upsert(conn, t, {"pairing": pairing, "kind": kind, "key": key, "run_id": run_id, "claimed_at": now}, ["pairing", "kind", "key"]):
                    held.add(key)
                    continue
                took = conn.execute(
                    update(t)
                    .where(t.c.pairing == pairing, t.c.kind == kind, t.c.key == key)
                    .where((t.c.run_id == run_id) | (t.c.claimed_at < now - stale_after))
                    .values(run_id=run_id, claimed_at=now)
                ).rowcount
                if took:
                    held.add(key)
        return held

    def release(self, pairing: str, kind: str, keys: Iterable[str], run_id: str) -> None:
        t = work_claim
        with self.engine.begin() as conn:
            for chunk in _chunks(list(keys)):
                conn.execute(delete(t).where(t.c.pairing == pairing, t.c.kind == kind, t.c.run_id == run_id, t.c.key.in_(chunk)))

    # -- a shared API budget ----------------------------------------------------------------
    def reserve_call(self, account: str, calls: int, per_seconds: float, margin: float = 0.5, now: float | None = None) -> float:
        """Book the account's next call slot; returns the seconds to wait before calling.

        A sliding log, as the APIs count: a call may start once fewer than `calls` slots lie in
        the `per_seconds` before it (plus `margin`, so a call that left a little late cannot
        make one too many in the API's window). The first statement writes the account's row,
        which serialises bookings across processes (a row lock in PostgreSQL, the write lock in
        SQLite). Clocks: the workers' own (one host, or NTP-synced hosts)."""
        now = time.time() if now is None else now
        log = api_call_slot
        with self.engine.begin() as conn:
            relaxed_commit(conn)
            upsert(conn, api_budget, {"account": account, "last_slot": now}, ["account"], ["last_slot"])
            nth = conn.execute(
                select(log.c.slot).where(log.c.account == account).order_by(log.c.slot.desc()).offset(calls - 1).limit(1)
            ).scalar()
            slot = now if nth is None else max(now, nth + per_seconds + margin)
            conn.execute(log.insert().values(account=account, slot=slot))
            conn.execute(delete(log).where(log.c.account == account, log.c.slot < now - per_seconds - margin))
        return slot - now

    # -- quarantine -------------------------------------------------------------------------
    def quarantine(self, pairing: str, flow: str, record_key: str, payload: Any, reasons: list[dict], run_id: str) -> None:
        t = quarantine
        now = utcnow()
        reasons = scrub(reasons)  # the payload: as the JSON column serialises it (db.py)
        with self.engine.begin() as conn:
            row = conn.execute(select(t.c.id, t.c.status).where(t.c.pairing == pairing, t.c.flow == flow, t.c.record_key == record_key)).first()
            if row is None:
                conn.execute(
                    t.insert().values(
                        pairing=pairing, flow=flow, record_key=record_key, payload=payload, reasons=reasons, status="open",
                        first_seen=now, last_seen=now, attempts=1, last_run_id=run_id,
                    )
                )
            elif row.status == "discarded":
                # ops decided to drop it, with a reason: keep that decision, note we saw it again
                conn.execute(update(t).where(t.c.id == row.id).values(last_seen=now))
            else:
                conn.execute(
                    update(t)
                    .where(t.c.id == row.id)
                    .values(status="open", payload=payload, reasons=reasons, last_seen=now, last_run_id=run_id, attempts=t.c.attempts + 1,
                            resolved_at=None, resolution_note=None, resolved_by=None)
                )

    def _rows(self, where) -> list[QuarantineRow]:
        with self.engine.connect() as conn:
            return [QuarantineRow(**r._mapping) for r in conn.execute(select(quarantine).where(where).order_by(quarantine.c.id))]

    def open_quarantine(self, pairing: str | None, flow: str | None = None) -> list[QuarantineRow]:
        """Open rows of a pairing (None: of every pairing), oldest first."""
        t = quarantine
        cond = t.c.status == "open"
        if pairing is not None:
            cond = and_(cond, t.c.pairing == pairing)
        if flow:
            cond = and_(cond, t.c.flow == flow)
        return self._rows(cond)

    def open_quarantine_counts(self, pairing: str) -> dict[str, tuple[int, datetime]]:
        """flow -> (open records, the oldest's first_seen), without reading (or unsealing) a payload."""
        t = quarantine
        q = select(t.c.flow, func.count(), func.min(t.c.first_seen)).where(t.c.pairing == pairing, t.c.status == "open").group_by(t.c.flow)
        with self.engine.connect() as conn:
            return {flow: (count, oldest) for flow, count, oldest in conn.execute(q)}

    def get_quarantine(self, id: int) -> QuarantineRow | None:
        rows = self._rows(quarantine.c.id == id)
        return rows[0] if rows else None

    def quarantine_by_key(self, pairing: str, flow: str, record_key: str) -> QuarantineRow | None:
        t = quarantine
        rows = self._rows(and_(t.c.pairing == pairing, t.c.flow == flow, t.c.record_key == record_key))
        return rows[0] if rows else None

    def resolve_quarantine(self, pairing: str, flow: str, record_key: str, note: str = "loaded on replay", by: str = "commerce_sync") -> bool:
        t = quarantine
        with self.engine.begin() as conn:
            res = conn.execute(
                update(t)
                .where(t.c.pairing == pairing, t.c.flow == flow, t.c.record_key == record_key, t.c.status == "open")
                .values(status="replayed", resolved_at=utcnow(), resolution_note=scrub_text(note), resolved_by=by)
            )
            return res.rowcount > 0

    def discard_quarantine(self, id: int, reason: str, by: str) -> bool:
        if not reason or not reason.strip():
            raise ValueError("discarding a quarantined record needs a reason")
        t = quarantine
        with self.engine.begin() as conn:
            res = conn.execute(
                update(t).where(t.c.id == id, t.c.status == "open").values(status="discarded", resolved_at=utcnow(), resolution_note=scrub_text(reason), resolved_by=by)
            )
            return res.rowcount > 0

    def record_access(self, pairing: str, subject: str, record_id: object, record_key: str | None, by: str, action: str = "reveal") -> None:
        """Note that `by` opened buyers' personal data of one row (e.g. quarantine show --reveal)."""
        with self.engine.begin() as conn:
            conn.execute(personal_data_access.insert().values(
                pairing=pairing, subject=subject, record_id=str(record_id), record_key=record_key, action=action, accessed_by=by, accessed_at=utcnow(),
            ))

    def accesses(self, pairing: str | None = None) -> list[dict[str, Any]]:
        t = personal_data_access
        q = select(t) if pairing is None else select(t).where(t.c.pairing == pairing)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(t.c.id))]

    def record_action(self, pairing: str, flow: str, action: str, subject: str | None, detail: str | None, by: str) -> None:
        """A person's action from the ops console (a replay request), kept with who and when."""
        with self.engine.begin() as conn:
            conn.execute(operator_action.insert().values(
                pairing=pairing, flow=flow, action=action, subject=subject, detail=scrub_text(detail) if detail else None, done_by=by, done_at=utcnow(),
            ))

    def actions(self, pairing: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        t = operator_action
        q = select(t) if pairing is None else select(t).where(t.c.pairing == pairing)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(t.c.id.desc()).limit(limit))]

    # -- watermarks -------------------------------------------------------------------------
    def get_watermark(self, pairing: str, flow: str, name: str) -> str | None:
        t = watermark
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.value).where(t.c.pairing == pairing, t.c.flow == flow, t.c.name == name)).scalar()

    def set_watermark(self, pairing: str, flow: str, name: str, value: str) -> None:
        with self.engine.begin() as conn:
            upsert(conn, watermark, {"pairing": pairing, "flow": flow, "name": name, "value": scrub_data(value), "updated_at": utcnow()}, ["pairing", "flow", "name"], ["value", "updated_at"])

    def cached(self, pairing: str, scope: str, name: str, max_age: timedelta, load: Callable[[], Any]) -> Any:
        """A vendor's reference list (a carrier list, say) read at most once per `max_age` across
        runs and processes: kept as JSON in the watermark table under flow = `scope`."""
        t = watermark
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.value, t.c.updated_at).where(t.c.pairing == pairing, t.c.flow == scope, t.c.name == name)).first()
        if row is not None:
            updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=timezone.utc)  # SQLite drops the zone
            if utcnow() - updated < max_age:
                return json.loads(row.value)
        value = load()
        self.set_watermark(pairing, scope, name, json.dumps(value, sort_keys=True, default=str))
        return value

    # -- webhook events (commerce_sync/webhooks.py) -----------------------------------------
    def record_webhook(self, pairing: str, system: str, body_sha256: str, wakes: list[str]) -> int:
        with self.engine.begin() as conn:
            return conn.execute(webhook_event.insert().values(pairing=pairing, system=system, body_sha256=body_sha256, wakes=list(wakes),
                                                              received_at=utcnow())).inserted_primary_key[0]

    def webhook_posted(self, id: int, asset_event_id: int | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(webhook_event).where(webhook_event.c.id == id).values(asset_event_id=asset_event_id))

    def webhook_events(self, pairing: str | None = None) -> list[dict[str, Any]]:
        q = select(webhook_event) if pairing is None else select(webhook_event).where(webhook_event.c.pairing == pairing)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(webhook_event.c.id))]

    # -- run reports ------------------------------------------------------------------------
    def record_run(self, pairing: str, flow: str, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(RUN_FIELDS)
        if unknown:
            raise ValueError(f"unknown run report fields: {sorted(unknown)}")
        fields = scrub(fields)
        with self.engine.begin() as conn:
            upsert(conn, run_report, {"pairing": pairing, "flow": flow, "run_id": run_id, **fields}, ["pairing", "flow", "run_id"], list(fields))

    def runs(self, pairing: str, flow: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        t = run_report
        q = select(t).where(t.c.pairing == pairing)
        if flow:
            q = q.where(t.c.flow == flow)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(t.c.id.desc()).limit(limit))]

    def activity_since(self, pairing: str, since: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Runs started and quarantine rows first seen since `since` (no payload is read or
        unsealed): what the console's charts count per hour."""
        r, q = run_report, quarantine
        with self.engine.connect() as conn:
            runs = conn.execute(select(r.c.flow, r.c.started_at, r.c.loaded, r.c.details).where(r.c.pairing == pairing, r.c.started_at >= since)
                                .order_by(r.c.started_at))
            runs = [dict(x._mapping) for x in runs]
            held = conn.execute(select(q.c.flow, q.c.first_seen, q.c.resolved_at).where(
                q.c.pairing == pairing, (q.c.resolved_at.is_(None)) | (q.c.resolved_at >= since)))
            return runs, [dict(x._mapping) for x in held]

    # -- payload log ------------------------------------------------------------------------
    def log_payload(self, entry: dict[str, Any]) -> None:
        cols = {c.name for c in payload_log.columns} - {"id"}
        values = {k: v for k, v in entry.items() if k in cols}
        for key in ("request_body", "response_body", "error"):
            if values.get(key) is not None and not isinstance(values[key], str):
                values[key] = str(values[key])
        values = scrub(values)  # the client redacted it with its own secrets; this adds every other
        values.setdefault("logged_at", utcnow())
        with self.engine.begin() as conn:
            relaxed_commit(conn)
            conn.execute(payload_log.insert().values(**values))

    def payloads(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(payload_log).order_by(payload_log.c.id.desc()).limit(limit))]

    # -- stock snapshot ---------------------------------------------------------------------
    def pushed_stock(self, pairing: str) -> dict[str, int]:
        t = stock_snapshot
        with self.engine.connect() as conn:
            return {r.sku: r.quantity for r in conn.execute(select(t.c.sku, t.c.quantity).where(t.c.pairing == pairing))}

    def record_pushed_stock(self, pairing: str, quantities: dict[str, int], run_id: str) -> None:
        now = utcnow()
        rows = [{"pairing": pairing, "sku": sku, "quantity": qty, "run_id": run_id, "pushed_at": now} for sku, qty in quantities.items()]
        with self.engine.begin() as conn:
            upsert_rows(conn, stock_snapshot, rows, ["pairing", "sku"], ["quantity", "run_id", "pushed_at"])  # 100,000 rows: COPY

    # -- the product master's SKUs (catalogue_out) -------------------------------------------
    def record_master_skus(self, pairing: str, rows: list[dict[str, Any]], run_id: str) -> None:
        """Upsert {sku, product_ref, active, modified_at} rows as read from the master in `run_id`."""
        now = utcnow()
        values = [{"pairing": pairing, "run_id": run_id, "seen_at": now, **row} for row in rows]
        with self.engine.begin() as conn:
            upsert_rows(conn, catalogue_sku, values, ["pairing", "sku"], ["product_ref", "active", "modified_at", "run_id", "seen_at"])

    def forget_master_skus(self, pairing: str, except_run: str) -> int:
        """After a whole read of the master: drop the SKUs that read did not find (deleted there)."""
        t = catalogue_sku
        with self.engine.begin() as conn:
            return conn.execute(delete(t).where(t.c.pairing == pairing, t.c.run_id != except_run)).rowcount

    def master_skus(self, pairing: str) -> dict[str, dict[str, Any]]:
        """Master SKU -> {product_ref, active}."""
        t = catalogue_sku
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.sku, t.c.product_ref, t.c.active).where(t.c.pairing == pairing))
            return {r.sku: {"product_ref": r.product_ref, "active": bool(r.active)} for r in rows}

    # -- payouts and reports ----------------------------------------------------------------
    def record_payout_match(self, pairing: str, payout_ref: str, **fields: Any) -> None:
        fields = scrub_data(fields)
        with self.engine.begin() as conn:
            upsert(conn, payout_match, {"pairing": pairing, "payout_ref": payout_ref, "matched_at": utcnow(), **fields}, ["pairing", "payout_ref"], [*fields, "matched_at"])

    def payout_matches(self, pairing: str) -> list[dict[str, Any]]:
        t = payout_match
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(t).where(t.c.pairing == pairing).order_by(t.c.id))]

    def orders_without_payout(self, pairing: str, linked_before: datetime) -> list[dict[str, Any]]:
        """Orders booked before `linked_before` that no remittance has matched yet."""
        o, p = order_link, payout_match
        paid = select(p.c.order_channel_ref).where(p.c.pairing == pairing, p.c.order_channel_ref.is_not(None))
        q = select(o.c.channel_ref, o.c.master_id, o.c.master_ref, o.c.created_at).where(
            o.c.pairing == pairing, o.c.kind == "order", o.c.created_at < linked_before, o.c.channel_ref.not_in(paid)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(o.c.created_at))]

    def store_report(self, pairing: str, flow: str, period: str, name: str, content_type: str, content: str) -> None:
        with self.engine.begin() as conn:
            upsert(conn, report_file, {"pairing": pairing, "flow": flow, "period": period, "name": name, "content_type": content_type, "content": scrub_text(content), "created_at": utcnow()},
                   ["pairing", "flow", "period", "name"], ["content_type", "content", "created_at"])

    def store_file(self, pairing: str, flow: str, period: str, name: str, content_type: str, data: bytes) -> None:
        """A binary file (a packing slip PDF) kept with its run's period, replaced on a re-run."""
        with self.engine.begin() as conn:
            upsert(conn, report_file, {"pairing": pairing, "flow": flow, "period": period, "name": name, "content_type": content_type, "content": "", "data": data, "created_at": utcnow()},
                   ["pairing", "flow", "period", "name"], ["content_type", "content", "data", "created_at"])

    def files(self, pairing: str, flow: str, period: str | None = None) -> dict[str, bytes]:
        t = report_file
        q = select(t.c.name, t.c.data).where(t.c.pairing == pairing, t.c.flow == flow, t.c.data.is_not(None))
        if period:
            q = q.where(t.c.period == period)
        with self.engine.connect() as conn:
            return {r.name: bytes(r.data) for r in conn.execute(q)}

    def reports(self, pairing: str, flow: str, period: str | None = None) -> dict[str, str]:
        t = report_file
        q = select(t.c.name, t.c.content).where(t.c.pairing == pairing, t.c.flow == flow)
        if period:
            q = q.where(t.c.period == period)
        with self.engine.connect() as conn:
            return {r.name: r.content for r in conn.execute(q)}

    def report_index(self, pairing: str, flows: Iterable[str], limit: int = 200) -> list[dict[str, Any]]:
        """The stored reports and files of `flows`, newest first, without their content."""
        t = report_file
        q = (select(t.c.flow, t.c.period, t.c.name, t.c.content_type, t.c.created_at)
             .where(t.c.pairing == pairing, t.c.flow.in_(list(flows))).order_by(t.c.created_at.desc(), t.c.name).limit(limit))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- the outbox: alert e-mails until delivered ---------------------------------------------
    def queue_email(self, recipients: list[str], subject: str, html: str, attachments: dict[str, str] | None, conn_id: str, claimed_by: str) -> int:
        """Record a message, already claimed by its sender (it tries at once; nobody else may)."""
        now = utcnow()
        with self.engine.begin() as conn:
            return conn.execute(
                outbox.insert().values(recipients=list(recipients), subject=subject, html=html, attachments=attachments or None, conn_id=conn_id,
                                       status="sending", attempts=0, claimed_by=claimed_by, claimed_at=now, created_at=now)
            ).inserted_primary_key[0]

    def deliverable_emails(self, stale_after: timedelta, limit: int = 100) -> list[int]:
        """Queued messages, oldest first, and those whose sender died mid-send (claim gone stale)."""
        t = outbox
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(t.c.id).where((t.c.status == "queued") | ((t.c.status == "sending") & (t.c.claimed_at < utcnow() - stale_after)))
                .order_by(t.c.created_at, t.c.id).limit(limit)
            ).scalars())

    def claim_email(self, id: int, claimed_by: str, stale_after: timedelta) -> dict[str, Any] | None:
        """Take one message for sending; None if another process holds it or it is gone. The
        conditional update is the lock: of two runs delivering at once, one gets each message."""
        t = outbox
        now = utcnow()
        with self.engine.begin() as conn:
            took = conn.execute(
                update(t).where(t.c.id == id)
                .where((t.c.status == "queued") | ((t.c.status == "sending") & (t.c.claimed_at < now - stale_after)))
                .values(status="sending", claimed_by=claimed_by, claimed_at=now)
            ).rowcount
            if not took:
                return None
            return dict(conn.execute(select(t).where(t.c.id == id)).first()._mapping)

    def email_sent(self, id: int, claimed_by: str) -> None:
        t = outbox
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == id, t.c.claimed_by == claimed_by)
                         .values(status="sent", sent_at=utcnow(), attempts=t.c.attempts + 1, last_error=None, claimed_by=None))

    def email_failed(self, id: int, claimed_by: str, error: str) -> None:
        t = outbox
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == id, t.c.claimed_by == claimed_by)
                         .values(status="queued", attempts=t.c.attempts + 1, last_error=error[:1000], claimed_by=None, claimed_at=None))

    def undelivered_emails(self) -> list[dict[str, Any]]:
        """Every message not yet delivered, oldest first (for health and the run report)."""
        t = outbox
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.id, t.c.subject, t.c.status, t.c.attempts, t.c.last_error, t.c.created_at)
                                .where(t.c.status != "sent").order_by(t.c.created_at, t.c.id))
            return [dict(r._mapping) for r in rows]

    def emails(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(outbox).order_by(outbox.c.id))]

    # -- mappings ---------------------------------------------------------------------------
    def mapping(self, pairing: str, kind: str) -> dict[str, dict]:
        t = mapping
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.key, t.c.value).where(t.c.pairing == pairing, t.c.kind == kind, t.c.active.is_(True)))
            return {r.key: r.value for r in rows}

    def mapping_history(self, pairing: str, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The latest changes to a pairing's mappings, newest first."""
        h = mapping_history
        q = select(h).where(h.c.pairing == pairing)
        if kind:
            q = q.where(h.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(h.c.id.desc()).limit(limit))]

    def count(self, table_name: str) -> int:
        from commerce_sync.ledger.schema import metadata

        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(metadata.tables[table_name])).scalar_one()
