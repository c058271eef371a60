"""The one HTTP client every adapter uses.

Auth per connection, timeouts, a rate limiter shared per API account, retries with backoff that
honour 429/503 and Retry-After, pagination helpers, and a redacted payload log of every attempt.

Auth is per connection: static headers, or OAuth 2 client credentials (a bearer token fetched from
the vendor's auth host, kept until shortly before it expires, and fetched again once when the API
answers 401 to it).

Retry rules, in order of danger:
- 429/503 (the server refused; nothing was done) and connect failures (nothing reached the
  server): retried for any method.
- read timeouts, resets and the other retry statuses (502/504 by default): retried only for
  idempotent requests. A write that may have been committed is never re-sent blindly:
  TransientError(maybe_committed=True) goes up to the flow, whose ledger link and external-id
  lookup decide whether the write happened.
- 500 is not in the default retry statuses: at Cin7 it usually answers the request itself
  (same body, same 500), so it fails at once as a TransientError; add it to retry it.

The error classes live in commerce_sync.errors (Airflow resolves them by dotted path while it parses
DAG files, so that module stays import-light) and are re-exported here.
"""

from __future__ import annotations

import base64
import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import requests
import urllib3.exceptions
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from commerce_sync.errors import ClientError, GraphQLError, HttpError, MalformedResponseError, ThrottledError, TransientError
from commerce_sync.jsonutil import dumps, loads
from commerce_sync.redact import as_text, redact, redact_url

__all__ = [
    "Auth", "BasicAuth", "BearerAuth", "ClientError", "GraphQLError", "HeaderAuth", "HttpClient", "HttpError",
    "MalformedResponseError", "OAuth2ClientCredentials", "RateLimiter", "RetryPolicy", "SharedRateLimiter", "ThrottledError",
    "TransientError", "paginate_graphql_pages", "paginate_keyset", "paginate_offset", "paginate_page_limit", "paginate_relay", "paginate_seek",
]  # fmt: skip

log = logging.getLogger(__name__)
_UNPARSED = object()
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
THROTTLE_STATUSES = frozenset({429, 503})
ERROR_BODY_CHARS = 2048


# -- auth ---------------------------------------------------------------------------------------
class Auth(Protocol):
    """`apply` runs before every attempt, so an auth that refreshes (OAuth2 client credentials)
    can swap an expired token between retries; `secrets` is asked each time it is needed for the
    same reason. An auth with `renews_on_401` (OAuth2ClientCredentials) has `invalidate(header)`:
    the client calls it once when the API answers 401 (a token revoked or expired early) and
    sends the request once more."""

    def apply(self, headers: dict[str, str]) -> None: ...

    def secrets(self) -> list[str]: ...


class HeaderAuth:
    """Static headers: Cin7's account id + application key, Marketplacer's api key, Mirakl's raw
    Authorization. Every header value counts as a secret."""

    def __init__(self, headers: dict[str, str]):
        self.headers = dict(headers)

    def apply(self, headers: dict[str, str]) -> None:
        headers.update(self.headers)

    def secrets(self) -> list[str]:
        # a bearer token also bare: an API may echo the token without "Bearer "
        return [v for v in self.headers.values() if v] + [v[7:] for v in self.headers.values() if v.startswith("Bearer ") and len(v) > 7]


class BearerAuth(HeaderAuth):
    def __init__(self, token: str):
        super().__init__({"Authorization": f"Bearer {token}"})
        self._token = token

    def secrets(self) -> list[str]:
        # the bare token, not the header value: an API may echo the token without "Bearer "
        return [self._token]


class BasicAuth(HeaderAuth):
    def __init__(self, user: str, password: str):
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        super().__init__({"Authorization": f"Basic {encoded}"})
        self._secrets = [encoded, password]

    def secrets(self) -> list[str]:
        # the encoded pair and the bare password: either may be echoed back without the header
        return list(self._secrets)


