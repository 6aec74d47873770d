"""More time (gia hạn) on the pages: the partner asks from its link's page, the coordinator
decides from the referral's page; refusals are pages in the reader's language that write
nothing, never a server error; ten requests at once leave one. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import html
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlmodel import Session

from referrals import locale
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.links import link_token
from referrals.models.people import User
from referrals.models.workflow import Event, Extension, Notification, Referral, Step
from referrals.web.app import create_app
from referrals.web.words import UI
from support.domain import ready_referral, row_counts
from support.pages import Clock, csrf_of, logged_in, served, staff_users

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
REASON = "Chờ chị Bí Mật nộp bổ sung giấy khai sinh"


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(dt.UTC)


LAUNCHED = local("2026-12-01 09:00")  # Tuesday; the next step is due Tue 08/12 17:00
NOW = local("2026-12-03 09:00")


def vi(message: str, context: str | None = None, **params: object) -> str:
    """A page's words as the Vietnamese catalog says them today (English until translated)."""
    said = locale.gettext("vi", message, context)
    return said % params if params else said


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture
def clock(rt: Runtime) -> Clock:
    staff_users(rt)
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "mai").values(email="mai@chicuc.example.vn"))
    return Clock(NOW)


@pytest.fixture
def link(rt: Runtime, clock: Clock) -> tuple[str, str]:
    """An ID-papers referral the police accepted: (its code, the link of its first SMS)."""
    code = ready_referral(rt, LAUNCHED)
    with Session(rt.engine) as s:
        message = s.scalars(
            select(Notification.id)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Referral.code == code, Notification.channel == "sms")
        ).first()
    assert message is not None
    token = link_token(rt.ctx.vault, message)
    clock.now = local("2026-12-01 10:00")  # accepted the morning it came
    partner = TestClient(create_app(clock=clock))
    page = partner.get(f"/l/{token}").text
    assert 'id="extend"' not in page  # acknowledging is answered, not put off
    accepted = partner.post(f"/l/{token}", data={"action": "accept", **hidden(page)})
    assert accepted.status_code == 200
    clock.now = NOW
    return code, token


def hidden(page: str) -> dict[str, str]:
    step = re.search(r'name="step" value="([^"]+)"', page)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert step and version, "the page offers no form"
    return {"step": step[1], "version": version[1]}


def extend_form(page: str) -> dict[str, str]:
    found = re.search(
        r'<form method="post" action="(/l/[^"]+/extend)" id="extend-form">(.*?)</form>', page, re.S
    )
    assert found, "the page offers no request for more time"
    return {"action": found[1], **hidden(found[2])}


def request_more_time(web: TestClient, token: str, day: str, reason: str = REASON) -> Any:
    """Open the link's page (the partner sees it, with the client's shared details), then ask."""
    return post_more_time(web, extend_form(web.get(f"/l/{token}").text), day, reason)


def post_more_time(web: TestClient, form: dict[str, str], day: str, reason: str = REASON) -> Any:
    data = {k: v for k, v in form.items() if k != "action"}
    return web.post(
        form["action"], data={**data, "new_date": day, "reason": reason}, follow_redirects=False
    )


def due_of(rt: Runtime, code: str) -> dt.datetime | None:
    with Session(rt.engine) as s:
        return s.scalars(
            select(Step.due_at)
            .join(Referral)
            .where(Referral.code == code, Step.key == "application_received")
        ).one()


def test_within_the_limit_the_page_grants_at_once(
    rt: Runtime, clock: Clock, link: tuple[str, str]
) -> None:
    code, token = link
    web = TestClient(create_app(clock=clock))
    page = web.get(f"/l/{token}").text
    assert 'id="extend"' in page and vi("Ask for more time") in page
    asked = request_more_time(web, token, "11/12/2026")  # three working days past 08/12
    assert asked.status_code == 303
    assert asked.headers["location"].startswith(f"/l/{token}")
    after = web.get(f"/l/{token}").text
    assert 'id="extend-granted"' in after
    assert vi("More time granted: the deadline is now %(day)s.", day="11/12/2026") in html.unescape(
        after
    )
    assert re.search(r"11/12/2026</span>", after)  # the step's line shows the new deadline
    assert due_of(rt, code) == local("2026-12-11 17:00")


