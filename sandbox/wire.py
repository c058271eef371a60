"""Decimals onto the wire as JSON numbers, exactly: one rule for every emulator and builder.

A JSON number is read as a float by `requests` and most clients, so a Decimal is written as the
float whose repr is the same decimal (every amount or tax rate here has far fewer than 15
significant digits); one no float says exactly is written as its string, never rounded.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def json_number(value: Decimal) -> float | str:
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)


def wire(obj: Any) -> Any:
    """A document with every Decimal in it made a JSON number (json_number)."""
    if isinstance(obj, Decimal):
        return json_number(obj)
    if isinstance(obj, dict):
        return {k: wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [wire(v) for v in obj]
    return obj
