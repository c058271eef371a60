"""The ledger on both back-ends (SQLite file and a fresh PostgreSQL database)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from commerce_sync.ledger import Ledger, migrate
from commerce_sync.ledger.db import tables

NASTY = "x'); DROP TABLE order_link; -- \"quoted\" ; Robert'); --"


@pytest.fixture
def ledger(ledger_url):
    led = Ledger.from_url(ledger_url)
    yield led
    led.dispose()


def test_migrations_create_every_table_and_are_idempotent(ledger_url, ledger):
    migrate(ledger_url)
    migrate(ledger_url)
    assert {"staged_record", "order_link", "quarantine", "payload_log", "watermark", "run_report", "mapping", "mapping_history"} <= tables(ledger_url)


def test_staging_replaces_within_a_run_and_keeps_money_exact(ledger):
    ledger.stage("p", "orders_in", "run1", [("a", {"total": Decimal("19.99")}), ("b", {"n": 1})])
    ledger.stage("p", "orders_in", "run1", [("a", {"total": Decimal("20.01")})])
    rows = ledger.staged("p", "orders_in", "run1")
    assert [r.record_key for r in rows] == ["a", "b"]
    assert rows[0].payload == {"total": Decimal("20.01")} and isinstance(rows[0].payload["total"], Decimal)
    assert ledger.staged("p", "orders_in", "run2") == []
    assert ledger.clear_staged("p", "orders_in", datetime.now(timezone.utc) + timedelta(seconds=1)) == 2


def test_links_are_unique_and_a_duplicate_is_reported_not_raised(ledger):
    assert ledger.add_link("p", "order", "1001", "sale-1", "SO-1") is True
    assert ledger.add_link("p", "order", "1001", "sale-2", "SO-2") is False
    assert ledger.links("p", "order", ["1001", "1002"]) == {"1001": "sale-1"}
    assert ledger.links("other", "order", ["1001"]) == {}
    many = [str(i) for i in range(1200)]  # more than one IN chunk
    for ref in many[:3]:
        ledger.add_link("p", "order", f"m{ref}", ref)
    assert len(ledger.links("p", "order", [f"m{r}" for r in many])) == 3


def test_quarantine_lifecycle(ledger):
    reasons = [{"check": "sku_mapped", "detail": "SKU X is not mapped"}]
    ledger.quarantine("p", "orders_in", "k1", {"a": 1}, reasons, "r1")
    ledger.quarantine("p", "orders_in", "k1", {"a": 2}, reasons, "r2")
    (row,) = ledger.open_quarantine("p", "orders_in")
    assert row.attempts == 2 and row.payload == {"a": 2} and row.last_run_id == "r2" and row.reasons == reasons
    assert ledger.resolve_quarantine("p", "orders_in", "k1", note="loaded as SO-1") is True
    assert ledger.open_quarantine("p") == []
    assert ledger.quarantine_by_key("p", "orders_in", "k1").status == "replayed"
    ledger.quarantine("p", "orders_in", "k1", {"a": 3}, reasons, "r3")  # fails again: reopened
    row = ledger.quarantine_by_key("p", "orders_in", "k1")
    assert row.status == "open" and row.resolution_note is None
    with pytest.raises(ValueError, match="reason"):
        ledger.discard_quarantine(row.id, " ", by="ops")
    assert ledger.discard_quarantine(row.id, "test order, cancelled on the channel", by="ops") is True
    ledger.quarantine("p", "orders_in", "k1", {"a": 4}, reasons, "r4")  # seen again: stays discarded
    row = ledger.get_quarantine(row.id)
    assert row.status == "discarded" and row.resolution_note == "test order, cancelled on the channel"


def test_values_full_of_quotes_and_sql_round_trip_unchanged(ledger):
    ledger.add_link("p", "order", NASTY, NASTY)
    ledger.quarantine("p", "orders_in", NASTY, {"sku": NASTY}, [{"check": NASTY, "detail": NASTY}], NASTY)
    ledger.set_watermark("p", "orders_in", "since", NASTY)
    assert ledger.links("p", "order", [NASTY]) == {NASTY: NASTY}
    assert ledger.quarantine_by_key("p", "orders_in", NASTY).payload == {"sku": NASTY}
    assert ledger.get_watermark("p", "orders_in", "since") == NASTY
    assert ledger.count("order_link") == 1


def test_watermarks_run_reports_and_payload_log(ledger):
    assert ledger.get_watermark("p", "f", "since") is None
    ledger.set_watermark("p", "f", "since", "2026-11-22T00:00:00Z")
    ledger.set_watermark("p", "f", "since", "2026-11-22T01:00:00Z")
    assert ledger.get_watermark("p", "f", "since") == "2026-11-22T01:00:00Z"
    ledger.record_run("p", "f", "r1", extracted=5)
    ledger.record_run("p", "f", "r1", loaded=4, details={"x": 1})
    (run,) = ledger.runs("p", "f")
    assert (run["extracted"], run["loaded"], run["details"]) == (5, 4, {"x": 1})
    with pytest.raises(ValueError, match="unknown run report fields"):
        ledger.record_run("p", "f", "r1", bogus=1)
    ledger.log_payload({"system": "cin7_core", "method": "GET", "url": "http://x/saleList", "status": 200, "response_body": {"a": 1}, "ignored": "x"})
    (entry,) = ledger.payloads()
    assert entry["system"] == "cin7_core" and entry["response_body"] == "{'a': 1}"


def test_orders_without_payout_are_the_linked_orders_no_remittance_matched(ledger):
    ledger.add_link("p", "order", "1001", "sale-1")
    ledger.add_link("p", "order", "1002", "sale-2")
    ledger.add_link("p", "shipment", "box-1", "sale-1")
    ledger.record_payout_match("p", "payout-9", order_channel_ref="1001", master_id="sale-1", status="matched", net="10.00")
    later = datetime.now(timezone.utc) + timedelta(seconds=5)
    assert [o["channel_ref"] for o in ledger.orders_without_payout("p", later)] == ["1002"]
    assert ledger.orders_without_payout("p", datetime.now(timezone.utc) - timedelta(days=1)) == []  # not due yet
    (match,) = ledger.payout_matches("p")
    assert match["net"] == "10.00"  # money kept as exact text


def test_claims_let_one_run_at_a_time_create_a_record(ledger):
    assert ledger.claim("p", "order", ["1", "2"], "run-A") == {"1", "2"}
    assert ledger.claim("p", "order", ["2", "3"], "run-B") == {"3"}  # 2 is run A's
    assert ledger.claim("p", "order", ["1"], "run-A") == {"1"}  # a retry of run A keeps its claim
    ledger.release("p", "order", ["1", "2"], "run-A")
    assert ledger.claim("p", "order", ["2"], "run-B") == {"2"}
    # a claim whose run died is taken over once it is stale
    assert ledger.claim("p", "order", ["3"], "run-C", stale_after=timedelta(minutes=30)) == set()
    assert ledger.claim("p", "order", ["3"], "run-C", stale_after=timedelta(seconds=-1)) == {"3"}


def test_cached_reference_list_is_read_once_per_max_age(ledger):
    loads = []

    def load():
        loads.append(1)
        return [{"code": "DPD", "label": "DPD UK"}]

    first = ledger.cached("p", "reference:mirakl", "carriers", timedelta(days=1), load)
    again = ledger.cached("p", "reference:mirakl", "carriers", timedelta(days=1), load)
    assert first == again == [{"code": "DPD", "label": "DPD UK"}] and len(loads) == 1
    ledger.cached("p", "reference:mirakl", "carriers", timedelta(0), load)  # stale: read again
    assert len(loads) == 2


def test_binary_files_are_kept_per_run(ledger):
    ledger.store_file("p", "dispatch_back", "run1", "slip.pdf", "application/pdf", b"%PDF-1.7\x00\xff")
    ledger.store_file("p", "dispatch_back", "run1", "slip.pdf", "application/pdf", b"%PDF-1.7 v2")
    assert ledger.files("p", "dispatch_back") == {"slip.pdf": b"%PDF-1.7 v2"}
    assert ledger.files("p", "dispatch_back", "run2") == {}


def test_call_slots_keep_any_window_within_the_limit_across_ledgers(ledger_url):
    """Two processes' worth of bookings on one account (two Ledger objects on one database):
    together never more than `calls` slots in any window, and the first `calls` go at once."""
    a, b = Ledger.from_url(ledger_url), Ledger.from_url(ledger_url, migrate_schema=False)
    try:
        now = 1_000_000.0
        slots = []
        for i in range(25):
            led = (a, b)[i % 2]
            slots.append(now + led.reserve_call("cin7:acct", 10, 60.0, margin=0.5, now=now))
        assert slots[:10] == [now] * 10  # a burst up to the limit waits for nothing
        for i, s in enumerate(slots):
            in_window = [t for t in slots if s - 60.0 < t <= s]
            assert len(in_window) <= 10, f"slot {i} at +{s - now:.1f}s has {len(in_window)} calls in its minute"
        assert slots[10] == now + 60.5 and slots[20] == now + 121.0
        assert a.reserve_call("mirakl:shop", 10, 60.0, now=now) == 0.0  # another account, its own budget
    finally:
        a.dispose()



def _first_task(url, start, errors):
    start.wait()
    try:
        migrate(url)
    except Exception as exc:  # noqa: BLE001 - the assertion names it
        errors.put(repr(exc))


def test_tasks_starting_side_by_side_on_a_fresh_database_migrate_it_once(pg_url):
    """A new deployment's first run starts extract and accept together (on two workers, too):
    each task process brings the ledger up to date, and none may fail on another's tables."""
    import multiprocessing

    from sqlalchemy import create_engine, text

    mp = multiprocessing.get_context("spawn")  # task processes share nothing (alembic's context is per process)
    start, errors = mp.Barrier(3), mp.Queue()
    tasks = [mp.Process(target=_first_task, args=(pg_url, start, errors)) for _ in range(3)]
    for t in tasks:
        t.start()
    for t in tasks:
        t.join(120)
    assert [t.exitcode for t in tasks] == [0, 0, 0]
    assert errors.empty(), errors.get()
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from commerce_sync.ledger.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM ledger_alembic_version")).scalars().all() == [ScriptDirectory.from_config(cfg).get_current_head()]
    engine.dispose()
