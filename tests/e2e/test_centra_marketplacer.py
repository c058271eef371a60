"""centra_marketplacer end to end: Marketplacer invoices become Centra orders exactly once (confirmed,
so Centra allocates at once, and priced as sold), Centra's free-to-allocate stock of the named
warehouses reaches Marketplacer, and completed Centra shipments become Marketplacer shipments, with
Centra's events confirmed only after the step that read them committed. Real HTTP to both
emulators, the ledger in PostgreSQL, alerts through a real SMTP server; Airflow runs the DAGs
(dag.test) where the test is about a run, and the steps are called directly where a failure must
land between two of them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

import pytest
import requests
import yaml

from commerce_sync import airflow_settings
from commerce_sync.errors import TransientError
from commerce_sync.flows import orders_in
from commerce_sync.ledger import Ledger
from commerce_sync.runtime import FlowContext
from sandbox.demo_seed import CENTRA_SEED
from tests.builders import marketplacer_invoice
from tests.conftest import copy_pairings
from tests.e2e.conftest import ROOT
from tests.reliability.matrix import run_flow
from tests.reliability.worker import kill_when

pytestmark = [pytest.mark.e2e, pytest.mark.pg]
KEY = "centra_marketplacer"
CATALOGUE = {  # the demo's Centra catalogue (composite SKUs), with a second pricelist and the tests' own stock
    **CENTRA_SEED,
    "pricelists": [{"name": "Marketplacer AUD", "currency": "AUD"}, {"name": "Marketplacer EUR", "currency": "EUR"}],
    "stock": [{"warehouse": "Main Warehouse", "sku": "CT-TEE-BLK-M", "quantity": 10}, {"warehouse": "Main Warehouse", "sku": "CT-TEE-BLK-L", "quantity": 3},
              {"warehouse": "Main Warehouse", "sku": "CT-CAP-NVY-OS", "quantity": 6}, {"warehouse": "Showroom", "sku": "CT-TEE-BLK-M", "quantity": 40}],
}
ADVERTS = [{"title": t, "variants": [{"sku": s, "countOnHand": 0}]} for t, s in (("Tee M", "CS-TEE-BLK-M"), ("Tee L", "CS-TEE-BLK-L"), ("Cap", "CS-CAP-NVY"), ("Gift card", "MKP-GIFT-50"))]


class World:
    def __init__(self, centra: str, marketplacer: str, ledger_url: str, mailbox, pairings):
        self.centra, self.marketplacer, self.ledger_url, self.mailbox, self.pairings = centra, marketplacer, ledger_url, mailbox, pairings
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def post(self, base: str, path: str, body) -> dict:
        r = requests.post(f"{base}{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json() if r.content else {}

    def get(self, base: str, path: str):
        r = requests.get(f"{base}{path}", timeout=30)
        r.raise_for_status()
        return r.json()

    def orders(self) -> dict[str, dict]:
        return {o["externalId"]: o for o in self.get(self.centra, "/_sandbox/orders")["orders"]}

    def invoices(self, *invoices) -> None:
        self.post(self.marketplacer, "/_sandbox/invoices", {"invoices": list(invoices)})

    def ship(self, external_id: str, lines, carrier: str, tracking: str) -> None:
        number = self.orders()[external_id]["number"]
        self.post(self.centra, "/_sandbox/ship", {"order": number, "lines": [{"sku": s, "quantity": q} for s, q in lines], "carrier": carrier, "trackingNumber": tracking})

    def mkp_shipments(self) -> dict[int, list[dict]]:
        return {i["legacyId"]: i["shipments"] for i in self.get(self.marketplacer, "/_sandbox/invoices")["invoices"]}

    def events(self) -> list[dict]:
        return self.get(self.centra, "/_sandbox/events")["events"]

    def window(self) -> tuple[datetime, datetime]:
        return self.now - timedelta(hours=1), datetime.now(timezone.utc) + timedelta(minutes=2)

    def quarantine(self, flow: str):
        ledger = Ledger.from_url(self.ledger_url)
        try:
            return ledger.open_quarantine(KEY, flow)
        finally:
            ledger.dispose()

    def configure(self, *, sku_form: str | None = None, skus: list[tuple[str, str]] | None = None, journals: str | None = None) -> None:
        """Change this test's copy of the pairing file and the SKU mapping."""
        path = self.pairings / f"{KEY}.yaml"
        data = yaml.safe_load(path.read_text())
        if sku_form:
            data["master"]["options"]["sku_form"] = sku_form
        if journals:
            data["payouts"]["journal_location"] = journals
        path.write_text(yaml.safe_dump(data))
        if skus is not None:
            mapping = ["channel_sku,master_sku,name"] + [f"{c},{m},{c}" for c, m in skus]
            (self.mappings / KEY / "skus.csv").write_text("\n".join(mapping) + "\n")


