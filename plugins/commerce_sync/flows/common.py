"""Steps every flow shares: reading the staged batch back, and the pairing's mappings."""

from __future__ import annotations

from typing import Any

from commerce_sync.models import TranslationError
from commerce_sync.pairing import mappings_dir
from commerce_sync.runtime import FlowContext


def staged_orders(ctx: FlowContext, flow: str, run_id: str, only: set[str] | None = None):
    """(payloads, orders, unreadable) for the run's staged records.

    A payload the channel adapter cannot read becomes an `unreadable` reason, never a crash:
    one bad record must not stop the batch.
    """
    payloads: dict[str, Any] = {}
    orders = {}
    unreadable: dict[str, list[dict[str, str]]] = {}
    for rec in ctx.ledger.staged(ctx.pairing.key, flow, run_id):
        if only is not None and rec.record_key not in only:
            continue
        payloads[rec.record_key] = rec.payload
        try:
            orders[rec.record_key] = ctx.channel.to_order(rec.payload)
        except TranslationError as exc:
            unreadable[rec.record_key] = [{"check": "payload_readable", "detail": exc.reason}]
    return payloads, orders, unreadable


def load_mappings(ctx: FlowContext) -> dict[str, dict[str, dict]]:
    """Sync include/mappings/<pairing>/*.csv into the ledger (audited), then read them back.

    The ledger, not the file, is what the flows trust: an operator's import through the CLI
    and a deployed CSV end up in the same table with the same history.
    """
    from commerce_sync.mappings import sync_pairing_mappings

    folder = mappings_dir() / ctx.pairing.key
    if folder.is_dir():
        sync_pairing_mappings(ctx.ledger, ctx.pairing.key, folder)
    return {kind: ctx.ledger.mapping(ctx.pairing.key, kind) for kind in ("skus", "sellers", "carriers", "locations")}
