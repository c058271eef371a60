"""Buyers' personal data: erased once the ledger no longer needs it, and on request.

Where it can be: sealed in staged records and quarantine rows (ledger/sealing.py seals every
value under a personal key); in plain text wherever a channel put an address under a key that
is not a personal one (a `login`, a free-text note); in the payload log only where redaction
missed it (an address it could not recognise); in stored files.

- By retention (`erase_expired`): the sealed values of a closed quarantine row are replaced by
  "[erased]" N days (default 90) after its order was booked and its last box shipped; a row
  that never became a shipped order, N days after it was closed. Staged records are normally
  pruned long before; any older than N days lose their sealed values the same way.
- On request (`erase_address`): every row of every ledger table that holds the address, in any
  of the ways it can be written (any case, percent-encoded, JSON- or HTML-escaped), loses it; a
  staged or quarantined record that holds it loses all its sealed values (the buyer's name,
  phone and address with it), and so does every other record of the same order; an open
  quarantine row is closed (discarded, with a note) because it can no longer be booked; payload
  log rows holding it are deleted; the buyer's stored files (packing slips) are deleted.
  Bookings (links, payout matches) are left as they are: they hold references, not people.
Either way one erasure_log row records that it was done, by whom and how many rows of each table
it touched, never what was erased.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import JSON, Column, LargeBinary, MetaData, String, Table, Text, and_, cast, func, inspect, or_, select, tuple_, update
from sqlalchemy.engine import Engine

from commerce_sync.housekeeping.batches import Batching, delete_in_batches, rewrite_in_batches
from commerce_sync.ledger.schema import erasure_log, metadata, order_link, quarantine, report_file, staged_record, utcnow
from commerce_sync.ledger.sealing import SEALED, SealedJSON, unseal

log = logging.getLogger(__name__)

ERASED = "[erased]"
SEALED_TABLES = (staged_record, quarantine)
DELETED_WHOLE = ("payload_log",)  # a witness of API traffic: a row holding the address goes
NOT_SCANNED = ("ledger_alembic_version", "erasure_log")
ON_REQUEST = "the buyer's personal data was erased on request; the record can no longer be booked from the ledger"
IN = 500


def raw(table: Table) -> Table:
    """The table with its sealed columns as plain JSON: erasure reads and writes the sealed
    tokens themselves (replacing one needs no key; finding whose it is does)."""
    cols = [Column(c.name, JSON() if isinstance(c.type, SealedJSON) else c.type, primary_key=c.primary_key) for c in table.columns]
    return Table(table.name, MetaData(), *cols)


def _is_token(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str)


def _walk(value: Any, on_token, on_text) -> Any:
    if _is_token(value):
        return on_token(value)
    if isinstance(value, dict):
        return {(on_text(k) if isinstance(k, str) else k): _walk(v, on_token, on_text) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, on_token, on_text) for v in value]
    return on_text(value) if isinstance(value, str) else value


def strip_sealed(value: Any) -> Any:
    """Every sealed value replaced by "[erased]"; the rest (SKUs, amounts, references) kept."""
    return _walk(value, lambda _: ERASED, lambda s: s)


def address_forms(address: str) -> list[str]:
    """The address as it can be written in stored text, lower-cased, longest first."""
    a = address.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", a):
        raise ValueError(f"not an e-mail address: {address!r}")
    local, domain = a.split("@")
    forms = {a, quote(a, safe=""), json.dumps(a)[1:-1]}
    forms |= {f"{local}{at}{domain}" for at in ("%40", "\\u0040", "&#64;", "&#x40;")}
    return sorted({f.lower() for f in forms}, key=len, reverse=True)  # matched against lower-cased text


class Address:
    """One buyer's address, matched in SQL (to find candidate rows) and in Python (to decide)."""

    def __init__(self, address: str):
        self.forms = address_forms(address)
        self.pattern = re.compile("|".join(re.escape(f) for f in self.forms), re.IGNORECASE)

    def sql(self, column) -> Any:
        text = func.lower(cast(column, Text)) if not isinstance(column.type, String) else func.lower(column)
        return or_(*(text.contains(f, autoescape=True) for f in self.forms))

    def sql_bytes(self, column) -> Any:
        """PostgreSQL: the bytes read as text in the server (printable bytes as they are), so a
        scan of every stored file never crosses the wire."""
        text = func.lower(func.encode(column, "escape"))
        return or_(*(text.contains(f, autoescape=True) for f in self.forms))

    def in_text(self, text: str) -> bool:
        return self.pattern.search(text) is not None

    def in_value(self, value: Any) -> bool:
        found = []
        _walk(value, lambda t: t, lambda s: found.append(s) or s)
        return any(self.in_text(s) for s in found)

    def in_bytes(self, data: bytes) -> bool:
        low = bytes(data).lower()
        return any(f.encode() in low for f in self.forms)

    def scrub(self, value: Any) -> Any:
        return _walk(value, lambda t: t, lambda s: self.pattern.sub(ERASED, s))

    def erase(self, value: Any) -> Any:
        """Every sealed value gone, the address cut out of every plain string."""
        return _walk(value, lambda _: ERASED, lambda s: self.pattern.sub(ERASED, s))


