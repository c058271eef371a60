"""Redaction for everything that leaves a process as text: payload log, error messages, logs.

Three layers, because each alone misses something:
1. values under sensitive keys (credentials and personal data) are replaced wholesale;
2. every known secret value (from the connection) is cut out of any string it hides in;
3. free text is scrubbed of e-mail addresses and phone-number-like runs.
SKUs, quantities, prices and references are left alone: they are what ops need to debug.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from commerce_sync.jsonutil import dumps, loads

MASK = "***"

# Compared against keys lower-cased with '-' and '_' removed. "address" covers ShippingAddress,
# BillingAddress, buyerEmailAddress wholesale; "contact" covers Cin7's Contact (a person's name).
SENSITIVE_KEY_PARTS = (
    "authorization",
    "apikey",
    "applicationkey",
    "accountid",
    "token",
    "secret",
    "password",
    "email",
    "phone",
    "mobile",
    "address",
    "street",
    "postcode",
    "zipcode",
    "firstname",
    "lastname",
    "surname",
    "contact",
    "buyername",
    "customername",
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# international (+61 400 000 000) or national with a trunk 0 ((02) 9999 9999, 0400-000-000);
# never ISO dates, prices or SKUs, which start with neither
_PHONE = re.compile(r"(?<![\w-])(?:\+\d|\(?0\d)[\d\s().-]{6,}\d(?![\w-])")


def is_sensitive_key(key: object) -> bool:
    norm = str(key).lower().replace("-", "").replace("_", "")
    return any(part in norm for part in SENSITIVE_KEY_PARTS)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _EMAIL.sub(MASK, text)
    return _PHONE.sub(lambda m: MASK if sum(c.isdigit() for c in m.group()) >= 8 else m.group(), text)


def redact(obj: Any, secrets: Iterable[str] = ()) -> Any:
    """A deep copy of `obj` with credentials and personal data masked."""
    # short secrets would mask half the payload; the key-based layer still covers their headers
    keep = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    return _redact(obj, keep)


def _redact(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, dict):
        return {k: (MASK if is_sensitive_key(k) and v not in (None, "") else _redact(v, secrets)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact(v, secrets) for v in obj]
    if isinstance(obj, bytes):
        obj = obj.decode("utf-8", errors="replace")
    if isinstance(obj, str):
        stripped = obj.strip()
        if stripped[:1] in "{[":
            # a JSON body kept as text: redact its structure, not only its surface
            try:
                return dumps(_redact(loads(stripped), secrets))
            except ValueError:
                pass
        return _scrub(obj, secrets)
    return obj


def redact_url(url: str, secrets: Iterable[str] = ()) -> str:
    parts = urlsplit(url)
    query = [(k, MASK if is_sensitive_key(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    clean = urlunsplit(parts._replace(query=urlencode(query, safe="*")))
    return _scrub(clean, sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))
