"""The fault matrix: every flow of every pairing under every fault the emulators can inject.

A cell = (pairing, flow, fault). It seeds good and bad records, injects the fault on the API the
flow writes to (or reads from, for faults of what an API says), runs the flow as its DAG would
(each step retried like the DAG's tasks, a data error failing the run at once), clears the fault,
runs the flow again (the re-run or backfill an operator would do), and checks the invariants:

- every good record reached its target exactly once (sales, shipments, credit notes, journals,
  stock quantities);
- every bad record is in quarantine with a reason, and no good record is;
- under a fault that puts the credentials into the vendor's answer, no credential is in any ledger
  table, e-mail or log line afterwards.

Flows run in-process through the same step functions the Airflow tasks call (`factory.FLOW_STEPS`),
so a 150-cell matrix takes minutes, not an hour; `tests/e2e` runs the same flows through Airflow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from importlib import import_module
from typing import Any

import requests

from commerce_sync.ledger import Ledger
from tests.builders import marketplacer_invoice

MKP, JL = "cin7_marketplacer", "cin7_john_lewis"


# -- the faults ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    name: str
    side: str  # "write": the API the flow changes; "read": the API it reads its records from
    spec: Callable[[dict[str, Any]], dict[str, Any]]  # target -> /_sandbox/faults body
    scan_for_secrets: bool = False  # afterwards, search ledger, e-mail and logs for the credentials


def _on(target: dict[str, Any], **fault: Any) -> dict[str, Any]:
    """A fault restricted to the target's path (REST) or operation (GraphQL)."""
    where = {k: target[k] for k in ("path", "operation", "method") if target.get(k)}
    return {**where, **fault}


FAULTS: list[Fault] = [
    Fault("latency 300 ms", "write", lambda t: {"latency_ms": 300}),
    Fault("timeout (server slow, commits)", "write", lambda t: {"hang": _on(t, seconds=2.5, count=1)}),
    Fault("connection reset before", "write", lambda t: {"reset_connection": _on(t, when="before", count=1)}),
    Fault("response lost after commit", "write", lambda t: {"reset_connection": _on(t, when="after_commit", count=1)}),
    Fault("429 burst + Retry-After", "write", lambda t: {"status_burst": _on(t, status=429, count=3, retry_after=1)}),
    Fault("429 burst, no Retry-After", "write", lambda t: {"status_burst": _on(t, status=429, count=3)}),
    Fault("503 burst + Retry-After", "read", lambda t: {"status_burst": _on(t, status=503, count=3, retry_after=1)}),
    Fault("500 errors", "write", lambda t: {"status_burst": _on(t, status=500, count=2)}),
    Fault("malformed JSON", "read", lambda t: {"malformed_json": _on(t, count=1)}),
    Fault("schema drift (field renamed)", "read", lambda t: {"schema_drift": _on(t, count=1, rename=t["drift"])}),
    Fault("duplicate delivery", "read", lambda t: {"duplicate_items": _on(t, count=1, list_key=t["list_key"])}),
    Fault("page shifted while read", "read", lambda t: {"shift_pages": _on(t, count=1, by=-1, list_key=t["list_key"])}),
    # the API refuses the write and its error quotes the headers it got, keys and all: in its own
    # answer where it has one (GraphQL errors, Mirakl's shipment errors and stock error report)
    Fault("vendor error quotes our credentials", "write", lambda t: {"echo_credentials": _on(t, count=1)}, scan_for_secrets=True),
]


# -- the world a cell runs in -------------------------------------------------------------------
# emulators a pairing's scenario module starts itself: name -> its URL (started on first call)
EMULATORS: dict[str, Callable[[], str]] = {}


