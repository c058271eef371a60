"""Fault injection shared by every emulator: an ASGI middleware driven by `POST /_sandbox/faults`.

The body names each fault once; every fault but latency may be narrowed to some calls and a
number of firings:
  {"latency_ms": 300,                                   # every API call, until cleared
   "status_burst": {"status": 429, "count": 3, "retry_after": 1},   # answered without processing
   "hang": {"seconds": 2.5, "when": "after_commit"},    # slow answer; "before": slow, then processed
   "reset_connection": {"when": "before" | "after_commit"},   # the connection drops mid-answer
   "lose_response_after_commit": {},                    # processed, then 502 with an empty body
   "malformed_json": {},                                # processed, body cut in half
   "schema_drift": {"rename": {"old": "new"}, "drop": ["field"]},  # keys renamed/dropped at any depth
   "duplicate_items": {"list_key": "orders"},           # every item of that list delivered twice
   "shift_pages": {"list_key": "orders", "by": -1},     # the next page starts one item early (-1)
                                                        # or late (+1), as when records move
   "echo_credentials": {"status": 400}}                 # refused, the error quoting every header
                                                        # (credentials included) the call carried
`echo_credentials` without a status refuses the call the way that endpoint refuses in the vendor's
own answer, where it has one (a GraphQL mutation's `errors`, Mirakl's `shipment_errors`, a stock
import's error report: each emulator names those endpoints), with the quote as the message;
elsewhere, or with a status, the call is answered with that status (400 by default) and the
vendor's error body, unprocessed. Real APIs do this: validation errors that echo the request.
Narrowing keys, on any fault: "path" (the call's path ends with it), "method", "operation" (a
GraphQL root field the query selects, e.g. "invoices", "shipmentCreate"), "count" (firings,
default 1; null = until cleared). A fault value may also be a list of such specs.

Each call in `/_sandbox/calls` names the faults that fired on it under "fault", so a test can tell
a fault that fired from one that never matched. `GET /_sandbox/faults` shows what is left armed.

A dropped connection is real: the answer's headers and half its body are sent, then the server
closes the socket (uvicorn closes it when an app stops mid-answer), so the client sees the
connection break, not an HTTP status.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, parse

KINDS = ("status_burst", "hang", "reset_connection", "lose_response_after_commit", "malformed_json", "schema_drift", "duplicate_items", "shift_pages",
         "echo_credentials")
REFUSAL = "sandbox.refuse"  # scope key: the message an endpoint refuses with in its own answer
BODY_FAULTS = ("schema_drift", "duplicate_items", "shift_pages")


def graphql_fields(body: bytes) -> set[str]:
    """Root fields a GraphQL request selects ({"query": ...}); empty for anything else."""
    try:
        doc = json.loads(body or b"null")
        query = doc.get("query") if isinstance(doc, dict) else None
        if not isinstance(query, str):
            return set()
        return {sel.name.value for d in parse(query).definitions if isinstance(d, OperationDefinitionNode) for sel in d.selection_set.selections if hasattr(sel, "name")}
    except (ValueError, GraphQLError):
        return set()


class FaultPlan:
    """What is armed, with its remaining firings; thread-safe (tests set it from another thread)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.latency_ms = 0
        self.specs: dict[str, list[dict[str, Any]]] = {}
        self.pages: dict[int, dict[str, list[Any]]] = {}  # shift_pages: spec -> traversal -> first page
        # Bumped on every set(): a call still hanging from an earlier plan (a "hang" that outlived
        # its test) must not spend the faults armed after it arrived.
        self.generation = 0

    def set(self, body: dict[str, Any] | None) -> dict[str, Any]:
        body = body or {}
        unknown = set(body) - set(KINDS) - {"latency_ms"}
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: latency_ms, {', '.join(KINDS)}")
        with self.lock:
            self.latency_ms = int(body.get("latency_ms") or 0)
            self.specs = {}
            for kind in KINDS:
                value = body.get(kind)
                if value is not None:
                    self.specs[kind] = [dict({"count": 1}, **s) for s in (value if isinstance(value, list) else [value])]
            self.pages = {}
            self.generation += 1
        return self.show()

    def armed(self, kinds: tuple[str, ...]) -> bool:
        """Whether any spec of these kinds may still fire."""
        with self.lock:
            return any(s.get("count") is None or s["count"] > 0 for k in kinds for s in self.specs.get(k, []))

    def show(self) -> dict[str, Any]:
        with self.lock:
            return {**({"latency_ms": self.latency_ms} if self.latency_ms else {}), **{k: [dict(s) for s in v] for k, v in self.specs.items()}}

    def take(self, kind: str, method: str, path: str, fields: set[str], fire: Callable[[dict[str, Any]], bool] | None = None,
             generation: int | None = None) -> dict[str, Any] | None:
        """The first armed spec of `kind` matching the call, its count spent; None when none.
        `fire(spec)` may decline a match (a page fault on a first page) without spending it;
        `generation` (the plan's when the call arrived) keeps a stale call off a newer plan."""
        with self.lock:
            if generation is not None and generation != self.generation:
                return None
            for spec in self.specs.get(kind, []):
                if spec.get("count") is not None and spec["count"] <= 0:
                    continue
                if spec.get("method") and spec["method"].upper() != method:
                    continue
                if spec.get("path") and not path.endswith(spec["path"]):
                    continue
                if spec.get("operation") and spec["operation"] not in fields:
                    continue
                if fire is not None and not fire(spec):
                    continue
                if spec.get("count") is not None:
                    spec["count"] -= 1
                return spec
        return None


