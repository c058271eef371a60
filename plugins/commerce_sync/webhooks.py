"""Webhooks wake flows: a receiver served by the api-server (the plugin's FastAPI app).

`POST <url_prefix>/<pairing>/<system>`: the pairing file's `webhooks:` section names, per side,
the Airflow connection holding what the vendor sends to prove itself and the flows its events
wake. A request whose proof fails is a 401 and one log line (never the secret, never a run). A
verified one is recorded in the ledger (`webhook_event`: when, what, a digest of the body, not the
body) and posted as an Airflow asset event; the flows it wakes have an AssetOrTimeSchedule (the
asset or their cron), built by the factory from the same section.

An event is a wake-up, not a payload to trust: the woken run reads the source as a scheduled run
does, and the ledger keeps every booking exactly-once. So a forged event can book nothing, a
dropped one costs minutes (the cron), and several events consumed by one run (apache/airflow#56050)
lose nothing: each run reads everything new, whatever woke it.

How a vendor proves itself (the connection's extra `scheme`, which its system module must offer in
`WEBHOOK_SCHEMES`):
- `basic`: `Authorization: Basic` with the connection's login and password;
- `bearer`: `Authorization: Bearer <password>`;
- `header`: the header named in extra `header` carries the password;
- `signature`: the system module's `verify_webhook(secret, header_value, body)` checks the header
  it names in `WEBHOOK_SIGNATURE_HEADER` (an HMAC of the body) with the password as the secret.
Every comparison is constant-time (hmac.compare_digest).

Imported by every Airflow component through the plugin: nothing heavy at import (FastAPI, the
ledger and Airflow's models load on the first request).
"""

# no `from __future__ import annotations`: FastAPI reads the route's annotations, imported lazily in create_app

import base64
import binascii
import hashlib
import hmac
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

URL_PREFIX = "/commerce-sync/webhooks"
SCHEMES = ("basic", "bearer", "header", "signature")


class WebhookConfigError(ValueError):
    """The pairing's webhook connection is missing or asks for a scheme the system cannot send."""


def asset_name(pairing_key: str, system: str) -> str:
    return f"commerce_sync__{pairing_key}__{system}"


def asset_uri(pairing_key: str, system: str) -> str:
    return f"commerce-sync://{pairing_key}/{system}"


def waking_sources(pairing, flow: str) -> list[str]:
    """The systems (of this pairing) whose events wake `flow`, from the pairing's `webhooks:`."""
    refs = {"channel": pairing.channel, "master": pairing.master}
    return [refs[side].system for side, hook in sorted(pairing.webhooks.items()) if flow in hook.wakes]


@dataclass(frozen=True)
class Expected:
    """What the connection says the vendor sends. Repr hides the secret."""

    scheme: str
    secret: str
    login: str | None = None
    header: str | None = None

    def __repr__(self) -> str:
        return f"Expected(scheme={self.scheme!r}, header={self.header!r})"


def expected_from(conn, system: str) -> Expected:
    from commerce_sync.systems import system_module

    extra = conn.extra_dejson or {}
    scheme = extra.get("scheme")
    offered = tuple(getattr(system_module(system), "WEBHOOK_SCHEMES", ()))
    if scheme not in offered:
        raise WebhookConfigError(f"connection {conn.conn_id!r}: scheme {scheme!r} is not one {system} sends ({', '.join(offered) or 'none'})")
    if not conn.password:
        raise WebhookConfigError(f"connection {conn.conn_id!r}: no secret (password)")
    if scheme == "header" and not extra.get("header"):
        raise WebhookConfigError(f"connection {conn.conn_id!r}: scheme header needs extra.header, the header's name")
    return Expected(scheme=scheme, secret=conn.password, login=conn.login, header=extra.get("header"))


def _same(given: str | bytes, expected: str | bytes) -> bool:
    given = given.encode() if isinstance(given, str) else given
    expected = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(given, expected)


