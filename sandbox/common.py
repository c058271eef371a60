"""What every emulator shares: exact-money JSON, the call log, and fault injection (the faults
themselves, and the body `POST /_sandbox/faults` takes, are in sandbox/faults.py)."""

from __future__ import annotations

import inspect
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox.faults import FaultInjector, FaultPlan
from sandbox.wire import json_number

log = logging.getLogger(__name__)


def _plain(obj: Any) -> Any:
    """What json.dumps cannot write itself: a Decimal as a number where a float holds it exactly,
    else as a string; a datetime in ISO form. Called only for those (json's `default`), so a big
    page is written by the C encoder instead of a Python walk over every value."""
    if isinstance(obj, Decimal):
        return json_number(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


class MoneyJSONResponse(JSONResponse):
    """JSON numbers written from Decimals without binary rounding (12.10 -> 12.1, never 12.0999)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), default=_plain).encode()


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    return json.loads(raw, parse_float=Decimal)


def now() -> datetime:
    return datetime.now(timezone.utc)


class SandboxState:
    """Call log and armed faults of one emulator instance."""

    def __init__(self):
        self.lock = threading.RLock()
        self.calls: list[dict[str, Any]] = []
        self.faults = FaultPlan()

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
        self.faults.set({})

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            entry["ts"] = time.time()
            self.calls.append(entry)

    def update(self, entry: dict[str, Any], **changes: Any) -> None:
        with self.lock:
            entry.update(changes)


def install_sandbox(app: FastAPI, state: SandboxState, reset_data, fault_body: Callable[[int, str], Any] | None = None,
                    in_band: Callable[[str, str, set[str]], bool] | None = None) -> None:
    """Add the call log, fault injection (sandbox/faults.py) and the common /_sandbox endpoints.

    `fault_body(status, message)` gives the body of an injected error in the vendor's own error
    shape; without it the error answers with Cin7's Error Model (what the first emulators used).
    `in_band(method, path, graphql_fields)` names the endpoints that refuse inside a successful
    answer (they read the message from the request's scope, `faults.REFUSAL`)."""
    body = fault_body or (lambda status, message: [{"ErrorCode": status, "Exception": message}])
    if len(inspect.signature(body).parameters) == 1:  # an emulator written before the message was passed
        one = body
        body = lambda status, message: one(status)  # noqa: E731
    app.add_middleware(FaultInjector, plan=state.faults, record=state.record, update=state.update, fault_body=body, in_band=in_band)

    @app.post("/_sandbox/reset")
    def reset():
        state.reset()
        reset_data()
        return {"reset": True}

    @app.get("/_sandbox/calls")
    def calls():
        with state.lock:
            return {"calls": [dict(c) for c in state.calls]}

    @app.get("/_sandbox/faults")
    def show_faults():
        return {"faults": state.faults.show()}

    @app.post("/_sandbox/faults")
    async def set_faults(request: Request):
        try:
            return {"faults": state.faults.set(await json_body(request))}
        except ValueError as exc:
            return MoneyJSONResponse({"error": str(exc)}, status_code=400)

    @app.delete("/_sandbox/faults")
    def clear_faults():
        return {"faults": state.faults.set({})}


def install_config(app: FastAPI, data) -> None:
    """`POST /_sandbox/config` (laid over the emulator's `data.config`) and `GET /_sandbox/config`."""

    @app.post("/_sandbox/config")
    async def set_config(request: Request):
        body = await json_body(request) or {}
        with data.lock:
            data.config.update(body)
            return data.config

    @app.get("/_sandbox/config")
    def get_config():
        with data.lock:
            return data.config


def over_rate_limit(data) -> bool:
    """At most config `rate_limit_per_minute` API calls in a rolling minute (`data.window` holds
    their times); True when this call is over it, else the call is counted. Hold `data.lock`."""
    limit = data.config.get("rate_limit_per_minute")
    t = time.monotonic()
    while data.window and t - data.window[0] >= 60:
        data.window.popleft()
    if limit is not None and len(data.window) >= int(limit):
        return True
    data.window.append(t)
    return False


def start_trickle(add: Callable[[random.Random, int], None], every_seconds: float, seed_value: int, name: str) -> threading.Event:
    """Demo traffic: `add(rng, n)` every `every_seconds` (n = 1, 2, ...) until the event is set."""
    stop = threading.Event()
    rng = random.Random(seed_value)

    def loop():
        n = 0
        while not stop.is_set():
            n += 1
            add(rng, n)
            stop.wait(every_seconds)

    threading.Thread(target=loop, name=name, daemon=True).start()
    return stop


class WebhookPush:
    """An emulator's webhook subscriptions (`POST /_sandbox/webhooks`, install_webhooks): on a new
    sale, order or shipment the emulator POSTs a small JSON event to every subscribed URL with the
    headers the subscription set (its auth: basic, bearer or a custom header, as configured on the
    vendor's webhook). One try, 5 s timeout, on a thread: a failure is logged and recorded in
    `deliveries`, never raised into the API call that made the event."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hooks: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []

    def clear(self) -> None:
        with self.lock:
            self.hooks, self.deliveries = [], []

    def push(self, event: dict[str, Any]) -> None:
        with self.lock:
            hooks = [dict(h) for h in self.hooks]
        for hook in hooks:
            threading.Thread(target=self._deliver, args=(hook, event), daemon=True).start()

    def _deliver(self, hook: dict[str, Any], event: dict[str, Any]) -> None:
        body = json.dumps(event, default=_plain).encode()
        request = urllib.request.Request(hook["url"], data=body, method="POST", headers={"Content-Type": "application/json", **hook["headers"]})
        status, error = None, None
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - a configured loopback URL
                status = answer.status
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            error = type(exc).__name__
        if error:
            log.warning("webhook push to %s failed: %s", hook["url"], error)  # the URL only: never the headers (the auth)
        with self.lock:
            self.deliveries.append({"event": event, "url": hook["url"], "status": status, "error": error})


def install_webhooks(app: FastAPI, hooks: WebhookPush) -> None:
    """`POST /_sandbox/webhooks` `{"url", "headers": {name: value}}` adds a subscription (`{}`
    removes them all); `GET /_sandbox/webhooks` lists the deliveries (no headers)."""

    @app.post("/_sandbox/webhooks")
    async def subscribe(request: Request):
        body = await json_body(request) or {}
        with hooks.lock:
            if body.get("url"):
                hooks.hooks.append({"url": str(body["url"]), "headers": {str(k): str(v) for k, v in (body.get("headers") or {}).items()}})
            else:
                hooks.hooks = []
            return {"webhooks": len(hooks.hooks)}

    @app.get("/_sandbox/webhooks")
    def deliveries():
        with hooks.lock:
            return {"deliveries": [dict(d) for d in hooks.deliveries]}