# -- what the body faults do to a JSON answer ---------------------------------------------------
def _walk(obj: Any, fn: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(obj, dict):
        fn(obj)
        for v in list(obj.values()):
            _walk(v, fn)
    elif isinstance(obj, list):
        for v in obj:
            _walk(v, fn)


def drift(doc: Any, rename: dict[str, str] | None, drop: list[str] | None) -> bool:
    hit = False

    def change(d: dict[str, Any]) -> None:
        nonlocal hit
        for old, new in (rename or {}).items():
            if old in d:
                d[new] = d.pop(old)
                hit = True
        for key in drop or []:
            if key in d:
                del d[key]
                hit = True

    _walk(doc, change)
    return hit


def lists_under(doc: Any, key: str) -> list[list[Any]]:
    found: list[list[Any]] = []
    _walk(doc, lambda d: found.append(d[key]) if isinstance(d.get(key), list) else None)
    return found


def duplicate(doc: Any, key: str) -> bool:
    hit = False
    for items in lists_under(doc, key):
        if items:
            items[:] = [x for item in items for x in (item, json.loads(json.dumps(item)))]
            hit = True
    return hit


def _truncate(raw: bytes) -> bytes:
    return raw[: max(1, len(raw) // 2)]


class FaultInjector:
    """ASGI middleware: `/_sandbox/...` passes untouched; every other call meets the plan."""

    def __init__(self, app, plan: FaultPlan, record: Callable[[dict[str, Any]], None], update: Callable[..., None],
                 fault_body: Callable[..., Any], in_band: Callable[[str, str, set[str]], bool] | None = None):
        self.app = app
        self.plan = plan
        self.record = record  # appends a call to the log
        self.update = update  # changes a logged call in place
        self.fault_body = fault_body  # (status, message) -> the vendor's error body
        self.in_band = in_band or (lambda method, path, fields: False)  # endpoints that refuse inside their answer

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        body = await _read_all(receive)
        replay = _replayer(body)
        fields = graphql_fields(body) if method == "POST" else set()
        fired: list[str] = []
        # logged at once, finished at the end: a hung call shows its fault while it still hangs
        entry: dict[str, Any] = {"method": method, "path": path, "query": dict(_query(scope)), "status": None}
        if fields:
            entry["operation"] = sorted(fields)
        self.record(entry)
        plan = self.plan
        generation = plan.generation

        def take(kind: str, when: str | None = None, fire=None) -> dict[str, Any] | None:
            match = (lambda s: s.get("when", "after_commit") == when and (fire is None or fire(s))) if when else fire
            spec = plan.take(kind, method, path, fields, fire=match, generation=generation)
            if spec is not None:
                fired.append(kind if when is None else f"{kind}:{when}")
                self.update(entry, fault=list(fired))
            return spec

        if plan.latency_ms:
            fired.append("latency")
            self.update(entry, fault=list(fired))
            await asyncio.sleep(plan.latency_ms / 1000)

        status, headers, out = None, [], b""
        burst = take("status_burst")
        if burst is not None:
            status = int(burst.get("status", 503))
            headers = [(b"content-type", b"application/json")]
            if burst.get("retry_after") is not None:
                headers.append((b"retry-after", str(burst["retry_after"]).encode()))
            out = json.dumps(self.fault_body(status, "sandbox fault")).encode()
        elif take("reset_connection", "before") is not None:
            return await _drop(send, b'{"sandbox": "connection reset before processing"}')
        elif (echo := take("echo_credentials")) is not None:
            quote = credentials_quote(method, path, scope)
            if echo.get("status") is None and self.in_band(method, path, fields):
                status, headers, out = await _capture(self.app, {**scope, REFUSAL: quote}, replay)
            else:
                status = int(echo.get("status") or 400)
                headers = [(b"content-type", b"application/json")]
                out = json.dumps(self.fault_body(status, quote)).encode()
        else:
            slow = take("hang", "before")
            if slow is not None:
                await asyncio.sleep(float(slow.get("seconds", 5)))
            status, headers, out = await _capture(self.app, scope, replay)
            hang = take("hang", "after_commit")
            if hang is not None:
                await asyncio.sleep(float(hang.get("seconds", 5)))
            if take("reset_connection", "after_commit") is not None:
                self.update(entry, status=status)
                return await _drop(send, out)
            if take("lose_response_after_commit") is not None:
                status, headers, out = 502, [], b""
            elif 200 <= status < 300:
                if take("malformed_json") is not None:
                    out = _truncate(out)
                else:
                    out = self._reshape(out, take, _traversal(scope, body))
        self.update(entry, status=status)
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"] + [(b"content-length", str(len(out)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    def _reshape(self, out: bytes, take, traversal: str) -> bytes:
        """Schema drift, duplicates and page shifts rewrite a JSON answer; each fires only when
        it changes something, so a fault that matched nothing stays armed and unreported."""
        if not self.plan.armed(BODY_FAULTS):
            return out  # nothing could change it: don't parse a big page for nothing
        try:
            doc = json.loads(out)
        except ValueError:
            return out
        changed = False
        spec = take("schema_drift", fire=lambda s: drift(copy.deepcopy(doc), s.get("rename"), s.get("drop")))
        if spec is not None:
            changed |= drift(doc, spec.get("rename"), spec.get("drop"))
        spec = take("duplicate_items", fire=lambda s: any(lists_under(doc, s.get("list_key", ""))))
        if spec is not None:
            changed |= duplicate(doc, spec.get("list_key", ""))
        return json.dumps(doc).encode() if self._shift(doc, take, traversal) or changed else out

    def _shift(self, doc: Any, take, traversal: str) -> bool:
        """Pages that move while read. The first page of a traversal (same call, other page) is
        remembered; the next one starts `by` items off: -1 repeats the last item of the page
        before and loses its own last (a record was added ahead of the reader), +1 skips its
        first (one was removed)."""
        pages = self.plan.pages

        def first_items(spec: dict[str, Any]) -> list[Any]:
            return next((i for i in lists_under(doc, spec.get("list_key", "")) if i), [])

        def fire(spec: dict[str, Any]) -> bool:
            items = first_items(spec)
            seen = pages.setdefault(id(spec), {})
            if not items:
                return False
            if traversal not in seen:
                seen[traversal] = list(items)  # a first page: nothing to shift against yet
                return False
            return True

        spec = take("shift_pages", fire=fire)
        if spec is None:
            return False
        items, by = first_items(spec), int(spec.get("by", -1))
        previous = pages[id(spec)][traversal]
        items[:] = previous[by:] + items[:by] if by < 0 else items[by:]
        return True


def credentials_quote(method: str, path: str, scope) -> str:
    """What a careless API says when it refuses a call: the request as it arrived, every header
    (the credentials among them) and the query string."""
    headers = "; ".join(f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in scope.get("headers") or [])
    query = (scope.get("query_string") or b"").decode("latin-1")
    return f"request refused: {method} {path}{'?' + query if query else ''} with headers {headers}"


def _query(scope) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl((scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True)


async def _read_all(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replayer(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client has nothing more to send; wait like a live socket
        return {"type": "http.disconnect"}  # pragma: no cover

    return receive


async def _capture(app, scope, receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run the emulator and keep its whole answer, so a fault can change it before it leaves."""
    status, headers, chunks = 500, [], []

    async def send(message):
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers") or [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


async def _drop(send, body: bytes) -> None:
    """Headers and half a body, then return without finishing: uvicorn closes the socket."""
    full = max(len(body), 2)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", str(full).encode())]})
    await send({"type": "http.response.body", "body": body[: full // 2], "more_body": True})


PAGE_PARAMS = frozenset({"offset", "page", "page_token", "after"})


def _traversal(scope, body: bytes) -> str:
    """What makes two calls pages of one read: the same path and query, paging left out (REST
    query parameters, GraphQL variables)."""
    query = sorted((k, v) for k, v in _query(scope) if k.lower() not in PAGE_PARAMS)
    try:
        doc = json.loads(body or b"null")
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("query"), str):
        variables = {k: v for k, v in (doc.get("variables") or {}).items() if k.lower() not in PAGE_PARAMS}
        return json.dumps([scope["path"], query, doc["query"], variables], sort_keys=True, default=str)
    return json.dumps([scope["path"], query])
