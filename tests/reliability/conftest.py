"""Reliability tests share the end-to-end fixtures (emulators, PostgreSQL ledger, SMTP, mappings)."""

from tests.e2e.conftest import *  # noqa: F401,F403 - fixtures: sandbox, mappings, mailbox, wired, john_lewis, fast_pairings, ...


def pytest_terminal_summary(terminalreporter):
    """The fault matrix's table, whenever its cells ran."""
    from tests.reliability.matrix import table
    from tests.reliability.test_fault_matrix import RESULTS

    if RESULTS:
        terminalreporter.write_sep("=", "fault matrix: flow x fault -> held / broken")
        terminalreporter.write_line(table(RESULTS))