@pytest.fixture(scope="module")
def servers():
    from sandbox import centra, marketplacer
    from sandbox.server import start_server

    handles = {"centra": start_server(centra.create_app()), "marketplacer": start_server(marketplacer.create_app(api_key="demo-marketplacer-key"))}
    yield {k: h.url for k, h in handles.items()}
    for h in handles.values():
        h.stop()


@pytest.fixture
def world(servers, pg_url, mappings, mailbox, monkeypatch, airflow_db, tmp_path):
    from commerce_sync.http import RateLimiter

    for url in servers.values():
        requests.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
    # Centra's real buckets (60 requests, 20 mutations per 10 s) would make a test wait on Retry-After
    requests.post(f"{servers['centra']}/_sandbox/config", json={"requests_per_10s": 100_000, "mutations_per_10s": 100_000, "allocation_warehouses": ["Main Warehouse", "Showroom"]}, timeout=10)
    requests.post(f"{servers['centra']}/_sandbox/seed", json=CATALOGUE, timeout=10).raise_for_status()
    requests.post(f"{servers['marketplacer']}/_sandbox/adverts", json={"adverts": ADVERTS}, timeout=10).raise_for_status()
    pairings = copy_pairings(tmp_path / "pairings")
    monkeypatch.setenv("COMMERCE_SYNC_PAIRINGS_DIR", str(pairings))
    for k, v in airflow_settings.env(overrides={
        f"{KEY}__centra": {"host": servers["centra"], "extra": {"order_api_secret": "demo-centra-order-secret", "read_timeout": 5}},
        f"{KEY}__marketplacer": {"host": servers["marketplacer"]},
        "smtp_default": {"host": "127.0.0.1", "port": mailbox.port},
    }).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", pg_url)
    RateLimiter._shared.clear()
    w = World(servers["centra"], servers["marketplacer"], pg_url, mailbox, pairings)
    w.mappings = mappings
    return w


@lru_cache(maxsize=1)
def _dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def run_dag(flow: str, start: datetime, end: datetime, n: int, **conf):
    dag = _dagbag().get_dag(f"{KEY}__{flow}")
    return dag.test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat(), **conf}, logical_date=end + timedelta(seconds=n))


def _book(world: World, *invoices) -> None:
    world.invoices(*invoices)
    assert run_flow(KEY, "orders_in", "book", *world.window()) == "success"


def test_invoices_become_confirmed_centra_orders_once_priced_as_sold(world):
    placed = world.now - timedelta(minutes=20)
    world.invoices(
        marketplacer_invoice(3001, [("CS-TEE-BLK-M", 2, 4500), ("CS-CAP-NVY", 1, 2499)], created_at=placed),
        marketplacer_invoice(3002, [("CS-TEE-BLK-L", 3, 4500)], seller_id=2, seller_name="Lounge", postage_cents=0, created_at=placed),
        marketplacer_invoice(3099, [("CS-SOCK-WHT", 1, 1500)], created_at=placed),  # no Centra size mapped
    )
    start, end = world.window()
    assert run_dag("orders_in", start, end, 1).state == "success"

    orders = world.orders()
    assert sorted(orders) == ["MKP-3001", "MKP-3002"]
    first = orders["MKP-3001"]
    assert first["status"] == "CONFIRMED" and first["isLocked"] and first["currency"] == "AUD" and first["country"] == "AU"
    assert [(ln["sku"], ln["quantity"], Decimal(str(ln["price"]))) for ln in first["lines"]] == [("CT-TEE-BLK-M", 2, Decimal("45")), ("CT-CAP-NVY-OS", 1, Decimal("24.99"))]
    assert "Marketplacer 3001" in first["otherComment"] and "Castore AU" in first["otherComment"]
    with FlowContext.for_pairing(KEY) as ctx:  # what Centra booked is what Marketplacer sold, to the cent
        for legacy, total_cents in ((3001, 2 * 4500 + 2499 + 995), (3002, 3 * 4500)):
            number = orders[f"MKP-{legacy}"]["number"]
            assert ctx.master.sale_amounts(str(number))["total"] == Decimal(total_cents) / 100
    stock = world.get(world.centra, "/_sandbox/stock")
    assert stock["Main Warehouse/CT-TEE-BLK-M"]["allocated"] == 2 and stock["Main Warehouse/CT-TEE-BLK-L"]["allocated"] == 3  # allocated on confirmation
    (held,) = world.quarantine("orders_in")
    assert held.payload["legacyId"] == 3099 and {r["check"] for r in held.reasons} == {"sku_mapped"}

    assert run_flow(KEY, "orders_in", "re-run", start, end) == "success"  # a re-run books nothing twice
    assert sorted(world.orders()) == ["MKP-3001", "MKP-3002"]


