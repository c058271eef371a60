"""OAuth 2 client credentials and keyset paging in the shared HTTP client, against a real server on
loopback (no mock of requests). Token lifetimes are driven by a fake clock, never by waiting."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from commerce_sync.http import ClientError, HttpClient, MalformedResponseError, OAuth2ClientCredentials, RetryPolicy, paginate_keyset

CLIENT_ID, CLIENT_SECRET = "ct-client", "ct-secret-0123456789"


class Auth:
    """The server's view: tokens it issued, which it still accepts, what it was asked."""

    def __init__(self):
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.token_requests: list[dict] = []
        self.api_requests: list[dict] = []
        self.expires_in = 172800
        self.refuse_all = False
        self.pages: list[list[dict]] = []


class Handler(BaseHTTPRequestHandler):
    state: Auth

    def log_message(self, *args):
        pass

    def _send(self, status: int, body) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self):
        st = self.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        url = urlsplit(self.path)
        if url.path == "/oauth/empty":
            return self._send(200, {"token_type": "Bearer", "expires_in": 60})
        if url.path == "/oauth/token":
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            st.token_requests.append({"auth": self.headers.get("Authorization"), "form": dict(parse_qsl(body)), "type": self.headers.get("Content-Type")})
            if self.headers.get("Authorization") != f"Basic {basic}":
                return self._send(401, {"statusCode": 401, "message": "Please provide valid client credentials using HTTP Basic Authentication.",
                                        "errors": [{"code": "invalid_client", "message": "bad client"}], "error": "invalid_client"})
            token = f"tok-{len(st.issued) + 1}-abcdef"
            st.issued.append(token)
            st.valid.add(token)
            return self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": st.expires_in, "scope": dict(parse_qsl(body)).get("scope", "")})
        header = self.headers.get("Authorization") or ""
        st.api_requests.append({"method": self.command, "path": url.path, "query": parse_qsl(url.query), "auth": header, "body": body})
        if st.refuse_all or header.removeprefix("Bearer ") not in st.valid:
            return self._send(401, {"statusCode": 401, "message": "invalid_token", "errors": [{"code": "invalid_token", "message": "invalid_token"}], "error": "invalid_token"})
        if url.path == "/proj/items":
            return self._send(200, {"results": st.pages.pop(0) if st.pages else []})
        return self._send(200, {"ok": True, "echo": body})

    do_GET = do_POST = _handle


@pytest.fixture
def server():
    state = Auth()
    handler = type("H", (Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_for(server, clock=None, log=None, secret=CLIENT_SECRET):
    auth = OAuth2ClientCredentials(f"{server.url}/oauth/token", CLIENT_ID, secret, ["manage_orders:proj", "view_payments:proj"], clock=clock or Clock())
    return HttpClient(f"{server.url}/proj", system="commercetools", auth=auth, payload_log=log.append if log is not None else None, retry=RetryPolicy(attempts=2), sleep=lambda s: None), auth


def test_token_is_fetched_once_with_basic_auth_and_scopes_then_reused(server):
    client, _ = client_for(server)
    for _ in range(3):
        client.get("/orders")
    (asked,) = server.token_requests
    assert asked["form"] == {"grant_type": "client_credentials", "scope": "manage_orders:proj view_payments:proj"}
    assert asked["type"] == "application/x-www-form-urlencoded"
    assert {r["auth"] for r in server.api_requests} == {"Bearer tok-1-abcdef"}


def test_token_is_renewed_shortly_before_it_expires(server):
    clock = Clock()
    server.expires_in = 3600  # renewed 300 s (the cap) before the end
    client, auth = client_for(server, clock)
    client.get("/orders")
    clock.now += 3299
    client.get("/orders")
    assert auth.fetches == 1
    clock.now += 2
    client.get("/orders")
    assert auth.fetches == 2 and server.api_requests[-1]["auth"] == "Bearer tok-2-abcdef"
    # a short-lived token keeps a tenth of its life as margin
    server.expires_in = 10
    clock.now += 4000
    client.get("/orders")
    clock.now += 8.5
    client.get("/orders")
    assert auth.fetches == 3
    clock.now += 1
    client.get("/orders")
    assert auth.fetches == 4


def test_a_401_renews_the_token_once_and_resends_even_a_post(server):
    client, auth = client_for(server)
    client.get("/orders")
    server.valid.clear()  # revoked early (or the server's clock runs ahead)
    assert client.post("/orders/1", json={"version": 1, "actions": []})["ok"] is True
    assert auth.fetches == 2
    posts = [r for r in server.api_requests if r["method"] == "POST"]
    assert [r["auth"] for r in posts] == ["Bearer tok-1-abcdef", "Bearer tok-2-abcdef"]  # the POST was sent twice, once refused


def test_a_second_401_is_an_error_not_a_loop(server):
    client, auth = client_for(server)
    server.refuse_all = True
    with pytest.raises(ClientError) as err:
        client.get("/orders")
    assert err.value.status == 401 and "invalid_token" in err.value.body
    assert auth.fetches == 2 and len(server.api_requests) == 2


def test_refused_client_credentials_fail_at_once_and_say_so(server):
    client, _ = client_for(server, secret="wrong-secret-value")
    with pytest.raises(ClientError) as err:
        client.get("/orders")
    assert err.value.status == 401 and "invalid_client" in str(err.value)
    assert len(server.token_requests) == 1 and server.api_requests == []
    assert "wrong-secret-value" not in str(err.value)


def test_tokens_and_the_secret_never_reach_the_payload_log(server):
    log: list[dict] = []
    client, auth = client_for(server, log=log)
    client.get("/orders")
    server.valid.clear()
    client.get("/orders")
    text = json.dumps(log)
    assert "tok-1-abcdef" not in text and "tok-2-abcdef" not in text and CLIENT_SECRET not in text
    assert [e["system"] for e in log].count("commercetools:oauth") == 2  # the token calls are logged too, masked
    assert {"tok-1-abcdef", "tok-2-abcdef", CLIENT_SECRET} <= set(client.secrets())


def test_a_token_answer_without_a_token_is_malformed(server):
    client, auth = client_for(server)
    auth.token_url = f"{server.url}/oauth/empty"
    with pytest.raises(MalformedResponseError, match="no access_token"):
        client.get("/orders")
    assert server.api_requests == []


def test_keyset_paging_asks_after_the_last_item_and_stops_on_a_short_page(server):
    client, _ = client_for(server)
    server.pages = [[{"id": "a"}, {"id": "b"}], [{"id": "c"}, {"id": "d"}], [{"id": "e"}]]
    after = lambda last: {"where": f'id > "{last["id"]}"' if last else "true"}  # noqa: E731
    got = [i["id"] for i in paginate_keyset(client, "/items", list_key="results", after=after, cursor=lambda i: i["id"], limit=2)]
    assert got == ["a", "b", "c", "d", "e"]
    wheres = [dict(r["query"])["where"] for r in server.api_requests]
    assert wheres == ["true", 'id > "b"', 'id > "d"'] and all(dict(r["query"])["limit"] == "2" for r in server.api_requests)


def test_keyset_paging_refuses_a_page_that_does_not_move(server):
    client, _ = client_for(server)
    server.pages = [[{"id": "a"}, {"id": "b"}], [{"id": "a"}, {"id": "b"}]]
    with pytest.raises(MalformedResponseError):
        list(paginate_keyset(client, "/items", list_key="results", after=lambda last: {}, cursor=lambda i: i["id"], limit=2))
