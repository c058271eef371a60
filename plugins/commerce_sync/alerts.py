"""E-mail to the people a pairing names, through the SMTP provider's hook (connection smtp_default).

Reports go out with their files attached; secrets never enter a message (the hook reads them from
the connection). Failure, deadline and threshold alerts build on this (see the alerting issue).
"""

from __future__ import annotations

import logging
import os
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