@pytest.mark.parametrize("lost", [{"path": "/order-api/order", "method": "POST"}, {"operation": "confirmOrder"}], ids=["order api create", "confirmOrder"])
def test_a_lost_answer_from_either_api_never_makes_a_second_order(world, lost):
    world.invoices(marketplacer_invoice(4242, [("CS-CAP-NVY", 2, 2500)], created_at=world.now - timedelta(minutes=5)))
    world.post(world.centra, "/_sandbox/faults", {"reset_connection": {**lost, "when": "after_commit", "count": 1}})
    start, end = world.window()
    with FlowContext.for_pairing(KEY) as ctx:
        orders_in.extract(ctx, "attempt", start=start, end=end)
        gated = orders_in.gate(ctx, "attempt")
        with pytest.raises(TransientError) as err:
            orders_in.load(ctx, "attempt", gated)
        assert err.value.maybe_committed  # not re-sent blindly
    assert len(world.orders()) == 1

    with FlowContext.for_pairing(KEY) as ctx:  # the task's retry, in a fresh process
        counts = orders_in.load(ctx, "attempt", gated)
    assert (counts["created"], counts["recovered"]) == (0, 1)
    (order,) = world.orders().values()
    assert order["externalId"] == "MKP-4242" and order["status"] == "CONFIRMED" and order["isLocked"]
    assert world.get(world.centra, "/_sandbox/stock")["Main Warehouse/CT-CAP-NVY-OS"]["allocated"] == 2  # confirmed once: allocated once
    assert run_flow(KEY, "orders_in", "re-run", start, end) == "success"
    assert len(world.orders()) == 1


def test_stock_out_sends_free_to_allocate_of_the_named_warehouses_and_drift_is_quiet(world):
    _book(world, marketplacer_invoice(5001, [("CS-TEE-BLK-M", 4, 4500)], created_at=world.now - timedelta(minutes=10)))
    start, end = world.window()
    assert run_dag("stock_out", start, end, 1, full=True).state == "success"
    stock = world.get(world.marketplacer, "/_sandbox/stock_updates")["stock"]
    # Main Warehouse only (Showroom's 40 are not Marketplacer's to sell): free to allocate less one unit of buffer
    assert stock == {"CS-TEE-BLK-M": 10 - 4 - 1, "CS-TEE-BLK-L": 3 - 1, "CS-CAP-NVY": 6 - 1, "MKP-GIFT-50": 0}
    (held,) = world.quarantine("stock_out")
    assert held.record_key == "MKP-GIFT-50" and held.reasons[0]["check"] == "listing_mapped"

    world.post(world.centra, "/_sandbox/stock", [{"warehouse": "Main Warehouse", "sku": "CT-TEE-BLK-L", "quantity": 8}])
    before = len(world.get(world.marketplacer, "/_sandbox/stock_updates")["updates"])
    assert run_flow(KEY, "stock_out", "second", start, end) == "success"
    updates = world.get(world.marketplacer, "/_sandbox/stock_updates")["updates"][before:]
    assert [(u["sku"], u["countOnHand"]) for u in updates] == [("CS-TEE-BLK-L", 7)]  # only what changed

    sent = len(world.mailbox.messages)
    assert run_flow(KEY, "drift_monitor", "drift", start, end) == "success"
    assert not [m for m in world.mailbox.messages[sent:] if "drift found" in m["Subject"]]


