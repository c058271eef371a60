"""Wiring: from a pairing key to live adapters, one ledger and the payload log.

Secrets come only from Airflow connections (or AIRFLOW_CONN_* in the environment, which Airflow
reads the same way); nothing here logs them, and the HTTP client redacts them from the payload log.
Each connection's secrets are registered with `redact` as the client is built, so every boundary
(ledger, e-mail, log lines) cuts them out whatever text they turn up in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

from commerce_sync.http import HeaderAuth, HttpClient, RateLimiter, SharedRateLimiter
from commerce_sync.ledger import Ledger
from commerce_sync.pairing import Pairing, SystemRef, get_pairing
from commerce_sync.redact import install_log_redaction, register_secret_source, register_secrets
from commerce_sync.systems import system_module


def get_connection(conn_id: str):
    # lazy: importing Airflow costs seconds, and the CLI and unit tests can do without it
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _base_url(conn) -> str:
    host = (conn.host or "").rstrip("/")
    if "://" not in host:
        scheme = conn.schema or "https"
        host = f"{scheme}://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
    return host


def rate_limiter(ref: SystemRef, ledger: Ledger | None) -> RateLimiter | SharedRateLimiter:
    """One budget per API account, whoever calls it. The account is the pairing's pool when it
    names one (two pairings on one Cin7 application share the pool and so the budget, although
    each has its own connection), else the connection. With a ledger the budget is shared by every
    process (Airflow runs each task in its own); without one, by this process only."""
    account = f"{ref.system}:{ref.pool or ref.connection}"
    if ledger is None:
        return RateLimiter.shared(account, ref.rate_limit_per_minute, 60.0)
    return SharedRateLimiter(partial(ledger.reserve_call, account, ref.rate_limit_per_minute, 60.0))


def build_client(ref: SystemRef, ledger: Ledger | None, pairing_key: str) -> HttpClient:
    conn = get_connection(ref.connection)
    module = system_module(ref.system)
    limiter: RateLimiter | SharedRateLimiter | None = None
    if ref.rate_limit_per_minute:
        limiter = rate_limiter(ref, ledger)

    def payload_log(entry: dict[str, Any]) -> None:
        if ledger is not None:
            ledger.log_payload({**entry, "pairing": pairing_key})

    extra = getattr(conn, "extra_dejson", None) or {}
    auth = HeaderAuth(module.auth_for(conn))
    install_log_redaction()
    register_secrets([*auth.secrets(), conn.password])
    client = HttpClient(
        _base_url(conn),
        system=ref.system,
        auth=auth,
        # a slow API is still an answer; a hung one must end in a retry, not a stuck worker slot
        timeout=(float(extra.get("connect_timeout", 5)), float(extra.get("read_timeout", 30))),
        rate_limiter=limiter,
        payload_log=payload_log,
    )
    register_secret_source(client.secrets)  # an auth that refreshes its token hands on the new one
    return client


@dataclass
class FlowContext:
    """Everything one flow task needs for one pairing; adapters are built on first use."""

    pairing: Pairing
    ledger: Ledger
    _clients: list[HttpClient] = field(default_factory=list)

    @classmethod
    def for_pairing(cls, key: str) -> FlowContext:
        install_log_redaction()  # every log line of a flow's process, from its first
        pairing = get_pairing(key)
        return cls(pairing=pairing, ledger=Ledger.from_url(ledger_url_for(pairing)))

    def _adapter(self, ref: SystemRef):
        client = build_client(ref, self.ledger, self.pairing.key)
        self._clients.append(client)
        # reference lists (carriers) kept in the ledger across runs: vendors ask for daily reads
        cache = partial(self.ledger.cached, self.pairing.key, f"reference:{ref.system}")
        return system_module(ref.system).build(client, ref, cache=cache)

    @cached_property
    def channel(self):
        return self._adapter(self.pairing.channel)

    @cached_property
    def master(self):
        return self._adapter(self.pairing.master)

    def stats(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for client in self._clients:
            for k, v in client.stats.items():
                totals[k] = totals.get(k, 0) + v
        return totals

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __enter__(self) -> FlowContext:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ledger_url_for(pairing: Pairing) -> str:
    from commerce_sync.ledger import ledger_url

    return ledger_url()
