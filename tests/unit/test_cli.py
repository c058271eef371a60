"""Operator commands against a real ledger (SQLite file): list, discard, mapping import, health."""

import json
import re

import pytest

from commerce_sync.cli import main
from commerce_sync.ledger import Ledger


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", url)
    mappings = tmp_path / "mappings"
    (mappings / "cin7_marketplacer").mkdir(parents=True)
    monkeypatch.setenv("COMMERCE_SYNC_MAPPINGS_DIR", str(mappings))
    led = Ledger.from_url(url)
    yield led
    led.dispose()


def test_list_and_discard_keep_the_reason(ledger, capsys):
    ledger.quarantine("cin7_marketplacer", "orders_in", "k1", {"legacyId": 1}, [{"check": "sku_mapped", "detail": "SKU X is not mapped"}], "r1")
    assert main(["quarantine", "list", "--pairing", "cin7_marketplacer"]) == 0
    assert "sku_mapped: SKU X is not mapped" in capsys.readouterr().out
    (row,) = ledger.open_quarantine("cin7_marketplacer")
    with pytest.raises(SystemExit):
        main(["quarantine", "discard", str(row.id)])  # a reason is required
    assert main(["quarantine", "discard", str(row.id), "--reason", "test order", "--by", "sam"]) == 0
    kept = ledger.get_quarantine(row.id)
    assert (kept.status, kept.resolution_note, kept.resolved_by) == ("discarded", "test order", "sam")
    assert main(["quarantine", "discard", str(row.id), "--reason", "again"]) == 1


def test_mapping_import_dry_run_then_apply(ledger, tmp_path, capsys):
    from commerce_sync.pairing import mappings_dir

    new = tmp_path / "skus_new.csv"
    new.write_text("channel_sku,master_sku\nA,A1\nB,B1\n", encoding="utf-8")
    assert main(["mappings", "import", "--pairing", "cin7_marketplacer", "--kind", "skus", str(new)]) == 0
    out = capsys.readouterr().out
    assert "2 added" in out and "dry run" in out and ledger.mapping("cin7_marketplacer", "skus") == {}
    assert main(["mappings", "import", "--pairing", "cin7_marketplacer", "--kind", "skus", str(new), "--apply"]) == 0
    assert set(ledger.mapping("cin7_marketplacer", "skus")) == {"A", "B"}
    assert (mappings_dir() / "cin7_marketplacer" / "skus.csv").read_text() == new.read_text()


def test_health_shows_runs_and_open_quarantine(ledger, capsys):
    ledger.record_run("cin7_marketplacer", "orders_in", "r1", extracted=4, loaded=3, quarantined=1, details={"breaches": ["3 records wait"]})
    ledger.quarantine("cin7_marketplacer", "orders_in", "k1", {}, [{"check": "c", "detail": "d"}], "r1")
    assert main(["health", "--pairing", "cin7_marketplacer", "--json"]) == 0
    health = json.loads(capsys.readouterr().out)["flows"]
    assert health["orders_in"]["loaded"] == 3 and health["orders_in"]["open_quarantine"] == 1
    assert health["orders_in"]["breaches"] == ["3 records wait"]
    assert health["stock_out"]["last_run"] is None


def test_files_lists_a_runs_packing_slips_and_writes_one_out(ledger, capsys, tmp_path):
    ledger.store_file("cin7_john_lewis", "dispatch_back", "run-1", "packing-slip-JL1-1.pdf", "application/pdf", b"%PDF-one")
    ledger.store_file("cin7_john_lewis", "dispatch_back", "run-2", "packing-slip-JL2-1.pdf", "application/pdf", b"%PDF-two")
    assert main(["files", "--pairing", "cin7_john_lewis", "--run", "run-1"]) == 0
    assert capsys.readouterr().out.split() == ["packing-slip-JL1-1.pdf"]
    out = tmp_path / "slip.pdf"
    assert main(["files", "--pairing", "cin7_john_lewis", "packing-slip-JL2-1.pdf", "-o", str(out)]) == 0
    assert out.read_bytes() == b"%PDF-two"
    assert main(["files", "--pairing", "cin7_john_lewis", "--run", "run-1", "packing-slip-JL2-1.pdf"]) == 1


