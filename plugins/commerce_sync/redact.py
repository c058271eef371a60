"""Redaction for everything that leaves a process as text: payload log, error messages, logs.

Three layers, because each alone misses something:
1. values under sensitive keys (credentials and personal data) are replaced wholesale;
2. every known secret value (from the connection) is cut out of any string it hides in, keys too;
3. free text is scrubbed of e-mail addresses and phone-number-like runs.
SKUs, quantities, prices and references are left alone: they are what ops need to debug.
Numbers are never touched: masking digits inside an amount would corrupt what is logged.

At the boundaries (every ledger write, every e-mail, every log line) one more pass, `scrub`, runs
whatever produced the text: a vendor's error that quotes the credentials it received reaches a
quarantine reason through an adapter that never saw it as an error. It knows the run's secrets
(`register_secrets`: the keys of every connection the run built, the ledger's password) and the
names credentials travel under ("Authorization: ...", "apikey=..."), whose values it masks even
when the value is not known (a token refreshed after the run started).
"""

from __future__ import annotations

import functools
import html
import json
import logging
import re
import sys
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

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


# -- the boundaries ---------------------------------------------------------------------------
# A credential's name, then ":" or "=", then its value (with an auth scheme if it has one): as
# headers are quoted in error texts ("marketplacer-api-key: k"), as JSON ('"Authorization": "k"')
# and as query strings ("apikey=k"). The name may be glued into a longer one (x-api-key,
# api-auth-applicationkey, client_secret), so it is found by its credential part.
_CREDENTIAL_VALUE = re.compile(
    r"""(?ix)
    (?P<name>(?:authori[sz]ation|api[-_]?key|application[-_]?key|account[-_]?id|token|secret|passw(?:or)?d|cookie)[\w.-]*)
    (?P<sep>(?:["']|&quot;|&\#x?27;|&\#39;)?\s*[:=]\s*(?:["']|&quot;|&\#x?27;|&\#39;)?)  # quotes, HTML-escaped too
    (?P<value>(?:(?:bearer|basic|token|digest)\s+)?[^\s"',;&<>}\]]+)
    """
)

_lock = threading.Lock()
_values: set[str] = set()
_sources: list[Callable[[], Callable[[], Iterable[str]] | None]] = []
_installed = False


def register_secrets(values: Iterable[str | None]) -> None:
    """Secrets of this run (connection passwords, keys, tokens): cut out at every boundary from
    now on, in this process, and handed to Airflow's own masker when Airflow runs the task."""
    fresh = {v for v in values if v and len(v) >= _MIN_SECRET_LEN} - _values
    if not fresh:
        return
    with _lock:
        _values.update(fresh)
    _known.cache_clear()
    if "airflow.sdk" in sys.modules:  # inside a task: Airflow masks them in what it logs itself
        try:
            from airflow.sdk.log import mask_secret

            for value in fresh:
                mask_secret(value)
        except Exception:  # noqa: BLE001 - our own masking stands without Airflow's
            pass


def register_secret_source(source: Callable[[], Iterable[str]]) -> None:
    """A callable asked for its secrets at each boundary pass (an auth that refreshes its token).
    Held weakly when it is a bound method, so a closed client does not live on for it."""
    ref = weakref.WeakMethod(source) if hasattr(source, "__self__") else (lambda: source)
    with _lock:
        _sources[:] = [r for r in _sources if r() is not None] + [ref]


@functools.lru_cache(maxsize=1)
def _known() -> tuple[str, ...]:
    """Registered secrets and the forms they take in text: HTML-escaped, percent-encoded, JSON
    string-escaped (some encoders write '/' as '\\/')."""
    forms = set()
    for value in _values:
        escaped = json.dumps(value)[1:-1]
        forms |= {value, html.escape(value), quote(value, safe=""), escaped, escaped.replace("/", "\\/")}
    return tuple(_prepare(forms))


