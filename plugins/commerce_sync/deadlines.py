"""The deadline every flow DAG declares: "this run must finish within N minutes of becoming due".

Why not `DeadlineReference.DAGRUN_QUEUED_AT`: on Airflow 3.3.2, clearing a run of a DAG with a
DAGRUN_QUEUED_AT deadline (the UI's Clear button, `airflow backfill create --reprocess-behavior
failed`) fails with "TypeError: unsupported type for timedelta seconds component: dict"
(apache/airflow#70368; fix PR #70370 not released). The clear path recalculates only rows whose
reference is DagRunQueuedAtDeadline, so a reference of our own never takes it.

Why not `DAGRUN_LOGICAL_DATE` + the schedule's period: a backfill of last week's runs would be
"late" the moment it is created and e-mail everyone at once.

`RunDueDeadline` is the later of the run's `run_after` and the moment the run is created: for a
scheduled run that is when the scheduler queues it (what DAGRUN_QUEUED_AT gives), for a manual
run or a backfill of an old window it is when someone asked for it, for a run triggered for the
future it is that future time. Airflow evaluates it once, when the run is created (it is
registered through the plugin in plugins/commerce_sync_plugin.py: the scheduler needs that to
read it back).

A cleared run: Airflow recalculates no deadline for a custom reference, and a successful run's
deadline rows are gone. `on_dag_run_running` below gives a cleared run a fresh deadline when the
scheduler starts it again, so Clear is watched like a new run.

Switching back once the upstream fix is released: COMMERCE_SYNC_DEADLINE_REFERENCE=queued_at
(factory.deadline_reference); see the README, "Deadlines".
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.listeners import hookimpl
from airflow.sdk import BaseDeadlineReference

log = logging.getLogger(__name__)


class RunDueDeadline(BaseDeadlineReference):
    """When a DAG run became due: max(run_after, the moment it is created)."""

    required_kwargs = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session: Any, **kwargs: Any) -> datetime:
        # core imports stay inside: this class is also imported at DAG parse time
        from sqlalchemy import select

        from airflow.models import DagRun
        from airflow.utils import timezone

        now = timezone.utcnow()
        run_after = session.scalar(select(DagRun.run_after).where(DagRun.dag_id == kwargs["dag_id"], DagRun.run_id == kwargs["run_id"]))
        return max(run_after, now) if run_after is not None else now


def _owns_deadline(dag: Any, session: Any) -> bool:
    """A DAG whose deadline alerts include ours (other DAGs in the deployment are left alone)."""
    from airflow.models.deadline_alert import DeadlineAlert as DeadlineAlertModel

    ours = f"{__name__}.{RunDueDeadline.__name__}"
    for alert_id in getattr(dag, "deadline", None) or []:
        try:
            alert = DeadlineAlertModel.get_by_id(alert_id, session=session)
        except Exception:  # noqa: BLE001 - an alert we cannot read is not ours to manage
            continue
        if (alert.reference or {}).get("__class_path") == ours:
            return True
    return False


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    """A cleared run starting again gets a fresh deadline, counted from now.

    Runs in the scheduler (inside its scheduling transaction, which commits it). Only runs that
    were cleared (`clear_number` > 0) and only DAGs using RunDueDeadline are touched: their old,
    unmissed deadline rows are dropped (a pending one would fire at the old time) and the run's
    deadlines are created again exactly as for a new run.
    """
    if not getattr(dag_run, "clear_number", 0):
        return
    try:
        from sqlalchemy import select
        from sqlalchemy.orm import object_session

        from airflow.models import Deadline

        session = object_session(dag_run)
        dag = getattr(dag_run, "dag", None)
        if session is None or dag is None or not _owns_deadline(dag, session):
            return
        # missed ones stay: the scheduler owns their queued callbacks
        for stale in session.scalars(select(Deadline).where(Deadline.dagrun_id == dag_run.id, Deadline.missed.is_(False))):
            session.delete(stale)
        dag._process_dagrun_deadline_alerts(dag_run, session)
        log.info("deadline re-armed for cleared run %s of %s", dag_run.run_id, dag_run.dag_id)
    except Exception:  # noqa: BLE001 - a listener must never stop the scheduler; the run itself goes on
        log.exception("could not re-arm the deadline of cleared run %s", getattr(dag_run, "run_id", "?"))