BUYER_INVOICE = {
    "id": "SW52b2ljZS0xMDAxNA==", "legacyId": 10014, "createdAt": "2026-11-23T09:30:00Z", "currency": "AUD",
    "buyerFirstName": "Ada", "buyerSurname": "Lovelace", "buyerEmailAddress": "ada@example.org", "buyerPhone": "+44 20 7946 0958",
    "shippingAddress": {"address": "12 Engine Row", "city": "London", "postcode": "N1 9GU"},
    "seller": {"legacyId": 1, "businessName": "Castore AU"},
    "lineItems": [{"id": "li1", "variantSku": "CS-SOCK-WHT", "quantity": 1, "unitPriceCents": 1500, "totalCents": 1500, "taxCents": 136}],
    "totalCents": 1500, "taxCents": 136,
}
PERSONAL = ("Ada", "Lovelace", "ada@example.org", "7946", "12 Engine Row", "N1 9GU")


def test_show_masks_buyers_data_and_reveal_is_recorded_with_who_asked(ledger, capsys, monkeypatch):
    ledger.quarantine("cin7_marketplacer", "orders_in", BUYER_INVOICE["id"], BUYER_INVOICE, [{"check": "sku_mapped", "detail": "SKU 'CS-SOCK-WHT' is not mapped"}], "r1")
    (row,) = ledger.open_quarantine("cin7_marketplacer")
    assert main(["quarantine", "show", str(row.id)]) == 0
    out, err = capsys.readouterr()
    shown = json.loads(out)
    assert "masked" in err
    assert shown["order"] == "MKP-10014" and shown["payload"]["lineItems"][0]["variantSku"] == "CS-SOCK-WHT"
    assert not [p for p in PERSONAL if p in out], out
    assert ledger.accesses() == []

    assert main(["quarantine", "show", str(row.id), "--reveal", "--by", "sam"]) == 0
    captured = capsys.readouterr()
    assert "ada@example.org" in captured.out and "12 Engine Row" in captured.out and "sam" in captured.err
    monkeypatch.setenv("LOGNAME", "casey")  # without --by: the login name
    assert main(["quarantine", "show", str(row.id), "--reveal"]) == 0
    capsys.readouterr()
    seen = [(a["pairing"], a["subject"], a["record_id"], a["record_key"], a["action"], a["accessed_by"]) for a in ledger.accesses()]
    assert seen == [("cin7_marketplacer", "quarantine", str(row.id), row.record_key, "reveal", who) for who in ("sam", "casey")]


