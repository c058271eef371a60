"""Many rows at once (COPY on PostgreSQL, executemany on SQLite): values come back exactly as
they went in, whatever characters they hold; upserts update on a key clash; defaults apply."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from commerce_sync.ledger import Ledger
from commerce_sync.ledger.bulk import insert_rows, upsert_rows
from commerce_sync.ledger.schema import mapping, mapping_history, stock_snapshot

# what COPY's text format gives meaning to, plus SQL and non-ASCII
AWKWARD = ["tab\there", "new\nline", "cr\rhere", "back\\slash", r"\N", "\\.", "quote'); DROP TABLE mapping; --", "café ✓", ""]


@pytest.fixture
def ledger(ledger_url):
    led = Ledger.from_url(ledger_url)
    yield led
    led.dispose()


def test_inserted_rows_come_back_exactly_with_defaults_and_nulls(ledger):
    rows = [
        {"pairing": "p", "kind": "skus", "key": f"k{i}-{text}", "value": {"master_sku": text, "price": Decimal("19.99"), "n": i}, "active": i % 2 == 0}
        for i, text in enumerate(AWKWARD)
    ]
    history = [
        {"pairing": "p", "kind": "skus", "key": text, "action": "added", "old_value": None, "new_value": {"v": text}, "source_file": text,
         "source_line": None if i % 2 else i, "changed_at": datetime(2026, 11, 23, 12, 0, i, tzinfo=timezone.utc), "changed_by": text}
        for i, text in enumerate(AWKWARD)
    ]
    with ledger.engine.begin() as conn:
        insert_rows(conn, mapping, rows)  # updated_at left out: its Python default applies
        insert_rows(conn, mapping_history, history)
    with ledger.engine.connect() as conn:
        got = {r.key: r for r in conn.execute(select(mapping))}
        hist = {r.key: r for r in conn.execute(select(mapping_history))}
    assert set(got) == {r["key"] for r in rows}
    for row in rows:
        back = got[row["key"]]
        assert back.value == row["value"] and back.active is row["active"] and back.updated_at is not None
    for entry in history:
        back = hist[entry["key"]]
        assert (back.source_file, back.changed_by, back.source_line, back.new_value, back.old_value) == (
            entry["source_file"], entry["changed_by"], entry["source_line"], entry["new_value"], None)
        assert back.changed_at.replace(tzinfo=timezone.utc) == entry["changed_at"]


def test_upsert_inserts_updates_and_keeps_the_last_of_a_repeated_key(ledger):
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    first = [{"pairing": "p", "sku": f"SKU-{i}'\t", "quantity": i, "run_id": "r1", "pushed_at": now} for i in range(2500)]
    with ledger.engine.begin() as conn:
        upsert_rows(conn, stock_snapshot, first, ["pairing", "sku"], ["quantity", "run_id", "pushed_at"])
    again = [{"pairing": "p", "sku": "SKU-1'\t", "quantity": 100, "run_id": "r2", "pushed_at": now},
             {"pairing": "p", "sku": "SKU-1'\t", "quantity": 101, "run_id": "r2", "pushed_at": now},
             {"pairing": "q", "sku": "SKU-1'\t", "quantity": 7, "run_id": "r2", "pushed_at": now}]
    with ledger.engine.begin() as conn:
        upsert_rows(conn, stock_snapshot, again, ["pairing", "sku"], ["quantity", "run_id", "pushed_at"])
        # a second bulk write in the same transaction (its own scratch table)
        upsert_rows(conn, stock_snapshot, [{**again[0], "sku": "SKU-2'\t", "quantity": 55}], ["pairing", "sku"], ["quantity", "run_id", "pushed_at"])
    assert ledger.pushed_stock("p") == {**{r["sku"]: r["quantity"] for r in first}, "SKU-1'\t": 101, "SKU-2'\t": 55}
    assert ledger.pushed_stock("q") == {"SKU-1'\t": 7}


def test_a_failed_bulk_write_leaves_nothing_behind(ledger):
    good = {"pairing": "p", "kind": "skus", "key": "a", "value": {}, "active": True}
    with pytest.raises(Exception):
        with ledger.engine.begin() as conn:
            insert_rows(conn, mapping, [good, {**good, "key": None}])  # key is NOT NULL
    assert ledger.mapping("p", "skus") == {}


def test_upsert_without_columns_to_update_keeps_what_is_there(ledger):
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    row = {"pairing": "p", "sku": "A", "quantity": 1, "run_id": "r1", "pushed_at": now}
    with ledger.engine.begin() as conn:
        upsert_rows(conn, stock_snapshot, [row], ["pairing", "sku"], [])
        upsert_rows(conn, stock_snapshot, [{**row, "quantity": 9}, {**row, "sku": "B", "quantity": 2}], ["pairing", "sku"], [])
    assert ledger.pushed_stock("p") == {"A": 1, "B": 2}
