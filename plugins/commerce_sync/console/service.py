"""What the ops console shows and does, as plain data: the same ledger calls as the operator
commands (cli.py), never copies of them. No web framework here: app.py turns these into JSON and
pages, and decides who may call them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from commerce_sync.cli import _health, _ledger, when_json
from commerce_sync.held import masked, order_number
from commerce_sync.ledger import Ledger
from commerce_sync.pairing import Pairing, load_pairings
from commerce_sync.reasons import plain

# A quarantine flow that is not a DAG of its own is replayed by the DAG that holds its records
# (flows/orders_in.ACCEPT_FLOW, flows/catalogue_out.CHECK_FLOW; tests/unit/test_console.py checks).
QUARANTINE_DAG_FLOW = {"order_acceptance": "orders_in", "catalogue_check": "catalogue_out"}
# Flows holding channel orders not yet in the ERP: the backlog ops watch in a peak.
BACKLOG_FLOWS = ("orders_in", "order_acceptance")
REPORT_FLOWS = ("drift_monitor", "payout_reconciliation", "settlement_reconciliation", "dispatch_back")


@lru_cache(maxsize=4)
def _cached_ledger(url: str) -> Ledger:
    return _ledger()


def ledger() -> Ledger:
    """The ledger the DAGs use, opened (and its schema checked) once per api-server process."""
    from commerce_sync.ledger import ledger_url

    return _cached_ledger(ledger_url())


def pairings() -> dict[str, Pairing]:
    return load_pairings()


def dag_flow(pairing: Pairing, flow: str) -> str | None:
    """The pairing's flow (DAG) whose run replays a quarantine flow's records, or None."""
    name = QUARANTINE_DAG_FLOW.get(flow, flow)
    return name if name in pairing.flows else None


def _age_hours(dt: datetime | None, now: datetime) -> float | None:
    if dt is None:
        return None
    dt = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return round((now - dt).total_seconds() / 3600, 1)


def overview(led: Ledger, pairing: Pairing, airflow_runs: dict[str, dict] | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Per flow: the last run (the ledger's report and Airflow's state), open quarantine by reason
    and its oldest age; the backlog of channel orders not in the ERP; undelivered alerts."""
    now = now or datetime.now(timezone.utc)
    health = _health(led, pairing)  # the `health` command's own figures
    rows = led.open_quarantine(pairing.key)
    flows: dict[str, Any] = {}
    for flow, h in health["flows"].items():
        held = [r for r in rows if (dag_flow(pairing, r.flow) or r.flow) == flow]
        by_reason: dict[str, int] = {}
        for r in held:
            for check in dict.fromkeys(str(x.get("check")) for x in r.reasons or []):
                by_reason[check] = by_reason.get(check, 0) + 1
        oldest = min((r.first_seen for r in held), default=None)
        run = (airflow_runs or {}).get(pairing.dag_id(flow)) or {}
        last = led.runs(pairing.key, flow, limit=1)
        flows[flow] = {
            **h,
            "dag_id": pairing.dag_id(flow),
            "state": run.get("state"),
            "airflow_run_id": run.get("run_id"),
            "run_started": run.get("start_date"),
            "open_quarantine": len(held),
            "by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
            "oldest_open_hours": _age_hours(oldest, now),
            **throttled(last[0] if last else None),
        }
    backlog = [r for r in rows if r.flow in BACKLOG_FLOWS]
    drift = (health["flows"].get("drift_monitor") or {}).get("drift") or {}
    return {
        "pairing": pairing.key,
        "description": pairing.description,
        "flows": flows,
        "backlog": {
            "held_orders": len(backlog),
            "oldest_hours": _age_hours(min((r.first_seen for r in backlog), default=None), now),
            # orders on the channel neither in the ERP nor held, as the last drift check found
            "orphaned_orders": drift.get("orphaned_order", 0),
        },
        "charts": charts(led, pairing, now),
    }


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)  # SQLite drops the zone