def test_completed_centra_shipments_reach_marketplacer_once_and_their_events_are_confirmed(world):
    placed = world.now - timedelta(minutes=10)
    _book(world, marketplacer_invoice(6001, [("CS-TEE-BLK-M", 2, 4500), ("CS-CAP-NVY", 1, 2500)], created_at=placed),
          marketplacer_invoice(6002, [("CS-TEE-BLK-L", 1, 4500)], created_at=placed))
    start, end = world.window()
    assert run_flow(KEY, "dispatch_back", "first", start, end) == "success"  # nothing shipped yet; from now on Centra queues shipment events
    world.ship("MKP-6001", [("CT-TEE-BLK-M", 1)], "Australia Post", "AP1")
    world.ship("MKP-6001", [("CT-TEE-BLK-M", 1), ("CT-CAP-NVY-OS", 1)], "StarTrack", "ST2")
    world.ship("MKP-6002", [("CT-TEE-BLK-L", 1)], "Pigeon Post", "PP3")  # no such carrier in carriers.csv
    assert [e["confirmed"] for e in world.events()] == [False, False, False]

    start, end = world.window()
    assert run_dag("dispatch_back", start, end, 1).state == "success"
    shipments = world.mkp_shipments()
    got = sorted((s["trackingNumber"], s["carrier"], sorted((i["lineItem"]["variantSku"], i["quantity"]) for i in s["shippedItems"])) for s in shipments[6001])
    assert got == [("AP1", "Australia Post", [("CS-TEE-BLK-M", 1)]), ("ST2", "StarTrack", [("CS-CAP-NVY", 1), ("CS-TEE-BLK-M", 1)])]
    assert shipments[6002] == []
    (held,) = world.quarantine("dispatch_back")
    assert held.reasons[0]["check"] == "carrier_mapped"
    assert any("shipment(s) held" in m["Subject"] for m in world.mailbox.messages)
    assert all(e["confirmed"] for e in world.events())  # read, committed, then confirmed

    assert run_flow(KEY, "dispatch_back", "re-run", start, end) == "success"  # a re-run sends nothing twice
    assert [len(v) for v in world.mkp_shipments().values()] == [2, 0]

    # a shipment completed while no run's window would see it still arrives: its event carries it
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    _book(world, marketplacer_invoice(6003, [("CS-CAP-NVY", 1, 2500)], created_at=world.now - timedelta(minutes=5)))
    world.ship("MKP-6003", [("CT-CAP-NVY-OS", 1)], "Australia Post", "AP6")
    assert run_flow(KEY, "dispatch_back", "events-only", later, later + timedelta(minutes=10)) == "success"
    assert [s["trackingNumber"] for s in world.mkp_shipments()[6003]] == ["AP6"]
    assert all(e["confirmed"] for e in world.events())


def test_a_size_sku_mapped_by_its_size_number_lands_sells_and_ships(world):
    """The other form the mapping allows: the size number alone holds the whole SKU (a GTIN)."""
    world.post(world.centra, "/_sandbox/reset", {})
    world.post(world.centra, "/_sandbox/config", {"requests_per_10s": 100_000, "mutations_per_10s": 100_000})
    world.post(world.centra, "/_sandbox/seed", {**CATALOGUE, "products": [{"productNumber": "CT-TEE", "name": "Tee", "variants": [
        {"variantNumber": "BLK", "prices": {"Marketplacer AUD": "45.00"}, "sizes": [{"name": "M", "sizeNumber": "7350000000011"}, {"name": "L", "sizeNumber": "7350000000028"}]}]}],
        "stock": [{"warehouse": "Main Warehouse", "sku": "CT-TEEBLK7350000000011", "quantity": 5}]})
    world.configure(sku_form="size_number", skus=[("CS-TEE-BLK-M", "7350000000011"), ("CS-TEE-BLK-L", "7350000000028")])
    _book(world, marketplacer_invoice(7001, [("CS-TEE-BLK-M", 2, 4500), ("CS-TEE-BLK-L", 1, 4500)], created_at=world.now - timedelta(minutes=5)))
    (order,) = world.orders().values()
    assert [(ln["sku"], ln["quantity"]) for ln in order["lines"]] == [("CT-TEEBLK7350000000011", 2), ("CT-TEEBLK7350000000028", 1)]

    start, end = world.window()
    assert run_flow(KEY, "stock_out", "stock", start, end) == "success"
    stock = world.get(world.marketplacer, "/_sandbox/stock_updates")["stock"]
    assert (stock["CS-TEE-BLK-M"], stock["CS-TEE-BLK-L"]) == (5 - 2 - 1, 0)

    world.ship("MKP-7001", [("CT-TEEBLK7350000000011", 2)], "DHL", "DHL1")
    assert run_flow(KEY, "dispatch_back", "ship", *world.window()) == "success"
    (sent,) = world.mkp_shipments()[7001]
    assert sent["carrier"] == "DHL Express" and [(i["lineItem"]["variantSku"], i["quantity"]) for i in sent["shippedItems"]] == [("CS-TEE-BLK-M", 2)]