def test_beyond_the_limit_the_coordinator_decides_on_the_referrals_page(
    rt: Runtime, clock: Clock, link: tuple[str, str]
) -> None:
    code, token = link
    web = TestClient(create_app(clock=clock))
    asked = request_more_time(web, token, "18/12/2026")
    assert asked.status_code == 303
    waiting = web.get(f"/l/{token}").text
    assert 'id="extend-waiting"' in waiting and 'id="extend-form"' not in waiting
    assert 'name="action" value="done"' in waiting  # the step itself can still be answered
    assert due_of(rt, code) == local("2026-12-08 17:00")

    # A manager sees that one waits, but not the reason, and cannot decide.
    hoa = logged_in(clock, "hoa")
    seen = hoa.get(f"/referrals/{code}").text
    assert 'id="extensions"' in seen and REASON not in html.unescape(seen)
    assert 'id="extension-grant"' not in seen

    mai = logged_in(clock, "mai")
    page = mai.get(f"/referrals/{code}").text
    shown = text_of(page)
    assert REASON in shown and "08/12/2026" in shown and "18/12/2026" in shown
    assert 'id="extension-grant"' in page and 'id="extension-refuse"' in page
    assert vi("Agree", "more time") in shown and vi("Do not agree", "more time") in shown
    with Session(rt.engine) as s:
        (extension,) = s.scalars(select(Extension.id)).all()
        viewed = s.scalars(
            select(Event.actor).where(Event.kind == "pii.viewed", Event.actor.like("user:%"))
        ).all()
    assert viewed == ["user:mai"]  # the manager's view showed no reason: nothing to record

    path = f"/referrals/{code}/extensions/{extension}"
    forged = mai.post(path, data={"decision": "grant"}, follow_redirects=False)
    assert forged.status_code == 403  # no CSRF token: refused before anything
    granted = mai.post(
        path, data={"csrf": csrf_of(page), "decision": "grant"}, follow_redirects=False
    )
    assert granted.status_code == 303
    assert due_of(rt, code) == local("2026-12-18 17:00")
    after = mai.get(f"/referrals/{code}").text
    assert 'id="extensions"' not in after  # nothing waits any more
    timeline = text_of(after.split('id="timeline"')[1].split("</ol>")[0])
    for kind in ("extension.requested", "extension.granted"):
        assert UI["vi"]["event_" + kind] in timeline
    assert "18/12/2026" in timeline and "extension." not in timeline  # words, never keys
    # Again (a second tab, a double tap): the request is decided, 409, nothing more written.
    before = row_counts(rt)
    again = mai.post(path, data={"csrf": csrf_of(page), "decision": "refuse"})
    assert again.status_code == 409 and UI["vi"]["err_extension_decided"] in again.text
    assert row_counts(rt) == before
    partner = web.get(f"/l/{token}").text
    assert 'id="extend-granted"' in partner and 'id="extend-form"' in partner


def test_staff_who_may_not_decide_are_refused(
    rt: Runtime, clock: Clock, link: tuple[str, str]
) -> None:
    code, token = link
    web = TestClient(create_app(clock=clock))
    request_more_time(web, token, "18/12/2026")
    with Session(rt.engine) as s:
        (extension,) = s.scalars(select(Extension.id)).all()
    path = f"/referrals/{code}/extensions/{extension}"
    before = row_counts(rt)
    for user, status in (("hoa", 403), ("binh", 404)):
        browser = logged_in(clock, user)
        token_ = csrf_of(browser.get("/cases").text)
        answer = browser.post(path, data={"csrf": token_, "decision": "grant"})
        assert answer.status_code == status, (user, answer.status_code)
    mai = logged_in(clock, "mai")
    csrf = csrf_of(mai.get(f"/referrals/{code}").text)
    before = row_counts(rt)  # the page's view of the reason is on record; then nothing more
    for data, status in (
        ({"decision": "maybe"}, 400),
        ({"decision": "grant"}, 404),
    ):
        target = path if status == 400 else f"/referrals/{code}/extensions/{extension + 99}"
        answer = mai.post(target, data={"csrf": csrf, **data})
        assert answer.status_code == status
    assert (
        mai.post(f"/referrals/{code}/extensions/99999999999", data={"csrf": csrf}).status_code
        == 404
    )
    assert row_counts(rt) == before


