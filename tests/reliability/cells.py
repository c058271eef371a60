"""One fault-matrix cell, shared by the per-pairing test files (test_fault_matrix*.py).

A file per pairing, so the suite's workers (pytest-xdist, one file each) run pairings side by
side; each cell's verdict travels in the test report (user_properties), so the session's table is
printed by the root conftest even when the cells ran in other processes."""

from __future__ import annotations

import logging

import pytest

from tests.leakscan import mail_text
from tests.reliability.matrix import FAULTS, SCENARIOS, run_cell

PROPERTY = "fault_matrix"


def cells(pairing: str) -> list:
    """Every (scenario, fault) cell of one pairing: all faults, or the ones the scenario lists."""
    return [
        pytest.param(s, f, id=f"{s.pairing}/{s.flow}-{f.name}")
        for s in SCENARIOS if s.pairing == pairing
        for f in FAULTS if s.faults is None or f.name in s.faults
    ]


def check_cell(world, scenario, fault, smtp, caplog, capfd, record_property) -> None:
    caplog.set_level(logging.DEBUG)
    smtp.messages.clear()

    def observe() -> dict[str, str]:
        captured = capfd.readouterr()
        return {"task log": caplog.text + captured.out + captured.err, "e-mail": mail_text(smtp.messages)}

    verdict, details = run_cell(world, scenario, fault, observe)
    record_property(PROPERTY, [scenario.pairing, scenario.flow, fault.name, verdict])
    assert verdict == "held", "\n".join(details)
