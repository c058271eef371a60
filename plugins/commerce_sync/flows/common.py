"""Steps every flow shares: reading the staged batch back, and the pairing's mappings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from commerce_sync.models import TranslationError
from commerce_sync.pairing import mappings_dir
from commerce_sync.runtime import FlowContext


def staged_records(ctx: FlowContext, flow: str, run_id: str, translate: Callable[[Any], Any], only: set[str] | None = None):
    """(payloads, translated, unreadable) for the run's staged records.

    A payload the adapter cannot read becomes an `unreadable` reason, never a crash: one bad
    record must not stop the batch.
    """
    payloads: dict[str, Any] = {}
    translated: dict[str, Any] = {}
    unreadable: dict[str, list[dict[str, str]]] = {}
    for rec in ctx.ledger.staged(ctx.pairing.key, flow, run_id):
        if only is not None and rec.record_key not in only:
            continue
        payloads[rec.record_key] = rec.payload
        try:
            translated[rec.record_key] = translate(rec.payload)
        except TranslationError as exc:
            unreadable[rec.record_key] = [{"check": "payload_readable", "detail": exc.reason}]
    return payloads, translated, unreadable


def staged_orders(ctx: FlowContext, flow: str, run_id: str, only: set[str] | None = None):
    return staged_records(ctx, flow, run_id, ctx.channel.to_order, only)


def held_records(ctx: FlowContext, flow: str, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Open quarantine of a flow, to be gated again with today's mappings (replay)."""
    skip = set(exclude)
    return {q.record_key: q.payload for q in ctx.ledger.open_quarantine(ctx.pairing.key, flow) if q.record_key not in skip}


def apply_gate(ctx: FlowContext, flow: str, run_id: str, result, payloads: dict[str, Any]) -> dict[str, Any]:
    """Quarantine what failed (with its reasons), count the run, and hand on the keys that passed."""
    for record_key, reasons in result.failed.items():
        ctx.ledger.quarantine(ctx.pairing.key, flow, record_key, payloads.get(record_key, {"key": record_key}), reasons, run_id)
    ctx.ledger.record_run(ctx.pairing.key, flow, run_id, valid=len(result.passed), quarantined=len(result.failed))
    return {"valid_keys": result.passed, "valid": len(result.passed), "quarantined": len(result.failed)}


def finish_run(ctx: FlowContext, flow: str, run_id: str, **steps: dict) -> dict[str, Any]:
    """Close the run report: each step's counts (key lists left out), the open quarantine, and
    the alert outbox (what is queued goes out now; what stays undelivered is reported)."""
    from commerce_sync.alerts import alert_thresholds, threshold_breaches

    details: dict[str, Any] = {name: {k: v for k, v in (counts or {}).items() if k != "valid_keys"} for name, counts in steps.items()}
    open_rows = ctx.ledger.open_quarantine(ctx.pairing.key, flow)
    details["open_quarantine"] = len(open_rows)
    now = datetime.now(timezone.utc)
    calls = sum((c or {}).get("api_calls", 0) for c in steps.values())
    throttled = sum((c or {}).get("throttled", 0) for c in steps.values())
    details["breaches"] = threshold_breaches(ctx.pairing.alerts, flow, open_rows, (steps.get("extract") or {}).get("extracted"), now, calls, throttled)
    alert_thresholds(ctx.pairing, flow, run_id, details["breaches"])
    details["outbox"] = flush_outbox(ctx)
    ctx.ledger.record_run(ctx.pairing.key, flow, run_id, finished_at=now, details=details)
    return details


def flush_outbox(ctx: FlowContext) -> dict[str, Any]:
    """Every flow's report step delivers the alerts earlier runs could not send (each once), and
    says in its run report how many still wait and for how long."""
    from commerce_sync.alerts import deliver_outbox

    return deliver_outbox(ctx.ledger)


def load_mappings(ctx: FlowContext) -> dict[str, dict[str, dict]]:
    """Sync include/mappings/<pairing>/*.csv into the ledger (audited), then read them back.

    The ledger, not the file, is what the flows trust: an operator's import through the CLI
    and a deployed CSV end up in the same table with the same history.
    """
    from commerce_sync.mappings import sync_pairing_mappings

    folder = mappings_dir() / ctx.pairing.key
    synced = sync_pairing_mappings(ctx.ledger, ctx.pairing.key, folder) if folder.is_dir() else {}
    # a kind just synced from its file now holds exactly the file's rows in the ledger
    return {kind: synced[kind].rows if kind in synced else ctx.ledger.mapping(ctx.pairing.key, kind)
            for kind in ("skus", "sellers", "carriers", "locations", "customers", "tax_codes")}


def offers(ctx: FlowContext, capability: str) -> bool:
    """What the pairing's channel declares it can do (its module's CAPABILITIES)."""
    from commerce_sync.systems import capabilities

    return capability in capabilities(ctx.pairing.channel.system)


def api_stats(ctx: FlowContext) -> dict[str, int]:
    """This step's API calls and throttled answers, for the run report's throttling threshold."""
    stats = ctx.stats()
    return {"api_calls": stats.get("calls", 0), "throttled": stats.get("throttled", 0)}


def channel_sku_map(maps: dict[str, dict[str, dict]]) -> dict[str, str]:
    """Master SKU -> channel SKU (skus.csv read backwards); where two channel SKUs share one
    master SKU the first wins."""
    to_channel: dict[str, str] = {}
    for channel_sku, row in maps.get("skus", {}).items():
        to_channel.setdefault(row["master_sku"], channel_sku)
    return to_channel


def master_label(ctx: FlowContext) -> str:
    """How people name the pairing's master (its `label`, else its system): e-mails, reasons, logs."""
    return ctx.pairing.master.label or ctx.pairing.master.system
