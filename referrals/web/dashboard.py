"""The managers' dashboard: what is late, how partners answer, dead messages, this period's counts.

The late list is in the order a manager acts on it: the longest past its deadline first, each
with the coordinator responsible and how late in its step's unit (hours on the emergency
steps, working days elsewhere: queries/lateness.py). The period report's days are typed as
dd/mm/yyyy (locale/dates.py), whatever the browser's language; a bad one is refused on the
dashboard itself, with what was typed kept.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from referrals.infra.db import transaction
from referrals.locale.dates import NotADay, parse_day
from referrals.models.bounds import EARLIEST, LATEST, check_day
from referrals.models.errors import DomainError, NotFound
from referrals.models.people import Role
from referrals.models.policy import district_scope
from referrals.notifiers.outbox import retry
from referrals.queries.reading import (
    count_overdue,
    count_unconfirmed,
    list_messages,
    list_referrals,
)
from referrals.queries.report import Period, build_report, counts
from referrals.queries.stats import period_starts, scorecard
from referrals.queries.views import pathways
from referrals.reports.render import render
from referrals.web.staff import Me, Staff, require

router = APIRouter(include_in_schema=False)
OVERDUE_ROWS = 300  # the most late; the count above the table is the whole number


@router.get("/dashboard")
def dashboard(me: Me) -> Response:
    return _dashboard_page(me)


def _dashboard_page(
    me: Staff, status: int = 200, error: str | None = None, typed: dict[str, str] | None = None
) -> Response:
    """The dashboard; with `error`, the report form's refusal and the days as they were typed."""
    require(me, Role.manager, Role.admin, Role.coordinator)
    tz = me.rt.settings.tz
    starts = period_starts(me.now, tz)
    scope = district_scope(me.user)  # a coordinator's dashboard is their district's
    with me.reader() as read:
        overdue = list_referrals(
            read,
            tz=tz,
            now=me.now,
            overdue=True,
            district=scope,
            limit=OVERDUE_ROWS,
            calendar=me.rt.ctx.calendar,
        )
        late_count = count_overdue(read, now=me.now, district=scope)
        cards = scorecard(read, since=starts["year"], now=me.now, district=scope)
        dead = list_messages(read, tz=tz, status="dead", limit=50) if me.is_manager else []
        unconfirmed = count_unconfirmed(read, now=me.now) if me.is_manager else None
        periods = {
            name: counts(
                read,
                since=start,
                until=me.now,
                district=scope,
                areas_on=me.now.astimezone(tz).date(),  # today's units (queries/areas.py)
            )
            for name, start in starts.items()
        }
        names = {p["key"]: p for p in pathways(read)}
    # `overdue` comes most late first: the longest past its deadline (queries/reading.py).
    most = max((c["median_ack_hours"] or 0 for c in cards), default=0) or 1
    return me.page(
        "dashboard.html",
        status,
        error=error,
        typed=typed or {},
        overdue=overdue,
        late_count=late_count,
        cards=cards,
        most_hours=most,
        dead=dead,
        unconfirmed=unconfirmed,
        periods=periods,
        names=names,
        starts=starts,
    )


@router.post("/messages/{message_id}/retry")
async def message_retry(
    message_id: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request, me: Me
) -> Response:
    """An admin sends an undeliverable message again, once its address or channel is fixed."""
    require(me, Role.admin)
    await me.form(request)
    try:
        with transaction(me.rt.engine) as s:
            retry(s, message_id=message_id, by=me.user, now=me.now)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except DomainError as exc:  # not failed or dead (any more): nothing to retry
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse("/dashboard", 303)


class _Refused(ValueError):
    """The report form's days cannot make a period; the message is in the page's words."""


def _period(me: Staff, first: str, last: str) -> Period:
    days = []
    for text in (first, last):
        try:
            day = parse_day(text)
        except NotADay as exc:
            raise _Refused(me.why(exc)) from None
        try:
            days.append(check_day(day))
        except ValueError:
            bounds = {"first": f"{EARLIEST:%d/%m/%Y}", "last": f"{LATEST:%d/%m/%Y}"}
            raise _Refused(me.w["err_day_range"] % bounds) from None
    if days[1] < days[0]:
        raise _Refused(me.w["err_period_order"])
    return Period(days[0], days[1], me.rt.settings.tz)


REPORT_TYPES = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
}


@router.get("/report")
def period_report_page(
    me: Me,
    first: Annotated[str, Query(alias="from", max_length=30)],
    last: Annotated[str, Query(alias="to", max_length=30)],
    fmt: Annotated[str, Query(alias="format", pattern="^(html|csv|md|json)$")] = "html",
) -> Response:
    """The period report for the dates asked (a coordinator's for their district), to read in
    the browser (HTML) or download (CSV for Excel, Markdown, JSON). Days as dd/mm/yyyy (or
    ISO); a day that is not one, or a period upside down, is the dashboard again with why."""
    try:
        period = _period(me, first, last)
    except _Refused as refused:
        return _dashboard_page(me, 422, str(refused), {"from": first, "to": last})
    with me.reader() as read:
        data = build_report(
            read,
            period=period,
            calendar=me.rt.ctx.calendar,
            now=me.now,
            district=district_scope(me.user),
            service_groups=me.rt.province.service_groups,
            prices=me.rt.province.province.delivery.prices,
        )
    response = Response(render(data, fmt, lang=me.lang), media_type=REPORT_TYPES[fmt])
    if fmt == "html":  # a standalone page with its own styles, and no script at all
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
        )
    else:
        name = f"report-{period.first}-{period.last}.{fmt}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