def refusal(expected: Expected, system: str, headers: Mapping[str, str], body: bytes) -> str | None:
    """Why the request does not prove itself (a reason safe to log), or None when it does.
    `headers` keys are lower case (as ASGI gives them)."""
    auth = headers.get("authorization", "")
    if expected.scheme == "basic":
        if not auth[:6].lower() == "basic ":
            return "no basic credentials"
        try:
            given = base64.b64decode(auth[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return "malformed basic credentials"
        return None if _same(given, f"{expected.login or ''}:{expected.secret}") else "wrong basic credentials"
    if expected.scheme == "bearer":
        if not auth[:7].lower() == "bearer ":
            return "no bearer token"
        return None if _same(auth[7:].strip(), expected.secret) else "wrong bearer token"
    if expected.scheme == "header":
        value = headers.get(expected.header.lower())
        if value is None:
            return f"no {expected.header} header"
        return None if _same(value, expected.secret) else f"wrong {expected.header} header"
    if expected.scheme == "signature":
        from commerce_sync.systems import system_module

        module = system_module(system)
        name = module.WEBHOOK_SIGNATURE_HEADER
        value = headers.get(name.lower())
        if value is None:
            return f"no {name} header"
        return None if module.verify_webhook(expected.secret, value, body) else f"bad {name} signature"
    return f"unknown scheme {expected.scheme!r}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def _side(pairing, system: str) -> str | None:
    for side in ("channel", "master"):
        if getattr(pairing, side).system == system and side in pairing.webhooks:
            return side
    return None


def _connection(conn_id: str):
    # the api-server's own reading (environment, secrets backend, then its metadata DB), not the
    # task SDK's, which outside a task sees no metadata DB
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


def post_asset_event(pairing_key: str, system: str, extra: dict[str, Any]) -> int | None:
    """An asset event, as `POST /api/v2/assets/events` makes one, in the api-server's own process
    (no token to mint). None when the asset is unknown (the DAGs are not parsed yet)."""
    from sqlalchemy import select

    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        model = session.scalar(select(AssetModel).where(AssetModel.name == asset_name(pairing_key, system)).limit(1))
        if model is None:
            return None
        event = asset_manager.register_asset_change(asset=model, extra=extra, source_is_api=True, session=session)
        session.flush()
        return getattr(event, "id", None)


_ledger_lock = threading.Lock()
_ledgers: dict[str, object] = {}


def _ledger():
    """One ledger (one connection pool) per ledger URL for the receiver, its schema brought up to
    date once: a burst of webhooks arrives on many threads at once."""
    from commerce_sync.ledger import Ledger
    from commerce_sync.ledger.db import ledger_url

    url = ledger_url()
    with _ledger_lock:
        if url not in _ledgers:
            _ledgers[url] = Ledger.from_url(url)
        return _ledgers[url]


def handle(pairing_key: str, system: str, headers: Mapping[str, str], body: bytes, client: str = "?", *, ledger=None) -> Answer:
    """Verify, record, post: what one request to the receiver does."""
    from commerce_sync.pairing import load_pairings

    pairing = load_pairings().get(pairing_key)
    side = _side(pairing, system) if pairing is not None else None
    if side is None:
        return Answer(404, {"detail": "no webhook here"})
    hook = pairing.webhooks[side]
    try:
        expected = expected_from(_connection(hook.connection), system)
    except Exception as exc:  # noqa: BLE001 - a missing connection comes in several exception types
        # our configuration, not the sender's fault: the vendor retries, the cron covers meanwhile
        log.error("webhook %s/%s: cannot verify, connection %s unusable: %s", pairing_key, system, hook.connection, type(exc).__name__)
        return Answer(503, {"detail": "receiver not configured"})
    reason = refusal(expected, system, headers, body)
    if reason is not None:
        log.warning("webhook %s/%s refused from %s: %s", pairing_key, system, client, reason)
        return Answer(401, {"detail": "not verified"})

    ledger = ledger or _ledger()
    digest = hashlib.sha256(body).hexdigest()
    event_id = ledger.record_webhook(pairing_key, system, digest, hook.wakes)
    asset_event = post_asset_event(pairing_key, system, {"webhook_event": event_id})
    ledger.webhook_posted(event_id, asset_event)
    log.info("webhook %s/%s: event %s recorded, asset event %s, wakes %s", pairing_key, system, event_id, asset_event, ", ".join(hook.wakes))
    return Answer(202, {"event": event_id, "asset_event": asset_event, "wakes": hook.wakes})


def create_app():
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="Commerce Sync webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/{pairing_key}/{system}")
    async def receive(pairing_key: str, system: str, request: Request):
        body = await request.body()
        client = request.client.host if request.client else "?"
        answer = await run_in_threadpool(handle, pairing_key, system, dict(request.headers), body, client)
        return JSONResponse(answer.body, status_code=answer.status)

    return app


class LazyApp:
    """The ASGI app, built on its first request: the plugin is imported by every component (task
    processes too), and only the api-server ever serves it."""

    def __init__(self):
        self._app = None

    async def __call__(self, scope, receive, send):
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


app = LazyApp()
