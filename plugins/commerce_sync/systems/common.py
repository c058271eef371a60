"""Small helpers every adapter uses when reading vendor payloads."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import ValidationError

from commerce_sync.models import TranslationError


def parse_time(value: object, field: str) -> datetime:
    """ISO-8601 to an aware datetime; a naive vendor time is taken as UTC (Cin7 documents UTC)."""
    if not isinstance(value, str) or not value:
        raise TranslationError(f"{field} is missing or not a date-time: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TranslationError(f"{field} is not an ISO-8601 date-time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def describe_validation_error(exc: ValidationError) -> str:
    """One line an operator can read: which field, what was wrong, what value came in."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        got = repr(err.get("input"))
        # short: the reason lands in the quarantine table and in e-mails
        parts.append(f"{loc}: {err.get('msg')} (got {got[:60]})")
    return "; ".join(parts)
