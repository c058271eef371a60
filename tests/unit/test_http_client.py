"""The shared HTTP client against a real server on loopback with scripted misbehaviour."""

from __future__ import annotations

import json
import socket
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from commerce_sync.http import (
    ClientError,
    GraphQLError,
    HeaderAuth,
    HttpClient,
    MalformedResponseError,
    RateLimiter,
    RetryPolicy,
    ThrottledError,
    TransientError,
    paginate_offset,
    paginate_page_limit,
    paginate_relay,
    paginate_seek,
)

SECRET = "sekret-application-key-123"


class Script:
    """What the server answers next; each entry is consumed by one request."""

    def __init__(self):
        self.steps: list[dict] = []
        self.seen: list[dict] = []
        self.default = {"status": 200, "body": {"ok": True}}
        self.pages: dict[str, list] = {}


class Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args):  # keep test output quiet
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.script.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        step = self.script.steps.pop(0) if self.script.steps else self.script.default
        if callable(step):
            step = step(self)
        if step.get("sleep"):
            time.sleep(step["sleep"])
        if step.get("close"):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        raw = step.get("raw")
        payload = raw.encode() if raw is not None else json.dumps(step.get("body")).encode()
        self.send_response(step.get("status", 200))
        for k, v in (step.get("headers") or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def server():
    script = Script()
    handler = type("H", (Handler,), {"script": script})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield script
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def sleeps():
    return []


def client(server, sleeps, **kw) -> HttpClient:
    kw.setdefault("retry", RetryPolicy(attempts=4, backoff_base=0.01))
    return HttpClient(server.url, system="test", auth=HeaderAuth({"api-auth-applicationkey": SECRET}), sleep=sleeps.append, **kw)


def test_throttle_is_retried_honouring_retry_after_then_succeeds(server, sleeps):
    server.steps = [
        {"status": 503, "body": [{"ErrorCode": 503, "Exception": "limit"}], "headers": {"Retry-After": "7"}},
        {"status": 429, "body": {}},
        {"status": 200, "body": {"price": 12.10}},
    ]
    c = client(server, sleeps)
    body = c.get("/x")
    assert body == {"price": Decimal("12.10")} and isinstance(body["price"], Decimal)
    assert sleeps[0] == 7.0  # the server's Retry-After, not our backoff
    assert len(sleeps) == 2 and sleeps[1] < 1
    assert c.stats["throttled"] == 2 and c.stats["calls"] == 3


def test_throttle_that_never_ends_raises_throttled_error(server, sleeps):
    server.default = {"status": 429, "body": {}, "headers": {"Retry-After": "1"}}
    with pytest.raises(ThrottledError):
        client(server, sleeps).get("/x")
    assert len(server.seen) == 4


def test_post_is_never_resent_after_a_read_timeout(server, sleeps):
    server.steps = [{"sleep": 1.0, "status": 200, "body": {}}]
    c = client(server, sleeps, timeout=(2.0, 0.3))
    with pytest.raises(TransientError) as err:
        c.post("/sale", json={"ExternalID": "MKP-1"})
    assert err.value.maybe_committed is True
    time.sleep(0.8)
    assert [s["method"] for s in server.seen] == ["POST"]


def test_post_is_not_resent_after_a_502_but_get_is(server, sleeps):
    server.steps = [{"status": 502, "raw": ""}]
    with pytest.raises(TransientError) as err:
        client(server, sleeps).post("/sale", json={})
    assert err.value.maybe_committed and len(server.seen) == 1
    server.steps = [{"status": 502, "raw": ""}, {"status": 200, "body": {"ok": 1}}]
    assert client(server, sleeps).get("/sale") == {"ok": 1}


def test_get_is_retried_after_a_read_timeout_and_a_reset(server, sleeps):
    server.steps = [{"sleep": 0.6, "status": 200, "body": {}}, {"close": True}, {"status": 200, "body": {"n": 1}}]
    assert client(server, sleeps, timeout=(2.0, 0.3)).get("/x") == {"n": 1}


def test_connection_refused_is_retried_for_any_method_then_raised(sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = HttpClient(f"http://127.0.0.1:{port}", system="test", retry=RetryPolicy(attempts=3, backoff_base=0.01), sleep=sleeps.append)
    with pytest.raises(TransientError) as err:
        c.post("/sale", json={})
    assert err.value.maybe_committed is False  # nothing reached a server
    assert len(sleeps) == 2


def test_client_errors_are_not_retried_and_malformed_json_is_named(server, sleeps):
    server.steps = [{"status": 400, "body": [{"ErrorCode": 400, "Exception": "SKU not found"}]}]
    with pytest.raises(ClientError, match="SKU not found") as err:
        client(server, sleeps).post("/sale/order", json={})
    assert err.value.status == 400 and len(server.seen) == 1
    server.steps = [{"status": 200, "raw": "<html>oops</html>"}]
    with pytest.raises(MalformedResponseError):
        client(server, sleeps).get("/x")


def test_money_goes_out_as_exact_json_numbers(server, sleeps):
    client(server, sleeps).post("/x", json={"Price": Decimal("19.99"), "Total": Decimal("0.10")})
    assert json.loads(server.seen[0]["body"]) == {"Price": 19.99, "Total": 0.1}
    assert server.seen[0]["body"] == '{"Price":19.99,"Total":0.1}'
    with pytest.raises(ValueError, match="precision"):
        client(server, sleeps).post("/x", json={"Price": Decimal("0.12345678901234567890")})


def test_payload_log_has_one_redacted_entry_per_attempt(server, sleeps):
    entries = []
    server.steps = [
        {"status": 503, "body": {}, "headers": {"Retry-After": "0"}},
        {"status": 200, "body": {"Email": "jo@example.com", "SKU": "CS-1", "Note": f"key {SECRET}"}},
    ]
    c = client(server, sleeps, payload_log=entries.append)
    c.post("/sale", json={"Email": "jo@example.com", "Phone": "+61 400 123 456", "SKU": "CS-1"}, idempotent=True)
    assert [e["attempt"] for e in entries] == [1, 2]
    text = json.dumps(entries, default=str)
    for secret in (SECRET, "jo@example.com", "400 123 456"):
        assert secret not in text
    assert "CS-1" in text  # SKUs stay readable
    assert server.seen[0]["headers"]["api-auth-applicationkey"] == SECRET  # ...and auth is still sent


def test_a_failing_payload_log_never_breaks_the_call(server, sleeps):
    def boom(_entry):
        raise RuntimeError("disk full")

    assert client(server, sleeps, payload_log=boom).get("/x") == {"ok": True}


def test_graphql_errors_raise_and_mutations_are_not_retried(server, sleeps):
    server.steps = [{"status": 200, "body": {"data": None, "errors": [{"message": "Field 'nope' doesn't exist"}]}}]
    with pytest.raises(GraphQLError, match="nope"):
        client(server, sleeps).graphql("{ nope }")
    server.steps = [{"status": 502, "raw": ""}]
    with pytest.raises(TransientError):
        client(server, sleeps).graphql("mutation { x }", mutation=True)
    assert len(server.seen) == 2


def test_rate_limiter_spaces_calls_and_is_shared_per_key():
    clock = [0.0]
    waits = []

    def sleep(s):
        waits.append(s)
        clock[0] += s

    limiter = RateLimiter(2, 60.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert waits == [60.0, 60.0]  # 2 per minute: the 3rd and 5th call wait a full window
    assert RateLimiter.shared("cin7:acct", 60, 60) is RateLimiter.shared("cin7:acct", 60, 60)
    assert RateLimiter.shared("cin7:acct", 60, 60) is not RateLimiter.shared("cin7:other", 60, 60)


def _pages(server, pages):
    def answer(handler):
        return pages.pop(0)

    server.steps = [answer] * len(pages)


def test_page_limit_pagination_walks_until_total(server, sleeps):
    _pages(server, [{"body": {"Total": 5, "Page": 1, "SaleList": [1, 2]}}, {"body": {"Total": 5, "Page": 2, "SaleList": [3, 4]}}, {"body": {"Total": 5, "Page": 3, "SaleList": [5]}}])
    assert list(paginate_page_limit(client(server, sleeps), "/saleList", list_key="SaleList", limit=2)) == [1, 2, 3, 4, 5]
    assert [s["path"] for s in server.seen] == ["/saleList?Page=1&Limit=2", "/saleList?Page=2&Limit=2", "/saleList?Page=3&Limit=2"]


def test_empty_first_page_stops_every_paginator(server, sleeps):
    c = client(server, sleeps)
    server.default = {"status": 200, "body": {"Total": 0, "SaleList": [], "orders": [], "total_count": 0, "data": []}}
    assert list(paginate_page_limit(c, "/a", list_key="SaleList")) == []
    assert list(paginate_offset(c, "/b", list_key="orders")) == []
    assert list(paginate_seek(c, "/c")) == []
    server.default = {"status": 200, "body": {"data": {"invoices": {"nodes": [], "pageInfo": {"hasNextPage": False}}}}}
    assert list(paginate_relay(c, "q", {}, connection_path=["invoices"])) == []


def test_offset_seek_and_relay_pagination(server, sleeps):
    c = client(server, sleeps)
    _pages(server, [{"body": {"total_count": 3, "orders": [1, 2]}}, {"body": {"total_count": 3, "orders": [3]}}])
    assert list(paginate_offset(c, "/api/orders", list_key="orders", max_per_page=2)) == [1, 2, 3]
    _pages(server, [{"body": {"data": [1], "next_page_token": "t2"}}, {"body": {"data": [2]}}])
    assert list(paginate_seek(c, "/api/tl", limit=1)) == [1, 2]
    assert "page_token=t2" in server.seen[-1]["path"]
    _pages(
        server,
        [
            {"body": {"data": {"invoices": {"nodes": [{"id": 1}], "pageInfo": {"hasNextPage": True, "endCursor": "c1"}}}}},
            {"body": {"data": {"invoices": {"edges": [{"node": {"id": 2}}], "pageInfo": {"hasNextPage": False}}}}},
        ],
    )
    assert list(paginate_relay(c, "query", {"x": 1}, connection_path=["invoices"], page_size=1)) == [{"id": 1}, {"id": 2}]
    assert json.loads(server.seen[-1]["body"])["variables"] == {"x": 1, "first": 1, "after": "c1"}
