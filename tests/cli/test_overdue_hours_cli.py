"""`referrals list --overdue` says how late in the step's unit: "22 h" on an hour-counted step
(the emergency pathways), where working days would read 0 until the next morning.

In-process: tests/cli/test_cli_processes.py already runs `list --overdue` in a fresh process.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from referrals.infra.runtime import Runtime
from support.domain import cli, ready_referral

MON_0900 = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)  # Mon 30/11/2026 09:00 in Nha Trang


def late_column(out: str) -> dict[str, str]:
    """The table's "late" cell of each referral, by code (cells are two spaces apart)."""
    header, *rows = [line for line in out.splitlines() if line.strip()]
    names = re.split(r"\s{2,}", header.strip())
    cells = [re.split(r"\s{2,}", row.strip()) for row in rows]
    return {c[0]: c[names.index("late")] for c in cells}


def test_the_overdue_table_counts_hours_on_hour_steps_and_working_days_elsewhere(
    rt: Runtime, capsys: pytest.CaptureFixture[str], now: dt.datetime
) -> None:
    """Mon 30/11 09:00: ID papers due Thu 26/11 17:00 are 2 working days late; a temporary
    accommodation launched Sunday 09:00, due 11:00, is 22 hours late."""
    papers = ready_referral(rt, now)
    shelter = ready_referral(
        rt,
        MON_0900 - dt.timedelta(hours=24),
        pathway="emergency_shelter",
        partner="social-work-centre",
    )
    code, out, err = cli(capsys, "list", "--overdue", "--now", "2026-11-30T09:00")
    assert code == 0, err
    header = out.splitlines()[0]
    assert "late" in header.split() and "working days late" not in header
    assert late_column(out) == {papers: "2 working days", shelter: "22 h"}

    # one hour later, the hour step reads 23 h; a working day is a working day
    code, out, err = cli(capsys, "list", "--overdue", "--now", "2026-11-30T10:00")
    assert code == 0, err
    assert late_column(out) == {papers: "2 working days", shelter: "23 h"}
    code, out, err = cli(capsys, "list", "--overdue", "--now", "2026-11-27T09:00")
    assert code == 0, err
    assert late_column(out) == {papers: "1 working day"}
