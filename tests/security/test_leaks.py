"""No secret and no buyer's personal data leaves the flows in what people and tools read: the task
logs, the ledger (payload log, run reports, stored reports and files, quarantine, staging) and
the e-mails. Every flow of both pairings runs with known secret values (the connections' keys)
and known personal values (the buyers' e-mail addresses, phone numbers and street addresses in
the emulators' orders), on its good path, its quarantine path and an API error path; then
everything is scanned for those values."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import requests
from sqlalchemy import MetaData, create_engine, select

from commerce_sync import airflow_settings
from tests.reliability.matrix import SCENARIOS, World, run_flow, window

pytestmark = [pytest.mark.e2e, pytest.mark.pg]

# what the emulators' buyers carry (tests/builders.py, sandbox/mirakl_builders.py)
PERSONAL = [
    "alex.buyer@example.com", "+61 400 000 000", "1 Test St",  # Marketplacer invoices
    "171 Victoria Street", "+44 20 7828 1000", "@notification.mirakl.net", "SW1E 5NN",  # Mirakl orders
]


def secrets() -> list[str]:
    """The connections' credentials, as airflow_settings.yaml gives them to every run."""
    values = []
    for c in airflow_settings.read()["connections"]:
        values += [str(c[k]) for k in ("conn_login", "conn_password") if c.get(k)]
    return values


def ledger_text(url: str) -> dict[str, str]:
    """Every table of the ledger as text, binary columns decoded as far as they decode."""
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    out = {}
    try:
        with engine.connect() as conn:
            for name, table in meta.tables.items():
                parts = []
                for row in conn.execute(select(table)):
                    for value in row:
                        parts.append(value.decode("latin-1") if isinstance(value, (bytes, memoryview)) and not isinstance(value, memoryview) else
                                     bytes(value).decode("latin-1") if isinstance(value, memoryview) else str(value))
                out[f"ledger table {name}"] = "\n".join(parts)
    finally:
        engine.dispose()
    return out


def mail_text(messages) -> str:
    parts = []
    for m in messages:
        parts.append(str(m))
        for part in m.walk():
            payload = part.get_payload(decode=True)
            if payload:
                parts.append(payload.decode("utf-8", "replace"))
    return "\n".join(parts)


def leaks(texts: dict[str, str], needles: list[str]) -> list[tuple[str, str]]:
    return [(where, needle) for where, text in texts.items() for needle in needles if needle.lower() in text.lower()]


def test_the_scan_finds_what_it_looks_for():
    """The scan itself can fail: a value planted in a text is found, case-insensitively."""
    assert leaks({"log": "buyer ALEX.BUYER@example.com paid"}, PERSONAL) == [("log", "alex.buyer@example.com")]
    assert leaks({"log": "nothing here"}, PERSONAL + secrets()) == []
    assert len(secrets()) >= 4


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.pairing}/{s.flow}")
def test_no_secret_or_personal_value_in_logs_ledger_or_mail(world: World, scenario, smtp, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    smtp.messages.clear()
    scenario.setup(world)
    start, end = window(world)
    # an API error on the way, so error handling and its messages are scanned too
    target = scenario.targets["write"]
    where = {k: target[k] for k in ("path", "operation", "method") if target.get(k)}
    world.post(target["emulator"], "/_sandbox/faults", {"status_burst": {**where, "status": 500, "count": 1}})
    run_flow(scenario.pairing, scenario.flow, "leak-run-1", start, end)
    requests.delete(f"{world.url(target['emulator'])}/_sandbox/faults", timeout=10)
    assert run_flow(scenario.pairing, scenario.flow, "leak-run-2", start, end) == "success"
    assert run_flow(scenario.pairing, "drift_monitor", "leak-drift", start - timedelta(days=1), end) == "success"

    captured = capfd.readouterr()
    texts = {"task log": caplog.text + captured.out + captured.err, "e-mail": mail_text(smtp.messages), **ledger_text(world.ledger_url)}
    assert "payload_log" in " ".join(texts) and texts["ledger table payload_log"], "the payload log was not written: nothing was scanned"
    found = leaks(texts, secrets() + PERSONAL)
    assert not found, sorted({where for where, _ in found})
