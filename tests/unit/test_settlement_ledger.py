"""The ledger's settlement records on both back-ends: a file version is recorded once, whole, with
its rows; an unreadable one is recorded again until it reads; row outcomes are written in bulk,
each with its own values, exactly."""

from datetime import datetime, timezone

import pytest

from commerce_sync.ledger import Ledger

AWKWARD = ["tab\there", "new\nline", "back\\slash", r"\N", "quote'); DROP TABLE settlement_line; --", "café ✓"]


@pytest.fixture
def ledger(ledger_url):
    led = Ledger.from_url(ledger_url)
    yield led
    led.dispose()


def _record(ledger, name="batch_1.csv", checksum="c1", status="read", detail=None, lines=()):
    return ledger.record_settlement_file("p", name=name, checksum=checksum, size=10, modified="1700000000.0", status=status, period="P1",
                                         run_id="r1", detail=detail, lines=lines)


def _lines(n: int) -> list[dict]:
    return [{"line_no": i + 2, "batch": "M-1", "kind": "settled", "merchant_ref": str(1000 + i), "gross": "10.00", "net": "9.71",
             "fees": {"markup": "0.29"}, "booked_at": datetime(2026, 10, 1, 12, tzinfo=timezone.utc)} for i in range(n)]


def test_a_file_version_is_recorded_once_with_all_its_rows(ledger):
    file_id = _record(ledger, lines=_lines(3))
    assert file_id is not None
    assert _record(ledger, lines=_lines(3)) is None  # the same version again: already read, nothing added
    assert _record(ledger, checksum="c2", status="changed", detail="other content") is not None  # another version of the name: its own record
    rows = ledger.settlement_lines("p")
    assert [(r["file_id"], r["line_no"], r["status"], r["fees"]) for r in rows] == [(file_id, i, "new", {"markup": "0.29"}) for i in (2, 3, 4)]
    assert [(f["name"], f["checksum"], f["status"]) for f in ledger.settlement_files("p")] == [("batch_1.csv", "c1", "read"), ("batch_1.csv", "c2", "changed")]
    assert ledger.settlement_files("other") == []


def test_an_unreadable_version_is_recorded_again_until_it_reads(ledger):
    first = _record(ledger, name="x.csv", status="unreadable", detail="missing column A")
    again = _record(ledger, name="x.csv", status="unreadable", detail="missing column B")
    read = _record(ledger, name="x.csv", status="read", lines=_lines(2))
    assert first == again == read
    (event,) = ledger.settlement_file_events("p", "P1")
    assert (event["status"], event["lines"]) == ("read", 2)


def test_outcomes_are_written_in_bulk_each_row_its_own(ledger):
    _record(ledger, lines=_lines(len(AWKWARD)))
    rows = ledger.settlement_lines("p", status="new")
    ledger.update_settlement_lines([
        {"id": r["id"], "status": "exception" if i % 2 else "matched", "reason": "no_sale" if i % 2 else None, "detail": text,
         "master_id": None if i % 2 else f"sale-{i}", "master_total": "10.00", "period": "P2", "run_id": "r2"}
        for i, (r, text) in enumerate(zip(rows, AWKWARD))
    ])
    after = {r["merchant_ref"]: r for r in ledger.settlement_lines("p", period="P2")}
    assert len(after) == len(AWKWARD) and ledger.settlement_lines("p", status="new") == []
    for i, text in enumerate(AWKWARD):
        row = after[str(1000 + i)]
        assert (row["status"], row["reason"], row["detail"], row["master_id"]) == (
            "exception" if i % 2 else "matched", "no_sale" if i % 2 else None, text, None if i % 2 else f"sale-{i}")
    assert sorted(r["merchant_ref"] for r in ledger.settlement_lines("p", merchant_refs=["1001", "1003", "nope"])) == ["1001", "1003"]