def _calls_with(world: World, fault: str) -> int:
    return sum(1 for c in world.get(world.centra, "/_sandbox/calls")["calls"] if fault in (c.get("fault") or []))


@pytest.mark.parametrize("when", ["before", "after_commit"])
def test_a_worker_killed_between_commit_and_confirm_loses_and_doubles_nothing(world, when):
    """The dispatch run's window sees nothing (it starts later): Centra's events alone carry the
    shipments. The worker is SIGKILLed while its confirmEvents call is in flight, i.e. after the
    extract committed what it staged; Airflow's retry of the same run then finishes the job."""
    placed = world.now - timedelta(minutes=10)
    _book(world, marketplacer_invoice(8001, [("CS-TEE-BLK-M", 1, 4500)], created_at=placed), marketplacer_invoice(8002, [("CS-CAP-NVY", 1, 2500)], created_at=placed))
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    start, end = later, later + timedelta(minutes=10)
    assert run_flow(KEY, "dispatch_back", "listen", start, end) == "success"  # the first run makes Centra queue shipment events
    world.ship("MKP-8001", [("CT-TEE-BLK-M", 1)], "Australia Post", "AP81")
    world.ship("MKP-8002", [("CT-CAP-NVY-OS", 1)], "StarTrack", "ST82")
    world.post(world.centra, "/_sandbox/faults", {"hang": {"operation": "confirmEvents", "when": when, "seconds": 60, "count": None}})
    kill_when(KEY, "dispatch_back", "crashed-run", start, end, lambda: _calls_with(world, f"hang:{when}") >= 1, "the extract's confirmEvents")
    requests.delete(f"{world.centra}/_sandbox/faults", timeout=10)
    assert world.mkp_shipments()[8001] == [] and world.mkp_shipments()[8002] == []  # killed before load: nothing sent yet
    pending = [e for e in world.events() if not e["confirmed"]]
    assert len(pending) == (2 if when == "before" else 0)  # unconfirmed when killed before Centra processed the confirmation

    assert run_flow(KEY, "dispatch_back", "crashed-run", start, end) == "success"  # the task's retry under the same run
    shipments = world.mkp_shipments()
    assert [s["trackingNumber"] for s in shipments[8001]] == ["AP81"] and [s["trackingNumber"] for s in shipments[8002]] == ["ST82"]
    assert all(e["confirmed"] for e in world.events())
    assert world.quarantine("dispatch_back") == []
    assert run_flow(KEY, "dispatch_back", "next-run", start, end) == "success"
    assert [len(v) for v in world.mkp_shipments().values()] == [1, 1]


def test_a_completed_centra_return_opens_one_marketplacer_refund_request_even_when_the_answer_is_lost(world):
    """Refunds the other way round: Centra -> Marketplacer, from the pairing's `refunds.origin`."""
    _book(world, marketplacer_invoice(9001, [("CS-TEE-BLK-M", 2, 4500), ("CS-CAP-NVY", 1, 2500)], created_at=world.now - timedelta(minutes=10)))
    world.ship("MKP-9001", [("CT-TEE-BLK-M", 2), ("CT-CAP-NVY-OS", 1)], "Australia Post", "AP91")
    number = world.orders()["MKP-9001"]["number"]
    returned = world.post(world.centra, "/_sandbox/returns", {"order": number, "lines": [{"sku": "CT-TEE-BLK-M", "quantity": 1}], "reason": "Too small"})
    world.post(world.centra, "/_sandbox/returns", {"order": number, "lines": [{"sku": "CT-CAP-NVY-OS", "quantity": 1}], "status": "IN_PROGRESS"})  # not refunded yet
    world.post(world.marketplacer, "/_sandbox/faults", {"reset_connection": {"operation": "refundRequestCreate", "when": "after_commit", "count": 1}})
    start, end = world.window()
    assert run_flow(KEY, "refunds", "first", start, end) == "success"  # the load's retry finds the request its lost answer made
    assert any("reset_connection:after_commit" in (c.get("fault") or []) for c in world.get(world.marketplacer, "/_sandbox/calls")["calls"])

    (request,) = world.get(world.marketplacer, "/_sandbox/refund_requests")["refundRequests"]
    assert request["invoice"]["legacyId"] == 9001 and request["status"] == "AWAITING"
    assert [(i["lineItem"]["variantSku"], i["quantity"], i["reason"], i["dispatched"], i["amountCents"]) for i in request["lineItems"]] == [("CS-TEE-BLK-M", 1, "Too small", True, 4500)]
    assert request["externalIds"] == [{"key": "commerce_sync", "value": f"{KEY}:return:{returned['id']}"}]
    assert run_flow(KEY, "refunds", "re-run", start, end) == "success"  # a re-run opens none
    assert len(world.get(world.marketplacer, "/_sandbox/refund_requests")["refundRequests"]) == 1
    assert world.quarantine("refunds") == []