@dataclass
class World:
    cin7: str
    marketplacer: str
    mirakl: str
    ledger_url: str
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0))
    expect: dict[str, Any] = field(default_factory=dict)  # what the scenario's check compares against
    centra: str = ""
    more: dict[str, str] = field(default_factory=dict)  # emulators a scenario module starts itself (matrix_sfcc), by name

    def url(self, emulator: str) -> str:
        known = {"cin7": self.cin7, "marketplacer": self.marketplacer, "mirakl": self.mirakl, "centra": self.centra, **self.more}
        return known[emulator] if known.get(emulator) else EMULATORS[emulator]()

    def post(self, emulator: str, path: str, body: Any) -> Any:
        r = requests.post(f"{self.url(emulator)}{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json() if r.content else None

    def get(self, emulator: str, path: str) -> Any:
        r = requests.get(f"{self.url(emulator)}{path}", timeout=30)
        r.raise_for_status()
        return r.json()

    def sales(self) -> list[dict]:
        body = self.get("cin7", "/_sandbox/sales")
        return body["sales"] if isinstance(body, dict) else body

    def ledger(self) -> Ledger:
        return Ledger.from_url(self.ledger_url)


def window(world: World) -> tuple[datetime, datetime]:
    return world.now - timedelta(hours=1), datetime.now(timezone.utc) + timedelta(minutes=2)


def run_flow(pairing_key: str, flow: str, run_id: str, start: datetime, end: datetime) -> str:
    """The flow's steps in DAG order, each retried like its Airflow task; 'success' or 'failed: ...'."""
    from commerce_sync.factory import DATA_ERRORS, FLOW_STEPS, run_step, window as dag_window
    from commerce_sync.pairing import get_pairing

    data_errors = tuple(getattr(import_module(p.rsplit(".", 1)[0]), p.rsplit(".", 1)[1]) for p in DATA_ERRORS)
    pairing = get_pairing(pairing_key)
    cfg = pairing.flow(flow)
    run = type("Run", (), {"conf": {"window_start": start.isoformat(), "window_end": end.isoformat()}})()
    results: dict[str, Any] = {}
    for step in FLOW_STEPS[flow]:
        extra = {}
        if step.extra is not None:
            extra = step.extra(pairing, cfg, start, end, run)
        for attempt in range(cfg.retries + 1):
            try:
                # as the Airflow task does: the step in its own context, reads confirmed once it returned
                results[step.name] = run_step(pairing_key, flow, step, run_id, tuple(results[a] for a in step.after), extra)
                break
            except data_errors as exc:  # the DAG's retry policy: a data error fails at once
                _alert(pairing_key, flow, run_id, exc)
                return f"failed: {type(exc).__name__}: {exc}"[:300]
            except Exception as exc:  # noqa: BLE001 - any other error is retried, as Airflow would
                if attempt == cfg.retries:
                    _alert(pairing_key, flow, run_id, exc)
                    return f"failed after {attempt + 1} tries: {type(exc).__name__}: {exc}"[:300]
    _ = dag_window  # the runner takes the window as given: the DAG's overlap is the run conf's business
    return "success"


def _alert(pairing_key: str, flow: str, run_id: str, exc: BaseException) -> None:
    """What Airflow does after a task's last try: the failure e-mail to the pairing's ops."""
    from commerce_sync.alerts import task_failed

    task_failed(pairing_key, flow, {"exception": exc, "run_id": run_id})


# -- scenarios ----------------------------------------------------------------------------------
@dataclass
class Scenario:
    pairing: str
    flow: str
    setup: Callable[[World], None]  # seed, and run the flows this one depends on (no faults)
    check: Callable[[World], list[str]]  # problems; [] = the invariants hold
    targets: dict[str, dict[str, Any]]  # "write"/"read" -> {"emulator", "path"/"operation", "list_key", "drift"}
    faults: Collection[str] | None = None  # the faults this scenario's cells run (by name; None: every one)


def _quarantine_check(world: World, pairing: str, flow: str, bad: set[str], key_of: Callable[[Any], str]) -> list[str]:
    led = world.ledger()
    try:
        rows = led.open_quarantine(pairing, flow)
    finally:
        led.dispose()
    held = {key_of(q): q for q in rows}
    problems = []
    if set(held) != bad:
        problems.append(f"quarantine holds {sorted(held)}, expected {sorted(bad)}")
    problems += [f"{k}: quarantined without a reason" for k, q in held.items() if not q.reasons or not all(r.get("detail") for r in q.reasons)]
    return problems


def _once(counts: Counter, expected: set[str], what: str) -> list[str]:
    problems = [f"{what} {k} exists {counts[k]} times" for k in expected if counts[k] != 1]
    problems += [f"unexpected {what} {k}" for k in counts if k not in expected]
    return problems


def _seed_cin7(world: World) -> None:
    world.post("cin7", "/_sandbox/seed", {
        "products": [{"SKU": s, "Name": s} for s in ("CS-TEE-BLK-M", "CS-TEE-BLK-L", "CS-CAP-NVY", "CS-SOCK-WHT")],
        "locations": ["Main Warehouse"], "tax_rules": ["GST on Income", "20% (VAT on Income)"],
        "customers": ["Marketplacer", "Castore AU (Marketplacer)", "Lounge (Marketplacer)", {"Name": "John Lewis Marketplace", "Currency": "GBP"}],
    })


# Marketplacer ------------------------------------------------------------------------------------
MKP_GOOD = [(5001, [("CS-TEE-BLK-M", 2, 4500)]), (5002, [("CS-CAP-NVY", 1, 2500)]), (5003, [("CS-TEE-BLK-L", 1, 4500)]), (5004, [("CS-CAP-NVY", 2, 2500)])]
MKP_BAD = (5099, [("CS-UNMAPPED", 1, 1000)])


def _mkp_orders(world: World, with_bad: bool = True) -> None:
    placed = world.now - timedelta(minutes=30)
    invoices = [marketplacer_invoice(n, lines, created_at=placed) for n, lines in MKP_GOOD + ([MKP_BAD] if with_bad else [])]
    world.post("marketplacer", "/_sandbox/invoices", {"invoices": invoices})


def _mkp_booked(world: World) -> None:
    _seed_cin7(world)
    _mkp_orders(world, with_bad=False)
    status = run_flow(MKP, "orders_in", "setup-orders", *window(world))
    assert status == "success", status


def _mkp_orders_check(world: World) -> list[str]:
    sales = world.sales()
    problems = _once(Counter(s["ExternalID"] for s in sales), {f"MKP-{n}" for n, _ in MKP_GOOD}, "sale")
    problems += [f"sale {s['ExternalID']} has no lines" for s in sales if not (s.get("Order") or {}).get("Lines")]
    return problems + _quarantine_check(world, MKP, "orders_in", {str(MKP_BAD[0])}, lambda q: str(q.payload.get("legacyId")))


def _mkp_dispatch_setup(world: World) -> None:
    _mkp_booked(world)
    ship = lambda ext, pack, lines: world.post("cin7", "/_sandbox/fulfilments", {"ExternalID": ext, "pack": pack, "ship": lines})  # noqa: E731
    ship("MKP-5001", [{"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "1"}, {"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "2"}],
         [{"Box": "1", "Carrier": "Australia Post", "TrackingNumber": "AP1"}, {"Box": "2", "Carrier": "StarTrack", "TrackingNumber": "ST2"}])
    ship("MKP-5002", [{"SKU": "CS-CAP-NVY", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "Australia Post", "TrackingNumber": "AP3"}])
    ship("MKP-5003", [{"SKU": "CS-TEE-BLK-L", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "Pigeon Post", "TrackingNumber": "PP4"}])


def _mkp_dispatch_check(world: World) -> list[str]:
    invoices = world.get("marketplacer", "/_sandbox/invoices")["invoices"]
    counts = Counter(s["trackingNumber"] for inv in invoices for s in inv.get("shipments") or [])
    problems = _once(counts, {"AP1", "ST2", "AP3"}, "shipment")
    return problems + _quarantine_check(world, MKP, "dispatch_back", {"MKP-5003"}, lambda q: f"MKP-{q.payload.get('order_channel_ref')}")


def _mkp_refunds_setup(world: World) -> None:
    _mkp_booked(world)
    for ext in ("MKP-5001", "MKP-5002"):
        world.post("cin7", "/_sandbox/invoice", {"ExternalID": ext})
    stamp = (world.now - timedelta(minutes=5)).isoformat()
    world.post("marketplacer", "/_sandbox/refund_requests", {"refundRequests": [
        {"invoiceLegacyId": 5001, "status": "REFUNDED", "createdAt": stamp, "lineItems": [{"sku": "CS-TEE-BLK-M", "quantity": 1, "amountCents": 4500}]},
        {"invoiceLegacyId": 5002, "status": "REFUNDED", "createdAt": stamp, "lineItems": [{"sku": "CS-CAP-NVY", "quantity": 1, "amountCents": 2500}]},
        {"invoiceLegacyId": 5999, "status": "REFUNDED", "createdAt": stamp, "lineItems": [{"sku": "CS-CAP-NVY", "quantity": 1, "amountCents": 2500}]},
    ]})


def _credit_notes_check(world: World, expected: dict[str, int]) -> list[str]:
    notes = {s["ExternalID"]: len(s.get("_credit_notes") or []) for s in world.sales()}
    return [f"sale {ext} has {notes.get(ext, 0)} credit notes, expected {n}" for ext, n in expected.items() if notes.get(ext, 0) != n] + \
           [f"unexpected credit notes on {ext}" for ext, n in notes.items() if n and ext not in expected]


def _mkp_refunds_check(world: World) -> list[str]:
    return _credit_notes_check(world, {"MKP-5001": 1, "MKP-5002": 1}) + \
        _quarantine_check(world, MKP, "refunds", {"5999"}, lambda q: str((q.payload.get("invoice") or {}).get("legacyId")))


def _mkp_payout_setup(world: World) -> None:
    _mkp_booked(world)
    paid = (world.now - timedelta(minutes=10)).isoformat()
    rem = lambda inv, net, com, tax: {"invoiceLegacyId": inv, "amountCents": net, "commissionAmountCents": com, "commissionTaxCents": tax}  # noqa: E731
    # one advice per remittance: several pages to read (remittance legacy ids 100, 200, 300)
    world.post("marketplacer", "/_sandbox/remittance_advices", {"advices": [{"paidAt": paid, "paymentReference": f"PAY-{i}", "currency": "AUD", "remittances": [r]}
                                                                            for i, r in enumerate([rem(5001, 8895, 1000, 100), rem(5002, 3164, 300, 31), rem(5003, 4905, 500, 90)], 1)]})


def _journals_check(world: World, expected_refs: set[str]) -> list[str]:
    journals = world.get("cin7", "/_sandbox/journals")["journals"]
    return _once(Counter(j["Lines"][0]["Reference"] for j in journals), expected_refs, "journal")


def _payout_matches_check(world: World, pairing: str, expected: dict[str, str]) -> list[str]:
    led = world.ledger()
    try:
        got = {m["order_channel_ref"]: m["status"] for m in led.payout_matches(pairing)}
    finally:
        led.dispose()
    return [f"payout for {k}: {got.get(k)}, expected {v}" for k, v in expected.items() if got.get(k) != v]


def _mkp_payout_check(world: World) -> list[str]:
    return _journals_check(world, {"MKP-PAYOUT-100", "MKP-PAYOUT-200", "MKP-PAYOUT-300"}) + \
        _payout_matches_check(world, MKP, {"5001": "matched", "5002": "matched", "5003": "matched"})


STOCK = {"CS-TEE-BLK-M": 10, "CS-TEE-BLK-L": 4, "CS-CAP-NVY": 20}


def _seed_stock(world: World) -> None:
    _seed_cin7(world)
    world.post("cin7", "/_sandbox/seed", {"availability": [{"SKU": s, "Location": "Main Warehouse", "OnHand": q, "Allocated": 0} for s, q in STOCK.items()]})


def _mkp_stock_setup(world: World) -> None:
    _seed_stock(world)
    world.post("marketplacer", "/_sandbox/adverts", {"adverts": [{"title": s, "variants": [{"sku": s, "countOnHand": 0}]} for s in STOCK]})


def _mkp_stock_check(world: World) -> list[str]:
    shown = world.get("marketplacer", "/_sandbox/stock_updates")["stock"]
    # buffer: one unit on each SKU, caps 10% rounded up (cin7_marketplacer.yaml)
    want = {"CS-TEE-BLK-M": 9, "CS-TEE-BLK-L": 3, "CS-CAP-NVY": 18}
    return [f"{s}: channel shows {shown.get(s)}, expected {q}" for s, q in want.items() if shown.get(s) != q] + \
        _quarantine_check(world, MKP, "stock_out", set(), lambda q: q.record_key)


# John Lewis (Mirakl) ----------------------------------------------------------------------------
JL_GOOD = [("JL6001", [("JL-TEE-BLK-M", 2, "45.00")]), ("JL6002", [("JL-CAP-NVY", 1, "19.99")]), ("JL6003", [("JL-TEE-BLK-L", 1, "45.00")]),
           ("JL6004", [("JL-CAP-NVY", 2, "19.99")])]
JL_BAD = ("JL6099", [("JL-UNMAPPED", 1, "10.00")])


def _jl_lines(lines):
    return [{"offer_sku": sku, "quantity": q, "price_unit": p, "tax": str((Decimal(p) * q / 6).quantize(Decimal("0.01")))} for sku, q, p in lines]


def _jl_orders(world: World, with_bad: bool = True, state: str = "SHIPPING") -> None:
    from sandbox.mirakl import make_order

    placed = world.now - timedelta(minutes=30)
    world.post("mirakl", "/_sandbox/orders", [make_order(f"{c}-A", c, _jl_lines(lines), state=state, created=placed)
                                               for c, lines in JL_GOOD + ([JL_BAD] if with_bad else [])])


def _jl_booked(world: World) -> None:
    _seed_cin7(world)
    _jl_orders(world, with_bad=False)
    status = run_flow(JL, "orders_in", "setup-orders", *window(world))
    assert status == "success", status


def _jl_orders_check(world: World) -> list[str]:
    sales = world.sales()
    problems = _once(Counter(s["ExternalID"] for s in sales), {c for c, _ in JL_GOOD}, "sale")
    problems += [f"sale {s['ExternalID']} has no lines" for s in sales if not (s.get("Order") or {}).get("Lines")]
    return problems + _quarantine_check(world, JL, "orders_in", {f"{JL_BAD[0]}-A"}, lambda q: q.record_key)


def _jl_dispatch_setup(world: World) -> None:
    _jl_booked(world)
    ship = lambda ext, pack, lines: world.post("cin7", "/_sandbox/fulfilments", {"ExternalID": ext, "pack": pack, "ship": lines})  # noqa: E731
    ship("JL6001", [{"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "1"}, {"SKU": "CS-TEE-BLK-M", "Quantity": 1, "Box": "2"}],
         [{"Box": "1", "Carrier": "DPD", "TrackingNumber": "DPD1"}, {"Box": "2", "Carrier": "Evri", "TrackingNumber": "EV2"}])
    ship("JL6002", [{"SKU": "CS-CAP-NVY", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "Royal Mail Tracked 24", "TrackingNumber": "RM3"}])
    ship("JL6003", [{"SKU": "CS-TEE-BLK-L", "Quantity": 1, "Box": "1"}], [{"Box": "1", "Carrier": "Pigeon Post", "TrackingNumber": "PP4"}])


def _jl_dispatch_check(world: World) -> list[str]:
    shipments = world.get("mirakl", "/_sandbox/shipments")["shipments"]
    counts = Counter((s.get("tracking") or {}).get("tracking_number") for s in shipments)
    problems = _once(counts, {"DPD1", "EV2"}, "shipment")
    whole = world.get("mirakl", "/_sandbox/orders/JL6002-A")
    if whole.get("order_state") != "SHIPPED" or whole.get("shipping_tracking") != "RM3":
        problems.append(f"JL6002-A is {whole.get('order_state')} with tracking {whole.get('shipping_tracking')}")
    if world.get("mirakl", "/_sandbox/orders/JL6003-A").get("order_state") != "SHIPPING":
        problems.append("JL6003-A (unmapped carrier) changed on the channel")
    return problems + _quarantine_check(world, JL, "dispatch_back", {"JL6003"}, lambda q: str(q.payload.get("order_channel_ref")))


def _jl_refunds_setup(world: World) -> None:
    from sandbox.mirakl import make_order

    _jl_booked(world)
    for ext in ("JL6001", "JL6002"):
        world.post("cin7", "/_sandbox/invoice", {"ExternalID": ext})
    # an order this integration never booked (shipped before it went live)
    world.post("mirakl", "/_sandbox/orders", [make_order("JL6999-A", "JL6999", _jl_lines([("JL-CAP-NVY", 1, "19.99")]), state="SHIPPED", created=world.now - timedelta(days=3))])
    world.post("mirakl", "/_sandbox/orders/JL6001-A/refunds", [{"order_line_id": "JL6001-A-1", "quantity": 1, "amount": "45.00", "shipping_amount": "0", "reason_code": "34"}])
    world.post("mirakl", "/_sandbox/orders/JL6002-A/cancelations", [{"order_line_id": "JL6002-A-1", "quantity": 1, "amount": "19.99", "shipping_amount": "0", "reason_code": "2"}])
    world.post("mirakl", "/_sandbox/orders/JL6999-A/refunds", [{"order_line_id": "JL6999-A-1", "quantity": 1, "amount": "19.99", "shipping_amount": "0", "reason_code": "34"}])


def _jl_refunds_check(world: World) -> list[str]:
    return _credit_notes_check(world, {"JL6001": 1, "JL6002": 1}) + \
        _quarantine_check(world, JL, "refunds", {"JL6999"}, lambda q: str((q.payload.get("order") or {}).get("commercial_id")))


def _jl_payout_setup(world: World) -> None:
    from sandbox.mirakl import make_transaction

    _jl_booked(world)
    paid = world.now - timedelta(minutes=10)
    txs, n = [], 0
    for order, amount, fee, vat in (("JL6001", "90.00", "-10.80", "-2.16"), ("JL6002", "19.99", "-2.40", "-0.48"), ("JL6003", "45.00", "-5.40", "-1.08")):
        for kind, value in (("ORDER_AMOUNT", amount), ("COMMISSION_FEE", fee), ("COMMISSION_VAT", vat)):
            n += 1
            txs.append(make_transaction(f"T{n}", kind, value, order_id=f"{order}-A", commercial_id=order, cycle="2026-11", transaction_date=paid))
    world.post("mirakl", "/_sandbox/transactions", txs)


def _jl_payout_check(world: World) -> list[str]:
    return _journals_check(world, {f"PAYOUT-2026-11-{o}-A" for o in ("JL6001", "JL6002", "JL6003")}) + \
        _payout_matches_check(world, JL, {"JL6001": "matched", "JL6002": "matched", "JL6003": "matched"})


def _jl_stock_setup(world: World) -> None:
    from sandbox.mirakl import make_offer

    _seed_stock(world)
    world.post("mirakl", "/_sandbox/offers", [make_offer(s, 0) for s in ("JL-TEE-BLK-M", "JL-TEE-BLK-L", "JL-CAP-NVY")])


def _jl_stock_check(world: World) -> list[str]:
    shown = {o["shop_sku"]: o["quantity"] for o in world.get("mirakl", "/_sandbox/offers")["offers"]}
    want = {"JL-TEE-BLK-M": 8, "JL-TEE-BLK-L": 2, "JL-CAP-NVY": 18}  # two units held back (cin7_john_lewis.yaml)
    return [f"{s}: channel shows {shown.get(s)}, expected {q}" for s, q in want.items() if shown.get(s) != q] + \
        _quarantine_check(world, JL, "stock_out", set(), lambda q: q.record_key)


def _mkp_orders_setup(world: World) -> None:
    _seed_cin7(world)
    _mkp_orders(world)


def _jl_orders_setup(world: World) -> None:
    _seed_cin7(world)
    _jl_orders(world)


CIN7_SALE = {"emulator": "cin7", "path": "/sale", "method": "POST"}
SCENARIOS: list[Scenario] = [
    Scenario(MKP, "orders_in", _mkp_orders_setup, _mkp_orders_check, {
        "write": CIN7_SALE,
        "read": {"emulator": "marketplacer", "operation": "invoices", "list_key": "nodes", "drift": {"legacyId": "legacyID"}}}),
    Scenario(MKP, "dispatch_back", _mkp_dispatch_setup, _mkp_dispatch_check, {
        "write": {"emulator": "marketplacer", "operation": "shipmentCreate"},
        "read": {"emulator": "cin7", "path": "/saleList", "list_key": "SaleList", "drift": {"SaleID": "SaleId"}}}),
    Scenario(MKP, "refunds", _mkp_refunds_setup, _mkp_refunds_check, {
        "write": {"emulator": "cin7", "path": "/sale/creditnote", "method": "POST"},
        "read": {"emulator": "marketplacer", "operation": "refundRequests", "list_key": "nodes", "drift": {"amountCents": "amount"}}}),
    Scenario(MKP, "payout_reconciliation", _mkp_payout_setup, _mkp_payout_check, {
        "write": {"emulator": "cin7", "path": "/journal", "method": "POST"},
        "read": {"emulator": "marketplacer", "operation": "remittanceAdvices", "list_key": "nodes", "drift": {"commissionAmountCents": "commissionCents"}}}),
    Scenario(MKP, "stock_out", _mkp_stock_setup, _mkp_stock_check, {
        "write": {"emulator": "marketplacer", "operation": "variantUpdate"},
        "read": {"emulator": "cin7", "path": "/ref/productavailability", "list_key": "ProductAvailabilityList", "drift": {"Available": "Availability"}}}),
    Scenario(JL, "orders_in", _jl_orders_setup, _jl_orders_check, {
        "write": CIN7_SALE,
        "read": {"emulator": "mirakl", "path": "/api/orders", "method": "GET", "list_key": "orders", "drift": {"commercial_id": "commercialId"}}}),
    Scenario(JL, "dispatch_back", _jl_dispatch_setup, _jl_dispatch_check, {
        "write": {"emulator": "mirakl", "path": "/api/shipments", "method": "POST"},
        "read": {"emulator": "cin7", "path": "/saleList", "list_key": "SaleList", "drift": {"SaleID": "SaleId"}}}),
    Scenario(JL, "refunds", _jl_refunds_setup, _jl_refunds_check, {
        "write": {"emulator": "cin7", "path": "/sale/creditnote", "method": "POST"},
        "read": {"emulator": "mirakl", "path": "/api/orders", "method": "GET", "list_key": "orders", "drift": {"amount": "refund_amount"}}}),
    Scenario(JL, "payout_reconciliation", _jl_payout_setup, _jl_payout_check, {
        "write": {"emulator": "cin7", "path": "/journal", "method": "POST"},
        "read": {"emulator": "mirakl", "path": "/transactions_logs", "list_key": "data", "drift": {"amount": "value"}}}),
    Scenario(JL, "stock_out", _jl_stock_setup, _jl_stock_check, {
        "write": {"emulator": "mirakl", "path": "/stock/imports", "method": "POST"},
        "read": {"emulator": "cin7", "path": "/ref/productavailability", "list_key": "ProductAvailabilityList", "drift": {"Available": "Availability"}}}),
]


def run_cell(world: World, scenario: Scenario, fault: Fault, observe: Callable[[], dict[str, str]] | None = None) -> tuple[str, list[str]]:
    """('held' | 'broken', details). The fault is cleared before the re-run, as after an outage.
    `observe()` gives what else people read (the logs, the e-mails), for the secrets scan."""
    scenario.setup(world)
    target = scenario.targets[fault.side]
    world.post(target["emulator"], "/_sandbox/faults", fault.spec(target))
    start, end = window(world)
    first = run_flow(scenario.pairing, scenario.flow, "under-fault", start, end)
    fired = [c for c in world.get(target["emulator"], "/_sandbox/calls")["calls"] if c.get("fault")]
    requests.delete(f"{world.url(target['emulator'])}/_sandbox/faults", timeout=10)
    second = run_flow(scenario.pairing, scenario.flow, "after-fault", start, end)
    problems = [] if second == "success" else [f"re-run {second}"]
    problems += scenario.check(world)
    if not fired:
        problems.append("the fault never fired: this cell proves nothing")
    if fault.scan_for_secrets:
        from tests.leakscan import leaks, ledger_text, secrets

        texts = {**ledger_text(world.ledger_url), **(observe() if observe else {})}
        problems += sorted({f"a credential is in the {where}" for where, _ in leaks(texts, secrets())})
    return ("held" if not problems else "broken"), problems + [f"(first run: {first})"]


def table(results: dict[tuple[str, str, str], str]) -> str:
    """fault x flow -> held / broken: one row per fault, one column per pairing and flow."""
    short = {MKP: "MKP", JL: "JL", "centra_marketplacer": "CM", "cin7_commercetools": "CT", "cin7_sfcc": "SFCC"}
    cols = [(s.pairing, s.flow) for s in SCENARIOS if any((s.pairing, s.flow, f.name) in results for f in FAULTS)]
    head = ["fault"] + [f"{short.get(p, p)} {f}" for p, f in cols]
    body = [[fault.name] + [results.get((p, f, fault.name), "-") for p, f in cols] for fault in FAULTS
            if any((p, f, fault.name) in results for p, f in cols)]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    line = lambda r: " | ".join(c.ljust(w) for c, w in zip(r, widths))  # noqa: E731
    held = sum(v == "held" for v in results.values())
    return "\n".join([line(head), "-+-".join("-" * w for w in widths)] + [line(r) for r in body] + [f"{held} of {len(results)} cells held"])


# each pairing's cells in their own module
from tests.reliability.matrix_centra import SCENARIOS as _CENTRA  # noqa: E402
from tests.reliability.matrix_commercetools import SCENARIOS as _CT_SCENARIOS  # noqa: E402
from tests.reliability.matrix_sfcc import SCENARIOS as _SFCC  # noqa: E402

SCENARIOS += _CENTRA + _CT_SCENARIOS + _SFCC
