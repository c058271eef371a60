"""Builds every flow DAG from include/pairings/*.yaml.

Parse-time cost matters (the dag-processor runs this file every 30 s): only yaml, pydantic and
airflow.sdk are imported here. Flows, pandas and Great Expectations load inside the tasks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    ExceptionRetryPolicy,
    RetryAction,
    RetryRule,
    task,
)

from commerce_sync.pairing import FlowConfig, Pairing, PairingError, load_pairings
from commerce_sync.ports import (
    ACCEPTANCE,
    AVAILABILITY,
    CATALOGUE,
    CATALOGUE_READ,
    CATALOGUE_UNPUBLISH,
    CREDIT_NOTES,
    CUSTOMER_CURRENCY,
    FULFILMENTS,
    JOURNALS,
    ORDERS,
    MASTER_RETURNS,
    PAYOUTS,
    REFUND_REQUESTS,
    REFUNDS,
    SALE_AMOUNTS,
    SALES,
    SHIPMENTS,
    STOCK,
)

# Data errors fail at once: retrying cannot fix a bad batch, a broken mapping file, a refused login or a wrong key.
DATA_ERRORS = [
    "commerce_sync.errors.GateBatchError",
    "commerce_sync.errors.MappingFileError",
    "commerce_sync.pairing.PairingError",
    "commerce_sync.errors.ClientError",
    "commerce_sync.errors.MalformedResponseError",
    "commerce_sync.errors.SealKeyError",  # the ledger's seal key is wrong or missing: a setting to fix
]
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[RetryRule(exception=DATA_ERRORS, action=RetryAction.FAIL, reason="data error: retrying cannot fix it")]
)

def deadlines_enabled() -> bool:
    # dag.test() crashes after a successful run of a DAG with a deadline on Airflow 3.3.2
    # (apache/airflow#73428): in-process tests switch deadlines off; real deployments keep them.
    return os.environ.get("COMMERCE_SYNC_DEADLINES", "on").lower() not in {"off", "0", "false", "no"}


def deadline_reference():
    """What a flow's deadline counts from: when its run became due (commerce_sync/deadlines.py).

    `COMMERCE_SYNC_DEADLINE_REFERENCE=queued_at` switches back to Airflow's DAGRUN_QUEUED_AT once
    clearing such DAGs works again (apache/airflow#70368, fixed by PR #70370 when released).
    """
    from airflow.sdk import DeadlineReference

    if os.environ.get("COMMERCE_SYNC_DEADLINE_REFERENCE", "run_due").lower() == "queued_at":
        return DeadlineReference.DAGRUN_QUEUED_AT
    from commerce_sync.deadlines import RunDueDeadline

    return RunDueDeadline()


def _deadline(pairing: Pairing, flow: str, cfg: FlowConfig):
    if not cfg.deadline_minutes or not deadlines_enabled():
        return None
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk import AsyncCallback, DeadlineAlert

    recipients = pairing.recipients.get(cfg.deadline_recipients) or pairing.recipients.get("ops") or []
    if not recipients:
        return None
    return DeadlineAlert(
        reference=deadline_reference(),
        interval=timedelta(minutes=cfg.deadline_minutes),
        callback=AsyncCallback(
            SmtpNotifier,
            kwargs={
                "to": recipients,
                "from_email": os.environ.get("COMMERCE_SYNC_MAIL_FROM", "commerce-sync@localhost"),
                "subject": f"[Commerce Sync] {pairing.key} {flow} missed its {cfg.deadline_minutes}-minute deadline",
                "html_content": (
                    "<p>The run {{ dag_run.dag_run_id }} of <b>{{ dag_run.dag_id }}</b> (queued at "
                    "{{ dag_run.queued_at }}) had not finished by {{ deadline.deadline_time }}, "
                    f"{cfg.deadline_minutes:g} minutes after it became due.</p>"
                    "<p>See docs/operations.md, 'Deadline missed', for what to check.</p>"
                ),
            },
        ),
        name=f"{pairing.key}__{flow}__deadline",
    )


def _task_args(pairing: Pairing, flow: str, cfg: FlowConfig) -> dict[str, Any]:
    from functools import partial

    from commerce_sync.alerts import task_failed

    return {
        "on_failure_callback": partial(task_failed, pairing.key, flow),
        "owner": "commerce_sync",
        "retries": cfg.retries,
        "retry_delay": timedelta(seconds=cfg.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=cfg.max_retry_delay_seconds),
        "retry_policy": RETRY_POLICY,
        # the pairing's Celery queue: its tasks call its systems, so only workers that reach them serve it
        **({"queue": pairing.queue} if getattr(pairing, "queue", None) else {}),
    }


def window(data_interval_start, data_interval_end, dag_run, overlap_minutes: int) -> tuple[datetime, datetime]:
    """The extraction window: the run's data interval, widened back by the overlap.

    `window_start`/`window_end` in the run conf override it (manual re-reads, tests).
    """
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    start = conf.get("window_start") or data_interval_start
    end = conf.get("window_end") or data_interval_end
    start = datetime.fromisoformat(start) if isinstance(start, str) else start
    end = datetime.fromisoformat(end) if isinstance(end, str) else end
    if start is None or end is None:
        end = datetime.now(timezone.utc)
        start = end - timedelta(hours=1)
    if "window_start" not in conf:
        start = start - timedelta(minutes=overlap_minutes)
    return start, end


def full_resync_due(data_interval_start, data_interval_end, dag_run, hour_utc: int | None) -> bool:
    """A full push when asked (run conf {"full": true}) or when the run's interval covers the
    pairing's resync hour: drift on the channel heals at least once a day."""
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    if conf.get("full"):
        return True
    if hour_utc is None or data_interval_start is None or data_interval_end is None:
        return False
    tick = data_interval_start.astimezone(timezone.utc).replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    return any(data_interval_start <= t < data_interval_end for t in (tick, tick + timedelta(days=1)))


@dataclass(frozen=True)
class Step:
    """One task of a flow: `commerce_sync.flows.<flow>.<name>(ctx, run_id, *upstream, **extra)`."""

    name: str
    after: tuple[str, ...] = ()
    pool: str | None = None  # "master" or "channel": the Airflow pool of that system's API account
    extra: Callable[..., dict[str, Any]] | None = None  # computed from the run's interval and conf
    # acknowledge what the step read from a system's queue (ports.ConfirmsReads) once the step has
    # returned, its writes committed: a worker dying before that leaves the items to be read again
    confirm_reads: bool = False


def _window_kwargs(pairing: Pairing, cfg: FlowConfig, start, end, dag_run) -> dict[str, Any]:
    s, e = window(start, end, dag_run, cfg.overlap_minutes)
    return {"start": s, "end": e}


def _resync_kwargs(pairing: Pairing, cfg: FlowConfig, start, end, dag_run) -> dict[str, Any]:
    hour = pairing.stock.full_resync_hour_utc if pairing.stock else None
    return {"full": full_resync_due(start, end, dag_run, hour)}


def _catalogue_kwargs(pairing: Pairing, cfg: FlowConfig, start, end, dag_run) -> dict[str, Any]:
    hour = pairing.catalogue.full_resync_hour_utc if pairing.catalogue else None
    return {"full": full_resync_due(start, end, dag_run, hour)}


# The flows as data: adding a flow is a module in flows/ and an entry here.
FLOW_STEPS: dict[str, list[Step]] = {
    "orders_in": [
        Step("accept", pool="channel"),  # a no-op unless the pairing has an `acceptance:` section
        Step("extract", extra=_window_kwargs),
        Step("gate", after=("extract",)),
        Step("load", after=("gate",), pool="master"),
        Step("report", after=("extract", "gate", "load", "accept")),
    ],
    "dispatch_back": [
        Step("extract", pool="master", extra=_window_kwargs, confirm_reads=True),
        Step("gate", after=("extract",)),
        Step("load", after=("gate",), pool="channel"),
        Step("report", after=("extract", "gate", "load")),
    ],
    "drift_monitor": [
        Step("check", pool="master"),
        Step("report", after=("check",)),
    ],
    "payout_reconciliation": [
        Step("extract", pool="channel", extra=_window_kwargs),
        Step("gate", after=("extract",)),
        Step("reconcile", after=("gate",), pool="master"),
        Step("report", after=("extract", "gate", "reconcile")),
    ],
    "refunds": [
        Step("extract", pool="channel", extra=_window_kwargs),
        Step("gate", after=("extract",)),
        Step("load", after=("gate",), pool="master"),
        Step("report", after=("extract", "gate", "load")),
    ],
    "settlement_reconciliation": [
        Step("extract", extra=_window_kwargs),  # reads the pairing's file store: no API account, no pool
        Step("reconcile", after=("extract",), pool="master"),
        Step("report", after=("extract", "reconcile")),
    ],
    "stock_out": [
        # a master with a change feed is read whole on the full resync only; its feed is confirmed
        # once the extract has committed the SKUs it named (stock_out.PENDING)
        Step("extract", pool="master", extra=_resync_kwargs, confirm_reads=True),
        Step("gate", after=("extract",)),
        Step("push", after=("gate",), pool="channel", extra=_resync_kwargs),
        Step("report", after=("extract", "gate", "push")),
    ],
    # the master's changed products to the channel (where the channel can write them: load is a
    # no-op for one that cannot), then every listing on sale checked against the master's SKUs
    "catalogue_out": [
        Step("extract", pool="master", extra=_catalogue_kwargs),
        Step("gate", after=("extract",)),
        Step("load", after=("gate",), pool="channel"),
        Step("check", after=("extract", "load"), pool="channel"),
        Step("report", after=("extract", "gate", "load", "check")),
    ],
}


# What each flow asks of the pairing's systems (ports' capability names). The factory refuses to
# build a flow whose master or channel does not declare them (CAPABILITIES in its module).
FLOW_NEEDS: dict[str, dict[str, frozenset[str]]] = {
    "orders_in": {"master": frozenset({SALES, CUSTOMER_CURRENCY}), "channel": frozenset({ORDERS})},
    "stock_out": {"master": frozenset({AVAILABILITY}), "channel": frozenset({STOCK, ORDERS})},  # orders: those not booked yet are held back
    "dispatch_back": {"master": frozenset({FULFILMENTS}), "channel": frozenset({SHIPMENTS})},
    "drift_monitor": {"master": frozenset({AVAILABILITY, FULFILMENTS, SALE_AMOUNTS}), "channel": frozenset({ORDERS, STOCK})},
    "payout_reconciliation": {"master": frozenset({SALE_AMOUNTS, JOURNALS}), "channel": frozenset({PAYOUTS})},
    "refunds": {"master": frozenset({CREDIT_NOTES}), "channel": frozenset({REFUNDS})},
    # reads the payment provider's files, not the channel: the master books fees and refunds
    "settlement_reconciliation": {"master": frozenset({SALE_AMOUNTS, JOURNALS, CREDIT_NOTES}), "channel": frozenset()},
    # writing products (CATALOGUE_WRITE) is what a channel may add; the check is what every one needs
    "catalogue_out": {"master": frozenset({CATALOGUE}), "channel": frozenset({CATALOGUE_READ})},
}


def flow_needs(pairing: Pairing, flow: str) -> dict[str, frozenset[str]]:
    needs = dict(FLOW_NEEDS.get(flow, {}))
    if flow == "orders_in" and pairing.acceptance is not None:  # the pairing's `acceptance:` section asks for it
        needs["channel"] = needs.get("channel", frozenset()) | {ACCEPTANCE}
    if flow == "catalogue_out" and pairing.catalogue is not None and pairing.catalogue.orphans == "unpublish":
        needs["channel"] = needs.get("channel", frozenset()) | {CATALOGUE_UNPUBLISH}  # orphans taken off sale
    if flow == "payout_reconciliation" and pairing.payouts is not None and pairing.payouts.journal == "file":
        needs["master"] = needs["master"] - {JOURNALS}  # charges go to a journal file, not the master's ledger
    if flow == "refunds" and pairing.refunds.origin == "master":  # refunds start in the master: the other way round
        needs = {"master": frozenset({MASTER_RETURNS}), "channel": frozenset({REFUND_REQUESTS})}
    return needs


# A flow whose direction the pairing turns round runs another module (same steps, same DAG id).
def flow_module(pairing: Pairing, flow: str) -> str:
    if flow == "refunds" and pairing.refunds.origin == "master":
        return "refunds_from_master"
    return flow


def check_capabilities(pairing: Pairing, flow: str) -> None:
    """Refuse, with a sentence an engineer can act on, a flow the pairing's systems cannot serve."""
    from commerce_sync.systems import capabilities

    for side, needed in flow_needs(pairing, flow).items():
        ref = pairing.master if side == "master" else pairing.channel
        offered = capabilities(ref.system)
        missing = sorted(needed - offered)
        if missing:
            raise PairingError(
                f"{pairing.key}: flow {flow!r} needs the {side} ({ref.system}) to offer {', '.join(missing)}, "
                f"which it does not declare (it offers: {', '.join(sorted(offered)) or 'nothing'}). "
                f"Remove {flow} from include/pairings/{pairing.key}.yaml, or give the flow the alternative this {side} needs."
            )


def run_step(pairing_key: str, flow: str, step: Step, run_id: str | None, upstream: tuple = (), extra: dict[str, Any] | None = None):
    """One step of a flow in its own FlowContext: what an Airflow task runs (and the tests' runners)."""
    from importlib import import_module

    from commerce_sync.runtime import FlowContext

    with FlowContext.for_pairing(pairing_key) as ctx:
        result = getattr(import_module(f"commerce_sync.flows.{flow_module(ctx.pairing, flow)}"), step.name)(ctx, run_id, *upstream, **(extra or {}))
        if step.confirm_reads:
            ctx.confirm_reads()
        return result


def _make_task(pairing: Pairing, flow: str, cfg: FlowConfig, step: Step):
    key = pairing.key
    ref = {"master": pairing.master, "channel": pairing.channel}.get(step.pool or "")
    task_kwargs = {"pool": ref.pool} if ref is not None and ref.pool else {}

    @task(task_id=step.name, **task_kwargs)
    def step_task(*upstream, data_interval_start=None, data_interval_end=None, dag_run=None, run_id=None):
        extra = step.extra(pairing, cfg, data_interval_start, data_interval_end, dag_run) if step.extra else {}
        return run_step(key, flow, step, run_id, upstream, extra)

    return step_task


def _build_steps(pairing: Pairing, flow: str, cfg: FlowConfig) -> None:
    results: dict[str, Any] = {}
    for step in FLOW_STEPS[flow]:
        results[step.name] = _make_task(pairing, flow, cfg, step)(*(results[name] for name in step.after))


# e-mails sent to these recipients keys only (no fallback to ops when the key names nobody)
_NO_OPS_FALLBACK = {"the exception report", "the settlement report"}


def _emails(pairing: Pairing, flow: str, cfg: FlowConfig) -> list[tuple[str, str]]:
    """(what, recipients key) for every e-mail a flow's run can send, from the pairing file."""
    out = [("a task failed after its retries", "ops"), ("quarantine thresholds breached", "ops")]
    if cfg.deadline_minutes:
        out.append((f"the run missed its {cfg.deadline_minutes:g}-minute deadline", cfg.deadline_recipients))
    extra = {
        "orders_in": [("an order cannot be accepted", pairing.acceptance.recipients)] if pairing.acceptance else [],
        "dispatch_back": [("new shipments held", "ops")],
        "drift_monitor": [("drift found", "ops")],
        "payout_reconciliation": [("the exception report", pairing.payouts.report_recipients)] if pairing.payouts else [],
        "settlement_reconciliation": [("the settlement report", pairing.settlement.report_recipients)] if pairing.settlement else [],
        "catalogue_out": [("listings without an ERP SKU, products held", pairing.catalogue.recipients)] if pairing.catalogue else [],
    }
    return out + extra.get(flow, [])


def runbook(pairing: Pairing, flow: str, cfg: FlowConfig) -> str:
    """The DAG's documentation in the UI: the flow's runbook, generated from the pairing file."""
    from commerce_sync.reasons import FLOWS, explain

    promise, checks = FLOWS.get(flow, ("", ()))
    lines = [f"## {pairing.key} / {flow}", pairing.description, "", f"**Guarantee.** {promise}", "",
             f"**Schedule.** `{cfg.schedule or 'manual only'}` (UTC)"
             + (f"; deadline {cfg.deadline_minutes:g} minutes after the run is due." if cfg.deadline_minutes else "; no deadline."),
             "", "**E-mails.**", ""]
    for what, key in _emails(pairing, flow, cfg):
        to = pairing.recipients.get(key) or ([] if what in _NO_OPS_FALLBACK else pairing.recipients.get("ops")) or ["nobody"]
        lines.append(f"- {what}: {', '.join(to)} ({key})")
    if checks:
        lines += ["", "**Quarantine reasons.**", "", "| reason | what it means | what to do |", "|---|---|---|"]
        lines += [f"| `{c}` | {explain(c)[0]} | {explain(c)[1]} |" for c in checks]
    lines += ["", f"Held records, replay and mappings: the ops console (Commerce Sync in the menu, `/commerce-sync/pairing/{pairing.key}`). "
              "More in docs/operations.md."]
    return "\n".join(lines)


def flow_schedule(pairing: Pairing, flow: str, cfg: FlowConfig):
    """The flow's cron; with the pairing's webhooks naming it (`webhooks.<side>.wakes`), the cron
    or an event of those systems' assets, whichever comes first (the cron is the safety net for a
    dropped webhook). An event-woken run has no data interval: its window is the fallback in
    `window()`, the last hour up to now, so it reads everything new whatever woke it."""
    from commerce_sync.webhooks import asset_name, asset_uri, waking_sources

    cron = CronDataIntervalTimetable(cfg.schedule, timezone="UTC") if cfg.schedule else None
    assets = [Asset(name=asset_name(pairing.key, system), uri=asset_uri(pairing.key, system)) for system in waking_sources(pairing, flow)]
    if not assets:
        return cron
    if cron is None:
        return assets
    return AssetOrTimeSchedule(timetable=cron, assets=assets)


def build_dag(pairing: Pairing, flow: str) -> DAG:
    check_capabilities(pairing, flow)
    cfg = pairing.flow(flow)
    kwargs: dict[str, Any] = {}
    deadline = _deadline(pairing, flow, cfg)
    if deadline is not None:
        kwargs["deadline"] = deadline
    with DAG(
        dag_id=pairing.dag_id(flow),
        description=f"{pairing.description} — {flow}",
        schedule=flow_schedule(pairing, flow, cfg),
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=cfg.catchup,
        max_active_runs=cfg.max_active_runs,
        default_args=_task_args(pairing, flow, cfg),
        tags=["commerce_sync", pairing.key, flow, *pairing.tags],
        doc_md=runbook(pairing, flow, cfg)
        + "".join(f"\n\nNot run by this pairing: **{off}**: {why}" for off, why in pairing.flows_off.items()),
        **kwargs,
    ) as dag:
        _build_steps(pairing, flow, cfg)
    return dag


# One per deployment, not per pairing: the ledger is shared. Steps are commerce_sync.housekeeping.<name>(run_id, *upstream).
HOUSEKEEPING_STEPS = [Step("prune"), Step("erase", after=("prune",)), Step("report", after=("prune", "erase"))]


def _housekeeping_task(step: Step):
    @task(task_id=step.name)
    def run_step(*upstream, run_id=None):
        from commerce_sync import housekeeping

        return getattr(housekeeping, step.name)(run_id, *upstream)

    return run_step


def build_housekeeping_dag() -> DAG:
    """Retention and erasure over the whole ledger (include/housekeeping.yaml), with a deadline
    and failure alerts like every flow: the settings carry the key and recipients a pairing would."""
    from functools import partial

    from commerce_sync.alerts import task_failed
    from commerce_sync.housekeeping.settings import FLOW, load_settings

    settings = load_settings()
    cfg = settings.dag
    kwargs: dict[str, Any] = {}
    deadline = _deadline(settings, FLOW, cfg)
    if deadline is not None:
        kwargs["deadline"] = deadline
    args = {**_task_args(settings, FLOW, cfg), "on_failure_callback": partial(task_failed, settings.key, FLOW, recipients=settings.recipients.get("ops", []))}
    with DAG(
        dag_id=settings.dag_id(),
        description="Ledger housekeeping: retention, erasure of buyers' personal data",
        schedule=CronDataIntervalTimetable(cfg.schedule, timezone="UTC") if cfg.schedule else None,
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=cfg.catchup,
        max_active_runs=1,
        default_args=args,
        tags=["commerce_sync", FLOW],
        doc_md="**Ledger housekeeping** (one per deployment): README, 'Housekeeping'; docs/operations.md.",
        **kwargs,
    ) as dag:
        results: dict[str, Any] = {}
        for step in HOUSEKEEPING_STEPS:
            results[step.name] = _housekeeping_task(step)(*(results[name] for name in step.after))
    return dag


def build_all() -> dict[str, DAG]:
    dags: dict[str, DAG] = {}
    for pairing in load_pairings().values():
        for flow in pairing.flows:
            if flow in FLOW_STEPS:
                dag = build_dag(pairing, flow)
                dags[dag.dag_id] = dag
    housekeeping = build_housekeeping_dag()
    dags[housekeeping.dag_id] = housekeeping
    return dags
