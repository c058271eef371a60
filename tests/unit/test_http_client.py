"""The shared HTTP client against a real server on loopback with scripted misbehaviour.

No mock of requests: every test goes through a socket. Waits between retries go to a fake sleep
that records them, so Retry-After and backoff are asserted without waiting.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from decimal import Decimal
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from commerce_sync.http import (
    BasicAuth,
    BearerAuth,
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
ACCOUNT = "0b7c1e9a-3f1d-4c55-9d2e-1f0a6b7c8d9e"


class Script:
    """What the server answers next; each step is consumed by one request, then `default`."""

    def __init__(self):
        self.steps: list = []
        self.seen: list[dict] = []
        self.default = {"status": 200, "body": {"ok": True}}
        self.url = ""
        self.answer = None  # path -> step, for requests that may arrive in any order


class Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args):  # keep test output quiet
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.script.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        if self.script.answer is not None:
            step = self.script.answer(self.path)
        else:
            step = self.script.steps.pop(0) if self.script.steps else self.script.default
        if step.get("sleep"):
            time.sleep(step["sleep"])
        if step.get("close"):  # the connection dies after the request arrived: no answer at all
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
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Handler,), {"script": script}))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield script
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def sleeps():
    return []


def cin7_auth() -> HeaderAuth:
    return HeaderAuth({"api-auth-accountid": ACCOUNT, "api-auth-applicationkey": SECRET})


def client(server, sleeps, **kw) -> HttpClient:
    kw.setdefault("retry", RetryPolicy(attempts=4, backoff_base=0.01))
    kw.setdefault("auth", cin7_auth())
    return HttpClient(server.url, system="test", sleep=sleeps.append, **kw)


# -- retries ------------------------------------------------------------------------------------
def test_throttle_is_retried_honouring_retry_after_then_succeeds(server, sleeps):
    server.steps = [
        {"status": 503, "body": [{"ErrorCode": 503, "Exception": "limit"}], "headers": {"Retry-After": "1"}},
        {"status": 429, "body": {}},
        {"status": 200, "body": {"price": 12.10}},
    ]
    c = client(server, sleeps, retry=RetryPolicy(attempts=4, backoff_base=0.5))
    body = c.post("/sale", json={"x": 1})  # a throttled POST was refused, so even a POST is re-sent
    assert body == {"price": Decimal("12.10")} and isinstance(body["price"], Decimal)
    assert sleeps[0] == 1.0  # the server's Retry-After, not our backoff
    assert len(sleeps) == 2 and 0.25 <= sleeps[1] <= 1.0  # no Retry-After: backoff 0.5 * 2 with jitter
    assert c.stats == {"calls": 3, "throttled": 2, "retries": 2, "errors": 0}
    assert [s["method"] for s in server.seen] == ["POST"] * 3


def test_retry_after_as_http_date_and_capped(server, sleeps):
    in_30s = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    server.steps = [{"status": 429, "headers": {"Retry-After": in_30s}}, {"status": 503, "headers": {"Retry-After": "3600"}}]
    client(server, sleeps, retry=RetryPolicy(attempts=3, max_retry_after=120.0)).get("/x")
    assert 25 < sleeps[0] <= 30 and sleeps[1] == 120.0


def test_throttle_that_never_ends_raises_throttled_error(server, sleeps):
    server.default = {"status": 429, "body": {}, "headers": {"Retry-After": "1"}}
    c = client(server, sleeps)
    with pytest.raises(ThrottledError) as err:
        c.get("/x")
    assert err.value.status == 429 and len(server.seen) == 4 and sleeps == [1.0, 1.0, 1.0]
    assert c.stats == {"calls": 4, "throttled": 4, "retries": 3, "errors": 1}


def test_post_is_never_resent_after_a_read_timeout(server, sleeps):
    server.steps = [{"sleep": 0.6, "status": 200, "body": {}}]
    c = client(server, sleeps, timeout=(2.0, 0.2))
    with pytest.raises(TransientError) as err:
        c.post("/sale", json={"ExternalID": "MKP-1"})
    assert err.value.maybe_committed is True and sleeps == []
    time.sleep(0.6)  # would a second POST arrive late? it must not
    assert [s["method"] for s in server.seen] == ["POST"]


def test_post_is_not_resent_after_the_connection_drops(server, sleeps):
    server.steps = [{"close": True}]
    with pytest.raises(TransientError) as err:
        client(server, sleeps).post("/sale", json={})
    assert err.value.maybe_committed is True and len(server.seen) == 1


def test_get_is_retried_after_a_read_timeout_and_a_reset(server, sleeps):
    server.steps = [{"sleep": 0.5, "status": 200, "body": {}}, {"close": True}, {"status": 200, "body": {"n": 1}}]
    c = client(server, sleeps, timeout=(2.0, 0.2))
    assert c.get("/x") == {"n": 1}
    assert len(sleeps) == 2 and c.stats["retries"] == 2


def test_502_is_retried_for_get_and_graphql_queries_but_not_post_or_mutations(server, sleeps):
    server.steps = [{"status": 502, "raw": ""}]
    with pytest.raises(TransientError) as err:
        client(server, sleeps).post("/sale", json={})
    assert err.value.maybe_committed and err.value.status == 502 and len(server.seen) == 1
    server.steps = [{"status": 502, "raw": ""}]
    with pytest.raises(TransientError):
        client(server, sleeps).graphql("mutation { x }", mutation=True)
    assert len(server.seen) == 2

    server.steps = [{"status": 502, "raw": ""}, {"status": 504, "raw": ""}, {"status": 200, "body": {"ok": 1}}]
    assert client(server, sleeps).get("/sale") == {"ok": 1}
    server.steps = [{"status": 502, "raw": ""}, {"status": 200, "body": {"data": {"a": 1}}}]
    assert client(server, sleeps).graphql("{ a }") == {"a": 1}
    server.steps = [{"status": 502, "raw": ""}]
    assert client(server, sleeps).post("/search", json={}, idempotent=True) == {"ok": True}  # the caller vouches for it


def test_500_fails_at_once_unless_listed_in_the_retry_statuses(server, sleeps):
    server.steps = [{"status": 500, "body": {"Exception": "boom"}}]
    with pytest.raises(TransientError) as err:
        client(server, sleeps).get("/x")
    assert err.value.maybe_committed is False and len(server.seen) == 1
    server.steps = [{"status": 500, "body": {}}]
    with pytest.raises(TransientError) as err:
        client(server, sleeps).post("/sale", json={})
    assert err.value.maybe_committed is True
    server.steps = [{"status": 500, "body": {}}, {"status": 200, "body": {"ok": 2}}]
    assert client(server, sleeps, retry=RetryPolicy(retry_statuses=(429, 500, 502, 503, 504))).get("/x") == {"ok": 2}


def test_connection_refused_is_retried_for_any_method_then_raised(sleeps, loopback_port):
    c = HttpClient(f"http://127.0.0.1:{loopback_port}", system="test", retry=RetryPolicy(attempts=3, backoff_base=0.01), sleep=sleeps.append)
    with pytest.raises(TransientError) as err:
        c.post("/sale", json={})
    assert err.value.maybe_committed is False  # nothing reached a server
    assert len(sleeps) == 2 and c.stats["calls"] == 3 and c.stats["errors"] == 1


def test_client_errors_are_not_retried_and_carry_a_short_redacted_body(server, sleeps):
    long_tail = "x" * 5000
    server.steps = [{"status": 400, "body": [{"ErrorCode": 400, "Exception": f"SKU not found; key {SECRET}; mail jo@example.com {long_tail}"}]}]
    with pytest.raises(ClientError, match="SKU not found") as err:
        client(server, sleeps).post("/sale/order", json={})
    assert err.value.status == 400 and err.value.method == "POST" and err.value.url.endswith("/sale/order")
    assert len(server.seen) == 1 and sleeps == []
    assert len(err.value.body) <= 2048 and SECRET not in err.value.body and "jo@example.com" not in err.value.body
    assert SECRET not in str(err.value)


def test_malformed_json_empty_bodies_and_raw_content(server, sleeps):
    c = client(server, sleeps)
    server.steps = [{"status": 200, "raw": "<html>oops</html>"}]
    with pytest.raises(MalformedResponseError) as err:
        c.get("/x")
    assert len(server.seen) == 1 and "oops" in err.value.body
    server.steps = [{"status": 204, "raw": ""}, {"status": 200, "raw": ""}, {"status": 200, "raw": "%PDF-1"}]
    assert c.delete("/x") is None
    assert c.put("/x", json={}) is None
    assert c.get("/label.pdf", expect_json=False) == b"%PDF-1"


def test_money_comes_in_as_decimal_and_goes_out_as_exact_json_numbers(server, sleeps):
    server.steps = [{"status": 200, "raw": '{"Price": 12.10, "Qty": 3, "Total": 0.30000000000000004}'}]
    body = client(server, sleeps).post("/x", json={"Price": Decimal("19.99"), "Total": Decimal("0.10")})
    assert body == {"Price": Decimal("12.10"), "Qty": 3, "Total": Decimal("0.30000000000000004")}
    assert str(body["Price"]) == "12.10" and isinstance(body["Qty"], int)
    assert server.seen[0]["body"] == '{"Price":19.99,"Total":0.1}'
    assert server.seen[0]["headers"]["Content-Type"] == "application/json"
    with pytest.raises(ValueError, match="precision"):
        client(server, sleeps).post("/x", json={"Price": Decimal("0.12345678901234567890")})


def test_graphql_errors_raise_with_the_errors_list(server, sleeps):
    errors = [{"message": "Field 'nope' doesn't exist", "path": ["nope"]}]
    server.steps = [{"status": 200, "body": {"data": None, "errors": errors}}]
    with pytest.raises(GraphQLError, match="nope") as err:
        client(server, sleeps).graphql("{ nope }", {"a": 1})
    assert err.value.errors == errors and len(server.seen) == 1
    assert json.loads(server.seen[0]["body"]) == {"query": "{ nope }", "variables": {"a": 1}}
    assert server.seen[0]["path"] == "/graphql"


# -- auth ---------------------------------------------------------------------------------------
def test_auth_headers_are_sent_and_known_as_secrets(server, sleeps):
    client(server, sleeps).get("/x")
    assert server.seen[-1]["headers"]["api-auth-accountid"] == ACCOUNT
    assert server.seen[-1]["headers"]["api-auth-applicationkey"] == SECRET
    client(server, sleeps, auth=BearerAuth("tok-abc123")).get("/x")
    assert server.seen[-1]["headers"]["Authorization"] == "Bearer tok-abc123"
    assert BearerAuth("tok-abc123").secrets() == ["tok-abc123"]
    basic = BasicAuth("seller", "pa55word")
    client(server, sleeps, auth=basic).get("/x")
    assert base64.b64decode(server.seen[-1]["headers"]["Authorization"].split()[1]) == b"seller:pa55word"
    assert "pa55word" in basic.secrets() and server.seen[-1]["headers"]["Authorization"].split()[1] in basic.secrets()


def test_auth_is_applied_on_every_attempt_so_a_refreshing_auth_fits(server, sleeps):
    class Rotating:
        """Stands for OAuth2: a new token whenever asked."""

        def __init__(self):
            self.issued = 0

        def apply(self, headers):
            self.issued += 1
            headers["Authorization"] = f"Bearer token-{self.issued}"

        def secrets(self):
            return [f"token-{self.issued}"]

    server.steps = [{"status": 503, "headers": {"Retry-After": "0"}}]
    client(server, sleeps, auth=Rotating()).get("/x")
    assert [s["headers"]["Authorization"] for s in server.seen] == ["Bearer token-1", "Bearer token-2"]


# -- payload log --------------------------------------------------------------------------------
def test_payload_log_has_one_redacted_entry_per_attempt(server, sleeps):
    entries = []
    server.steps = [
        {"status": 503, "body": {"echo": SECRET}, "headers": {"Retry-After": "0"}},
        {"status": 200, "raw": f'{{"Email": "jo@example.com", "SKU": "CS-1", "Note": "key {SECRET}, acct {ACCOUNT}", "Price": 45.10}}'},
    ]
    c = client(server, sleeps, payload_log=entries.append)
    c.post(
        "/sale",
        params={"apikey": SECRET, "Page": 1},
        json={"Email": "jo@example.com", "Note": "ring +61 400 123 456 or mail jo@example.com", "SKU": "CS-1", "ExternalID": "MKP-9"},
        idempotent=True,
    )
    assert [e["attempt"] for e in entries] == [1, 2] and [e["status"] for e in entries] == [503, 200]
    for e in entries:
        assert set(e) == {"system", "method", "url", "status", "request_body", "response_body", "duration_ms", "attempt", "error"}
        assert e["system"] == "test" and e["method"] == "POST" and e["error"] is None and e["duration_ms"] >= 0
    text = str(entries)
    for secret in (SECRET, ACCOUNT, "jo@example.com", "400 123 456"):
        assert secret not in text
    assert "CS-1" in text and "MKP-9" in text and "45.10" in text  # business data stays readable
    assert "Page=1" in entries[0]["url"]
    assert server.seen[0]["headers"]["api-auth-applicationkey"] == SECRET  # ...and auth is still sent


def test_payload_log_records_failed_attempts_and_truncates_big_bodies(server, sleeps):
    entries = []
    server.steps = [{"sleep": 0.4, "status": 200, "body": {}}, {"status": 200, "body": {"rows": ["y" * 100] * 100}}]
    client(server, sleeps, payload_log=entries.append, timeout=(2.0, 0.2), max_logged_body=500).get("/x")
    assert entries[0]["status"] is None and entries[0]["error"] == "ReadTimeout"
    assert entries[1]["response_body"].endswith("...[truncated]") and len(entries[1]["response_body"]) < 520


def test_a_read_answer_is_logged_shorter_than_a_write_receipt(server, sleeps):
    entries = []
    big = {"rows": ["y" * 100] * 100}
    server.steps = [{"status": 200, "body": big}, {"status": 200, "body": big}]
    c = client(server, sleeps, payload_log=entries.append, max_logged_body=5000, max_logged_read_body=1000)
    c.get("/x")
    c.post("/x", json={"a": 1})
    read, write = (e["response_body"] for e in entries)
    assert 1000 <= len(read) < 1200
    assert 5000 <= len(write) < 5200


def test_a_failing_payload_log_never_breaks_the_call(server, sleeps, caplog):
    def boom(_entry):
        raise RuntimeError("disk full")

    assert client(server, sleeps, payload_log=boom).get("/x") == {"ok": True}
    assert "payload log failed" in caplog.text


# -- rate limiting ------------------------------------------------------------------------------
def test_rate_limiter_spaces_calls_with_a_fake_clock():
    clock = [0.0]
    waits = []

    def sleep(s):
        waits.append(s)
        clock[0] += s

    limiter = RateLimiter(2, 60.0, clock=lambda: clock[0], sleep=sleep)
    stamps = []
    for _ in range(5):
        limiter.acquire()
        stamps.append(clock[0])
    assert stamps == [0.0, 0.0, 60.0, 60.0, 120.0]  # never more than 2 in any 60 s
    assert waits == [60.0, 60.0]


def test_rate_limiter_is_thread_safe():
    limiter = RateLimiter(3, 0.3)
    stamps = []
    threads = [threading.Thread(target=lambda: (limiter.acquire(), stamps.append(time.monotonic()))) for _ in range(6)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert stamps[2] - started < 0.2 and stamps[3] - stamps[0] >= 0.29  # 3 at once, the 4th a window later


def test_shared_limiter_is_one_object_per_key_and_the_client_uses_it(server, sleeps):
    RateLimiter._shared.pop("test:acct", None)
    RateLimiter._shared.pop("test:other", None)
    a = RateLimiter.shared("test:acct", 60, 60)
    assert RateLimiter.shared("test:acct", 60, 60) is a
    assert RateLimiter.shared("test:acct", 120, 60) is a  # one account never gets a second budget
    assert RateLimiter.shared("test:other", 60, 60) is not a

    clock = [0.0]
    waits = []
    limiter = RateLimiter(1, 1.0, clock=lambda: clock[0], sleep=lambda s: (waits.append(s), clock.__setitem__(0, clock[0] + s)))
    c = client(server, sleeps, rate_limiter=limiter)
    for _ in range(3):
        c.get("/x")
    assert waits == [1.0, 1.0] and len(server.seen) == 3


# -- pagination ---------------------------------------------------------------------------------
def _pages(server, bodies):
    server.steps = [{"status": 200, "body": b} for b in bodies]


def test_page_limit_pagination_walks_until_total(server, sleeps):
    _pages(server, [{"Total": 5, "Page": 1, "SaleList": [1, 2]}, {"Total": 5, "Page": 2, "SaleList": [3, 4]}, {"Total": 5, "Page": 3, "SaleList": [5]}])
    pages = paginate_page_limit(client(server, sleeps), "/saleList", list_key="SaleList", params={"Search": "a"}, limit=2)
    assert server.seen == []  # lazy: nothing fetched before iteration
    assert list(pages) == [1, 2, 3, 4, 5]
    assert [s["path"] for s in server.seen] == [f"/saleList?Search=a&Page={n}&Limit=2" for n in (1, 2, 3)]


def test_page_limit_stops_on_total_or_a_short_page(server, sleeps):
    c = client(server, sleeps)
    _pages(server, [{"Total": 4, "L": [1, 2]}, {"Total": 4, "L": [3, 4]}])  # exact multiple: no empty 3rd call
    assert list(paginate_page_limit(c, "/p", list_key="L", limit=2)) == [1, 2, 3, 4] and len(server.seen) == 2
    server.seen.clear()
    _pages(server, [{"L": [1, 2]}, {"L": [3]}])  # no Total: the short page ends it
    assert list(paginate_page_limit(c, "/p", list_key="L", limit=2)) == [1, 2, 3] and len(server.seen) == 2
    server.seen.clear()
    _pages(server, [{"Total": 4, "L": [1, 2]}, {"Total": 4, "L": [3, 4]}])  # server caps Limit at 2: Total keeps going
    assert list(paginate_page_limit(c, "/p", list_key="L", limit=1000)) == [1, 2, 3, 4]


def test_empty_first_page_stops_every_paginator(server, sleeps):
    c = client(server, sleeps)
    server.default = {"status": 200, "body": {"Total": 0, "SaleList": [], "orders": [], "total_count": 0, "data": []}}
    assert list(paginate_page_limit(c, "/a", list_key="SaleList")) == []
    assert list(paginate_offset(c, "/b", list_key="orders")) == []
    assert list(paginate_seek(c, "/c")) == []
    server.default = {"status": 200, "body": {"data": {"invoices": {"nodes": [], "pageInfo": {"hasNextPage": False}}}}}
    assert list(paginate_relay(c, "q", {}, connection_path=["invoices"])) == []
    assert len(server.seen) == 4


def test_offset_pagination(server, sleeps):
    _pages(server, [{"total_count": 5, "orders": [1, 2]}, {"total_count": 5, "orders": [3, 4]}, {"total_count": 5, "orders": [5]}])
    assert list(paginate_offset(client(server, sleeps), "/api/orders", list_key="orders", params={"order_state_codes": "SHIPPING"}, max_per_page=2)) == [1, 2, 3, 4, 5]
    assert [s["path"] for s in server.seen] == [f"/api/orders?order_state_codes=SHIPPING&max=2&offset={o}" for o in (0, 2, 4)]


def _query(path: str) -> dict[str, int]:
    return {k: int(v) for k, v in parse_qsl(urlsplit(path).query)}


def test_page_limit_reads_ahead_with_workers_and_keeps_the_order(server, sleeps):
    rows = list(range(25))
    server.answer = lambda path: {"body": {"Total": 25, "L": rows[(_query(path)["Page"] - 1) * 3 : _query(path)["Page"] * 3]}}
    assert list(paginate_page_limit(client(server, sleeps), "/p", list_key="L", limit=3, workers=3)) == rows
    assert sorted(_query(s["path"])["Page"] for s in server.seen) == list(range(1, 10))  # each page once, no empty 10th


def test_offset_reads_ahead_with_workers_and_goes_on_after_a_short_page(server, sleeps):
    rows = list(range(10))

    def answer(path):
        q = _query(path)
        if q["offset"] == 4 and not any(_query(s["path"]).get("offset") == 4 for s in server.seen[:-1]):
            return {"body": {"total_count": 10, "orders": rows[4:5]}}  # first read of this page comes back short
        return {"body": {"total_count": 10, "orders": rows[q["offset"] : q["offset"] + q["max"]]}}

    server.answer = answer
    got = list(paginate_offset(client(server, sleeps), "/api/offers", list_key="orders", max_per_page=2, workers=4))
    assert got[:5] == [0, 1, 2, 3, 4] and set(got) == set(rows)  # the walk went on from offset 5


def test_a_page_that_fails_ends_a_parallel_read_with_its_error(server, sleeps):
    server.answer = lambda path: {"status": 404, "body": {"message": "gone"}} if _query(path)["Page"] == 3 else {"body": {"Total": 20, "L": [1, 2]}}
    pages = paginate_page_limit(client(server, sleeps), "/p", list_key="L", limit=2, workers=2)
    with pytest.raises(ClientError):
        list(pages)
    assert max(_query(s["path"])["Page"] for s in server.seen) <= 6  # read-ahead is bounded


def test_seek_pagination(server, sleeps):
    _pages(server, [{"data": [1, 2], "next_page_token": "t2"}, {"data": [3], "next_page_token": "t3"}, {"data": [4]}])
    assert list(paginate_seek(client(server, sleeps), "/api/tl", limit=2)) == [1, 2, 3, 4]
    assert [s["path"] for s in server.seen] == ["/api/tl?limit=2", "/api/tl?limit=2&page_token=t2", "/api/tl?limit=2&page_token=t3"]
    _pages(server, [{"data": [1], "next_page_token": "same"}, {"data": [1], "next_page_token": "same"}])
    with pytest.raises(MalformedResponseError, match="did not advance"):
        list(paginate_seek(client(server, sleeps), "/api/tl"))


def test_relay_pagination_over_nodes_and_edges(server, sleeps):
    def page(items, more, cursor=None, edges=False):
        conn = {"edges": [{"node": i} for i in items]} if edges else {"nodes": items}
        return {"data": {"seller": {"invoices": {**conn, "pageInfo": {"hasNextPage": more, "endCursor": cursor}}}}}

    _pages(server, [page([{"id": 1}], True, "c1"), page([{"id": 2}], True, "c2", edges=True), page([{"id": 3}], False)])
    nodes = paginate_relay(client(server, sleeps), "query($first:Int,$after:String){...}", {"x": 1}, connection_path=["seller", "invoices"], page_size=1)
    assert list(nodes) == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert [json.loads(s["body"])["variables"] for s in server.seen] == [
        {"x": 1, "first": 1, "after": None},
        {"x": 1, "first": 1, "after": "c1"},
        {"x": 1, "first": 1, "after": "c2"},
    ]
    _pages(server, [{"data": {"seller": None}}])
    with pytest.raises(MalformedResponseError, match="seller.invoices"):
        list(paginate_relay(client(server, sleeps), "q", None, connection_path=["seller", "invoices"]))


def test_a_bearer_token_in_static_headers_is_a_secret_bare_too():
    """An API may echo the token without "Bearer ": the redaction must know it bare."""
    from commerce_sync.http import HeaderAuth

    auth = HeaderAuth({"Authorization": "Bearer t0ken", "API-Authorization": "plugin-secret"})
    assert set(auth.secrets()) == {"Bearer t0ken", "t0ken", "plugin-secret"}