class OAuth2ClientCredentials:
    """OAuth 2 client credentials (RFC 6749 section 4.4): `POST <token_url>` with the client id and
    secret as HTTP Basic and `grant_type=client_credentials` (+ the scopes asked for) gives a bearer
    token. It is kept until `margin` before it expires (a tenth of its life, at most `max_margin`
    seconds), so a request never leaves with a token about to lapse; the client drops it and
    fetches a new one once if the API still answers 401 (revoked early, or clocks disagree).

    The token call goes through an HttpClient of its own (bound to the API client's timeouts,
    retries, session and payload log); the token is masked there by key (`access_token`) and is
    one of `secrets()` from the moment it exists.
    """

    renews_on_401 = True

    def __init__(self, token_url: str, client_id: str, client_secret: str, scopes: Sequence[str] = (), *,
                 max_margin: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.token_url = token_url
        self.scopes = [s for s in scopes if s]
        self._basic = BasicAuth(client_id, client_secret)
        self._max_margin = max_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._issued: deque[str] = deque(maxlen=4)  # recent tokens stay secrets: a log line may still hold one
        self._client: HttpClient | None = None
        self.fetches = 0

    def bind(self, api: HttpClient) -> None:
        """Called by the API's HttpClient: the token call shares its timeouts, retries and log."""
        if self._client is None:
            self._client = HttpClient(self.token_url, system=f"{api.system}:oauth", auth=self._basic, timeout=api.timeout,
                                      retry=api.retry, payload_log=api.payload_log, session=api.session, sleep=api._sleep)

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = f"Bearer {self.token()}"

    def token(self) -> str:
        with self._lock:  # one fetch however many threads find the token stale
            if self._token is None or self._clock() >= self._renew_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, header: str | None) -> None:
        """The API refused `header`'s token: forget it, unless another thread already renewed it."""
        with self._lock:
            if self._token is not None and header == f"Bearer {self._token}":
                self._token = None

    def secrets(self) -> list[str]:
        return self._basic.secrets() + list(self._issued)

    def _fetch(self) -> None:
        if self._client is None:
            self._client = HttpClient(self.token_url, system="oauth", auth=self._basic)
        form = {"grant_type": "client_credentials", **({"scope": " ".join(self.scopes)} if self.scopes else {})}
        # asking twice for a token is harmless: retried like a read
        body = self._client.request("POST", self.token_url, data=form, idempotent=True)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise MalformedResponseError(f"POST {redact_url(self.token_url, self.secrets())}: the token answer has no access_token",
                                         method="POST", url=redact_url(self.token_url, self.secrets()), status=200)
        try:
            lifetime = float(body.get("expires_in") or 0)
        except (TypeError, ValueError):
            lifetime = 0.0
        self._issued.append(token)
        self._token = token
        self._renew_at = self._clock() + lifetime - min(self._max_margin, lifetime / 10)
        self.fetches += 1


