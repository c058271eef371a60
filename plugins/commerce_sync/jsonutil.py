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
    if isinstance(obj, Decimal):
        as_float = float(obj)
        if Decimal(repr(as_float)) != obj:
            raise ValueError(f"{obj} cannot be written as a JSON number without losing precision")
        return as_float
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_jsonable(obj), separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)
