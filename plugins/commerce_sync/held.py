"""Held (quarantined) records as people read them: the order number they know, personal data masked.

The operator commands show these, and so would a console: one place decides what a held record
is called and what of it may be shown. The order number comes from the channel adapter's own
translation of the held payload (or from what the flow staged beside it), never from vendor
field names here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from commerce_sync.pairing import Pairing, load_pairings
from commerce_sync.redact import redact

# How each flow's held payload leads to the channel reference of its order. A flow whose records
# are not orders (stock_out holds listings, known by their SKU) has no entry.
_ORDER_REF: dict[str, Callable[[Any, dict], str | None]] = {
    "orders_in": lambda channel, payload: channel.to_order(payload).channel_ref,
    "order_acceptance": lambda channel, payload: channel.to_order(payload).channel_ref,
    "refunds": lambda channel, payload: channel.to_refund(payload).order_channel_ref,
    "payout_reconciliation": lambda channel, payload: next(
        (line.order_channel_ref for line in channel.to_payout_lines(payload) if line.order_channel_ref), None
    ),
    # dispatch_back stages each box with the order it belongs to (flows/dispatch_back.py)
    "dispatch_back": lambda channel, payload: payload.get("order_channel_ref"),
}


@lru_cache(maxsize=32)
def _translator(pairing_key: str):
    """The pairing's channel adapter with no HTTP client: it can translate, never call out."""
    from commerce_sync.systems import system_module

    pairing = load_pairings()[pairing_key]
    return system_module(pairing.channel.system).build(None, pairing.channel)


def order_number(pairing: Pairing | None, flow: str, payload: Any) -> str | None:
    """The order number people know for a held record (the ERP's ExternalID, e.g. MKP-10014, or
    the customer order number), or None where the record is no order or cannot be read."""
    how = _ORDER_REF.get(flow)
    if pairing is None or how is None or not isinstance(payload, dict):
        return None
    try:
        ref = how(_translator(pairing.key), payload)
    except Exception:  # noqa: BLE001 - an unreadable payload is why some records are held; they keep their key
        return None
    return pairing.external_id(str(ref)) if ref not in (None, "") else None


def masked(obj: Any) -> Any:
    """What may be shown of a held record without asking: buyers' personal data masked, as in the
    payload log (redact.py)."""
    return redact(obj)
