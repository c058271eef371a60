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

from tests.leakscan import leaks, ledger_text, mail_text, secrets
from tests.reliability.matrix import SCENARIOS, World, run_flow, window

pytestmark = [pytest.mark.e2e, pytest.mark.pg]

# what the emulators' buyers carry (tests/builders.py, sandbox/mirakl_builders.py)
PERSONAL = [
    "alex.buyer@example.com", "+61 400 000 000", "1 Test St",  # Marketplacer invoices
    "171 Victoria Street", "+44 20 7828 1000", "@notification.mirakl.net", "SW1E 5NN",  # Mirakl orders
]


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
