"""Small helpers every adapter uses when reading vendor payloads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from commerce_sync.models import TranslationError
from commerce_sync.money import parse_decimal


@dataclass(frozen=True)
class Connected:
    """What a system module makes of its Airflow connection when static headers are not enough
    (its `connect(conn)`): the auth (an OAuth2 token provider, say), the base URL where the
    connection names it some other way than its host, and the settings the connection holds for
    the adapter (an organisation id in every path), laid over the pairing's options."""

    auth: Any
    base_url: str | None = None
    base_path: str = ""  # added to the base URL (commercetools addresses every call under /<projectKey>)
    options: dict[str, Any] = field(default_factory=dict)


def amount(value: object, field_name: str) -> Decimal:
    """A money field of a vendor payload as Decimal; a missing or unreadable one names the field."""
    if isinstance(value, float):  # the client parses JSON numbers as Decimal; a float here is a bug
        raise TranslationError(f"{field_name} arrived as a binary float ({value!r})")
    try:
        return parse_decimal(value)
    except ValueError:
        raise TranslationError(f"{field_name} is missing or not an amount: {value!r}") from None


def parse_time(value: object, field: str) -> datetime:
    """ISO-8601 to an aware datetime; a naive vendor time is taken as UTC (Cin7 documents UTC)."""
    if not isinstance(value, str) or not value:
        raise TranslationError(f"{field} is missing or not a date-time: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TranslationError(f"{field} is not an ISO-8601 date-time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def shown(value: object) -> str:
    """A value as a person reads it in a reason: text quoted, numbers plain (never `Decimal('1')`
    or a library's type name), nothing at all as `missing`."""
    if value is None:
        return "missing"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, (bool, int, float, Decimal)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(v) for v in value[:5]) + (", ..." if len(value) > 5 else "") + "]"
    if isinstance(value, dict):
        return "an object with " + (", ".join(str(k) for k in list(value)[:5]) or "no fields")
    return str(value)


def describe_validation_error(exc: ValidationError) -> str:
    """One line an operator can read: which field, what was wrong, what value came in."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        got = shown(err.get("input"))
        # short: the reason lands in the quarantine table and in e-mails
        parts.append(f"{loc}: {err.get('msg')} (got {got[:60]})")
    return "; ".join(parts)


def describe_problem(exc: BaseException) -> str:
    """A reading failure as a sentence, not a Python exception's name."""
    if isinstance(exc, KeyError):
        return f"field {shown(exc.args[0] if exc.args else None)} is missing"
    if isinstance(exc, (TypeError, AttributeError)):
        return f"a field has the wrong shape ({exc})"
    if isinstance(exc, ArithmeticError):
        return "a number could not be read"
    return str(exc)


@contextmanager
def translating(record_key: str) -> Iterator[None]:
    """Every way a vendor payload can fail to translate comes out as one TranslationError that
    names the record: the flows quarantine it instead of crashing the batch."""
    try:
        yield
    except TranslationError as exc:
        exc.record_key = exc.record_key or record_key
        raise
    except ValidationError as exc:
        raise TranslationError(describe_validation_error(exc), record_key=record_key) from exc
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
        # AttributeError: a list or string where the API documents an object (schema drift)
        raise TranslationError(describe_problem(exc), record_key=record_key) from exc
