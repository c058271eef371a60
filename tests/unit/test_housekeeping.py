"""Ledger housekeeping on both back-ends: retention after a simulated 60 days of runs, erasure of
buyers' personal data by retention and on request, the outbox rule, settings, `health` sizes.

History is written through the ledger's own methods with its clock set back (the store's
`utcnow`), as the flows would have written it on each of those days."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from commerce_sync import housekeeping
from commerce_sync.housekeeping.erasure import ERASED, address_forms
from commerce_sync.housekeeping.settings import HousekeepingSettings, load_settings
from commerce_sync.housekeeping.sizes import ledger_sizes
from commerce_sync.ledger import Ledger
from commerce_sync.ledger.schema import erasure_log, order_link, payload_log, quarantine, report_file, run_report, staged_record, work_claim
from commerce_sync.pairing import PairingError, project_root

P = "cin7_marketplacer"
DAYS = 60
FAST = {"pause_seconds": 0, "batch_rows": 7}  # small batches: many of them, so batching is exercised


@pytest.fixture
def ledger(ledger_url):
    if ledger_url.startswith("postgresql"):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        admin = create_engine(ledger_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # thousands of one-row commits of simulated history: skip the disk flush
            conn.execute(text(f'ALTER DATABASE "{make_url(ledger_url).database}" SET synchronous_commit = off'))
        admin.dispose()
    led = Ledger.from_url(ledger_url)
    yield led
    led.dispose()


class Clock:
    """The ledger's clock, set to any moment; every store method stamps rows with it."""

    def __init__(self, monkeypatch):
        self.now = datetime.now(timezone.utc)
        monkeypatch.setattr("commerce_sync.ledger.store.utcnow", lambda: self.now)

    def at(self, moment: datetime) -> Clock:
        self.now = moment
        return self


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def settings(**overrides) -> HousekeepingSettings:
    retention = overrides.pop("retention", {})
    personal = overrides.pop("personal_data", {})
    return HousekeepingSettings(**FAST, retention=retention, personal_data=personal, **overrides)


def buyer(n: int) -> dict:
    return {"legacyId": n, "buyerEmail": f"buyer{n}@example.com", "buyerFirstName": f"Name{n}", "lineItems": [{"sku": "CS-CAP-NVY", "quantity": 1}]}


def simulate(ledger: Ledger, clock: Clock, now: datetime, days: int = DAYS) -> dict[str, int]:
    """`days` days of runs, one day a step, as the flows write them (scaled down: a few a day)."""
    for d in range(days - 1, -1, -1):
        t = now - timedelta(days=d, hours=2)
        clock.at(t)
        keys = [f"inv-{d}-a", f"inv-{d}-b"]
        run = f"scheduled__oi-{d}"
        ledger.stage(P, "orders_in", run, [(k, buyer(d * 10 + i)) for i, k in enumerate(keys)])
        ledger.record_run(P, "orders_in", run, started_at=t, finished_at=t + timedelta(minutes=1))
        ledger.claim(P, "order", keys, run)  # claims left behind, as by a run that died
        for i, k in enumerate(keys):
            ledger.add_link(P, "order", f"{d}{i}", f"sale-{d}-{i}", f"SO-{d}-{i}", run, channel_id=k)
        for n in range(2):
            ledger.log_payload({"pairing": P, "system": "cin7_core", "method": "GET", "url": f"https://cin7.example/saleList?page={n}", "status": 200})
        ledger.stage(P, "stock_out", f"scheduled__so-{d}", [("__snapshot__", {"rows": [{"channel_sku": "CS-CAP-NVY", "available": "3"}]})])
        ledger.record_run(P, "stock_out", f"scheduled__so-{d}", started_at=t, finished_at=t + timedelta(minutes=1))
        if d % 5 == 0:  # a run that died before its report
            ledger.stage(P, "orders_in", f"scheduled__dead-{d}", [(f"inv-{d}-x", buyer(d * 10 + 9))])
            ledger.record_run(P, "orders_in", f"scheduled__dead-{d}", started_at=t)
        ledger.quarantine(P, "orders_in", f"held-{d}", buyer(d * 10 + 5), [{"check": "sku_mapped", "detail": "unmapped"}], run)
        if d % 10 == 0:
            row = ledger.quarantine_by_key(P, "orders_in", f"held-{d}")
            ledger.discard_quarantine(row.id, "test order", "ops")
        elif d != 53:  # one order stays held from day 53 on
            ledger.resolve_quarantine(P, "orders_in", f"held-{d}", note=f"loaded as SO-{d}")
        if d < days - 1:
            ledger.add_link(P, "shipment", f"task-{d}:1", f"sale-{d + 1}-0", f"TRACK{d}", f"scheduled__db-{d}")
        ledger.store_file(P, "dispatch_back", f"scheduled__db-{d}", f"packing-slip-{d + 1}0-1.pdf", "application/pdf", b"%PDF-1.4 slip")
        ledger.reserve_call("cin7_core:demo", 60, 60.0, now=t.timestamp())
    clock.at(now)
    return {"links": ledger.count("order_link"), "quarantine": ledger.count("quarantine")}


