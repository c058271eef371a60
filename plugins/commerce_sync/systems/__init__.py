"""One module per external API. The registry below is the only place that names them.

Each module has `build(client, ref, cache=None)`, turning an HTTP client and the pairing's
SystemRef into an adapter implementing Channel or Master (`cache(name, max_age, load)` keeps a
reference list across runs, in the ledger), and `auth_for(conn)`, the auth headers its Airflow
connection stands for, or `connect(conn)` where static headers are not enough (OAuth2 client
credentials; settings the connection holds, such as an organisation id), and `CAPABILITIES`, what
it can do for the flows (ports' capability names, checked by the factory). Adding a system is one
module and one line here.
"""

from __future__ import annotations

from importlib import import_module

SYSTEMS: dict[str, str] = {
    "centra": "commerce_sync.systems.centra",
    "cin7_core": "commerce_sync.systems.cin7_core",
    "commercetools": "commerce_sync.systems.commercetools",
    "marketplacer": "commerce_sync.systems.marketplacer",
    "mirakl": "commerce_sync.systems.mirakl",
    "sfcc": "commerce_sync.systems.sfcc",
}


def system_module(name: str):
    if name not in SYSTEMS:
        raise KeyError(f"unknown system {name!r}; known: {sorted(SYSTEMS)}")
    return import_module(SYSTEMS[name])


def capabilities(name: str) -> frozenset[str]:
    """What the system declares it can do (its module's CAPABILITIES); nothing when it declares none."""
    return frozenset(getattr(system_module(name), "CAPABILITIES", ()))