def charts(led: Ledger, pairing: Pairing, now: datetime | None = None, hours: int = 168) -> dict[str, list]:
    """The last `hours` hours, oldest first, one value per hour: orders booked, records newly
    quarantined, the orders backlog (held orders open at the hour's end); and stock drift found
    per drift check."""
    now = (now or datetime.now(timezone.utc)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = now - timedelta(hours=hours)
    runs, held = led.activity_since(pairing.key, start)
    booked, quarantined = [0] * hours, [0] * hours
    for r in runs:
        if r["flow"] == "orders_in" and r["started_at"] is not None:
            booked[min(hours - 1, int((_utc(r["started_at"]) - start).total_seconds() // 3600))] += r["loaded"] or 0
    for q in held:
        seen = _utc(q["first_seen"])
        if seen >= start:
            quarantined[int((seen - start).total_seconds() // 3600)] += 1
    ends = [start + timedelta(hours=h + 1) for h in range(hours)]
    orders = [q for q in held if q["flow"] in BACKLOG_FLOWS]
    backlog = [sum(1 for q in orders if _utc(q["first_seen"]) < end and (q["resolved_at"] is None or _utc(q["resolved_at"]) >= end)) for end in ends]
    drift = [((r["details"] or {}).get("counts") or {}).get("stock_drift", 0) for r in runs if r["flow"] == "drift_monitor"]
    return {"booked_per_hour": booked, "quarantined_per_hour": quarantined, "backlog_per_hour": backlog, "stock_drift_per_run": drift[-100:]}


def throttled(last_run: dict | None) -> dict[str, int]:
    """API calls of a run and how many were answered 429/503, from its report's steps."""
    steps = [v for v in ((last_run or {}).get("details") or {}).values() if isinstance(v, dict)]
    return {"api_calls": sum(int(s.get("api_calls") or 0) for s in steps), "throttled": sum(int(s.get("throttled") or 0) for s in steps)}


def outbox(led: Ledger) -> dict[str, Any]:
    from commerce_sync.alerts import outbox_status

    return outbox_status(led)


def quarantine(led: Ledger, known: dict[str, Pairing], pairing: str | None = None, flow: str | None = None, reason: str | None = None,
               min_age_hours: float | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Open records as people read them: order number, reasons in plain words, age, payload with
    buyers' personal data masked (held.py decides both, as for `quarantine list/show`)."""
    now = now or datetime.now(timezone.utc)
    out = []
    for r in led.open_quarantine(pairing, flow or None):
        if r.pairing not in known:
            continue
        if reason and reason not in {x.get("check") for x in r.reasons or []}:
            continue
        age = _age_hours(r.first_seen, now)
        if min_age_hours is not None and (age or 0) < min_age_hours:
            continue
        p = known[r.pairing]
        out.append({
            "id": r.id, "pairing": r.pairing, "flow": r.flow, "order": order_number(p, r.flow, r.payload), "record_key": r.record_key,
            "reasons": [plain(x) for x in masked(r.reasons or [])], "attempts": r.attempts or 0, "first_seen": when_json(r.first_seen),
            "age_hours": age, "replayed_by": dag_flow(p, r.flow), "payload": masked(r.payload),
        })
    return out


def discard(led: Ledger, id: int, reason: str, by: str):
    """`quarantine discard`: the open record closed for good with a reason, kept with who did it.
    Returns the row as it was, or None when no open record has that id."""
    row = led.get_quarantine(id)
    if row is None or row.status != "open":
        return None
    return row if led.discard_quarantine(id, reason, by=by) else None


def mappings(led: Ledger, pairing: Pairing) -> dict[str, Any]:
    from commerce_sync.pairing import mappings_dir

    folder = mappings_dir() / pairing.key
    kinds = sorted(p.stem for p in folder.glob("*.csv")) if folder.exists() else []
    return {
        "pairing": pairing.key,
        "kinds": {kind: led.mapping(pairing.key, kind) for kind in kinds},
        "history": [{**h, "changed_at": when_json(h["changed_at"])} for h in led.mapping_history(pairing.key)],
    }


def import_mapping(led: Ledger, pairing: Pairing, kind: str, data: bytes, *, apply: bool, merge: bool, by: str) -> dict[str, Any]:
    """An uploaded CSV through `mappings import` (mappings.install_mapping_file): the dry-run
    diff, or with `apply` installed and loaded with who did it."""
    import tempfile

    from commerce_sync.mappings import install_mapping_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{kind}.csv"
        path.write_bytes(data)
        diff, target = install_mapping_file(led, pairing.key, kind, path, merge=merge, apply=apply, changed_by=by)
    return {"kind": kind, "applied": apply, "merge": merge, "summary": diff.summary().splitlines()[0], "added": [{"key": k, "new": diff.rows.get(k)} for k in diff.added],
            "changed": [{"key": k, "old": o, "new": n} for k, o, n in diff.changed], "removed": list(diff.removed),
            "installed": str(target) if apply else None}


def reports(led: Ledger, pairing: Pairing) -> list[dict[str, Any]]:
    return [{**r, "created_at": when_json(r["created_at"])} for r in led.report_index(pairing.key, [f for f in REPORT_FLOWS if f in pairing.flows])]


def report_file(led: Ledger, pairing: Pairing, flow: str, period: str, name: str) -> tuple[bytes, str] | None:
    """One stored report or file: (content, content type)."""
    if flow not in REPORT_FLOWS:
        return None
    text = led.reports(pairing.key, flow, period).get(name)
    data = led.files(pairing.key, flow, period).get(name)
    if data is not None:
        return data, "application/pdf" if name.endswith(".pdf") else "application/octet-stream"
    if text is None:
        return None
    return text.encode(), "text/html; charset=utf-8" if name.endswith(".html") else "text/csv; charset=utf-8"

