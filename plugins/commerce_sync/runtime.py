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

from commerce_sync.http import Auth, HeaderAuth, HttpClient, RateLimiter, SharedRateLimiter
from commerce_sync.ledger import Ledger
from commerce_sync.pairing import Pairing, SystemRef, get_pairing
from commerce_sync.redact import install_log_redaction, register_secret_source, register_secrets
from commerce_sync.systems import system_module
from commerce_sync.systems.common import Connected


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


def connect(module, conn) -> Connected:
    """The module's own reading of its connection (`connect(conn)`: OAuth2, an organisation id),
    else the static headers its `auth_for(conn)` names."""
    hook = getattr(module, "connect", None)
    return hook(conn) if hook is not None else Connected(auth=HeaderAuth(module.auth_for(conn)))


def build_client(ref: SystemRef, ledger: Ledger | None, pairing_key: str, conn=None, connected: Connected | None = None) -> HttpClient:
    conn = conn if conn is not None else get_connection(ref.connection)
    module = system_module(ref.system)
    connected = connected or connect(module, conn)
    limiter: RateLimiter | SharedRateLimiter | None = None
    if ref.rate_limit_per_minute:
        limiter = rate_limiter(ref, ledger)

    def payload_log(entry: dict[str, Any]) -> None:
        if ledger is not None:
            ledger.log_payload({**entry, "pairing": pairing_key})

    extra = getattr(conn, "extra_dejson", None) or {}
    install_log_redaction()
    # the connection's keys and whatever secrets its auth holds (tokens as they are issued, below)
    register_secrets([*connected.auth.secrets(), conn.password])
    client = HttpClient(
        # where the API lives for this connection: its host, unless the module says otherwise, plus
        # the module's path under it (a project key)
        (connected.base_url or _base_url(conn)).rstrip("/") + connected.base_path,
        system=ref.system,
        auth=connected.auth,
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
        module = system_module(ref.system)
        conn = get_connection(ref.connection)
        connected = connect(module, conn)
        client = build_client(ref, self.ledger, self.pairing.key, conn, connected)
        self._clients.append(client)
        # reference lists (carriers) kept in the ledger across runs: vendors ask for daily reads
        cache = partial(self.ledger.cached, self.pairing.key, f"reference:{ref.system}")
        if connected.options:  # the connection's settings (an organisation id) win over the pairing's
            ref = ref.model_copy(update={"options": {**ref.options, **connected.options}})
        return module.build(client, ref, cache=cache)

    @cached_property
    def channel(self):
        return self._adapter(self.pairing.channel)

    @cached_property
    def master(self):
        return self._adapter(self.pairing.master)

    def confirm_reads(self) -> None:
        """Acknowledge what the adapters built here read from their systems' queues. Called by
        factory.run_step after the step returned: the step's writes are committed by then."""
        from commerce_sync.ports import ConfirmsReads

        for name in ("master", "channel"):
            adapter = self.__dict__.get(name)  # only adapters this step built can have read anything
            if isinstance(adapter, ConfirmsReads):
                adapter.confirm_reads()

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