def _sealed_sql(column) -> Any:
    return cast(column, Text).contains(f'"{SEALED}"', autoescape=True)


def _record(engine: Engine, kind: str, by: str | None, rows: dict[str, int]) -> None:
    with engine.begin() as conn:
        conn.execute(erasure_log.insert().values(kind=kind, requested_by=by, done_at=utcnow(), rows=rows))


# -- by retention -----------------------------------------------------------------------------------
def erase_expired(engine: Engine, settings, now: datetime | None = None) -> dict[str, int]:
    """Sealed values of records whose purpose is over (see the module's docstring); rows per table."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.personal_data.erase_after_days)
    batching = Batching.of(settings)
    q, s = raw(quarantine), raw(staged_record)
    booked, shipped = order_link.alias("booked"), order_link.alias("shipped")
    shipped_lately = (
        select(shipped.c.id)
        .where(booked.c.pairing == q.c.pairing, booked.c.kind == "order", booked.c.channel_id == q.c.record_key)
        .where(shipped.c.pairing == booked.c.pairing, shipped.c.kind == "shipment", shipped.c.master_id == booked.c.master_id)
        .where(shipped.c.created_at >= cutoff)
        .exists()
    )
    strip = lambda row: {"payload": strip_sealed(row.payload)}  # noqa: E731
    counts = {
        "quarantine": rewrite_in_batches(
            engine, q, and_(q.c.status != "open", q.c.resolved_at < cutoff, _sealed_sql(q.c.payload), ~shipped_lately), ["payload"], strip, batching
        ),
        "staged_record": rewrite_in_batches(engine, s, and_(s.c.staged_at < cutoff, _sealed_sql(s.c.payload)), ["payload"], strip, batching),
    }
    if any(counts.values()):
        _record(engine, "retention", "housekeeping", counts)
    return counts


# -- on request ---------------------------------------------------------------------------------------
def _chunks(items: list, size: int = IN):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _sealed_tables(engine: Engine, who: Address, batching: Batching, by: str, now: datetime, touched: dict[str, set]) -> set[tuple[str, str]]:
    """Records holding the address lose every sealed value; then so does every other record of
    the same (pairing, record key): the same order staged by another run or held by another
    flow. Returns those (pairing, record key)s."""
    from cryptography.fernet import InvalidToken

    from commerce_sync.ledger.sealing import SealKeyWrong

    keys: set[tuple[str, str]] = set()

    def changes(table: str, row, matched: bool) -> dict | None:
        if not matched:
            try:
                matched = who.in_value(unseal(row.payload))
            except (InvalidToken, SealKeyWrong):  # sealed with a key no longer held: nobody can read it, nor say whose it is
                log.warning("erase: %s row %s has a token no current key opens; left sealed", table, row[0])
                touched.setdefault("sealed_unreadable", set()).add((table, row[0]))
                return None
        if not matched:
            return None
        keys.add((row.pairing, row.record_key))
        touched.setdefault(table, set()).add(row[0])
        values: dict[str, Any] = {"payload": who.erase(row.payload)}
        if getattr(row, "status", None) == "open":
            values.update(status="discarded", resolved_at=now, resolution_note=ON_REQUEST, resolved_by=by)
        return values

    for table in SEALED_TABLES:
        t = raw(table)
        cols = ["pairing", "record_key", "payload", *(["status"] if "status" in t.c else [])]
        where = or_(_sealed_sql(t.c.payload), who.sql(t.c.payload))
        rewrite_in_batches(engine, t, where, cols, lambda row, name=table.name: changes(name, row, False), batching)
    for table in SEALED_TABLES:
        t = raw(table)
        cols = ["pairing", "record_key", "payload", *(["status"] if "status" in t.c else [])]
        for chunk in _chunks(sorted(keys)):
            where = and_(tuple_(t.c.pairing, t.c.record_key).in_(chunk), _sealed_sql(t.c.payload))
            rewrite_in_batches(engine, t, where, cols, lambda row, name=table.name: changes(name, row, True), batching)
    return keys


def _buyers_files(engine: Engine, keys: set[tuple[str, str]], batching: Batching) -> int:
    """Stored files of the buyer's orders (packing slips, named after the channel's order
    reference): deleted, as they may carry the ship-to."""
    refs: set[tuple[str, str]] = set()
    o = order_link
    with engine.connect() as conn:
        for chunk in _chunks(sorted(keys)):
            rows = conn.execute(select(o.c.pairing, o.c.channel_ref).where(o.c.kind == "order", tuple_(o.c.pairing, o.c.channel_id).in_(chunk)))
            refs |= {(p, re.sub(r"[^A-Za-z0-9._-]", "-", ref)) for p, ref in rows}
    f = report_file
    deleted = 0
    for pairing, ref in refs:
        where = and_(f.c.pairing == pairing, f.c.data.is_not(None), f.c.name.contains(f"-{ref}-", autoescape=True))
        deleted += delete_in_batches(engine, f, where, batching)
    return deleted


def _key_columns(engine: Engine, table: Table) -> set[str]:
    names = {c.name for c in table.primary_key.columns}
    insp = inspect(engine)
    for uc in insp.get_unique_constraints(table.name):
        names |= set(uc["column_names"])
    for ix in insp.get_indexes(table.name):
        if ix.get("unique"):
            names |= {c for c in ix["column_names"] if c}
    return names


def _declared_sealed(table_name: str, column: str) -> bool:
    declared = metadata.tables.get(table_name)
    return declared is not None and column in declared.c and isinstance(declared.c[column].type, SealedJSON)


def _plain_tables(engine: Engine, who: Address, batching: Batching, touched: dict[str, set], deleted: dict[str, int]) -> int:
    """Every other place in every table (reflected, so tables added later are covered too): the
    address cut out of text and JSON columns, a row whose binary column holds it deleted, a
    payload log row holding it deleted. Key columns are never rewritten (links would break):
    a hit there is logged and counted (the return value)."""
    reflected = MetaData()
    reflected.reflect(engine)
    left = 0
    for name, table in reflected.tables.items():
        if name in NOT_SCANNED or not table.primary_key.columns:
            continue
        pk = list(table.primary_key.columns)
        keys = _key_columns(engine, table)
        texts = [c for c in table.columns if isinstance(c.type, (String, JSON)) and not _declared_sealed(name, c.name)]
        binaries = [c for c in table.columns if isinstance(c.type, LargeBinary)]
        doomed: list[tuple] = []
        if texts:
            with engine.connect() as conn:
                hits = conn.execute(select(*pk, *texts).where(or_(*(who.sql(c) for c in texts)))).all()
            for row in hits:
                ident = tuple(row[: len(pk)])
                if name in DELETED_WHOLE:
                    doomed.append(ident)
                    continue
                values = {}
                for i, c in enumerate(texts, start=len(pk)):
                    value = row[i]
                    if value is None or not who.in_value(value):
                        continue
                    if c.name in keys:
                        left += 1
                        log.warning("erase: the address is part of a key (%s.%s): left in place", name, c.name)
                        continue
                    values[c.name] = who.scrub(value)
                if values:
                    with batching.begin(engine) as conn:
                        conn.execute(update(table).where(*(col == v for col, v in zip(pk, ident))).values(values))
                    touched.setdefault(name, set()).add(ident if len(ident) > 1 else ident[0])
        for c in binaries:
            with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    doomed += [tuple(row) for row in conn.execute(select(*pk).where(c.is_not(None), who.sql_bytes(c)))]
                    continue
                result = conn.execution_options(yield_per=100).execute(select(*pk, c).where(c.is_not(None)))
                doomed += [tuple(row[: len(pk)]) for row in result if who.in_bytes(row[-1])]
        for chunk in _chunks(list(dict.fromkeys(doomed))):
            target = pk[0].in_([d[0] for d in chunk]) if len(pk) == 1 else tuple_(*pk).in_(chunk)
            deleted[name] = deleted.get(name, 0) + delete_in_batches(engine, table, target, batching)
    return left


def erase_address(engine: Engine, address: str, by: str, settings) -> dict[str, int]:
    """Erase one buyer's personal data from every ledger table (see the module's docstring);
    rows touched per table. Raises ValueError for something that is not an address."""
    who = Address(address)
    batching = Batching.of(settings)
    touched: dict[str, set] = {}  # rows changed, by table (a row changed twice counts once)
    keys = _sealed_tables(engine, who, batching, by, utcnow(), touched)
    deleted = {"report_file": _buyers_files(engine, keys, batching) if keys else 0}
    left = _plain_tables(engine, who, batching, touched, deleted)
    counts = {t: len(touched.get(t, ())) + deleted.get(t, 0) for t in {*touched, *deleted}}  # sealed_unreadable: rows no key opens
    counts = {k: v for k, v in counts.items() if v}
    if left:
        counts["left_in_keys"] = left
    _record(engine, "request", by, counts)
    return counts

