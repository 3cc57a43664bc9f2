"""Every network fault: a bounded exit, nothing lost once the network heals, no crash."""

from __future__ import annotations

import pytest

from tests.fakes.faults import run_matrix, table


def test_fault_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    base, rows = run_matrix()
    with capsys.disabled():
        print("\n" + table(base, rows))
    for row in rows:
        assert not row.crashed, row
        # hard bound well above the 300 ms budget: the figure itself is in the table
        assert row.delay_s < 1.0, row
        assert row.duplicates == 0, row
        if row.fault == "400":
            assert row.delivered == 0 and row.dropped == 5, row  # rejected: cannot succeed
        else:
            assert row.lost == 0, row