def known_secrets() -> list[str]:
    live = []
    with _lock:
        sources = list(_sources)
    for ref in sources:
        source = ref()
        if source is not None:
            try:
                live += [s for s in source() if s]
            except Exception:  # noqa: BLE001 - a source that cannot answer adds nothing
                pass
    known = _known()
    fresh = [s for s in live if s not in _values]
    if not fresh:
        return list(known)
    return _prepare(set(known) | set(fresh))


# the credential names' stems, looked for with `in` (C speed) before the regex runs at all: most
# texts (a 2 KB page of offers, a quarantine reason) name none of them
_CREDENTIAL_STEMS = ("authori", "apikey", "api-key", "api_key", "applicationkey", "application-key", "application_key",
                     "accountid", "account-id", "account_id", "token", "secret", "passw", "cookie")


def _mask_credentials(text: str) -> str:
    lower = text.lower()
    if not any(stem in lower for stem in _CREDENTIAL_STEMS):
        return text
    return _CREDENTIAL_VALUE.sub(lambda m: m.group("name") + m.group("sep") + MASK, text)


def scrub_text(text: str, *, personal: bool = False, secrets: list[str] | None = None) -> str:
    """One string with the run's secrets cut out and credential values masked (and, with
    `personal`, e-mail addresses and phone numbers too)."""
    for secret in known_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _mask_credentials(text)
    if personal:
        text = _scrub(text, [])
    return text


def scrub(obj: Any, *, personal: bool = False) -> Any:
    """What crosses a boundary (a ledger row, an e-mail, a log line): every string in `obj`, at
    any depth and keys included, through `scrub_text`, in a copy; other values come back as they
    are (a Decimal stays a Decimal)."""
    secrets = known_secrets()

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return scrub_text(value, personal=personal, secrets=secrets)
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v) for v in value)
        return value

    return walk(obj)


def scrub_data(obj: Any) -> Any:
    """A record kept as data (a payout match, a cached reference list): known secret values cut
    out, and only when one is there; names are not looked for, as a vendor's record carries
    field names such as next_page_token as data."""
    secrets = known_secrets()
    if not secrets:
        return obj
    from commerce_sync.jsonutil import dumps

    text = obj if isinstance(obj, str) else dumps(obj)
    return _cut(obj, secrets) if any(secret in text for secret in secrets) else obj


def scrubbed_json(obj: Any) -> str:
    """`obj` as the ledger's JSON columns store it (staged and quarantined payloads, reasons, run
    details), known secrets cut out. Serialised once, which the column does anyway, and searched:
    100,000 stock rows cost one C-speed substring search per secret; only a document holding
    one is walked and serialised again."""
    from commerce_sync.jsonutil import dumps

    text = dumps(obj)
    secrets = known_secrets()
    if secrets and any(secret in text for secret in secrets):
        text = dumps(_cut(obj, secrets))
    return text


def _cut(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_cut(k, secrets): _cut(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cut(v, secrets) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Every log line through `scrub` (secrets, credential values, e-mail addresses, phone
    numbers), its traceback included: a message whose text had to change is stored already
    formatted, and a traceback that quotes a secret is folded into the message scrubbed."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's to report
            return True
        clean = scrub_text(message, personal=True)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[0] is not None:
            trace = logging.Formatter().formatException(record.exc_info)
            clean_trace = scrub_text(trace, personal=True)
            if clean_trace != trace:
                record.msg, record.args = f"{scrub_text(record.getMessage(), personal=True)}\n{clean_trace}", ()
                record.exc_info, record.exc_text = None, None
        return True


def install_log_redaction() -> None:
    """Every log record born in this process goes through `RedactingFilter`: our loggers, the
    libraries' (urllib3 logs URLs) and the task log Airflow keeps. A record factory rather than
    a filter per handler, because handlers come and go (Airflow's, pytest's) after we start."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    base = logging.getLogRecordFactory()
    redactor = RedactingFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        redactor.filter(record)
        return record

    factory.commerce_sync_redaction = True  # type: ignore[attr-defined]
    if not getattr(base, "commerce_sync_redaction", False):
        logging.setLogRecordFactory(factory)
