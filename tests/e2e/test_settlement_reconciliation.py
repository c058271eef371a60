"""settlement_reconciliation end to end: a generated month of Adyen settlement files (thousands of
rows: settled, refunded, chargeback, fee, payout; GBP and EUR) against the Cin7 emulator over
HTTP, through Airflow (dag.test), the ledger in PostgreSQL, the report through a real SMTP server."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from sandbox.settlement_builders import SKU, Month, month
from tests.settlement_world import FLOW, PAIRING, ROOT, run_dag, settlement_world, window  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]
ACCOUNTS = {"commission": "6150", "markup": "6151", "scheme_fees": "6152", "interchange": "6153", "other": "6159"}
MONTH_START = datetime(2026, 10, 1, tzinfo=timezone.utc)


def _journal_lines(journal: dict) -> dict[str, Decimal]:
    assert {line["Credit"] for line in journal["Lines"]} == {"1215"}  # the Adyen clearing account
    by_account = {line["Debit"]: Decimal(str(line["Amount"])) for line in journal["Lines"]}
    assert len(by_account) == len(journal["Lines"])
    return by_account


def test_a_month_every_row_matched_or_reported_fees_journaled_once_per_batch(settlement_world):
    world = settlement_world
    m = month(start=MONTH_START, prefix="WEB-", batches=6, payments=350)
    assert m.rows > 2_000
    kinds = Counter(row.split(",")[7] for data in m.files.values() for row in data.decode().splitlines()[1:])
    assert {"Settled", "Refunded", "Chargeback", "Fee", "MerchantPayout"} <= set(kinds)
    world.seed(m)
    world.drop_files(m)
    start, end = window()

    assert run_dag(start, end, 1).state == "success"

    # every row: matched, or in the exception report with its reason (the generator knows which)
    outcomes = world.outcomes()
    assert len(outcomes) == m.rows
    wrong = {k: (outcomes.get(k), want) for k, want in m.expected.items() if outcomes.get(k) != want}
    assert not wrong, f"{len(wrong)} rows reconciled otherwise than expected, e.g. {list(wrong.items())[:5]}"

    # one journal per balanced batch, its lines the batch's fees by account; none for the held batch
    journals = world.journals()
    refs = Counter(j["Lines"][0]["Reference"] for j in journals)
    assert refs == Counter({f"ADYEN-{batch}-GBP": 1 for batch in m.fees})
    for journal in journals:
        batch = journal["Lines"][0]["Reference"].removeprefix("ADYEN-").removesuffix("-GBP")
        assert _journal_lines(journal) == {ACCOUNTS[name]: total for name, total in m.fees[batch].items()}
        assert journal["Currency"] == "GBP" and journal["Status"] == "AUTHORISED"

    # refunds the ERP lacked became credit notes, once each and never restocking
    made = [n for s in world.sales() for n in s.get("_credit_notes", []) if (n.get("Memo") or "").startswith("Refund ") and "refunds flow" not in n["Memo"]]
    assert len(made) == m.created_refunds > 0
    assert all(n["Restock"] == [] and n["Status"] == "AUTHORISED" for n in made)
    assert len({n["Memo"] for n in made}) == len(made)

    # the report: stored for the period, every exception in the CSV with a reason, e-mailed to finance
    ledger = world.ledger()
    files = ledger.reports(PAIRING, FLOW)
    rows = list(csv.DictReader(io.StringIO(files["exceptions.csv"])))
    want = Counter(reason for status, reason in m.expected.values() if status == "exception")
    assert Counter(r["type"] for r in rows) == want
    assert all(r["detail"] for r in rows)
    euro = next(r for r in rows if r["type"] == "currency_differs")
    assert (euro["gross_currency"], euro["net_currency"], euro["exchange_rate"]) == ("EUR", "GBP", "0.8612")  # both amounts and the rate kept
    assert "Compare the order on both sides" in files["exceptions.html"]
    mail = world.mailbox.messages
    assert len(mail) == 1 and mail[0]["To"] == "finance@example.com"
    assert f"{sum(want.values())} exception(s)" in mail[0]["Subject"]
    assert [p.get_filename() for p in mail[0].walk() if p.get_filename()] == ["exceptions.csv"]

    # a re-run reads nothing again, posts nothing again, credits nothing again
    calls_before = len(world.calls())
    assert run_dag(start, end, 2).state == "success"
    assert world.outcomes() == outcomes
    assert Counter(j["Lines"][0]["Reference"] for j in world.journals()) == refs
    assert not [c for c in world.calls()[calls_before:] if c["method"] == "POST"]
    runs = ledger.runs(PAIRING, FLOW, limit=1)
    assert runs[0]["details"]["files already read (skipped)"] == len(m.files)

    # an order booked in Cin7 after its payment (it waited in a quarantine): the next run matches it
    (name, line), _ = next((k, v) for k, v in sorted(m.expected.items()) if v == ("exception", "no_sale"))
    late = list(csv.DictReader(io.StringIO(m.files[name].decode())))[line - 2]
    world.seed(Month(sales=[{"ExternalID": f"WEB-{late['Merchant Reference']}", "CustomerCurrency": "GBP", "Invoiced": True,
                             "Lines": [{"SKU": SKU, "Quantity": 1, "Price": late["Gross Credit (GC)"]}]}]))
    assert run_dag(end, end + timedelta(days=1), 3).state == "success"
    assert world.outcomes() == {**outcomes, (name, line): ("matched", None)}
    assert Counter(j["Lines"][0]["Reference"] for j in world.journals()) == refs  # its batch's journal was posted when it was read
    ledger.dispose()


def test_a_file_dropped_twice_is_read_once_and_a_changed_file_is_reported(settlement_world):
    world = settlement_world
    m = month(start=MONTH_START, prefix="WEB-", batches=2, payments=30, exceptions=False, seed=5)
    world.seed(m)
    world.drop_files(m)
    start, end = window()
    assert run_dag(start, end, 1).state == "success"
    first = world.outcomes()
    assert len(first) == m.rows and all(status == "matched" for status, _ in first.values())

    name, data = next(iter(m.files.items()))
    (world.drop / name).touch()  # the same file again (a re-upload: new time, same content)
    copy = name.replace(".csv", " (1).csv")
    (world.drop / copy).write_bytes(data)  # and under another name, as a second download names it
    second = m.files[list(m.files)[1]]
    changed = second.replace(b",Settled,", b",Refunded,", 1)
    assert changed != second
    (world.drop / list(m.files)[1]).write_bytes(changed)  # a file read before, replaced with other content
    next_end = end + timedelta(days=1)
    assert run_dag(end, next_end, 2).state == "success"

    assert world.outcomes() == first  # nothing re-read, nothing read twice
    ledger = world.ledger()
    versions = Counter(f["status"] for f in ledger.settlement_files(PAIRING))
    assert versions == Counter({"read": 2, "duplicate": 1, "changed": 1})
    period = f"{end:%Y-%m-%d %H:%M} to {next_end:%Y-%m-%d %H:%M} UTC"
    rows = list(csv.DictReader(io.StringIO(ledger.reports(PAIRING, FLOW, period)["exceptions.csv"])))
    assert sorted((r["type"], r["file"]) for r in rows) == [("duplicate_file", copy), ("file_changed", list(m.files)[1])]
    assert "other content" in next(r["detail"] for r in rows if r["type"] == "file_changed")
    assert len(world.journals()) == 2

    # a third run: the changed version was reported once and is not read either
    assert run_dag(next_end, next_end + timedelta(days=1), 3).state == "success"
    assert Counter(f["status"] for f in ledger.settlement_files(PAIRING)) == versions
    assert world.outcomes() == first
    ledger.dispose()


def test_a_second_provider_is_a_format_file_stripe_reconciles_through_the_same_flow(settlement_world):
    """Stripe's itemized payout, with no code of its own: the pairing names another format file."""
    world = settlement_world
    world.configure(format="stripe_payout_itemized", fee_accounts={"processing": "6160", "other": "6159"}, journal_reference="STRIPE-{batch}-{currency}")
    sample = ROOT / "include" / "settlement_formats" / "samples" / "stripe_payout_itemized.csv"
    (world.drop / "payout_po_1SAMPLEpayout01.csv").write_bytes(sample.read_bytes())
    world.seed(Month(sales=[
        {"ExternalID": "WEB-200001", "CustomerCurrency": "GBP", "Lines": [{"SKU": SKU, "Quantity": 1, "Price": "120.00"}], "Invoiced": True},
        {"ExternalID": "WEB-200002", "CustomerCurrency": "GBP", "Lines": [{"SKU": SKU, "Quantity": 1, "Price": "45.50"}], "Invoiced": True},
        {"ExternalID": "WEB-200003", "CustomerCurrency": "EUR", "Lines": [{"SKU": SKU, "Quantity": 1, "Price": "100.00"}], "Invoiced": False},
    ]))
    start, end = window()
    assert run_dag(start, end, 1).state == "success"

    outcomes = world.outcomes()
    name = "payout_po_1SAMPLEpayout01.csv"
    assert outcomes == {(name, 2): ("matched", None), (name, 3): ("matched", None), (name, 4): ("matched", None), (name, 5): ("matched", None),
                        (name, 6): ("exception", "chargeback"), (name, 7): ("matched", None), (name, 8): ("matched", None)}
    journal, = world.journals()
    assert journal["Lines"][0]["Reference"] == "STRIPE-po_1SAMPLEpayout01-GBP"
    assert _journal_lines(journal) == {"6160": Decimal("19.27"), "6159": Decimal("2.00")}  # Stripe's fees 1.88 + 0.84 + 1.55 + 15.00; the Radar fee row
    made = [n for s in world.sales() for n in s.get("_credit_notes", [])]
    assert [(n["Memo"], n["Total"]) for n in made] == [("Refund txn_1SAMPLE0004 - refunded by the payment provider", 20)]


def test_the_demo_sample_shipped_in_the_repository_reconciles(settlement_world):
    from sandbox.settlement_demo import DEMO_FILE, sample, seed

    world = settlement_world
    world.configure(location=str(DEMO_FILE.parent))  # the repository's own folder, read as the demo reads it
    seed(world.cin7, "WEB-")
    start, end = window()
    assert run_dag(start, end, 1).state == "success"
    expected = {(DEMO_FILE.name, line): outcome for (_, line), outcome in sample("WEB-").expected.items()}
    assert world.outcomes() == expected
    assert {reason for _, reason in expected.values()} >= {None, "chargeback", "no_sale", "amount_differs", "currency_differs", "other_entry", "unknown_type"}
