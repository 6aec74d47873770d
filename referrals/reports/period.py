"""The period report from a read-only connection, in the format asked for (`referrals report`,
the `period-report` flow)."""

from __future__ import annotations

import datetime as dt

from referrals.config import load_province
from referrals.config.settings import get_settings
from referrals.infra.calendar import WorkingCalendar
from referrals.locale.dates import parse_day  # the one parser of typed days (also the pages')
from referrals.models.policy import listing_district
from referrals.queries.reading import Reader, acting_user
from referrals.queries.report import Period, build_report
from referrals.reports.render import render


def period_report(
    *,
    first: str,
    last: str,
    fmt: str,
    now: dt.datetime,
    district: str | None = None,
    lang: str = "vi",
    user: str | None = None,
    areas_as_of: str | None = None,
) -> str:
    """The report as text; for `user` (a username), within what the policy lets them see;
    grouped by the units in force at the period's end, or on `areas_as_of` (a day typed)."""
    if lang not in ("vi", "en"):
        raise ValueError(f"unknown language {lang!r} (vi or en)")
    settings = get_settings()
    period = Period(parse_day(first), parse_day(last), settings.tz)
    province = load_province(settings.config_dir)
    calendar = WorkingCalendar.for_province(province.province, settings.tz)
    with Reader.open(settings.database_url) as reader:
        if user:
            district = listing_district(acting_user(reader, user), district)
        if district is not None and not reader.rows(
            "SELECT key FROM area WHERE key = :key", key=district
        ):
            raise ValueError(f"unknown district {district!r}")
        data = build_report(
            reader,
            period=period,
            calendar=calendar,
            now=now,
            district=district,
            areas_on=parse_day(areas_as_of) if areas_as_of else None,
            service_groups=province.service_groups,
            prices=province.province.delivery.prices,
        )
    return render(data, fmt, lang=lang)
