"""The fault matrix for cin7_sfcc: every flow x every injectable fault (matrix.py, cells.py).

`make fault-matrix` runs every pairing's file and prints the table; in the suite each cell is one
test and the table is printed at the end of the session (the root conftest's terminal summary)."""

from __future__ import annotations

import pytest

from tests.reliability.cells import cells, check_cell

pytestmark = [pytest.mark.e2e, pytest.mark.pg, pytest.mark.reliability]


@pytest.mark.parametrize(("scenario", "fault"), cells("cin7_sfcc"))
def test_cell(world, scenario, fault, smtp, caplog, capfd, record_property):
    check_cell(world, scenario, fault, smtp, caplog, capfd, record_property)