def test_a_periods_remittances_become_one_balanced_journal_file_that_ties_to_them_to_the_cent(world, tmp_path):
    """Centra keeps no general ledger: payout_reconciliation writes the period's journal as a file
    through the object store (a file:// URL here, s3:// or sftp:// in production), once."""
    import csv
    import io

    store = tmp_path / "journals"
    world.configure(journals=store.as_uri())
    placed = world.now - timedelta(minutes=30)
    _book(world, marketplacer_invoice(9101, [("CS-TEE-BLK-M", 2, 4500)], created_at=placed),  # 90.00 + 9.95 postage = 99.95
          marketplacer_invoice(9102, [("CS-CAP-NVY", 1, 2500)], created_at=placed))  # 34.95
    remittances = [  # net, commission, its GST, fees, refund deducted (cents)
        {"invoiceLegacyId": 9101, "amountCents": 8795, "commissionAmountCents": 1000, "commissionTaxCents": 100, "feeCents": 100},
        {"invoiceLegacyId": 9102, "amountCents": 2220, "commissionAmountCents": 250, "commissionTaxCents": 25, "refundCents": 1000},
        {"invoiceLegacyId": 9199, "amountCents": 1000, "commissionAmountCents": 100, "commissionTaxCents": 10},  # never booked here
    ]
    paid = (world.now - timedelta(minutes=10)).isoformat()
    world.post(world.marketplacer, "/_sandbox/remittance_advices", {"advices": [{"paidAt": paid, "paymentReference": "PAY-9", "currency": "AUD", "remittances": remittances}]})
    start, end = world.now - timedelta(hours=1), world.now
    assert run_flow(KEY, "payout_reconciliation", "day", start, end) == "success"
    assert run_flow(KEY, "payout_reconciliation", "re-run", start, end) == "success"  # exactly once: no second file, no rewrite

    (path,) = store.iterdir()
    text = path.read_bytes().decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    money = lambda v: Decimal(v) if v else Decimal("0")  # noqa: E731
    assert sum(money(r["debit"]) for r in rows) == sum(money(r["credit"]) for r in rows)  # the journal balances
    by_account: dict[str, Decimal] = {}
    for r in rows:
        by_account[r["account"]] = by_account.get(r["account"], Decimal("0")) + money(r["debit"]) - money(r["credit"])
    cents = lambda field: Decimal(sum(r.get(field, 0) for r in remittances)) / 100  # noqa: E731
    # it ties to the remittances to the cent, account by account (GL accounts from the pairing's payouts section)
    assert by_account == {"1010": cents("amountCents"), "6100": cents("commissionAmountCents"), "2310": cents("commissionTaxCents"),
                          "6110": cents("feeCents"), "4090": cents("refundCents"),
                          "1210": -sum((cents(f) for f in ("amountCents", "commissionAmountCents", "commissionTaxCents", "feeCents", "refundCents")), Decimal("0"))}
    assert {r["order"] for r in rows} == {"9101", "9102", "9199"} and len({r["journal"] for r in rows}) == 1
    ledger = Ledger.from_url(world.ledger_url)
    try:
        matches = {m["order_channel_ref"]: m["status"] for m in ledger.payout_matches(KEY)}
        stored = ledger.reports(KEY, "payout_reconciliation")
    finally:
        ledger.dispose()
    assert matches == {"9101": "matched", "9102": "matched", "9199": "unmatched"}  # to the cent against Centra's order totals
    assert stored["journal.csv"] == text  # beside the exception report
    assert "no Centra sale is linked" in stored["exceptions.csv"] and "Cin7" not in stored["exceptions.csv"]


