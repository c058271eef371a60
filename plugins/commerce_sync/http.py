"""The one HTTP client every adapter uses.

Auth per connection, timeouts, a rate limiter shared per API account, retries with backoff that
honour 429/503 and Retry-After, pagination helpers, and a redacted payload log of every attempt.

Retry rules, in order of danger:
- 429/503 and connect failures: the server did nothing; any method is retried.
- read timeouts, resets, 500/502/504: retried only for idempotent requests. A POST that may have
  been committed is never re-sent blindly: TransientError(maybe_committed=True) goes up to the
  flow, whose ledger link and external-id lookup decide whether the write happened.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from commerce_sync.errors import (
    ClientError,
    GraphQLError,
    HttpError,
    MalformedResponseError,
    ThrottledError,
    TransientError,
)
from commerce_sync.jsonutil import dumps, loads
from commerce_sync.redact import redact, redact_url

__all__ = [
    "BasicAuth",
    "BearerAuth",
    "ClientError",
    "GraphQLError",
    "HeaderAuth",
    "HttpClient",
    "HttpError",
    "MalformedResponseError",
    "RateLimiter",
    "RetryPolicy",
    "ThrottledError",
    "TransientError",
    "paginate_offset",
    "paginate_page_limit",
    "paginate_relay",
    "paginate_seek",
]

log = logging.getLogger(__name__)
IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
THROTTLE = {429, 503}


# -- auth ---------------------------------------------------------------------------------------
class HeaderAuth:
    """Static headers (Cin7's two, Marketplacer's api key, Mirakl's raw Authorization)."""

    def __init__(self, headers: dict[str, str]):
        self.headers = dict(headers)

    def apply(self, headers: dict[str, str]) -> None:
        headers.update(self.headers)

    def secrets(self) -> list[str]:
        return [v for v in self.headers.values() if v]


class BearerAuth(HeaderAuth):
    def __init__(self, token: str):
        super().__init__({"Authorization": f"Bearer {token}"})
        self.token = token

    def secrets(self) -> list[str]:
        return [self.token]


class BasicAuth(HeaderAuth):
    def __init__(self, user: str, password: str):
        import base64

        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        super().__init__({"Authorization": f"Basic {encoded}"})
        self._secrets = [password, encoded]

    def secrets(self) -> list[str]:
        return self._secrets


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
        """One limiter per API account in this process, whoever asks for it."""
        with cls._shared_lock:
            limiter = cls._shared.get(key)
            if limiter is None or (limiter.calls, limiter.per_seconds) != (calls, per_seconds):
                limiter = cls._shared[key] = cls(calls, per_seconds)
            return limiter

    def acquire(self) -> float:
        """Take a slot; returns the seconds waited."""
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


# -- retries ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_statuses: tuple[int, ...] = (429, 502, 503, 504)
    max_retry_after: float = 120.0


class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try; carries the public error."""

    def __init__(self, error: HttpError, retry_after: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, cap))


# -- the client ---------------------------------------------------------------------------------
class HttpClient:
    def __init__(
        self,
        base_url: str,
        *,
        system: str,
        auth: HeaderAuth | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy = RetryPolicy(),
        payload_log: Callable[[dict[str, Any]], None] | None = None,
        session: requests.Session | None = None,
        default_headers: dict[str, str] | None = None,
        max_logged_body: int = 20_000,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.system = system
        self.auth = auth
        self.timeout = timeout
        self.rate_limiter = rate_limiter
        self.retry = retry
        self.payload_log = payload_log
        self.session = session or requests.Session()
        self.default_headers = {"Accept": "application/json", **(default_headers or {})}
        self.max_logged_body = max_logged_body
        self._sleep = sleep
        self.stats = {"calls": 0, "throttled": 0, "retries": 0, "errors": 0}

    # context manager / lifecycle
    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _secrets(self) -> list[str]:
        return self.auth.secrets() if self.auth else []

    # public verbs
    def get(self, path: str, params: dict | None = None, **kw) -> Any:
        return self.request("GET", path, params=params, **kw)

    def post(self, path: str, json: Any = None, idempotent: bool = False, **kw) -> Any:
        return self.request("POST", path, json=json, idempotent=idempotent, **kw)

    def put(self, path: str, json: Any = None, **kw) -> Any:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, params: dict | None = None, **kw) -> Any:
        return self.request("DELETE", path, params=params, **kw)

    def graphql(self, query: str, variables: dict | None = None, *, path: str = "/graphql", mutation: bool = False) -> dict:
        body = self.request("POST", path, json={"query": query, "variables": variables or {}}, idempotent=not mutation)
        if not isinstance(body, dict):
            raise MalformedResponseError("GraphQL answer is not an object", method="POST", url=self._url(path))
        if body.get("errors"):
            messages = "; ".join(str(e.get("message", e)) for e in body["errors"])
            raise GraphQLError(f"GraphQL errors: {messages}", errors=body["errors"], method="POST", url=self._url(path), status=200, body=messages[:2000])
        return body.get("data") or {}

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"

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
        method = method.upper()
        idempotent = method in IDEMPOTENT if idempotent is None else idempotent
        url = self._url(path)
        body = dumps(json) if json is not None else None
        hdrs = {**self.default_headers, **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        if self.auth:
            self.auth.apply(hdrs)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retry) and exc.retry_after is not None:
                return exc.retry_after
            backoff = min(self.retry.backoff_max, self.retry.backoff_base * 2 ** (state.attempt_number - 1))
            return backoff * (0.5 + random.random() / 2)  # jitter: several workers do not retry in step

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            retry=retry_if_exception_type(_Retry),
            wait=wait,
            sleep=self._sleep,
            before_sleep=lambda _s: self.stats.__setitem__("retries", self.stats["retries"] + 1),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(method, url, params, body, data, files, hdrs, idempotent, expect_json, attempt.retry_state.attempt_number)
        except _Retry as final:
            self.stats["errors"] += 1
            raise final.error from None
        except HttpError:
            self.stats["errors"] += 1
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, method, url, params, body, data, files, headers, idempotent, expect_json, attempt) -> Any:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        self.stats["calls"] += 1
        started = time.monotonic()
        entry: dict[str, Any] = {"system": self.system, "method": method, "url": f"{url}?{urlencode(params, doseq=True)}" if params else url, "attempt": attempt}
        if body is not None:
            entry["request_body"] = body
        err = dict(method=method, url=redact_url(entry["url"], self._secrets()))
        try:
            response = self.session.request(method, url, params=params, data=body if body is not None else data, files=files, headers=headers, timeout=self.timeout)
        except requests.exceptions.ConnectionError as exc:
            connect_failed = isinstance(exc, requests.exceptions.ConnectTimeout) or _never_sent(exc)
            self._log(entry, started, error=type(exc).__name__)
            error = TransientError(f"{method} {err['url']}: {type(exc).__name__}", maybe_committed=not connect_failed and not idempotent, **err)
            if connect_failed or idempotent:
                raise _Retry(error) from None
            raise error from None
        except requests.exceptions.Timeout as exc:  # read timeout: the request was sent
            self._log(entry, started, error=type(exc).__name__)
            error = TransientError(f"{method} {err['url']}: read timeout", maybe_committed=not idempotent, **err)
            if idempotent:
                raise _Retry(error) from None
            raise error from None

        status = response.status_code
        text = response.text
        self._log(entry, started, status=status, response_body=text)
        short = redact(text[:2000], self._secrets())
        if status in THROTTLE:
            self.stats["throttled"] += 1
            raise _Retry(
                ThrottledError(f"{method} {err['url']}: throttled (HTTP {status})", status=status, body=short, **err),
                _retry_after(response.headers.get("Retry-After"), self.retry.max_retry_after),
            )
        if status >= 500 or status in self.retry.retry_statuses:
            error = TransientError(f"{method} {err['url']}: HTTP {status}", status=status, body=short, maybe_committed=not idempotent, **err)
            if idempotent:
                raise _Retry(error)
            raise error
        if status >= 400:
            raise ClientError(f"{method} {err['url']}: HTTP {status}: {short[:300]}", status=status, body=short, **err)
        if not expect_json:
            return response.content
        if status == 204 or not text.strip():
            return None
        try:
            return loads(text)
        except ValueError:
            raise MalformedResponseError(f"{method} {err['url']}: response is not JSON", status=status, body=short, **err) from None

    def _log(self, entry: dict[str, Any], started: float, **fields) -> None:
        if self.payload_log is None:
            return
        try:
            secrets = self._secrets()
            record = {**entry, **fields, "duration_ms": int((time.monotonic() - started) * 1000)}
            record["url"] = redact_url(record["url"], secrets)
            for key in ("request_body", "response_body"):
                if record.get(key) is not None:
                    record[key] = redact(record[key], secrets)
                    if isinstance(record[key], str) and len(record[key]) > self.max_logged_body:
                        record[key] = record[key][: self.max_logged_body] + "...[truncated]"
            self.payload_log(record)
        except Exception:  # noqa: BLE001 - logging must never break a call
            log.warning("payload log failed for %s %s", entry.get("method"), entry.get("system"), exc_info=True)


def _never_sent(exc: Exception) -> bool:
    """True when the connection failed before the request could reach the server."""
    text = repr(exc)
    return any(s in text for s in ("NewConnectionError", "Connection refused", "Name or service not known", "ConnectTimeout"))


# -- pagination ---------------------------------------------------------------------------------
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
) -> Iterator[dict]:
    """Cin7 style: Page (from 1) and Limit, until a short page or Total is reached."""
    page, seen = 1, 0
    while True:
        body = client.get(path, params={**(params or {}), page_param: page, limit_param: limit}) or {}
        items = body.get(list_key) or []
        yield from items
        seen += len(items)
        total = body.get(total_key)
        if len(items) < limit or (total is not None and seen >= int(total)):
            return
        page += 1


def paginate_offset(
    client: HttpClient, path: str, *, list_key: str, params: dict | None = None, max_per_page: int = 100, total_key: str = "total_count"
) -> Iterator[dict]:
    """Mirakl offset style: max/offset with total_count."""
    offset = 0
    while True:
        body = client.get(path, params={**(params or {}), "max": max_per_page, "offset": offset, "paginate": "true"}) or {}
        items = body.get(list_key) or []
        yield from items
        offset += len(items)
        total = body.get(total_key)
        if not items or len(items) < max_per_page or (total is not None and offset >= int(total)):
            return


def paginate_seek(
    client: HttpClient, path: str, *, list_key: str = "data", params: dict | None = None, limit: int = 100, token_param: str = "page_token", next_key: str = "next_page_token"
) -> Iterator[dict]:
    """Mirakl seek style: limit and page_token until no next_page_token."""
    token = None
    while True:
        query = {**(params or {}), "limit": limit}
        if token:
            query[token_param] = token
        body = client.get(path, params=query) or {}
        yield from body.get(list_key) or []
        token = body.get(next_key)
        if not token:
            return


def paginate_relay(
    client: HttpClient, query: str, variables: dict | None, *, connection_path: Iterable[str], page_size: int = 100, path: str = "/graphql"
) -> Iterator[dict]:
    """GraphQL Relay: first/after with pageInfo{hasNextPage endCursor}; nodes or edges[].node."""
    after = None
    keys = list(connection_path)
    while True:
        data = client.graphql(query, {**(variables or {}), "first": page_size, "after": after}, path=path)
        conn: Any = data
        for key in keys:
            conn = (conn or {}).get(key)
        if not isinstance(conn, dict):
            raise MalformedResponseError(f"GraphQL answer has no connection at {'.'.join(keys)}", url=client._url(path))
        nodes = conn.get("nodes")
        if nodes is None:
            nodes = [e.get("node") for e in conn.get("edges") or []]
        yield from nodes
        info = conn.get("pageInfo") or {}
        if not info.get("hasNextPage") or not nodes:
            return
        after = info.get("endCursor")
