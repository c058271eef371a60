"""Mapping files: validated with file and line in every message, imported with an audit trail."""

import pytest

from commerce_sync.errors import MappingFileError
from commerce_sync.ledger import Ledger
from commerce_sync.mappings import import_mapping_file, read_mapping_file, sync_pairing_mappings


def _csv(tmp_path, text, name="skus.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("channel_sku,master_sku\nA,A1\nB,B1\nA,A2\n", "line 4: duplicate key 'A' (first seen on line 2)"),
        ("channel_sku,master_sku\nA,A1\n,B1\n", "line 3: blank key"),
        ("channel_sku,master_sku\n A,A1\n", "line 2: key ' A' has leading or trailing spaces"),
        ("channel_sku,name\nA,x\n", "line 1: missing column(s) master_sku"),
        ("channel_sku,master_sku\nA,A1,extra\n", "line 2: 3 fields where the header has 2"),
        ("channel_sku,master_sku\nA,\n", "line 2: blank value in required column master_sku"),
        ("", "line 1: the file is empty"),
    ],
)
def test_bad_files_are_refused_naming_file_and_line(tmp_path, text, message):
    path = _csv(tmp_path, text)
    with pytest.raises(MappingFileError) as err:
        read_mapping_file(path, "skus")
    assert str(path) in str(err.value) and message in str(err.value)


def test_keys_are_exact_case_matters(tmp_path):
    rows, lines = read_mapping_file(_csv(tmp_path, "channel_sku,master_sku\ncs-tee,A\nCS-TEE,B\n\n"), "skus")
    assert set(rows) == {"cs-tee", "CS-TEE"} and lines == {"cs-tee": 2, "CS-TEE": 3}


def test_import_dry_run_apply_history_and_removal(tmp_path, ledger_url):
    ledger = Ledger.from_url(ledger_url)
    path = _csv(tmp_path, "channel_sku,master_sku\nA,A1\nB,B1\n")
    dry = import_mapping_file(ledger, "p", "skus", path, dry_run=True)
    assert dry.added == ["A", "B"] and ledger.mapping("p", "skus") == {}
    assert "2 added" in dry.summary()
    import_mapping_file(ledger, "p", "skus", path, changed_by="ops@example.com")
    assert ledger.mapping("p", "skus") == {"A": {"channel_sku": "A", "master_sku": "A1"}, "B": {"channel_sku": "B", "master_sku": "B1"}}
    path.write_text("channel_sku,master_sku\nA,A2\nC,C1\n", encoding="utf-8")
    diff = import_mapping_file(ledger, "p", "skus", path)
    assert diff.added == ["C"] and [c[0] for c in diff.changed] == ["A"] and diff.removed == ["B"]
    assert "A1" in diff.summary() and "A2" in diff.summary()
    assert set(ledger.mapping("p", "skus")) == {"A", "C"}
    unchanged = import_mapping_file(ledger, "p", "skus", path)
    assert not unchanged  # nothing changed, nothing written
    assert unchanged.rows == diff.rows == ledger.mapping("p", "skus")  # what a flow reads instead of reading back
    with ledger.engine.connect() as conn:
        history = conn.exec_driver_sql("select key, action, source_line, changed_by from mapping_history order by id").fetchall()
    assert [tuple(h) for h in history] == [
        ("A", "added", 2, "ops@example.com"),
        ("B", "added", 3, "ops@example.com"),
        ("C", "added", 3, "commerce_sync"),
        ("A", "changed", 2, "commerce_sync"),
        ("B", "removed", None, "commerce_sync"),
    ]
    ledger.dispose()


def test_a_bad_file_in_a_folder_applies_nothing_of_itself(tmp_path, ledger_url):
    ledger = Ledger.from_url(ledger_url)
    folder = tmp_path / "pairing"
    folder.mkdir()
    _csv(folder, "channel_seller_id,seller_name,master_customer\n1,Castore,Castore AU\n", "sellers.csv")
    _csv(folder, "channel_sku,master_sku\nA,A1\nA,A2\n", "skus.csv")
    with pytest.raises(MappingFileError, match="skus.csv line 3"):
        sync_pairing_mappings(ledger, "p", folder)
    assert ledger.mapping("p", "skus") == {}
    ledger.dispose()


def test_customers_per_currency_are_keyed_by_currency_and_seller(tmp_path):
    rows, _ = read_mapping_file(_csv(tmp_path, "currency,master_customer,seller_ref\nGBP,UK Shop,\nGBP,Castore UK,1\nNZD,NZ Shop,\n", "customers.csv"), "customers")
    assert {k: v["master_customer"] for k, v in rows.items()} == {"GBP": "UK Shop", "GBP:1": "Castore UK", "NZD": "NZ Shop"}
    with pytest.raises(MappingFileError, match="line 3: duplicate key 'GBP:1'"):
        read_mapping_file(_csv(tmp_path, "currency,master_customer,seller_ref\nGBP,A,1\nGBP,B,1\n", "customers.csv"), "customers")
    with pytest.raises(MappingFileError, match="leading or trailing spaces"):
        read_mapping_file(_csv(tmp_path, "currency,master_customer,seller_ref\nGBP,A, 1\n", "customers.csv"), "customers")
    rows, _ = read_mapping_file(_csv(tmp_path, "currency,master_customer\nGBP,UK Shop\n", "customers.csv"), "customers")  # seller_ref is optional
    assert rows == {"GBP": {"currency": "GBP", "master_customer": "UK Shop"}}
