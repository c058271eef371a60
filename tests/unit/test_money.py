from decimal import Decimal

import pytest

from commerce_sync.money import from_minor, parse_decimal, quantize, to_minor


@pytest.mark.parametrize(
    "amount, currency, expected",
    [
        ("2.345", "AUD", "2.35"),  # half-up, not banker's rounding
        ("2.335", "AUD", "2.34"),
        ("-2.345", "AUD", "-2.35"),  # half away from zero on negatives too
        ("2.5", "JPY", "3"),
        ("1.0005", "KWD", "1.001"),
        ("10", "GBP", "10.00"),
    ],
)
def test_quantize_rounds_half_up_to_minor_unit(amount, currency, expected):
    assert quantize(Decimal(amount), currency) == Decimal(expected)
    assert str(quantize(Decimal(amount), currency)) == expected


def test_minor_units_round_trip_exactly():
    assert from_minor(1999, "AUD") == Decimal("19.99")
    assert to_minor(Decimal("19.99"), "AUD") == 1999
    assert from_minor(500, "JPY") == Decimal("500")


def test_to_minor_refuses_sub_cent_precision():
    with pytest.raises(ValueError, match="more precision"):
        to_minor(Decimal("1.005"), "AUD")


@pytest.mark.parametrize("bad", [True, 1.5, "12", None])
def test_from_minor_refuses_non_integers(bad):
    with pytest.raises(ValueError):
        from_minor(bad, "AUD")


def test_parse_decimal_never_goes_through_binary_float():
    assert parse_decimal("0.1") + parse_decimal("0.2") == Decimal("0.3")
    assert parse_decimal(0.1) == Decimal("0.1")  # repr of the float, not its binary expansion
    with pytest.raises(ValueError):
        parse_decimal("NaN")
    with pytest.raises(ValueError):
        parse_decimal("twelve")
