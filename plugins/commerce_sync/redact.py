"""Redaction for everything that leaves a process as text: payload log, error messages, logs.

Three layers, because each alone misses something:
1. values under sensitive keys (credentials and personal data) are replaced wholesale;
2. every known secret value (from the connection) is cut out of any string it hides in, keys too;
3. free text is scrubbed of e-mail addresses and phone-number-like runs.
SKUs, quantities, prices and references are left alone: they are what ops need to debug.
Numbers are never touched: masking digits inside an amount would corrupt what is logged.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Matched as substrings of keys lower-cased with '-' and '_' removed, so one entry covers every
# vendor's spelling (api-auth-applicationkey, buyer_email, emailAddress, ShippingAddress).
# Substrings rather than exact names because the six APIs nest and prefix freely; the price is
# some over-masking (ContactID, next_page_token), which costs a little debugging, never a leak.
SENSITIVE_KEY_PARTS = (
    # credentials
    "authorization",
    "apikey",  # marketplacer-api-key, Mirakl ?apikey=
    "applicationkey",  # Cin7 api-auth-applicationkey
    "accountid",  # Cin7 api-auth-accountid (not "account": journal account codes are business data)
    "token",
    "secret",
    "password",
    "cookie",
    # personal data of buyers
    "email",
    "phone",
    "mobile",
    "address",  # ShippingAddress / BillingAddress / shipping_address masked wholesale
    "street",
    "postcode",  # Cin7
    "postalcode",  # SFCC, commercetools
    "zipcode",  # Mirakl
    "firstname",
    "lastname",
    "surname",  # Marketplacer
    "contact",  # Cin7 Contact is a person's name
    "buyername",
    "customername",  # SFCC customer_name is the shopper; Cin7 "Customer" (the account, often the channel) stays
    "birth",  # commercetools dateOfBirth
    "iban",
)

# Any script (jöran@exämple.se), and the '@' as percent-encoding, an HTML entity or a JSON escape
# write it (a URL path, an HTML body, JSON kept as text). A match starts only where a run of
# address characters starts: without that anchor a long token costs quadratic time (4 s for 20 KB).
_AT = r"(?:@|%40|&#0*64;|&#x0*40;|\\u0040)"
_EMAIL = re.compile(rf"(?<![\w.%+-])[\w.%+-]+{_AT}[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{{2,}}", re.IGNORECASE)
# International (+61 400 000 000), national with a trunk 0 ((02) 9999 8888, 0400-000-000) and
# North American (415-555-0123, (415) 555 0123). Never ISO dates, prices, or SKUs/references,
# which are excluded by the lookarounds (a run glued to letters or '-' is part of an identifier).
_PHONE = re.compile(
    r"(?<![\w-])(?:(?:\+\d|\(?0\d)[\d\s().-]{6,}\d|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4})(?![\w-])"
)
_MIN_PHONE_DIGITS = 8
# Shorter "secrets" (a 2-digit shop id) would mask half of every payload; the key layer still
# covers the headers they travel in.
_MIN_SECRET_LEN = 4


@functools.lru_cache(maxsize=8192)  # payloads repeat a few hundred keys; sealing asks for every key of 100,000 rows
def _sensitive_name(key: str) -> bool:
    norm = key.lower().replace("-", "").replace("_", "")
    return any(part in norm for part in SENSITIVE_KEY_PARTS)


def is_sensitive_key(key: object) -> bool:
    return _sensitive_name(str(key))


def _prepare(secrets: Iterable[str]) -> list[str]:
    # longest first, so a secret containing another is masked whole
    return sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _EMAIL.sub(MASK, text)
    return _PHONE.sub(lambda m: MASK if sum(c.isdigit() for c in m.group()) >= _MIN_PHONE_DIGITS else m.group(), text)


def redact(obj: Any, secrets: Iterable[str] = (), max_chars: int | None = None) -> Any:
    """A deep copy of `obj` with credentials and personal data masked. Dicts, lists and tuples
    (as lists) are walked; bytes come back as str; str holding JSON is redacted as a structure;
    numbers, Decimals, None and other scalars come back as they are.

    `max_chars`: the caller keeps only about that much (the payload log keeps 20 KB of a 1,000-row
    page): lists stop being walked once their items have used it up, and end with a note of how
    many items were left out. Nothing left out is ever shown, so nothing unredacted can leak."""
    budget = [max_chars] if max_chars is not None else None
    return _redact(obj, _prepare(secrets), budget)


def _size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, default=str))


def _redact(obj: Any, secrets: list[str], budget: list[int] | None = None) -> Any:
    if isinstance(obj, dict):
        return {
            (_scrub(k, secrets) if isinstance(k, str) else k): (MASK if is_sensitive_key(k) and v not in (None, "") else _redact(v, secrets, budget))
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        if budget is None:
            return [_redact(v, secrets) for v in obj]
        out = []
        for i, v in enumerate(obj):
            if budget[0] <= 0:
                out.append(f"...[{len(obj) - i} more items not logged]")
                break
            item = _redact(v, secrets, budget)
            budget[0] -= _size(item)
            out.append(item)
        return out
    if isinstance(obj, bytes):
        obj = obj.decode("utf-8", errors="replace")
    if isinstance(obj, str):
        stripped = obj.strip()
        if stripped[:1] in ("{", "["):
            # a JSON body kept as text: redact its structure, not only its surface, so a name
            # under "FirstName" goes too
            try:
                parsed = json.loads(stripped, parse_float=Decimal)
            except ValueError:
                pass
            else:
                return _dumps_exact(_redact(parsed, secrets, budget))
        return _scrub(obj, secrets)
    return obj


def as_text(obj: Any) -> str:
    """A redacted structure as the JSON text the payload log stores, amounts digit for digit."""
    return obj if isinstance(obj, str) else _dumps_exact(obj)


def _dumps_exact(obj: Any) -> str:
    """JSON text with every Decimal written digit for digit (12.10 stays 12.10): the log must show
    the amounts that were sent, and json can only write floats. Decimals go out as marked strings
    and the marks and quotes come off afterwards."""
    mark = uuid.uuid4().hex
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=lambda d: f"{mark}{d}{mark}")
    return re.sub(f'"{mark}(.*?){mark}"', r"\1", text)


def redact_url(url: str, secrets: Iterable[str] = ()) -> str:
    """The URL with sensitive query values (?apikey=, ?token=) masked and known secrets cut out."""
    keep = _prepare(secrets)
    parts = urlsplit(url)
    # values are scrubbed decoded: a secret with '+' or '/' in it is percent-encoded in the URL
    query = [(k, MASK if is_sensitive_key(k) else _scrub(v, keep)) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return _scrub(urlunsplit(parts._replace(query=urlencode(query, safe="*"))), keep)