@pytest.mark.parametrize(
    ("day", "reason", "status", "said"),
    [
        (
            "31/02/2026",
            REASON,
            400,
            ("The date is not valid: write it as dd/mm/yyyy, e.g. 31/12/2026.", {}),
        ),
        (
            "08/12/2026",
            REASON,
            422,
            ("The new date must be after the current deadline (%(due)s).", {"due": "08/12/2026"}),
        ),
        (
            "02/12/2026",
            REASON,
            422,
            ("The new date must be after the current deadline (%(due)s).", {"due": "08/12/2026"}),
        ),
        (
            "01/06/2027",
            REASON,
            422,
            ("Choose a date at most %(days)s days from today.", {"days": 90}),
        ),
        (
            "18/12/2026",
            "x" * 301,
            400,
            ("Please say why more time is needed, in at most 300 characters.", {}),
        ),
        (
            "18/12/2026",
            "   ",
            400,
            ("Please say why more time is needed, in at most 300 characters.", {}),
        ),
    ],
)
def test_a_bad_request_shows_the_page_again_and_writes_nothing(
    rt: Runtime,
    clock: Clock,
    link: tuple[str, str],
    day: str,
    reason: str,
    status: int,
    said: tuple[str, dict[str, object]],
) -> None:
    code, token = link
    web = TestClient(create_app(clock=clock))
    form = extend_form(web.get(f"/l/{token}").text)
    before = row_counts(rt)
    answer = post_more_time(web, form, day, reason)
    assert answer.status_code == status
    page = answer.text
    assert 'id="extend-error"' in page
    message, params = said
    assert vi(message, **params) in html.unescape(page)
    assert f'value="{day}"' in page  # what was typed stays, to correct
    assert row_counts(rt) == before and due_of(rt, code) == local("2026-12-08 17:00")


def test_a_stale_page_a_second_request_and_a_forged_form_are_refused(
    rt: Runtime, clock: Clock, link: tuple[str, str]
) -> None:
    _, token = link
    web = TestClient(create_app(clock=clock))
    old = extend_form(web.get(f"/l/{token}").text)
    assert request_more_time(web, token, "18/12/2026").status_code == 303
    fresh = hidden(web.get(f"/l/{token}").text)  # (the page's view is on the record)
    before = row_counts(rt)
    action = old.pop("action")
    stale = web.post(action, data={**old, "new_date": "21/12/2026", "reason": "again"})
    assert stale.status_code == 409 and 'id="refused"' in stale.text  # the page it came from is old
    second = web.post(action, data={**fresh, "new_date": "21/12/2026", "reason": "again"})
    assert second.status_code == 409
    assert vi("A request for more time already waits for the office's answer.") in html.unescape(
        second.text
    )
    forged = web.post(
        action, data={**fresh, "new_date": "21/12/2026", "reason": "x", "client": "1"}
    )
    assert forged.status_code == 400
    wrong = web.post(
        f"/l/{token[:-1]}{'a' if token[-1] != 'a' else 'b'}/extend",
        data={**fresh, "new_date": "21/12/2026", "reason": "x"},
    )
    assert wrong.status_code == 404
    assert row_counts(rt) == before


def _post(url: str, body: bytes) -> int:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_ten_requests_at_once_leave_one(rt: Runtime, clock: Clock, link: tuple[str, str]) -> None:
    """A double tap, or two contacts at once: one request waits, every other gets a clean
    refusal (the version moved on, or one already waits), never a server error."""
    _, token = link
    form = hidden(TestClient(create_app(clock=clock)).get(f"/l/{token}").text)
    body = urllib.parse.urlencode({**form, "new_date": "18/12/2026", "reason": REASON}).encode()
    with served(clock) as base, ThreadPoolExecutor(10) as pool:
        statuses = Counter(pool.map(lambda _: _post(f"{base}/l/{token}/extend", body), range(10)))
    assert statuses[200] == 1 and set(statuses) <= {200, 409}, statuses  # 303 followed: 200
    with Session(rt.engine) as s:
        assert s.scalar(select(func.count()).select_from(Extension)) == 1
        asked = s.scalar(
            select(func.count()).select_from(Event).where(Event.kind == "extension.requested")
        )
        told = s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.template == "extension.requested")
        )
    assert (asked, told) == (1, 1)
