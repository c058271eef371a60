"""E-mail to the people a pairing names, through the SMTP provider's hook (connection smtp_default).

Sending is kept apart from the work: `send_email` records every message in the ledger's outbox
first, then tries to deliver it. An SMTP server that is down leaves the message queued with the
error and never fails the step that sent it (the work is done and must not be redone); the next
run's report step (`deliver_outbox`) delivers what is queued, each message once: a sender claims a
message in the ledger before sending, so two runs delivering at once never both send it.

Reports go out with their files attached; secrets never enter a message (the hook reads them from
the connection). Failure, deadline and threshold alerts build on this.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# a sender that died mid-send holds its claim this long; then another run may take the message over
CLAIM_STALE_AFTER = timedelta(minutes=15)
# an alert still undelivered after this is itself an error in the run's log
UNDELIVERED_ERROR_AFTER = timedelta(hours=1)


def send_email(to: list[str], subject: str, html: str, attachments: dict[str, str] | None = None, conn_id: str = "smtp_default") -> None:
    """Record the message in the outbox and try to deliver it now. Never raises: a message that
    cannot go now stays queued (with the error) for the next run to deliver."""
    from commerce_sync.redact import scrub

    # a boundary: whatever the text quotes (a vendor's error echoing our key), the run's secrets
    # are cut out before the message is kept or sent
    subject, html, attachments = scrub((subject, html, attachments or {}))
    if not to:
        log.warning("no recipients for %r: nothing sent", subject)
        return
    message = {"recipients": list(to), "subject": subject, "html": html, "attachments": attachments or None, "conn_id": conn_id}
    sender = _sender_id()
    try:
        ledger = _ledger()
        message["id"] = ledger.queue_email(list(to), subject, html, attachments, conn_id, claimed_by=sender)
    except Exception:  # noqa: BLE001 - without the ledger, still try the SMTP server itself
        log.exception("could not record %r in the outbox; sending it without a copy", subject)
        try:
            _smtp_send(message)
        except Exception:  # noqa: BLE001
            log.exception("ALERT LOST: %r could neither be recorded nor sent", subject)
        return
    _deliver(ledger, message, sender)


def deliver_outbox(ledger=None, limit: int = 100) -> dict[str, Any]:
    """Deliver queued messages, oldest first, each claimed before it is sent; stop at the first
    failure (the server is likely down: the rest wait for the next run). Returns the outbox's
    state for the run report, and logs at ERROR a message undelivered for over an hour."""
    ledger = ledger or _ledger()
    sender = _sender_id()
    delivered = 0
    try:
        for msg_id in ledger.deliverable_emails(CLAIM_STALE_AFTER, limit):
            message = ledger.claim_email(msg_id, sender, CLAIM_STALE_AFTER)
            if message is None:
                continue  # another run has it
            if not _deliver(ledger, message, sender):
                break
            delivered += 1
        state = outbox_status(ledger)
    except Exception:  # noqa: BLE001 - the outbox is the alerts' business, never the run's
        log.exception("could not deliver the outbox")
        return {"delivered": delivered, "error": "outbox unreadable: see the log"}
    if state["oldest_undelivered_minutes"] is not None and state["oldest_undelivered_minutes"] * 60 > UNDELIVERED_ERROR_AFTER.total_seconds():
        log.error(
            "%d alert e-mail(s) undelivered, the oldest for %d minutes (%r; last error: %s): check the SMTP connection; "
            "they are kept in the ledger's outbox and go out once it answers",
            state["undelivered"], state["oldest_undelivered_minutes"], state["oldest_subject"], state["last_error"],
        )
    return {"delivered": delivered, **state}


def outbox_status(ledger=None) -> dict[str, Any]:
    """Undelivered alerts: how many, how old the oldest is (minutes), and the last error."""
    pending = (ledger or _ledger()).undelivered_emails()
    if not pending:
        return {"undelivered": 0, "oldest_undelivered_minutes": None, "oldest_subject": None, "last_error": None}
    oldest = pending[0]
    created = oldest["created_at"] if oldest["created_at"].tzinfo else oldest["created_at"].replace(tzinfo=timezone.utc)  # SQLite drops the zone
    age = datetime.now(timezone.utc) - created
    errors = [p["last_error"] for p in pending if p["last_error"]]
    return {"undelivered": len(pending), "oldest_undelivered_minutes": int(age.total_seconds() // 60),
            "oldest_subject": oldest["subject"], "last_error": errors[-1] if errors else None}


def _deliver(ledger, message: dict[str, Any], sender: str) -> bool:
    try:
        _smtp_send(message)
    except Exception as exc:  # noqa: BLE001 - whatever the SMTP side raises, the message stays queued
        try:
            ledger.email_failed(message["id"], sender, f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001
            log.exception("could not mark %r as not delivered", message["subject"])
        log.warning("could not send %r now (%s); it stays in the outbox and a later run delivers it", message["subject"], exc)
        return False
    ledger.email_sent(message["id"], sender)
    log.info("sent %r to %d recipient(s)", message["subject"], len(message["recipients"]))
    return True


def _smtp_send(message: dict[str, Any]) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, content in (message.get("attachments") or {}).items():
            path = Path(tmp) / name
            path.write_text(content, encoding="utf-8")
            files.append(str(path))
        with SmtpHook(smtp_conn_id=message["conn_id"]) as hook:
            hook.send_email_smtp(
                to=message["recipients"],
                subject=message["subject"],
                html_content=message["html"],
                files=files or None,
                from_email=hook.from_email or os.environ.get("COMMERCE_SYNC_MAIL_FROM", "commerce-sync@localhost"),
            )


def _ledger():
    from commerce_sync.ledger import Ledger

    return Ledger.from_url()


def _sender_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