def _rows(ledger: Ledger, query) -> list:
    with ledger.engine.connect() as conn:
        return conn.execute(query).all()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def test_sixty_days_of_runs_then_housekeeping_keeps_each_table_to_its_window(ledger, clock):
    now = datetime.now(timezone.utc)
    before = simulate(ledger, clock, now)
    assert ledger.count("payload_log") == DAYS * 2 and ledger.count("staged_record") == DAYS * 3 + DAYS // 5

    details = housekeeping.run("hk-1", ledger=ledger, settings=settings())

    # payload log: 30 days; staged: 7 days of finished orders_in runs, 2 of stock_out, 30 of unfinished runs
    logged = [_aware(r.logged_at) for r in _rows(ledger, select(payload_log.c.logged_at))]
    assert len(logged) == 30 * 2 and min(logged) > now - timedelta(days=30)
    staged = _rows(ledger, select(staged_record.c.flow, staged_record.c.run_id))
    assert sorted({r.run_id for r in staged if r.run_id.startswith("scheduled__oi-")}) == sorted(f"scheduled__oi-{d}" for d in range(7))
    assert sorted({r.run_id for r in staged if r.flow == "stock_out"}) == ["scheduled__so-0", "scheduled__so-1"]
    assert sorted({r.run_id for r in staged if "dead" in r.run_id}) == sorted(f"scheduled__dead-{d}" for d in range(0, 30, 5))
    assert details["prune"]["deleted"]["payload_log"] == 30 * 2
    assert details["prune"]["deleted"]["staged_record"] == DAYS * 3 + DAYS // 5 - len(staged) > 0
    # API budget slots beyond their window and stale claims go; the account's budget row stays
    assert ledger.count("api_call_slot") == 0 and ledger.count("api_budget") == 1
    assert {r.key for r in _rows(ledger, select(work_claim.c.key))} == {"inv-0-a", "inv-0-b"}
    # what exactly-once rests on is all there: every link, every quarantine row (within 400 days)
    assert ledger.count("order_link") == before["links"]
    assert ledger.links(P, "order", [f"{d}{i}" for d in range(DAYS) for i in range(2)]).keys() == {f"{d}{i}" for d in range(DAYS) for i in range(2)}
    assert ledger.count("quarantine") == before["quarantine"]
    assert [q.record_key for q in ledger.open_quarantine(P)] == ["held-53"]
    assert ledger.count("report_file") == 30  # packing slips: 30 days
    # the run is reported under the deployment's key, with the ledger's sizes
    (report,) = ledger.runs("commerce_sync", "housekeeping")
    assert report["finished_at"] is not None and report["details"]["prune"]["deleted"]["payload_log"] == 60
    sizes = {e["table"]: e for e in report["details"]["sizes"]}
    assert sizes["payload_log"]["rows"] == 60 and datetime.fromisoformat(sizes["payload_log"]["oldest"]) > now - timedelta(days=30)

    again = housekeeping.run("hk-2", ledger=ledger, settings=settings())
    assert sum(again["prune"]["deleted"].values()) == 0  # nothing left to do


