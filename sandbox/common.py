"""What every emulator shares: exact-money JSON, the call log, and fault injection.

Faults are set per test through `POST /_sandbox/faults` and apply to API calls only (never to
`/_sandbox/...`):
  {"latency_ms": 200,
   "status_burst": {"status": 503, "count": 3, "retry_after": 1},
   "lose_response_after_commit": {"path": "/sale", "method": "POST", "count": 1}}
A lost response is emulated as the write being committed and the client getting a 502 with an
empty body (uvicorn gives an app no clean way to drop the socket mid-response); to the client it
is the same danger: it cannot tell whether the write happened.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


def _plain(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        as_float = float(obj)
        return as_float if Decimal(repr(as_float)) == obj else str(obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


class MoneyJSONResponse(JSONResponse):
    """JSON numbers written from Decimals without binary rounding (12.10 -> 12.1, never 12.0999)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(_plain(content), separators=(",", ":")).encode()


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    return json.loads(raw, parse_float=Decimal)


def now() -> datetime:
    return datetime.now(timezone.utc)


class SandboxState:
    """Call log and faults of one emulator instance."""

    def __init__(self):
        self.lock = threading.RLock()
        self.calls: list[dict[str, Any]] = []
        self.faults: dict[str, Any] = {}

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults = {}

    def take_burst(self) -> dict | None:
        with self.lock:
            burst = self.faults.get("status_burst")
            if burst and burst.get("count", 0) > 0:
                burst["count"] -= 1
                return burst
        return None

    def take_lost_response(self, method: str, path: str) -> bool:
        with self.lock:
            lost = self.faults.get("lose_response_after_commit")
            if lost and lost.get("count", 0) > 0 and path.endswith(lost.get("path", "")) and method == lost.get("method", "POST"):
                lost["count"] -= 1
                return True
        return False


def install_sandbox(app: FastAPI, state: SandboxState, reset_data) -> None:
    """Add the call log, fault middleware and the common /_sandbox endpoints to an emulator."""

    @app.middleware("http")
    async def faults_and_log(request: Request, call_next):
        path = request.url.path
        if path.startswith("/_sandbox"):
            return await call_next(request)
        latency = state.faults.get("latency_ms")
        if latency:
            await asyncio.sleep(latency / 1000)
        burst = state.take_burst()
        if burst:
            headers = {"Retry-After": str(burst["retry_after"])} if burst.get("retry_after") is not None else {}
            response: Response = MoneyJSONResponse([{"ErrorCode": burst["status"], "Exception": "sandbox fault"}], status_code=burst["status"], headers=headers)
        else:
            response = await call_next(request)
            if state.take_lost_response(request.method, path):
                response = Response(status_code=502, content=b"")
        with state.lock:
            state.calls.append(
                {"method": request.method, "path": path, "query": dict(request.query_params), "status": response.status_code, "ts": time.time()}
            )
        return response

    @app.post("/_sandbox/reset")
    def reset():
        state.reset()
        reset_data()
        return {"reset": True}

    @app.get("/_sandbox/calls")
    def calls():
        with state.lock:
            return {"calls": list(state.calls)}

    @app.post("/_sandbox/faults")
    async def set_faults(request: Request):
        state.faults = await json_body(request) or {}
        return {"faults": state.faults}

    @app.delete("/_sandbox/faults")
    def clear_faults():
        state.faults = {}
        return {"faults": {}}
