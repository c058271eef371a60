"""Builds every flow DAG from include/pairings/*.yaml.

Parse-time cost matters (the dag-processor runs this file every 30 s): only yaml, pydantic and
airflow.sdk are imported here. Flows, pandas and Great Expectations load inside the tasks.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import (
    DAG,
    CronDataIntervalTimetable,
    ExceptionRetryPolicy,
    RetryAction,
    RetryRule,
    task,
)

from commerce_sync.pairing import FlowConfig, Pairing, load_pairings

# Data errors fail at once: retrying cannot fix a bad batch, a broken mapping file or a refused login.
DATA_ERRORS = [
    "commerce_sync.errors.GateBatchError",
    "commerce_sync.errors.MappingFileError",
    "commerce_sync.pairing.PairingError",
    "commerce_sync.errors.ClientError",
    "commerce_sync.errors.MalformedResponseError",
]
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[RetryRule(exception=DATA_ERRORS, action=RetryAction.FAIL, reason="data error: retrying cannot fix it")]
)

# flows built so far; the factory makes a DAG for each one a pairing file configures
BUILDERS: dict[str, Any] = {}


def deadlines_enabled() -> bool:
    # dag.test() crashes after a successful run of a DAG with a deadline on Airflow 3.3.2
    # (apache/airflow#73428): in-process tests switch deadlines off; real deployments keep them.
    return os.environ.get("COMMERCE_SYNC_DEADLINES", "on").lower() not in {"off", "0", "false", "no"}


def _deadline(pairing: Pairing, flow: str, cfg: FlowConfig):
    if not cfg.deadline_minutes or not deadlines_enabled():
        return None
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    recipients = pairing.recipients.get(cfg.deadline_recipients) or pairing.recipients.get("ops") or []
    if not recipients:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=cfg.deadline_minutes),
        callback=AsyncCallback(
            SmtpNotifier,
            kwargs={
                "to": recipients,
                "from_email": os.environ.get("COMMERCE_SYNC_MAIL_FROM", "commerce-sync@localhost"),
                "subject": f"[Commerce Sync] {pairing.key} {flow} missed its {cfg.deadline_minutes}-minute deadline",
                "html_content": (
                    "<p>The run {{ dag_run.dag_run_id }} of <b>{{ dag_run.dag_id }}</b> was queued at "
                    "{{ dag_run.queued_at }} and had not finished by {{ deadline.deadline_time }}.</p>"
                    "<p>See docs/operations.md, 'Deadline missed', for what to check.</p>"
                ),
            },
        ),
        name=f"{pairing.key}__{flow}__deadline",
    )


def _task_args(pairing: Pairing, cfg: FlowConfig) -> dict[str, Any]:
    return {
        "owner": "commerce_sync",
        "retries": cfg.retries,
        "retry_delay": timedelta(seconds=cfg.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=cfg.max_retry_delay_seconds),
        "retry_policy": RETRY_POLICY,
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


def _orders_in(pairing: Pairing, dag: DAG, cfg: FlowConfig) -> None:
    key = pairing.key
    master_pool = {"pool": pairing.master.pool} if pairing.master.pool else {}

    @task(task_id="extract")
    def extract(data_interval_start=None, data_interval_end=None, dag_run=None, run_id=None):
        from commerce_sync.flows import orders_in
        from commerce_sync.runtime import FlowContext

        start, end = window(data_interval_start, data_interval_end, dag_run, cfg.overlap_minutes)
        with FlowContext.for_pairing(key) as ctx:
            return orders_in.extract(ctx, run_id, start, end)

    @task(task_id="gate")
    def gate(extracted: dict, run_id=None):
        from commerce_sync.flows import orders_in
        from commerce_sync.runtime import FlowContext

        with FlowContext.for_pairing(key) as ctx:
            return orders_in.gate(ctx, run_id)

    @task(task_id="load", **master_pool)
    def load(gated: dict, run_id=None):
        from commerce_sync.flows import orders_in
        from commerce_sync.runtime import FlowContext

        with FlowContext.for_pairing(key) as ctx:
            return orders_in.load(ctx, run_id, gated["valid_keys"])

    @task(task_id="report")
    def report(extracted: dict, gated: dict, loaded: dict, run_id=None):
        from commerce_sync.flows import orders_in
        from commerce_sync.runtime import FlowContext

        with FlowContext.for_pairing(key) as ctx:
            return orders_in.report(ctx, run_id, extracted, gated, loaded)

    e = extract()
    g = gate(e)
    ld = load(g)
    report(e, g, ld)


BUILDERS["orders_in"] = _orders_in


def build_dag(pairing: Pairing, flow: str) -> DAG:
    cfg = pairing.flow(flow)
    kwargs: dict[str, Any] = {}
    deadline = _deadline(pairing, flow, cfg)
    if deadline is not None:
        kwargs["deadline"] = deadline
    schedule = CronDataIntervalTimetable(cfg.schedule, timezone="UTC") if cfg.schedule else None
    with DAG(
        dag_id=pairing.dag_id(flow),
        description=f"{pairing.description} — {flow}",
        schedule=schedule,
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=cfg.catchup,
        max_active_runs=cfg.max_active_runs,
        default_args=_task_args(pairing, cfg),
        tags=["commerce_sync", pairing.key, flow, *pairing.tags],
        doc_md=f"**{pairing.key} / {flow}**: {pairing.description}. See docs/operations.md.",
        **kwargs,
    ) as dag:
        BUILDERS[flow](pairing, dag, cfg)
    return dag


def build_all() -> dict[str, DAG]:
    dags: dict[str, DAG] = {}
    for pairing in load_pairings().values():
        for flow in pairing.flows:
            if flow in BUILDERS:
                dag = build_dag(pairing, flow)
                dags[dag.dag_id] = dag
    return dags
