"""Working-day calendar: turns a step's due rule into a UTC instant.

Working days skip weekends and Vietnamese public holidays (Tết included, from the `holidays`
package), plus days the province declares off; weekend days the government declares working
days count. `working_days: N` and `days: N` end at the office's closing time on the Nth day after
the start (the start day is not counted, as Vietnamese law counts procedure deadlines);
`hours: N` is exactly N hours later, any day.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays

from referrals.config.province import DueRule, ProvinceFile


class WorkingCalendar:
    def __init__(
        self,
        tz: ZoneInfo,
        *,
        closes: dt.time = dt.time(17, 0),
        days_off: frozenset[dt.date] = frozenset(),
        days_worked: frozenset[dt.date] = frozenset(),
        country: str = "VN",
    ) -> None:
        self.tz = tz
        self.closes = closes
        self.days_off = days_off
        self.days_worked = days_worked
        self.country = country
        self._working: dict[dt.date, bool] = {}

    @classmethod
    def for_province(cls, province: ProvinceFile, tz: ZoneInfo) -> WorkingCalendar:
        return cls(
            tz,
            closes=province.working_day_ends,
            days_off=frozenset(d.date for d in province.days_off),
            days_worked=frozenset(d.date for d in province.days_worked),
            country=province.country,
        )

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        return holidays.country_holidays(self.country, language="vi")

    def holiday_name(self, day: dt.date) -> str | None:
        return self._holidays.get(day)

    def is_working_day(self, day: dt.date) -> bool:
        known = self._working.get(day)
        if known is None:  # the holidays lookup is slow, and sweeps ask about the same days
            if day in self.days_worked:
                known = True
            elif day.weekday() >= 5 or day in self.days_off:
                known = False
            else:
                known = day not in self._holidays
            self._working[day] = known
        return known

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        day = start
        while n > 0:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day

    def shift(self, instant: dt.datetime, rule: DueRule, *, back: bool = False) -> dt.datetime:
        """`instant` moved by `rule`, keeping its local time of day (a ladder's offsets from a
        deadline: one working day before 17:00 Thursday is 17:00 on the working day before)."""
        sign = -1 if back else 1
        if rule.hours is not None:
            return (instant + sign * dt.timedelta(hours=rule.hours)).astimezone(dt.UTC)
        local = instant.astimezone(self.tz)
        day = local.date()
        if rule.working_days is not None:
            n = rule.working_days
            while n > 0:
                day += dt.timedelta(days=sign)
                n -= self.is_working_day(day)
        else:
            day += dt.timedelta(days=sign * (rule.days or 0))
        return dt.datetime.combine(day, local.time(), tzinfo=self.tz).astimezone(dt.UTC)

    def closing(self, day: dt.date) -> dt.datetime:
        """The UTC instant the office day `day` ends: a deadline a person gives as a date (a
        re-booked appointment, an extension) falls due then, as counted deadlines do."""
        return dt.datetime.combine(day, self.closes, tzinfo=self.tz).astimezone(dt.UTC)

    def due(self, start: dt.datetime, rule: DueRule) -> dt.datetime:
        """The UTC instant by which a step started at `start` is due under `rule`."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if rule.hours is not None:
            return (start + dt.timedelta(hours=rule.hours)).astimezone(dt.UTC)
        local_day = start.astimezone(self.tz).date()
        if rule.working_days is not None:
            day = self.add_working_days(local_day, rule.working_days)
        else:
            day = local_day + dt.timedelta(days=rule.days or 0)
        return self.closing(day)

    def working_days_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Whole working days from `start`'s local date to `end`'s (0 if end is not later)."""
        a, b = start.astimezone(self.tz).date(), end.astimezone(self.tz).date()
        count = 0
        while a < b:
            a += dt.timedelta(days=1)
            count += self.is_working_day(a)
        return count