def test_list_names_the_order_people_know_with_zoned_times(ledger, capsys):
    ledger.quarantine("cin7_marketplacer", "orders_in", BUYER_INVOICE["id"], BUYER_INVOICE, [{"check": "sku_mapped", "detail": "unmapped"}], "r1")
    ledger.quarantine("cin7_marketplacer", "stock_out", "MKP-GIFT-50", {"sku": "MKP-GIFT-50"}, [{"check": "listing_mapped", "detail": "no SKU"}], "r1")
    assert main(["quarantine", "list"]) == 0
    out = capsys.readouterr().out
    assert f"orders_in: order MKP-10014 (key {BUYER_INVOICE['id']}), since " in out and "stock_out: key MKP-GIFT-50, since " in out
    assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, seen once", out), out
    assert main(["quarantine", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["order"], r["attempts"]) for r in listed] == [("MKP-10014", 1), (None, 1)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", listed[0]["first_seen"])


def test_times_keep_their_zone_and_drop_microseconds():
    from datetime import datetime, timedelta, timezone

    from commerce_sync.cli import when, when_json

    sydney = timezone(timedelta(hours=11))
    assert when(datetime(2026, 11, 23, 20, 30, 5, 123456, tzinfo=sydney)) == "2026-11-23 09:30:05 UTC"
    assert when(datetime(2026, 11, 23, 9, 30, 5, 999)) == "2026-11-23 09:30:05 UTC"  # SQLite drops the zone: the ledger writes UTC
    assert when_json(datetime(2026, 11, 23, 9, 30, 5, 999, tzinfo=timezone.utc)) == "2026-11-23T09:30:05+00:00"
    assert when(None) == "-"


def test_health_covers_every_pairing_and_counts_zero_not_none(ledger, capsys):
    ledger.record_run("cin7_john_lewis", "drift_monitor", "r1", details={"counts": {"stock_drift": None, "orphaned_order": 2}})
    assert main(["health"]) == 0
    out = capsys.readouterr().out
    assert "Health of cin7_john_lewis:" in out and "Health of cin7_marketplacer:" in out
    assert "None" not in out and "drift: stock_drift 0, orphaned_order 2" in out
    assert main(["health", "--json"]) == 0
    everything = json.loads(capsys.readouterr().out)
    assert {h["pairing"] for h in everything} >= {"cin7_john_lewis", "cin7_marketplacer"}
    flows = next(h for h in everything if h["pairing"] == "cin7_john_lewis")["flows"]
    assert (flows["drift_monitor"]["loaded"], flows["orders_in"]["extracted"]) == (0, 0)


def test_mapping_import_says_a_partial_file_removes_rows_and_merge_keeps_them(ledger, tmp_path, capsys):
    from commerce_sync.pairing import mappings_dir

    full = tmp_path / "skus.csv"
    full.write_text("channel_sku,master_sku\nA,A1\nB,B1\n", encoding="utf-8")
    assert main(["mappings", "import", "--pairing", "cin7_marketplacer", "--kind", "skus", str(full), "--apply"]) == 0
    partial = tmp_path / "new.csv"
    partial.write_text("channel_sku,master_sku\nB,B2\nC,C1\n", encoding="utf-8")
    capsys.readouterr()

    assert main(["mappings", "import", "--pairing", "cin7_marketplacer", "--kind", "skus", str(partial)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Rows missing from this file will be removed: 1 skus row(s) of cin7_marketplacer are not in {partial}.")
    assert "use --merge" in out and "- A" in out and "dry run" in out

    assert main(["mappings", "import", "--pairing", "cin7_marketplacer", "--kind", "skus", str(partial), "--merge"]) == 0
    out = capsys.readouterr().out
    assert "1 added, 1 changed, 0 removed" in out and "will be removed" not in out and "dry run" in out
    assert set(ledger.mapping("cin7_marketplacer", "skus")) == {"A", "B"}  # a dry run changes nothing

    assert main(["mappings", "import", "--pairing", "cin7_marketplacer", "--kind", "skus", str(partial), "--merge", "--apply", "--by", "sam"]) == 0
    assert {k: v["master_sku"] for k, v in ledger.mapping("cin7_marketplacer", "skus").items()} == {"A": "A1", "B": "B2", "C": "C1"}
    # the folder's file, which every run loads, holds the merge too
    assert (mappings_dir() / "cin7_marketplacer" / "skus.csv").read_text() == "channel_sku,master_sku\nA,A1\nB,B2\nC,C1\n"


def test_mapping_import_needs_one_pairing(ledger, tmp_path, capsys):
    new = tmp_path / "skus.csv"
    new.write_text("channel_sku,master_sku\nA,A1\n", encoding="utf-8")
    assert main(["mappings", "import", "--kind", "skus", str(new)]) == 2
    assert capsys.readouterr().err.startswith("a mapping file belongs to one pairing: name it with --pairing (")


def test_files_without_a_pairing_search_every_pairing(ledger, capsys, tmp_path):
    ledger.store_file("cin7_john_lewis", "dispatch_back", "run-1", "slip-1.pdf", "application/pdf", b"one")
    ledger.store_file("cin7_marketplacer", "dispatch_back", "run-1", "slip-1.pdf", "application/pdf", b"two")
    ledger.store_file("cin7_marketplacer", "dispatch_back", "run-2", "slip-2.pdf", "application/pdf", b"three")
    assert main(["files"]) == 0
    assert capsys.readouterr().out.splitlines() == ["cin7_john_lewis  slip-1.pdf", "cin7_marketplacer  slip-1.pdf", "cin7_marketplacer  slip-2.pdf"]
    assert main(["files", "slip-2.pdf", "-o", str(tmp_path / "two.pdf")]) == 0
    assert (tmp_path / "two.pdf").read_bytes() == b"three"
    assert main(["files", "slip-1.pdf"]) == 2
    assert "stored for several pairings (cin7_john_lewis, cin7_marketplacer): name one with --pairing" in capsys.readouterr().err


def test_no_ledger_where_one_was_expected_is_one_line(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nowhere" / "ledger.db"
    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", f"sqlite:///{missing}")
    assert main(["quarantine", "list"]) == 2
    assert capsys.readouterr().err == f"no ledger at {missing}: set COMMERCE_SYNC_LEDGER_URL (or the integration_db connection) to the ledger the DAGs use; for the demo: source .demo/env\n"
    assert not missing.exists()  # and none was made