@pytest.mark.parametrize("when", ["before", "after_commit"])
def test_stock_out_reads_centra_events_and_a_worker_killed_before_confirming_loses_and_doubles_nothing(world, when):
    """Between daily full reads stock_out reads only the sizes Centra's events name. The worker is
    SIGKILLed while the extract's confirmEvents is in flight (its SKUs committed to the ledger) and
    the run is never retried: the next run sends each change once, and the events end confirmed."""
    start, end = world.window()
    assert run_flow(KEY, "stock_out", "first", start, end) == "success"  # the first run reads everything and starts listening
    world.post(world.centra, "/_sandbox/stock", [{"warehouse": "Main Warehouse", "sku": "CT-TEE-BLK-L", "quantity": 8},
                                                 {"warehouse": "Main Warehouse", "sku": "CT-CAP-NVY-OS", "quantity": 2}])
    before = len(world.get(world.marketplacer, "/_sandbox/stock_updates")["updates"])
    world.post(world.centra, "/_sandbox/faults", {"hang": {"operation": "confirmEvents", "when": when, "seconds": 60, "count": None}})
    kill_when(KEY, "stock_out", "crashed-run", start, end, lambda: _calls_with(world, f"hang:{when}") >= 1, "the extract's confirmEvents")
    requests.delete(f"{world.centra}/_sandbox/faults", timeout=10)
    assert len(world.get(world.marketplacer, "/_sandbox/stock_updates")["updates"]) == before  # killed before the push
    assert len([e for e in world.events() if not e["confirmed"]]) == (2 if when == "before" else 0)

    calls = len(world.get(world.centra, "/_sandbox/calls")["calls"])
    assert run_flow(KEY, "stock_out", "next-run", start, end) == "success"  # a new run, not the dead one's retry
    # the named sizes looked up, not the whole stock read: an events-driven run
    assert any("productSizes" in (c.get("operation") or []) for c in world.get(world.centra, "/_sandbox/calls")["calls"][calls:])
    updates = world.get(world.marketplacer, "/_sandbox/stock_updates")["updates"][before:]
    assert sorted((u["sku"], u["countOnHand"]) for u in updates) == [("CS-CAP-NVY", 2 - 1), ("CS-TEE-BLK-L", 8 - 1)]  # each once
    assert all(e["confirmed"] for e in world.events())
    assert run_flow(KEY, "stock_out", "quiet-run", start, end) == "success"
    assert len(world.get(world.marketplacer, "/_sandbox/stock_updates")["updates"]) == before + 2


def test_drift_flags_an_order_dispatched_in_centra_but_unfulfilled_on_marketplacer_past_the_pairings_window(world):
    placed = world.now - timedelta(minutes=10)
    _book(world, marketplacer_invoice(9301, [("CS-TEE-BLK-M", 1, 4500)], created_at=placed), marketplacer_invoice(9302, [("CS-CAP-NVY", 1, 2500)], created_at=placed))
    late = (world.now - timedelta(minutes=121)).isoformat()  # drift.dispatch_window_minutes is 120
    world.post(world.centra, "/_sandbox/ship", {"order": world.orders()["MKP-9301"]["number"], "carrier": "Australia Post", "trackingNumber": "AP931", "shippedAt": late})
    world.ship("MKP-9302", [("CT-CAP-NVY-OS", 1)], "StarTrack", "ST932")  # just now: still inside the window
    assert run_flow(KEY, "drift_monitor", "drift", *world.window()) == "success"
    ledger = Ledger.from_url(world.ledger_url)
    try:
        (report,) = ledger.reports(KEY, "drift_monitor").values()
    finally:
        ledger.dispose()
    unsynced = [line for line in report.splitlines() if line.startswith("shipped_not_synced")]
    assert len(unsynced) == 1 and unsynced[0].split(",")[1] == "9301" and "AP931" in unsynced[0]
    assert "Centra allows" in report and "Cin7" not in report  # the master named as the pairing names it
    assert any("drift found" in m["Subject"] for m in world.mailbox.messages)
