"""Settlement report layouts as data: every format file reads its sample, Adyen's documented
sample lines come out with the documented amounts, Stripe's layout is a second file and no code,
and a bad file or row is a clear reason, never a crash or a silent skip."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from commerce_sync.pairing import PairingError
from commerce_sync.settlement_format import FormatError, RowProblem, SettlementFormat, formats_dir, load_format, parse

FORMATS = sorted(p.stem for p in formats_dir().glob("*.yaml"))
SAMPLES = formats_dir() / "samples"
ROOT = Path(__file__).resolve().parents[2]


def _sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.csv").read_bytes()


def test_there_are_two_providers_and_each_spec_is_in_the_repository():
    assert {"adyen_settlement_details", "stripe_payout_itemized"} <= set(FORMATS)
    for name in FORMATS:
        assert (ROOT / load_format(name).spec).is_file(), f"{name}: its column spec is missing"


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_reads_its_sample_without_a_problem(name):
    fmt = load_format(name)
    rows = parse(fmt, _sample(name), default_batch="sample.csv")
    assert rows and not [r for r in rows if isinstance(r, RowProblem)]
    assert all(r.kind != "unknown" for r in rows), "the sample has a type its format does not list"


def test_adyen_documented_sample_lines_read_as_documented():
    settled, chargeback, correction = parse(load_format("adyen_settlement_details"), _sample("adyen_settlement_details"), default_batch="batch_4")
    cet = timezone(timedelta(hours=1))
    assert (settled.kind, settled.merchant_ref, settled.psp_ref, settled.modification_ref) == ("settled", "3vpzf7", "1813702551707653", "1713702551795048")
    assert settled.booked_at == datetime(2013, 6, 3, 11, 26, 49, tzinfo=cet)
    assert (settled.gross_currency, settled.gross, settled.net_currency, settled.net, settled.exchange_rate) == ("GBP", Decimal("5.00"), "GBP", Decimal("4.88"), Decimal("1"))
    assert settled.fees == {"commission": 0, "markup": Decimal("0.04"), "scheme_fees": Decimal("0.01"), "interchange": Decimal("0.07")}
    assert settled.gross - sum(settled.fees.values()) == settled.net  # a row's net is its gross less its costs
    assert (chargeback.kind, chargeback.gross, chargeback.net, chargeback.fees["commission"]) == ("chargeback", Decimal("-349.99"), Decimal("-357.49"), Decimal("7.5"))
    assert (correction.kind, correction.net, correction.merchant_ref) == ("adjustment", Decimal("-78.93"), None)
    assert {settled.batch, chargeback.batch, correction.batch} == {"batch_4"}  # the sample's Batch Number is empty: the file is the batch


def test_stripe_sample_is_one_balanced_payout_in_the_customers_and_the_balance_currency():
    rows = parse(load_format("stripe_payout_itemized"), _sample("stripe_payout_itemized"))
    assert [r.kind for r in rows] == ["settled", "settled", "settled", "refunded", "chargeback", "fee", "payout"]
    assert {r.batch for r in rows} == {"po_1SAMPLEpayout01"}
    euro = rows[2]
    assert (euro.merchant_ref, euro.gross_currency, euro.gross, euro.net_currency, euro.net) == ("200003", "EUR", Decimal("100.00"), "GBP", Decimal("84.57"))
    assert euro.exchange_rate is None and euro.booked_at == datetime(2026, 11, 17, 15, 12, 45, tzinfo=timezone.utc)
    assert rows[3].modification_ref == "txn_1SAMPLE0004" and rows[3].gross == Decimal("-20.00")
    assert rows[4].fees == {"processing": Decimal("15.00")}
    assert sum((r.net for r in rows), Decimal("0")) == 0  # the payout is what is left of everything else


def test_a_file_missing_a_column_is_refused_whole_with_the_column_named():
    fmt = load_format("adyen_settlement_details")
    data = _sample("adyen_settlement_details").replace(b"Net Credit (NC)", b"Net Credits", 1)
    with pytest.raises(FormatError, match=r"Net Credit \(NC\)"):
        parse(fmt, data)
    with pytest.raises(FormatError, match="not utf-8"):
        parse(fmt, b"\xff\xfe\x00garbage")


def test_a_bad_row_is_a_problem_with_its_reason_and_the_others_still_read():
    fmt = load_format("stripe_payout_itemized")
    lines = _sample("stripe_payout_itemized").decode().splitlines()
    lines[2] = lines[2].replace(",45.50,0.84,44.66,", ",45.50,0.84,forty,")
    lines[3] = lines[3].replace(",eur,", ",euros,")
    lines[4] = lines[4] + ",an extra value"
    rows = parse(fmt, ("\ufeff" + "\n".join(lines) + "\n\n").encode())  # a byte-order mark and a blank last line too
    problems = {r.line_no: r.reason for r in rows if isinstance(r, RowProblem)}
    assert set(problems) == {3, 4, 5}
    assert "forty" in problems[3] and "euros" in problems[4] and "more than the header" in problems[5]
    assert len(rows) == 7 and all(r.batch == "po_1SAMPLEpayout01" for r in rows)


def test_a_type_the_format_does_not_list_is_unknown_not_skipped():
    fmt = load_format("stripe_payout_itemized")
    data = _sample("stripe_payout_itemized").replace(b",fee,fee_", b",climate_order,fee_", 1)
    assert [r.kind for r in parse(fmt, data)].count("unknown") == 1


def test_a_format_file_with_a_mistake_is_refused_when_loaded():
    base = load_format("stripe_payout_itemized").model_dump()
    with pytest.raises(ValueError, match="unknown kinds"):
        SettlementFormat(**{**base, "types": {"charge": "sale"}})
    with pytest.raises(ValueError, match="either `net`"):
        SettlementFormat(**{**base, "columns": {**base["columns"], "net_debit": "a", "net_credit": "b"}})
    with pytest.raises(PairingError, match="no settlement format"):
        load_format("worldpay")


def test_the_demo_sample_is_what_its_builder_makes():
    from sandbox.settlement_demo import DEMO_FILE, sample

    assert DEMO_FILE.read_bytes() == next(iter(sample("").files.values()))
    rows = parse(load_format("adyen_settlement_details"), DEMO_FILE.read_bytes())
    assert not [r for r in rows if isinstance(r, RowProblem)] and sum((r.net for r in rows), Decimal("0")) == 0
