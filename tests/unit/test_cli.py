"""Operator commands against a real ledger (SQLite file): list, discard, mapping import, health."""

import json

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