def test_a_year_on_replayed_quarantine_run_reports_and_files_go_but_discarded_rows_stay(ledger, clock):
    now = datetime.now(timezone.utc)
    simulate(ledger, clock, now, days=3)
    ledger.quarantine(P, "orders_in", "still-held", buyer(1), [{"check": "sku_mapped", "detail": "unmapped"}], "r")
    # the same history seen from 400 days later: reports, files and replayed quarantine expire
    later = now + timedelta(days=401)
    housekeeping.run("hk-later", ledger=ledger, settings=settings(), now=later)
    assert {r.status for r in _rows(ledger, select(quarantine.c.status))} == {"discarded", "open"}
    assert _rows(ledger, select(run_report.c.pairing).where(run_report.c.pairing == P)) == []
    assert ledger.count("report_file") == 0
    assert ledger.count("order_link") == 3 * 2 + 2  # links stay as long as the sales they guard


def _open_sealed(ledger: Ledger, table, key: str):
    rows = _rows(ledger, select(table.c.payload).where(table.c.record_key == key))
    return [r.payload for r in rows]


def _raw_payload(ledger: Ledger, table, key: str) -> str:
    rows = _rows(ledger, select(text(f"CAST(payload AS TEXT) FROM {table.name} WHERE record_key = :k")).params(k=key))
    return rows[0][0]


def test_personal_data_is_erased_n_days_after_the_order_is_booked_and_shipped(ledger, clock):
    now = datetime.now(timezone.utc)
    cfg = settings(personal_data={"erase_after_days": 30}, retention={"staged_unfinished_days": 100})

    def held(key: str, n: int, days_ago: float, outcome: str, shipped_days_ago: float | None = None) -> None:
        clock.at(now - timedelta(days=days_ago))
        ledger.quarantine(P, "orders_in", key, buyer(n), [{"check": "sku_mapped", "detail": "unmapped"}], "r")
        if outcome == "replayed":
            ledger.resolve_quarantine(P, "orders_in", key)
            ledger.add_link(P, "order", str(n), f"sale-{n}", None, "r", channel_id=key)
        elif outcome == "discarded":
            ledger.discard_quarantine(ledger.quarantine_by_key(P, "orders_in", key).id, "test order", "ops")
        if shipped_days_ago is not None:
            clock.at(now - timedelta(days=shipped_days_ago))
            ledger.add_link(P, "shipment", f"task-{n}:1", f"sale-{n}", None, "r")

    held("a", 1, 50, "replayed", shipped_days_ago=40)  # shipped 40 days ago: past its 30
    held("b", 2, 50, "replayed", shipped_days_ago=10)  # shipped 10 days ago: kept
    held("c", 3, 50, "replayed")  # booked 50 days ago, never shipped
    held("d", 4, 40, "discarded")  # never booked, closed 40 days ago
    held("e", 5, 50, "open")  # still waiting for a fix: never touched
    held("f", 6, 10, "replayed", shipped_days_ago=5)
    clock.at(now - timedelta(days=40))
    ledger.stage(P, "orders_in", "old-run", [("g", buyer(7))])  # a staged record kept past N days
    clock.at(now)

    erased = housekeeping.erase("hk", ledger=ledger, settings=cfg)["erased"]

    assert erased == {"quarantine": 3, "staged_record": 1}
    for key in ("a", "c", "d"):
        (payload,) = _open_sealed(ledger, quarantine, key)
        assert payload["buyerEmail"] == ERASED and payload["buyerFirstName"] == ERASED and payload["lineItems"][0]["sku"] == "CS-CAP-NVY"
        assert "__sealed__" not in _raw_payload(ledger, quarantine, key)
    assert _open_sealed(ledger, staged_record, "g")[0]["buyerEmail"] == ERASED
    for key, n in (("b", 2), ("e", 5), ("f", 6)):
        assert _open_sealed(ledger, quarantine, key)[0]["buyerEmail"] == f"buyer{n}@example.com"
    assert [q.record_key for q in ledger.open_quarantine(P)] == ["e"]
    (logged,) = _rows(ledger, select(erasure_log))
    assert logged.kind == "retention" and logged.rows == {"quarantine": 3, "staged_record": 1}
    assert housekeeping.erase("hk2", ledger=ledger, settings=cfg)["erased"] == {"quarantine": 0, "staged_record": 0}


