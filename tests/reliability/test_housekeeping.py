"""Housekeeping against the real flows (emulators over HTTP, the ledger in PostgreSQL):

- every flow of both pairings keeps its exactly-once and quarantine invariants through a re-run,
  a backfill and (orders) a replay on a ledger pruned as hard as the settings allow (every
  retention 0 days, personal data erased at once): nothing the guarantees rely on is pruned;
- `erase --email` after real runs leaves no trace of that buyer's address in any table or stored
  file, and bookings stay intact (a re-run books nothing twice);
- a housekeeping run during a stock_out run delays neither: no lock wait over a small bound.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from commerce_sync import housekeeping
from commerce_sync.housekeeping.settings import HousekeepingSettings
from tests.reliability.matrix import JL, MKP, SCENARIOS, World, _jl_dispatch_setup, _mkp_orders, _seed_cin7, run_flow, window
from tests.unit.test_housekeeping import everything_as_text, traces

pytestmark = [pytest.mark.e2e, pytest.mark.pg, pytest.mark.reliability]

# every retention at 0: whatever housekeeping may ever prune is gone before the next run
HARSHEST = HousekeepingSettings(
    batch_rows=50, pause_seconds=0,
    retention={k: 0 for k in ("payload_log_days", "staged_days", "staged_unfinished_days", "api_call_slot_seconds", "api_budget_idle_days",
                              "work_claim_days", "quarantine_resolved_days", "run_report_days", "report_days", "stored_files_days", "outbox_days",
                              "webhook_event_days")}
    | {"staged_days_by_flow": {}},
    personal_data={"erase_after_days": 0},
)
REPLAY_MAPPING = {MKP: "CS-UNMAPPED,CS-SOCK-WHT,Socks white\n", JL: "JL-UNMAPPED,CS-SOCK-WHT,Socks white\n", "cin7_sfcc": "CS-SOCK-WHT,CS-SOCK-WHT,Socks white\n"}


def prune_all(world: World) -> dict:
    ledger = world.ledger()
    try:
        details = housekeeping.run(f"hk-{time.monotonic_ns()}", ledger=ledger, settings=HARSHEST, now=datetime.now(timezone.utc) + timedelta(seconds=1))
        assert ledger.count("payload_log") == 0 and ledger.count("staged_record") == 0
        return details
    finally:
        ledger.dispose()


# the Cin7 pairings' scenarios: the replay step below counts Cin7 sales
@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.pairing in REPLAY_MAPPING], ids=lambda s: f"{s.pairing}/{s.flow}")
def test_exactly_once_holds_on_a_ledger_pruned_to_nothing(world: World, scenario, mappings):
    scenario.setup(world)
    start, end = window(world)
    assert run_flow(scenario.pairing, scenario.flow, "first", start, end) == "success"
    assert prune_all(world)["prune"]["deleted"]["payload_log"] > 0

    assert run_flow(scenario.pairing, scenario.flow, "re-run", start, end) == "success"
    prune_all(world)
    assert run_flow(scenario.pairing, scenario.flow, "backfill", start - timedelta(days=3), end) == "success"
    assert scenario.check(world) == []

    if scenario.flow == "orders_in":  # replay: the held order's mapping is fixed, the next run books it, once
        prune_all(world)
        with open(mappings / scenario.pairing / "skus.csv", "a", encoding="utf-8") as fh:
            fh.write(REPLAY_MAPPING[scenario.pairing])
        assert run_flow(scenario.pairing, scenario.flow, "replay", start, end) == "success"
        prune_all(world)
        assert run_flow(scenario.pairing, scenario.flow, "replay-again", start, end) == "success"
        counts = Counter(s["ExternalID"] for s in world.sales())
        assert set(counts.values()) == {1} and len(counts) == 5, counts
        ledger = world.ledger()
        try:
            assert ledger.open_quarantine(scenario.pairing, "orders_in") == []
        finally:
            ledger.dispose()


def test_erase_after_real_runs_leaves_no_trace_and_bookings_stay(world: World, monkeypatch, capsys):
    from commerce_sync.cli import main

    _jl_dispatch_setup(world)  # John Lewis orders booked and shipped: packing slips stored
    start, end = window(world)
    assert run_flow(JL, "dispatch_back", "dispatch", start, end) == "success"
    _mkp_orders(world)  # Marketplacer orders, one held in quarantine
    assert run_flow(MKP, "orders_in", "orders", start, end) == "success"
    ledger = world.ledger()
    before = {"sales": Counter(s["ExternalID"] for s in world.sales()), "links": ledger.count("order_link"), "files": set(ledger.files(JL, "dispatch_back"))}
    assert any(name.startswith("packing-slip-JL6001-") for name in before["files"])
    (held_key,) = [q.record_key for q in ledger.open_quarantine(MKP, "orders_in")]
    jl_buyer, other_jl_buyer, mkp_buyer = ("notification+jl6001-a@notification.mirakl.net", "notification+jl6002-a@notification.mirakl.net",
                                           "alex.buyer@example.com")
    texts = everything_as_text(ledger)
    assert traces(texts, jl_buyer) and traces(texts, mkp_buyer)  # the scan sees them before

    assert main(["erase", "--email", jl_buyer, "--by", "dpo"]) == 0
    assert main(["erase", "--email", mkp_buyer, "--by", "dpo"]) == 0
    capsys.readouterr()

    texts = everything_as_text(ledger)
    assert traces(texts, jl_buyer) == [] and traces(texts, mkp_buyer) == []
    assert traces(texts, other_jl_buyer)  # another buyer's data is left alone
    # bookings intact: the same sales, links and the other buyers' packing slips
    assert Counter(s["ExternalID"] for s in world.sales()) == before["sales"]
    assert ledger.count("order_link") == before["links"]
    assert set(ledger.files(JL, "dispatch_back")) == {f for f in before["files"] if not f.startswith("packing-slip-JL6001-")}
    # ...and exactly once still: re-runs book nothing again, the erased held order is not booked
    assert run_flow(MKP, "orders_in", "orders-again", start, end) == "success"
    assert run_flow(JL, "orders_in", "orders-again", start, end) == "success"
    assert Counter(s["ExternalID"] for s in world.sales()) == before["sales"]
    held = ledger.quarantine_by_key(MKP, "orders_in", held_key)
    assert held.status == "discarded" and "erased on request" in held.resolution_note
    ledger.dispose()


class LockWatch:
    """Samples pg_locks every 10 ms: the longest any lock request of the database waited
    (PostgreSQL stamps a waiting request's start in pg_locks.waitstart)."""

    def __init__(self, url: str):
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT")
        self.longest = 0.0
        self.waits: list[tuple[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                rows = conn.execute(text(
                    "SELECT l.locktype, l.mode, a.query, EXTRACT(EPOCH FROM clock_timestamp() - l.waitstart) FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND l.waitstart IS NOT NULL AND a.datname = current_database()"
                )).all()
                for locktype, mode, query, waited in rows:
                    self.waits.append((f"{locktype} {mode}: {query[:120]}", float(waited)))
                    self.longest = max(self.longest, float(waited))
                time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        self.engine.dispose()


def test_the_lock_watch_sees_a_wait(pg_url):
    """The instrument can fail: a row held for 1.5 s by one session is a 1.5 s wait for another."""
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE held (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(text("INSERT INTO held VALUES (1, 0)"))
    with LockWatch(pg_url) as watch:
        with engine.connect() as holder:
            holder.execute(text("BEGIN"))
            holder.execute(text("UPDATE held SET n = 1 WHERE id = 1"))
            def wait_for_row():
                with engine.begin() as conn:
                    conn.execute(text("UPDATE held SET n = 2 WHERE id = 1"))

            waiter = threading.Thread(target=wait_for_row)
            waiter.start()
            time.sleep(1.5)
            holder.execute(text("COMMIT"))
        waiter.join(timeout=10)
    engine.dispose()
    assert watch.longest >= 1.0 and any("UPDATE held" in w for w, _ in watch.waits)


SKUS = [f"HK-SKU-{i:04d}" for i in range(100)]
BOUND_SECONDS = 1.0  # a batch of housekeeping is milliseconds; a lock held for a whole run would be seconds


def _old_history(world: World) -> None:
    """A month of pruned-to-be rows, written straight in (COPY-speed inserts, old timestamps)."""
    old = datetime.now(timezone.utc) - timedelta(days=45)
    engine = create_engine(world.ledger_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payload_log (pairing, system, method, url, status, logged_at) "
                          "SELECT :p, 'cin7_core', 'GET', 'https://cin7.example/page/' || g, 200, :t FROM generate_series(1, 30000) g"), {"p": MKP, "t": old})
        conn.execute(text("INSERT INTO api_call_slot (account, slot) SELECT 'cin7_core:retired_account', :s - g FROM generate_series(1, 20000) g"),
                     {"s": old.timestamp()})
        conn.execute(text("INSERT INTO staged_record (pairing, flow, run_id, record_key, payload, staged_at) "
                          "SELECT :p, 'stock_out', 'old-run-' || (g / 10), 'k' || g, CAST('{\"rows\": []}' AS JSON), :t FROM generate_series(1, 3000) g"),
                     {"p": MKP, "t": old})
    engine.dispose()


def test_housekeeping_during_a_stock_run_delays_neither(world: World, mappings):
    """Both run at once on PostgreSQL; every lock wait in the database is sampled: none may last
    longer than a small bound. The flow's API budget (api_call_slot) is the table both write."""
    import commerce_sync.gates.stock  # noqa: F401 - GX's import (seconds) paid before, not inside, the run watched
    _seed_cin7(world)
    world.post("cin7", "/_sandbox/seed", {"products": [{"SKU": s, "Name": s} for s in SKUS],
                                         "availability": [{"SKU": s, "Location": "Main Warehouse", "OnHand": 5, "Allocated": 0} for s in SKUS]})
    world.post("marketplacer", "/_sandbox/adverts", {"adverts": [{"title": s, "variants": [{"sku": s, "countOnHand": 0}]} for s in SKUS]})
    with open(mappings / MKP / "skus.csv", "a", encoding="utf-8") as fh:
        fh.writelines(f"{s},{s},{s}\n" for s in SKUS)
    ledger = world.ledger()  # migrated
    _old_history(world)
    settings = HousekeepingSettings(batch_rows=500)  # the shipped defaults
    spans: dict[str, tuple[float, float]] = {}
    outcome: dict[str, str] = {}

    def stock_run():
        t0 = time.monotonic()
        outcome["stock_out"] = run_flow(MKP, "stock_out", "stock-during-housekeeping", *window(world))
        spans["stock_out"] = (t0, time.monotonic())

    with LockWatch(world.ledger_url) as watch:
        flow = threading.Thread(target=stock_run)
        flow.start()
        deadline = time.monotonic() + 120
        while ledger.count("payload_log") <= 30000 + 5:  # the flow is calling the APIs
            assert time.monotonic() < deadline and flow.is_alive(), outcome
            time.sleep(0.05)
        t0 = time.monotonic()
        details = housekeeping.run("hk-during-stock", ledger=ledger, settings=settings)
        spans["housekeeping"] = (t0, time.monotonic())
        flow.join(timeout=300)

    assert outcome["stock_out"] == "success"
    assert details["prune"]["deleted"]["payload_log"] == 30000 and details["prune"]["deleted"]["staged_record"] == 3000
    assert details["prune"]["deleted"]["api_call_slot"] == 20000
    (s0, s1), (h0, h1) = spans["stock_out"], spans["housekeeping"]
    assert h0 < s1 and s0 < h1, "the two runs did not overlap: this proves nothing"
    assert watch.longest < BOUND_SECONDS, sorted(watch.waits, key=lambda w: -w[1])[:5]
    shown = world.get("marketplacer", "/_sandbox/stock_updates")["stock"]
    assert all(shown.get(s) == 4 for s in SKUS)  # the flow did its whole job (5 on hand, one unit held back)
    ledger.dispose()
