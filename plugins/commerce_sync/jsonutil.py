"""JSON that keeps money exact: numbers decode to Decimal, Decimals encode as JSON numbers.

A Decimal is written as the float whose shortest repr is the same number (true for every
amount with up to 15 significant digits); one that would lose digits is refused, never rounded.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _jsonable(obj: Any) -> Any:
    """json's `default`: called only for what it cannot write itself, so big documents are written
    by the C encoder rather than walked in Python."""
    if isinstance(obj, Decimal):
        as_float = float(obj)
        if Decimal(repr(as_float)) != obj:
            raise ValueError(f"{obj} cannot be written as a JSON number without losing precision")
        return as_float
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_jsonable)


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)