X = "Alex.Buyer+shop@Example.com"


def everything_as_text(ledger: Ledger) -> dict[str, str]:
    """Every table of the ledger as text (binary decoded as far as it decodes), and the sealed
    payloads opened: the address must be gone from what a key could still read, too."""
    from tests.security.test_leaks import ledger_text

    texts = ledger_text(ledger.engine.url.render_as_string(hide_password=False))
    for table in (staged_record, quarantine):
        texts[f"{table.name} (opened)"] = json.dumps([r.payload for r in _rows(ledger, select(table.c.payload))], default=str)
    return texts


def traces(texts: dict[str, str], address: str) -> list[str]:
    return sorted({where for where, body in texts.items() for form in address_forms(address) if form in body.lower()})


def test_erase_by_email_leaves_no_trace_of_the_address_anywhere_and_bookings_stay(ledger, clock, tmp_path, monkeypatch, capsys):
    from commerce_sync.cli import main

    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", ledger.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("COMMERCE_SYNC_HOUSEKEEPING_FILE", str(tmp_path / "none.yaml"))
    mine = {"legacyId": 5001, "buyer": {"email": X.lower(), "firstName": "Alex", "phone": "+61 400 000 000"}, "login": X, "sku": "CS-CAP-NVY"}
    other = {"legacyId": 5002, "buyer": {"email": "sam@example.org", "firstName": "Sam"}, "sku": "CS-CAP-NVY"}
    ledger.stage(P, "orders_in", "r1", [("inv-5001", mine), ("inv-5002", other)])
    ledger.stage(P, "orders_in", "r2", [("inv-5001", mine)])
    ledger.add_link(P, "order", "5001", "sale-5001", "SO-5001", "r1", channel_id="inv-5001")
    ledger.add_link(P, "order", "5002", "sale-5002", "SO-5002", "r1", channel_id="inv-5002")
    ledger.quarantine(P, "orders_in", "inv-5001", mine, [{"check": "erp_refused", "detail": f"Cin7 said: customer {X} unknown"}], "r3")
    ledger.quarantine(P, "order_acceptance", "inv-5001", {"buyer": {"firstName": "Alex"}, "sku": "CS-CAP-NVY"}, [{"check": "c", "detail": "d"}], "r3")
    ledger.log_payload({"pairing": P, "system": "marketplacer", "method": "GET", "url": f"https://mkp.example/customers/{X.replace('@', '%40')}", "status": 200})
    ledger.log_payload({"pairing": P, "system": "marketplacer", "method": "POST", "url": "https://mkp.example/graphql", "request_body": json.dumps({"q": X}, ensure_ascii=True).replace("@", "\\u0040")})
    ledger.log_payload({"pairing": P, "system": "cin7_core", "method": "GET", "url": "https://cin7.example/x", "error": f"BOUNCED {X.upper()}"})
    ledger.log_payload({"pairing": P, "system": "cin7_core", "method": "GET", "url": "https://cin7.example/saleList", "status": 200})
    ledger.record_run(P, "orders_in", "r3", details={"breaches": [f"order of {X} held"]})
    ledger.store_report(P, "payout_reconciliation", "2026-11", "exceptions.csv", "text/csv", f"type,detail\nunmatched,paid by {X}\n")
    ledger.store_file(P, "dispatch_back", "r4", "packing-slip-5001-1.pdf", "application/pdf", b"%PDF compressed ship-to")
    ledger.store_file(P, "dispatch_back", "r4", "packing-slip-5002-1.pdf", "application/pdf", b"%PDF another buyer")
    ledger.store_file(P, "dispatch_back", "r5", "note.pdf", "application/pdf", f"%PDF plain {X}".encode())
    assert traces(everything_as_text(ledger), X)  # the scan sees the address before

    assert main(["erase", "--email", X.upper(), "--by", "dpo@brand.example"]) == 0
    out = capsys.readouterr().out
    assert "Erased" in out and "payload_log" in out

    assert traces(everything_as_text(ledger), X) == []
    # the buyer's records: every personal value gone, business fields kept, the open row closed
    for payload in _open_sealed(ledger, staged_record, "inv-5001"):
        assert payload["buyer"] == {"email": ERASED, "firstName": ERASED, "phone": ERASED} and payload["sku"] == "CS-CAP-NVY"
    held = ledger.quarantine_by_key(P, "orders_in", "inv-5001")
    assert held.status == "discarded" and "erased on request" in held.resolution_note and held.resolved_by == "dpo@brand.example"
    assert ledger.quarantine_by_key(P, "order_acceptance", "inv-5001").payload["buyer"]["firstName"] == ERASED  # same order, other flow
    # nobody else's data, and every booking, left as it was
    assert _open_sealed(ledger, staged_record, "inv-5002")[0]["buyer"]["email"] == "sam@example.org"
    assert ledger.links(P, "order", ["5001", "5002"]) == {"5001": "sale-5001", "5002": "sale-5002"}
    assert set(ledger.files(P, "dispatch_back")) == {"packing-slip-5002-1.pdf"}
    assert ledger.count("payload_log") == 1
    (logged,) = _rows(ledger, select(erasure_log))
    assert logged.kind == "request" and logged.requested_by == "dpo@brand.example"
    assert logged.rows == {"staged_record": 2, "quarantine": 2, "payload_log": 3, "run_report": 1, "report_file": 3}