# -- rate limiting ------------------------------------------------------------------------------
class RateLimiter:
    """Sliding window: at most `calls` in any `per_seconds`. `acquire()` blocks until allowed."""

    _shared: dict[str, RateLimiter] = {}
    _shared_lock = threading.Lock()

    def __init__(self, calls: int, per_seconds: float, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if calls < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs calls >= 1 and per_seconds > 0")
        self.calls = calls
        self.per_seconds = per_seconds
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, key: str, calls: int, per_seconds: float) -> RateLimiter:
        """One limiter per API account in this process, whoever asks for it. The first caller's
        budget wins: replacing it would hand the same account a second, independent budget."""
        with cls._shared_lock:
            limiter = cls._shared.get(key)
            if limiter is None:
                limiter = cls._shared[key] = cls(calls, per_seconds)
            elif (limiter.calls, limiter.per_seconds) != (calls, per_seconds):
                log.warning("rate limiter %s already set to %s/%ss; ignoring %s/%ss", key, limiter.calls, limiter.per_seconds, calls, per_seconds)
            return limiter

    def acquire(self) -> float:
        """Take a slot; returns the seconds waited. Sleeps outside the lock so other threads can
        see the window move."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._stamps and now - self._stamps[0] >= self.per_seconds:
                    self._stamps.popleft()
                if len(self._stamps) < self.calls:
                    self._stamps.append(now)
                    return waited
                wait = self.per_seconds - (now - self._stamps[0])
            self._sleep(wait)
            waited += wait


class SharedRateLimiter:
    """A budget shared across processes: `reserve()` books the next call slot somewhere all
    workers see (the ledger's api_budget row) and says how long to wait for it."""

    def __init__(self, reserve: Callable[[], float], *, sleep: Callable[[float], None] = time.sleep):
        self._reserve = reserve
        self._sleep = sleep

    def acquire(self) -> float:
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


# -- retries ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_statuses: tuple[int, ...] = (429, 502, 503, 504)
    max_retry_after: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Exponential, with jitter so several workers throttled together do not retry in step."""
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try; carries the public error."""

    def __init__(self, error: HttpError, retry_after: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _retry_after(value: str | None, cap: float) -> float | None:
    """Retry-After in seconds or as an HTTP-date, capped; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):  # TypeError: a date without a zone cannot be compared
            return None
    return max(0.0, min(seconds, cap))


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection itself failed (refused, DNS, connect timeout), so the request
    cannot have reached the server. requests wraps urllib3's MaxRetryError, whose `reason` says."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)  # NewConnectionError is one


# -- the client ---------------------------------------------------------------------------------
class HttpClient:
    def __init__(
        self,
        base_url: str,
        *,
        system: str,
        auth: Auth | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy = RetryPolicy(),
        payload_log: Callable[[dict[str, Any]], None] | None = None,
        session: requests.Session | None = None,
        default_headers: dict[str, str] | None = None,
        max_logged_body: int = 20 * 1024,
        max_logged_read_body: int = 2 * 1024,
        extra_secrets: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.system = system
        self.auth = auth
        self.timeout = timeout
        self.rate_limiter = rate_limiter
        self.retry = retry
        self.payload_log = payload_log
        self._own_session = session is None  # a session the caller passed is the caller's to close
        self.session = session or requests.Session()
        self.default_headers = {"Accept": "application/json", **(default_headers or {})}
        self.max_logged_body = max_logged_body
        # a read's answer is logged shorter: a stock run reads 1,300 pages, and what ops look for
        # in a read is its status and first rows; a write's answer is the receipt, kept longer
        self.max_logged_read_body = min(max_logged_read_body, max_logged_body)
        self.extra_secrets = list(extra_secrets)
        self._sleep = sleep
        self.stats = {"calls": 0, "throttled": 0, "retries": 0, "errors": 0}
        bind = getattr(auth, "bind", None)
        if bind is not None:
            bind(self)  # an auth that calls out itself (OAuth) does so through this client's machinery

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def secrets(self) -> list[str]:
        return (self.auth.secrets() if self.auth else []) + self.extra_secrets

    def url(self, path: str) -> str:
        """Absolute URLs pass through: some APIs hand back download or next-page links."""
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    # verbs
    def get(self, path: str, params: dict | None = None, **kw) -> Any:
        return self.request("GET", path, params=params, **kw)

    def post(self, path: str, json: Any = None, idempotent: bool = False, **kw) -> Any:
        return self.request("POST", path, json=json, idempotent=idempotent, **kw)

    def put(self, path: str, json: Any = None, **kw) -> Any:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, params: dict | None = None, **kw) -> Any:
        return self.request("DELETE", path, params=params, **kw)

    def graphql(self, query: str, variables: dict | None = None, *, path: str = "/graphql", mutation: bool = False) -> dict:
        """Returns `data`. A query reads only, so it is retried like a GET; a mutation is not."""
        body = self.request("POST", path, json={"query": query, "variables": variables or {}}, idempotent=not mutation)
        url = redact_url(self.url(path), self.secrets())
        if not isinstance(body, dict):
            raise MalformedResponseError(f"POST {url}: GraphQL answer is not an object", method="POST", url=url, status=200)
        if body.get("errors"):
            messages = redact("; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in body["errors"]), self.secrets())
            raise GraphQLError(f"POST {url}: GraphQL errors: {messages[:500]}", errors=body["errors"], method="POST", url=url, status=200, body=messages[:ERROR_BODY_CHARS])
        return body.get("data") or {}

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        headers: dict | None = None,
        idempotent: bool | None = None,
        expect_json: bool = True,
    ) -> Any:
        """Parsed JSON (floats as Decimal), None for 204/empty, or bytes when `expect_json=False`."""
        method = method.upper()
        call = _Call(
            method=method,
            url=self.url(path),
            params=params,
            body=dumps(json) if json is not None else data,
            files=files,
            headers={**self.default_headers, **({"Content-Type": "application/json"} if json is not None else {}), **(headers or {})},
            idempotent=method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
            expect_json=expect_json,
            raw_body=json is None and data is not None,
        )
        return self._send(call)

    def _send(self, call: _Call) -> Any:
        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retry) and exc.retry_after is not None:
                return exc.retry_after
            return self.retry.backoff(state.attempt_number)

        def count_retry(_state: RetryCallState) -> None:
            self.stats["retries"] += 1

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            retry=retry_if_exception_type(_Retry),
            wait=wait,
            sleep=self._sleep,
            before_sleep=count_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(call, attempt.retry_state.attempt_number)
        except _Retry as final:
            self.stats["errors"] += 1
            raise final.error from None
        except HttpError:
            self.stats["errors"] += 1
            raise
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    def _attempt(self, call: _Call, attempt: int, renewed: bool = False) -> Any:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        headers = dict(call.headers)
        if self.auth is not None:
            self.auth.apply(headers)
        self.stats["calls"] += 1
        started = time.monotonic()
        shown_url = redact_url(f"{call.url}?{urlencode(call.params, doseq=True)}" if call.params else call.url, self.secrets())
        where = dict(method=call.method, url=shown_url)
        log_entry = dict(where, request_body=call.body, raw_body=call.raw_body, attempt=attempt)
        try:
            response = self.session.request(call.method, call.url, params=call.params, data=call.body, files=call.files, headers=headers, timeout=self.timeout)
        except requests.exceptions.ConnectionError as exc:
            self._log(log_entry, started, error=type(exc).__name__)
            if _never_sent(exc):
                raise _Retry(TransientError(f"{call.method} {shown_url}: cannot connect ({type(exc).__name__})", maybe_committed=False, **where)) from None
            raise _unanswered(call, where, "connection lost") from None
        except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            # read timeout or a body cut short: the request reached the server
            self._log(log_entry, started, error=type(exc).__name__)
            raise _unanswered(call, where, type(exc).__name__) from None

        status, text = response.status_code, response.text
        if status == 401 and not renewed and getattr(self.auth, "renews_on_401", False):
            # a 401 did nothing: send it once more with a fresh token (any method is safe)
            self._log(log_entry, started, status=status, response_body=text)
            self.auth.invalidate(headers.get("Authorization"))  # type: ignore[union-attr]
            return self._attempt(call, attempt, renewed=True)
        parsed: Any = _UNPARSED
        if 200 <= status < 300 and call.expect_json and text.strip():
            try:
                parsed = loads(text)  # once: the payload log redacts the parsed answer, the caller gets it
            except ValueError:
                pass
        self._log(log_entry, started, status=status, response_body=text if parsed is _UNPARSED else parsed)
        if status in THROTTLE_STATUSES:
            self.stats["throttled"] += 1
            error = ThrottledError(f"{call.method} {shown_url}: throttled (HTTP {status})", status=status, body=self._excerpt(text), **where)
            if status in self.retry.retry_statuses:
                raise _Retry(error, _retry_after(response.headers.get("Retry-After"), self.retry.max_retry_after))
            raise error
        if status >= 500 or status in self.retry.retry_statuses:
            error = TransientError(f"{call.method} {shown_url}: HTTP {status}", status=status, body=self._excerpt(text), maybe_committed=not call.idempotent, **where)
            if call.idempotent and status in self.retry.retry_statuses:
                raise _Retry(error)
            raise error
        if status >= 400:
            excerpt = self._excerpt(text)
            raise ClientError(f"{call.method} {shown_url}: HTTP {status}: {excerpt[:300]}", status=status, body=excerpt, **where)
        if not call.expect_json:
            return response.content
        if status == 204 or not text.strip():
            return None
        if parsed is not _UNPARSED:
            return parsed
        raise MalformedResponseError(f"{call.method} {shown_url}: HTTP {status} body is not JSON", status=status, body=self._excerpt(text), **where)

    def _logged_request(self, entry: dict[str, Any], secrets: list[str]) -> Any:
        body = entry["request_body"]
        if body is None:
            return None
        body = redact(body, secrets)
        # an uploaded file (an inventory import of 100,000 lines) is logged by its head: redacted
        # whole first, then cut, so nothing cut in half escapes redaction
        if entry.get("raw_body") and isinstance(body, str) and len(body) > self.max_logged_body:
            return body[: self.max_logged_body] + f"...[truncated, {len(body)} characters sent]"
        return body

    def _excerpt(self, text: str) -> str:
        """An error body: redacted whole, then cut (a cut secret or cut JSON would slip through)."""
        return redact(text, self.secrets())[:ERROR_BODY_CHARS]

    def _log(self, entry: dict[str, Any], started: float, *, status: int | None = None, response_body: Any = None, error: str | None = None) -> None:
        if self.payload_log is None:
            return
        try:
            secrets = self.secrets()
            keep = self.max_logged_read_body if entry["method"] in ("GET", "HEAD") else self.max_logged_body
            # only what the log keeps is walked: a 1,000-row page costs as much as a 20 KB one
            response = redact(response_body, secrets, max_chars=keep) if response_body is not None else None
            if response is not None and not isinstance(response, str):
                response = as_text(response)
            if isinstance(response, str) and len(response) > keep:
                response = response[:keep] + "...[truncated]"
            self.payload_log(
                {
                    "system": self.system,
                    "method": entry["method"],
                    "url": entry["url"],  # already redacted
                    "status": status,
                    "request_body": self._logged_request(entry, secrets),
                    "response_body": response,
                    "duration_ms": int((time.monotonic() - started) * 1000),
                    "attempt": entry["attempt"],
                    "error": error,
                }
            )
        except Exception:  # noqa: BLE001 - the log is a witness; it must never break the call it records
            log.warning("payload log failed for %s %s %s", self.system, entry["method"], entry["url"], exc_info=True)


@dataclass(frozen=True)
class _Call:
    """One logical request, the same for every attempt."""

    method: str
    url: str
    params: dict | None
    body: Any
    files: Any
    headers: dict[str, str]
    idempotent: bool
    expect_json: bool
    raw_body: bool = False  # a file or form sent as is (not JSON): logged cut short


def _unanswered(call: _Call, where: dict, what: str) -> Exception:
    """The request went out and no answer came back: retry only what is safe to repeat."""
    error = TransientError(f"{call.method} {where['url']}: {what}", maybe_committed=not call.idempotent, **where)
    return _Retry(error) if call.idempotent else error


# -- pagination ---------------------------------------------------------------------------------
# Generators: a bounded number of pages in memory at a time, and nothing is fetched until the
# caller iterates.
def _pages_in_order(fetch: Callable[[int], dict], numbers: Iterable[int], workers: int) -> Iterator[dict]:
    """Fetch numbered pages `workers` at a time (bounded read-ahead), handing them back in order.
    Only for pages whose position is known up front (a total was given): waiting on one API
    answer at a time leaves the client idle while the server builds the page, and the other way
    round. The rate limiter still gates every call."""
    numbers = iter(numbers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="page") as pool:
        pending: deque = deque(pool.submit(fetch, n) for n in itertools.islice(numbers, workers))
        try:
            while pending:
                body = pending.popleft().result()
                nxt = next(numbers, None)
                if nxt is not None:
                    pending.append(pool.submit(fetch, nxt))
                yield body
        finally:
            for future in pending:  # the caller stopped early or a page failed: fetch no more
                future.cancel()


def paginate_page_limit(
    client: HttpClient,
    path: str,
    *,
    list_key: str,
    params: dict | None = None,
    limit: int = 1000,
    page_param: str = "Page",
    limit_param: str = "Limit",
    total_key: str = "Total",
    workers: int = 1,
) -> Iterator[dict]:
    """Cin7 style: Page from 1 with Limit, until a short page or the running count reaches Total.
    When Total is given a short page alone does not stop the walk: a server that caps Limit below
    ours would otherwise end it after page one; an empty page always stops it. With `workers` > 1
    and a Total, the pages after the first are read that many at a time."""

    def fetch(page: int) -> dict:
        return client.get(path, params={**(params or {}), page_param: page, limit_param: limit}) or {}

    page, seen = 1, 0
    body = fetch(page)
    while True:
        items = body.get(list_key) or []
        yield from items
        seen += len(items)
        total = body.get(total_key)
        if not items or (int(total) <= seen if total is not None else len(items) < limit):
            return
        if workers > 1 and total is not None and len(items) == limit:
            last = page + -(-(int(total) - seen) // limit)
            for body in _pages_in_order(fetch, range(page + 1, last + 1), workers):
                items = body.get(list_key) or []
                yield from items
                seen += len(items)
                page += 1
                if not items:
                    return
            if seen >= int(total):
                return
            # the total grew while we read: carry on one page at a time
        page += 1
        body = fetch(page)


def paginate_offset(
    client: HttpClient,
    path: str,
    *,
    list_key: str,
    params: dict | None = None,
    max_per_page: int = 100,
    total_key: str = "total_count",
    workers: int = 1,
) -> Iterator[dict]:
    """Mirakl offset style: max/offset, until total_count is reached (or a short page without it).
    With `workers` > 1 and a total_count, the pages after the first are read that many at a time."""

    def fetch(offset: int) -> dict:
        return client.get(path, params={**(params or {}), "max": max_per_page, "offset": offset}) or {}

    offset = 0
    body = fetch(offset)
    while True:
        items = body.get(list_key) or []
        yield from items
        offset += len(items)
        total = body.get(total_key)
        if not items or (int(total) <= offset if total is not None else len(items) < max_per_page):
            return
        if workers > 1 and total is not None and len(items) == max_per_page:
            for body in _pages_in_order(fetch, range(offset, int(total), max_per_page), workers):
                items = body.get(list_key) or []
                yield from items
                offset += len(items)
                if len(items) < max_per_page:
                    break
            if not items or offset >= int(total):
                return
            # a short page inside the total (offers removed while we read): on from where we are
        body = fetch(offset)


def paginate_keyset(
    client: HttpClient, path: str, *, list_key: str, after: Callable[[dict | None], dict], cursor: Callable[[dict], Any], limit: int = 100,
    params: dict | None = None, limit_param: str = "limit",
) -> Iterator[dict]:
    """Keyset paging: every page asks for the items after the last one seen, so no deep offset is
    ever sent (APIs cap it) and items added behind the reader never shift a page. `after(last)`
    gives the page's parameters (`after(None)` the first page's), `cursor(item)` the sort key,
    which must grow from page to page. A short page is the last."""
    last: dict | None = None
    while True:
        body = client.get(path, params={**(params or {}), **after(last), limit_param: limit}) or {}
        items = body.get(list_key) or []
        yield from items
        if len(items) < limit:
            return
        if last is not None and cursor(items[-1]) <= cursor(last):
            raise MalformedResponseError(f"GET {path}: the page did not move past {cursor(last)!r}", method="GET",
                                         url=redact_url(client.url(path), client.secrets()))
        last = items[-1]


def paginate_seek(
    client: HttpClient, path: str, *, list_key: str = "data", params: dict | None = None, limit: int = 100, token_param: str = "page_token", next_key: str = "next_page_token"
) -> Iterator[dict]:
    """Mirakl seek style: limit and page_token until the answer has no next_page_token."""
    token = None
    while True:
        body = client.get(path, params={**(params or {}), "limit": limit, **({token_param: token} if token else {})}) or {}
        yield from body.get(list_key) or []
        previous, token = token, body.get(next_key)
        if not token:
            return
        if token == previous:  # a server handing back the same token would loop forever
            raise MalformedResponseError(f"GET {path}: {next_key} did not advance", method="GET", url=redact_url(client.url(path), client.secrets()))


def paginate_relay(
    client: HttpClient, query: str, variables: dict | None, *, connection_path: list[str], page_size: int = 100, path: str = "/graphql"
) -> Iterator[dict]:
    """GraphQL Relay: `first`/`after` until pageInfo.hasNextPage is false; `nodes` or `edges[].node`.
    The query must declare `$first` and `$after` and select pageInfo { hasNextPage endCursor }."""
    after = None
    while True:
        conn: Any = client.graphql(query, {**(variables or {}), "first": page_size, "after": after}, path=path)
        for key in connection_path:
            conn = conn.get(key) if isinstance(conn, dict) else None
        url = redact_url(client.url(path), client.secrets())
        if not isinstance(conn, dict):
            raise MalformedResponseError(f"POST {url}: no connection at {'.'.join(connection_path)}", method="POST", url=url, status=200)
        nodes = conn["nodes"] if conn.get("nodes") is not None else [e["node"] for e in conn.get("edges") or []]
        yield from nodes
        info = conn.get("pageInfo") or {}
        if not info.get("hasNextPage") or not nodes:
            return
        if not info.get("endCursor") or info["endCursor"] == after:
            raise MalformedResponseError(f"POST {url}: hasNextPage without a new endCursor", method="POST", url=url, status=200)
        after = info["endCursor"]


def paginate_graphql_pages(
    client: HttpClient, query: str, variables: dict | None, *, pick: Callable[[dict], Any], limit: int = 200, path: str = "/graphql"
) -> Iterator[dict]:
    """GraphQL lists paged by `limit`/`page` (Centra): page 1, 2, ... until a page comes back shorter
    than `limit`. The query must declare `$limit` and `$page`; `pick(data)` finds the list in the
    answer (it may be nested, e.g. one warehouse's stock)."""
    page, first_of_previous = 1, None
    while True:
        items = pick(client.graphql(query, {**(variables or {}), "limit": limit, "page": page}, path=path))
        if not isinstance(items, list):
            url = redact_url(client.url(path), client.secrets())
            raise MalformedResponseError(f"POST {url}: page {page} holds no list", method="POST", url=url, status=200)
        if items and page > 1 and items[0] == first_of_previous:
            # a server that ignores `page` would hand back page 1 for ever
            url = redact_url(client.url(path), client.secrets())
            raise MalformedResponseError(f"POST {url}: page {page} repeats page {page - 1}", method="POST", url=url, status=200)
        yield from items
        if len(items) < limit:
            return
        first_of_previous = items[0]
        page += 1
