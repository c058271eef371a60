"""One module per external API. The registry below is the only place that names them.

Each module has `build(client, ref, cache=None)`, turning an HTTP client and the pairing's
SystemRef into an adapter implementing Channel or Master (`cache(name, max_age, load)` keeps a
reference list across runs, in the ledger), and `auth_for(conn)`, the auth headers its Airflow
connection stands for, or `connect(conn)` where static headers are not enough (OAuth2 client
credentials; settings the connection holds, such as an organisation id). Adding a system is one
module and one line here.
"""

from __future__ import annotations

from importlib import import_module

SYSTEMS: dict[str, str] = {
    "cin7_core": "commerce_sync.systems.cin7_core",
    "marketplacer": "commerce_sync.systems.marketplacer",
    "mirakl": "commerce_sync.systems.mirakl",
    "sfcc": "commerce_sync.systems.sfcc",
}


def system_module(name: str):
    if name not in SYSTEMS:
        raise KeyError(f"unknown system {name!r}; known: {sorted(SYSTEMS)}")
    return import_module(SYSTEMS[name])
