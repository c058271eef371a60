"""The one place money is rounded: half-up to the currency's minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor units for the currencies the demo pairings trade in; others default to 2.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3}


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round `amount` half-up to the currency's minor unit."""
    exp = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exp, rounding=ROUND_HALF_UP)


def from_minor(value: int, currency: str) -> Decimal:
    """Integer minor units (cents) to Decimal major units, exactly."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"minor-unit amount must be an integer, got {value!r}")
    return Decimal(value).scaleb(-minor_units(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """Decimal major units to integer minor units; refuses amounts finer than the minor unit."""
    scaled = amount.scaleb(minor_units(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more precision than the currency allows")
    return int(scaled)


def parse_decimal(value: object) -> Decimal:
    """Parse a JSON number or string into Decimal without going through float."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, float):
        # JSON decoders in this project use parse_float=Decimal; a float here means someone didn't.
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return result
