"""What every emulator shares: exact-money JSON, the call log, and fault injection (the faults
themselves, and the body `POST /_sandbox/faults` takes, are in sandbox/faults.py)."""

from __future__ import annotations

import inspect
import json
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox.faults import FaultInjector, FaultPlan


def _plain(obj: Any) -> Any:
    """What json.dumps cannot write itself: a Decimal as a number where a float holds it exactly,
    else as a string; a datetime in ISO form. Called only for those (json's `default`), so a big
    page is written by the C encoder instead of a Python walk over every value."""
    if isinstance(obj, Decimal):
        as_float = float(obj)
        return as_float if Decimal(repr(as_float)) == obj else str(obj)
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
