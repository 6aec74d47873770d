"""Working-day deadlines across weekends, Tết 2026 and 2027, 30/4-1/5, and hours rules."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referrals.config.province import DueRule
from referrals.infra.calendar import WorkingCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkingCalendar(VN)


def local(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=VN)


def due_local(start: dt.datetime, **rule: int) -> dt.datetime:
    return CAL.due(start, DueRule(**rule)).astimezone(VN)


@pytest.mark.parametrize(
    ("start", "rule", "expected"),
    [
        # Friday before Tết 2026: the weekend and Tết (16-20/02) do not count.
        (local(2026, 2, 13), {"working_days": 2}, local(2026, 2, 24, 17)),
        (local(2026, 2, 13), {"working_days": 7}, local(2026, 3, 3, 17)),
        # Tết 2027 runs 04/02 (29 Tết) to 10/02.
        (local(2027, 2, 3), {"working_days": 1}, local(2027, 2, 11, 17)),
        # 30/4 and 1/5 2026 (Thu, Fri) and the weekend.
        (local(2026, 4, 29), {"working_days": 1}, local(2026, 5, 4, 17)),
        # 2027: 30/4 Friday, 1/5 Saturday observed on Monday 3/5.
        (local(2027, 4, 29), {"working_days": 2}, local(2027, 5, 5, 17)),
        # A plain week: Friday + 1 working day is Monday.
        (local(2026, 3, 6), {"working_days": 1}, local(2026, 3, 9, 17)),
        # Calendar days ignore holidays.
        (local(2026, 2, 13), {"days": 7}, local(2026, 2, 20, 17)),
        # Hours run through nights and Tết.
        (local(2026, 2, 16, 23), {"hours": 2}, local(2026, 2, 17, 1)),
        (local(2026, 2, 14, 20, 30), {"hours": 24}, local(2026, 2, 15, 20, 30)),
    ],
)
def test_due_dates(start: dt.datetime, rule: dict[str, int], expected: dt.datetime) -> None:
    assert due_local(start, **rule) == expected


def test_due_is_stored_in_utc() -> None:
    due = CAL.due(local(2026, 3, 6), DueRule(working_days=1))
    assert due.tzinfo == dt.UTC and due == dt.datetime(2026, 3, 9, 10, 0, tzinfo=dt.UTC)


def test_late_evening_start_counts_from_the_local_date() -> None:
    # 23:30 local on Friday is 16:30 UTC the same day; a UTC calendar would get this wrong
    # only near midnight, so take 00:30 local Saturday = 17:30 UTC Friday.
    start = dt.datetime(2026, 3, 6, 17, 30, tzinfo=dt.UTC)
    assert start.astimezone(VN).date() == dt.date(2026, 3, 7)
    assert due_local(start, working_days=1) == local(2026, 3, 9, 17)


def test_province_days_off_and_days_worked() -> None:
    cal = WorkingCalendar(
        VN, days_off=frozenset({dt.date(2026, 3, 9)}), days_worked=frozenset({dt.date(2026, 3, 7)})
    )
    assert cal.due(local(2026, 3, 6), DueRule(working_days=1)).astimezone(VN) == local(
        2026, 3, 7, 17
    )
    assert cal.due(local(2026, 3, 6), DueRule(working_days=2)).astimezone(VN) == local(
        2026, 3, 10, 17
    )


def test_tet_is_named_in_vietnamese() -> None:
    assert "Tết" in (CAL.holiday_name(dt.date(2026, 2, 17)) or "")


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(
        min_value=dt.datetime(2026, 1, 1),
        max_value=dt.datetime(2027, 12, 1),
        timezones=st.just(dt.UTC),
    ),
    n=st.integers(min_value=1, max_value=15),
)
def test_working_day_due_is_n_working_days_later_at_closing(start: dt.datetime, n: int) -> None:
    due = due_local(start, working_days=n)
    assert due.time() == dt.time(17, 0)
    assert CAL.is_working_day(due.date())
    assert CAL.working_days_between(start, due) == n
