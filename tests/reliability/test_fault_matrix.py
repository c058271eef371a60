"""The fault matrix (see matrix.py): every flow of both pairings x every injectable fault.

`make fault-matrix` runs it and prints the table; in the suite each cell is one test, and the
table is printed at the end of the session (conftest's terminal summary)."""

from __future__ import annotations

import logging

import pytest

from tests.leakscan import mail_text
from tests.reliability.matrix import cells, run_cell

pytestmark = [pytest.mark.e2e, pytest.mark.pg, pytest.mark.reliability]
RESULTS: dict[tuple[str, str, str], str] = {}


@pytest.mark.parametrize("scenario, fault", cells(), ids=[f"{s.pairing}/{s.flow}-{f.name}" for s, f in cells()])
def test_cell(world, scenario, fault, smtp, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    smtp.messages.clear()

    def observe() -> dict[str, str]:
        captured = capfd.readouterr()
        return {"task log": caplog.text + captured.out + captured.err, "e-mail": mail_text(smtp.messages)}

    verdict, details = run_cell(world, scenario, fault, observe)
    RESULTS[(scenario.pairing, scenario.flow, fault.name)] = verdict
    assert verdict == "held", "\n".join(details)
