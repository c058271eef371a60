"""E-mail to the people a pairing names, through the SMTP provider's hook (connection smtp_default).

Reports go out with their files attached; secrets never enter a message (the hook reads them from
the connection). Failure, deadline and threshold alerts build on this (see the alerting issue).
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def send_email(to: list[str], subject: str, html: str, attachments: dict[str, str] | None = None, conn_id: str = "smtp_default") -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    if not to:
        log.warning("no recipients for %r: nothing sent", subject)
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, content in (attachments or {}).items():
            path = Path(tmp) / name
            path.write_text(content, encoding="utf-8")
            files.append(str(path))
        with SmtpHook(smtp_conn_id=conn_id) as hook:
            hook.send_email_smtp(
                to=to,
                subject=subject,
                html_content=html,
                files=files or None,
                from_email=hook.from_email or os.environ.get("COMMERCE_SYNC_MAIL_FROM", "commerce-sync@localhost"),
            )
    log.info("sent %r to %d recipient(s)", subject, len(to))


# What kind of failure this is decides what the person should do: wait and re-run, or fix data.
TRANSIENT = ("TransientError", "ThrottledError", "Timeout", "ConnectionError", "OperationalError")
DATA = ("GateBatchError", "MappingFileError", "PairingError", "ClientError", "MalformedResponseError", "TranslationError")


def classify(exc: BaseException | None) -> str:
    names = {cls.__name__ for cls in type(exc).__mro__} if exc is not None else set()
    if names & set(DATA):
        return "data error: retrying will not help; fix the data or the mapping, then re-run the window (docs/operations.md, 'Re-running a period')"
    if any(t in n for n in names for t in TRANSIENT):
        return "transient: the API or network kept failing after every retry; nothing was duplicated; re-run the window or let the next run catch up"
    return "unexpected error: tell engineering"


def run_link(dag_id: str, run_id: str) -> str:
    from urllib.parse import quote

    base = os.environ.get("COMMERCE_SYNC_UI_URL") or os.environ.get("AIRFLOW__API__BASE_URL") or "http://127.0.0.1:8080"
    return f"{base.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def task_failed(pairing_key: str, flow: str, context, recipients: list[str] | None = None) -> None:
    """on_failure_callback: after the last retry, tell the pairing's ops (or `recipients`, for a
    DAG of no pairing) what failed and what to do."""
    from html import escape

    from commerce_sync.pairing import get_pairing

    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id", "")
    dag_id = getattr(ti, "dag_id", None) or f"{pairing_key}__{flow}"
    kind = classify(exc)
    link = run_link(dag_id, run_id)
    subject = f"[Commerce Sync] {pairing_key} {flow} failed: {type(exc).__name__ if exc else 'error'}"
    html = (
        f"<p><b>{escape(pairing_key)}</b> / <b>{escape(flow)}</b>, task <b>{escape(str(getattr(ti, 'task_id', '?')))}</b> failed "
        f"after {escape(str(getattr(ti, 'try_number', '?')))} tries in run {escape(run_id)}.</p>"
        f"<p>What kind: {escape(kind)}.</p>"
        f"<p>Error: {escape(str(exc)[:1000]) if exc else 'see the task log'}</p>"
        f"<p><a href='{escape(link)}'>Open the run in Airflow</a>. docs/operations.md, 'A run failed', says what to check.</p>"
    )
    try:
        send_email(recipients if recipients is not None else get_pairing(pairing_key).recipients.get("ops", []), subject, html)
    except Exception:  # noqa: BLE001 - an alert that cannot be sent must not hide the failure itself
        log.exception("could not send the failure alert for %s", dag_id)


def threshold_breaches(policy, flow: str, open_rows: list, extracted: int | None, now, calls: int = 0, throttled: int = 0) -> list[str]:
    """Sentences for each threshold a finished run breaches (empty when all is well)."""
    out = []
    if policy.throttled_share_over is not None and calls and Decimal(throttled) / Decimal(calls) > policy.throttled_share_over:
        out.append(f"{throttled} of {calls} API calls were throttled ({throttled / calls:.0%}, threshold {policy.throttled_share_over:.0%}): the account's budget is too tight for this load")
    if policy.open_quarantine_over is not None and len(open_rows) > policy.open_quarantine_over:
        out.append(f"{len(open_rows)} records wait in the {flow} quarantine (threshold {policy.open_quarantine_over})")
    if policy.quarantine_older_than_hours is not None and open_rows:
        oldest = min(r.first_seen if r.first_seen.tzinfo else r.first_seen.replace(tzinfo=now.tzinfo) for r in open_rows)
        hours = (now - oldest).total_seconds() / 3600
        if hours > policy.quarantine_older_than_hours:
            out.append(f"the oldest {flow} quarantine record has waited {hours:.0f} hours (threshold {policy.quarantine_older_than_hours})")
    if flow in policy.expect_traffic and extracted == 0:
        out.append(f"{flow} extracted nothing although traffic is expected: is the channel connection or schedule broken?")
    return out


def alert_thresholds(pairing, flow: str, run_id: str, breaches: list[str]) -> None:
    from html import escape

    if not breaches:
        return
    html = "<p>The run finished, but needs a look:</p><ul>" + "".join(f"<li>{escape(b)}</li>" for b in breaches) + "</ul>"
    html += f"<p><a href='{escape(run_link(pairing.dag_id(flow), run_id))}'>Open the run</a>; list the records with `python -m commerce_sync quarantine list --pairing {escape(pairing.key)}`.</p>"
    send_email(pairing.recipients.get("ops", []), f"[Commerce Sync] {pairing.key} {flow}: {len(breaches)} threshold(s) breached", html)
