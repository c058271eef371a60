"""jsonutil: money stays exact through JSON both ways."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from commerce_sync.jsonutil import dumps, loads


def test_decimals_are_json_numbers_and_come_back_exact_at_any_depth():
    doc = {"total": Decimal("12.10"), "lines": [{"price": Decimal("0.1"), "qty": 3}], "pair": (Decimal("1.005"), None)}
    text = dumps(doc)
    assert text == '{"total":12.1,"lines":[{"price":0.1,"qty":3}],"pair":[1.005,null]}'
    back = loads(text)
    assert back["total"] == Decimal("12.10") and isinstance(back["lines"][0]["price"], Decimal)


def test_a_decimal_a_json_number_cannot_hold_is_refused_not_rounded():
    with pytest.raises(ValueError, match="without losing precision"):
        dumps({"deep": [{"amount": Decimal("12345678901234567.89")}]})


def test_dates_are_iso_and_unknown_types_are_a_clear_error():
    assert dumps({"d": date(2026, 11, 23), "t": datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)}) == '{"d":"2026-11-23","t":"2026-11-23T09:30:00+00:00"}'
    with pytest.raises(TypeError, match="set is not JSON serialisable"):
        dumps({"s": {1, 2}})
    assert dumps({"name": "Zoë"}) == '{"name":"Zoë"}'  # not escaped: the ledger stores UTF-8