def test_erase_refuses_what_is_not_an_address(ledger, monkeypatch, capsys):
    from commerce_sync.cli import main

    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", ledger.engine.url.render_as_string(hide_password=False))
    assert main(["erase", "--email", "not-an-address"]) == 2
    assert "not an e-mail address" in capsys.readouterr().err
    assert ledger.count("erasure_log") == 0


def test_address_forms_cover_the_ways_an_address_is_stored():
    forms = address_forms(" Jo.B+x@Example.com ")
    assert {"jo.b+x@example.com", "jo.b%2bx%40example.com", "jo.b+x%40example.com", "jo.b+x\\u0040example.com", "jo.b+x&#64;example.com"} <= set(forms)
    assert "j\\u00f6@example.se" in address_forms("jö@example.se")  # JSON written with ASCII escapes


def test_the_outbox_keeps_undelivered_alerts_and_loses_delivered_ones_past_their_days(ledger):
    now = datetime.now(timezone.utc)
    ids = {}
    for name, (created, sent) in {"old sent": (40, 40), "old never sent": (40, None), "recent sent": (5, 5)}.items():
        ids[name] = ledger.queue_email(["ops@example.com"], name, "<p>x</p>", None, "smtp_default", claimed_by="test")
        with ledger.engine.begin() as conn:
            conn.execute(text("UPDATE outbox SET status = :s, created_at = :c, sent_at = :d WHERE id = :i"),
                         {"s": "sent" if sent is not None else "queued", "c": now - timedelta(days=created),
                          "d": None if sent is None else now - timedelta(days=sent), "i": ids[name]})
    deleted = housekeeping.prune("hk", ledger=ledger, settings=settings())["deleted"]
    assert deleted["outbox"] == 1
    assert sorted(r[0] for r in _rows(ledger, text("SELECT subject FROM outbox"))) == ["old never sent", "recent sent"]


def test_settings_defaults_match_the_shipped_file_and_a_bad_file_is_named(tmp_path):
    shipped = load_settings(project_root() / "include" / "housekeeping.yaml")
    assert shipped.retention == HousekeepingSettings().retention and shipped.personal_data == HousekeepingSettings().personal_data
    assert shipped.retention.payload_log_days == 30 and shipped.retention.quarantine_resolved_days == 400
    assert shipped.personal_data.erase_after_days == 90
    assert load_settings(tmp_path / "absent.yaml") == HousekeepingSettings()
    bad = tmp_path / "housekeeping.yaml"
    bad.write_text("retention:\n  payload_log_dayz: 3\n")
    with pytest.raises(PairingError, match="housekeeping.yaml"):
        load_settings(bad)


def test_health_shows_the_size_and_oldest_row_of_every_table(ledger, clock, monkeypatch, capsys):
    from commerce_sync.cli import main

    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", ledger.engine.url.render_as_string(hide_password=False))
    old = datetime.now(timezone.utc) - timedelta(days=12)
    clock.at(old)
    ledger.log_payload({"system": "cin7_core", "method": "GET", "url": "https://x/", "status": 200})
    clock.at(datetime.now(timezone.utc))
    ledger.log_payload({"system": "cin7_core", "method": "GET", "url": "https://x/", "status": 200})
    ledger.reserve_call("acct", 60, 60.0)
    sizes = {e["table"]: e for e in ledger_sizes(ledger.engine)}
    assert {"payload_log", "staged_record", "order_link", "quarantine", "api_call_slot", "erasure_log"} <= set(sizes)
    assert sizes["payload_log"]["rows"] == 2 and abs(sizes["payload_log"]["oldest"] - old) < timedelta(seconds=1)
    assert sizes["payload_log"]["bytes"] > 0 and sizes["order_link"]["oldest"] is None
    assert sizes["api_call_slot"]["oldest"] > old  # dated by its epoch-seconds slot
    assert main(["health", "--pairing", P, "--json"]) == 0
    ledger_part = {e["table"]: e for e in json.loads(capsys.readouterr().out)["ledger"]}
    assert ledger_part["payload_log"]["rows"] == 2
    assert main(["health", "--pairing", P]) == 0
    out = capsys.readouterr().out
    assert "Ledger:" in out and f"oldest {old:%Y-%m-%d}" in out


def test_a_record_no_current_key_opens_is_reported_not_guessed(ledger, monkeypatch, tmp_path):
    from cryptography.fernet import Fernet

    from commerce_sync.housekeeping.erasure import erase_address

    ledger.stage(P, "orders_in", "r1", [("inv-1", {"buyer": {"email": "old@example.com"}, "sku": "A"})])
    monkeypatch.setenv("COMMERCE_SYNC_SEAL_KEY", Fernet.generate_key().decode())  # the old key retired, not kept for rotation
    counts = erase_address(ledger.engine, "old@example.com", "dpo", settings())
    assert counts == {"sealed_unreadable": 1}
    assert "__sealed__" in _raw_payload(ledger, staged_record, "inv-1")  # left as it was: unreadable to anyone


def test_webhook_events_go_after_their_days(ledger):
    now = datetime.now(timezone.utc)
    old, recent = (ledger.record_webhook("p", "cin7_core", "0" * 64, ["orders_in"]) for _ in range(2))
    with ledger.engine.begin() as conn:
        conn.execute(text("UPDATE webhook_event SET received_at = :t WHERE id = :i"), {"t": now - timedelta(days=31), "i": old})
    deleted = housekeeping.prune("hk", ledger=ledger, settings=settings())["deleted"]
    assert deleted["webhook_event"] == 1
    assert [e["id"] for e in ledger.webhook_events()] == [recent]
