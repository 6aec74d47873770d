"""What a coordinator and a manager read, in their words (issue 19): no internal keys on the
Vietnamese pages, the late list most late first with the coordinator responsible, lateness in
hours on the emergency steps (pages and escalation messages alike), dates typed as dd/mm/yyyy.

Expected words are read from the catalogs (`UI`, `locale.gettext`), so these tests hold before
and after a translator rewords them; the keys they look for are the data's own.
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlmodel import Session

from referrals import locale
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.locale.dates import NotADay, parse_day
from referrals.models.directory import Contact
from referrals.models.links import link_token
from referrals.models.people import ConsentMethod
from referrals.models.workflow import Event, Notification, PathwayVersion, Referral
from referrals.notifiers.rendering import render
from referrals.queries.lateness import counts_hours
from referrals.usecases.clients.clients import grant_consent
from referrals.usecases.deadlines.sweeping import sweep
from referrals.usecases.directory.admin import set_contact_active
from referrals.usecases.referrals.launching import LaunchRequest, launch_referrals
from referrals.web.app import create_app
from referrals.web.words import UI
from support.domain import new_client, ready_referral, row_counts
from support.pages import Clock, logged_in, staff_users

MON_0900 = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)  # Mon 30/11/2026 09:00 in Nha Trang
VI = UI["vi"]


def vi(message: str, **params: object) -> str:
    """A page's message as the Vietnamese catalog says it today (English until translated)."""
    said = locale.gettext("vi", message)
    return said % params if params else said


def visible(page: str) -> str:
    """A page's text as a person reads it: no tags, no attribute values, entities decoded, and
    no e-mail addresses (a contact's may hold its partner's key, as any address may)."""
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    return re.sub(r"\s+", " ", re.sub(r"\S+@\S+", " ", text))


def keys_of(rt: Runtime) -> set[str]:
    """Every internal key a page could leak: districts, partners, pathways, step keys."""
    with rt.engine.connect() as c:
        found = {r[0] for r in c.exec_driver_sql("SELECT key FROM area")}
        found |= {r[0] for r in c.exec_driver_sql("SELECT slug FROM organization")}
        found |= {r[0] for r in c.exec_driver_sql("SELECT key FROM pathwayversion")}
    return found | {"acknowledge", "application_received", "client_confirmed"}


def emergency(rt: Runtime, at: dt.datetime, coordinator: str = "binh") -> str:
    """A temporary-accommodation referral in Ninh Hòa, launched by `coordinator` at `at`."""
    client = new_client(rt, at, district="ninh-hoa")
    with transaction(rt.engine) as s:
        grant_consent(
            s,
            client_code=client,
            partner="social-work-centre",
            purpose="emergency_shelter",
            method=ConsentMethod.written,
            by=rt.user(s),
            now=at,
        )
    with transaction(rt.engine) as s:
        request = LaunchRequest(
            client_code=client, pathway="emergency_shelter", partner="social-work-centre"
        )
        return launch_referrals(
            s, requests=[request], coordinator=rt.user(s, coordinator), ctx=rt.ctx, now=at
        )[0]


@pytest.fixture
def clock(rt: Runtime, now: dt.datetime) -> Clock:
    staff_users(rt)
    return Clock(now)


def test_parse_day_reads_the_office_way_and_refuses_the_rest() -> None:
    assert parse_day("03/12/2026") == dt.date(2026, 12, 3)  # 3 December, never 12 March
    assert parse_day(" 3/12/2026 ") == parse_day("03.12.2026") == parse_day("03-12-2026")
    assert parse_day("03122026") == parse_day("2026-12-03") == dt.date(2026, 12, 3)
    for bad in ("12/31/2026", "31/02/2026", "2026/12/03", "3/12/26", "", "hôm nay", "٣/١٢/٢٠٢٦"):
        with pytest.raises(NotADay) as refused:
            parse_day(bad)
        assert refused.value.text == bad and "dd/mm/yyyy" in str(refused.value)


def test_the_late_list_is_most_late_first_with_its_coordinator_and_hours(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    """Mon 30/11 09:00: ID papers 2 working days late (due Thu 26/11 17:00), vocational training
    1 working day late (Fri 27/11 17:00), an emergency shelter launched Sunday 09:00 by binh,
    due 11:00, 22 hours late: the list reads in that order, each with its coordinator."""
    papers = ready_referral(rt, now)
    training = ready_referral(rt, now, pathway="vocational_training", partner="van-ninh-vocational")
    shelter = emergency(rt, MON_0900 - dt.timedelta(hours=24))
    clock.now = MON_0900
    sweep(rt.engine, ctx=rt.ctx, now=clock.now)
    hoa = logged_in(clock, "hoa")
    page = hoa.get("/dashboard").text
    table = re.search(r'<table id="overdue".*?</table>', page, re.S)
    assert table, "no late list"
    rows = re.findall(r'<tr class="late" data-code="([^"]+)">(.*?)</tr>', table.group(0), re.S)
    assert [code for code, _ in rows] == [papers, training, shelter]
    cells = {code: visible(row) for code, row in rows}
    assert vi("%(n)s working days late", n=2) in cells[papers]
    assert vi("%(n)s working days late", n=1) in cells[training]
    assert vi("%(n)s h late", n=22) in cells[shelter]
    assert vi("%(n)s working days late", n=0) not in cells[shelter]
    assert "Coordinator NT" in cells[papers] and "Coordinator NH" in cells[shelter]
    assert re.search(r'class="coordinator">Coordinator NH<', rows[2][1])
    # escalated to the district's managers 4 hours after the deadline, said in words
    who = VI["escalated_district_manager"]
    assert vi("reminder %(n)s — %(who)s", n=3, who=who) in cells[shelter]
    assert 'data-level="3"' in rows[2][1]
    # the coordinator's cases say the same of their own
    binh = logged_in(clock, "binh").get("/cases").text
    assert vi("%(n)s h late", n=22) in visible(binh)


def test_escalation_messages_count_hours_on_hour_steps_and_working_days_elsewhere(
    rt: Runtime, now: dt.datetime
) -> None:
    """Level 1 (the partner's backup) 1 h 30 after an emergency deadline says "1 hour late";
    on the ID-papers pathway, working days. Both say why the reader gets it."""
    shelter = emergency(rt, MON_0900, coordinator="mai")  # due 11:00
    papers = ready_referral(rt, now)
    sweep(rt.engine, ctx=rt.ctx, now=MON_0900 + dt.timedelta(hours=3, minutes=30))
    with Session(rt.engine) as s:
        rows = s.scalars(
            select(Notification)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Notification.template == "step.escalation", Notification.contact_id.is_not(None))
            .order_by(Notification.id)
        ).all()
        by_code = {
            code: n
            for n in rows
            for code in [s.get(Referral, n.referral_id).code]  # type: ignore[union-attr]
        }
    assert set(by_code) == {shelter, papers}
    hour, day = by_code[shelter], by_code[papers]
    assert hour.context["hours_late"] == 1 and hour.context["escalated_to"] == "partner_backup"
    assert day.context["hours_late"] is None and day.context["days_late"] == 2
    tz = rt.settings.tz
    extra = {"link": "https://x.example/l/t", "sender": "TNXH"}
    mail = render(
        "step.escalation", channel="email", language="vi", context=hour.context | extra, tz=tz
    )
    assert "quá hạn 1 giờ" in mail.body and "ngày làm việc" not in mail.body + str(mail.subject)
    assert "người liên hệ chính của đơn vị chưa trả lời" in mail.body and "mức" not in mail.body
    sms = render(
        "step.escalation", channel="sms", language="vi", context=hour.context | extra, tz=tz
    )
    assert "quá hạn 1 giờ" in sms.body
    other = render(
        "step.escalation", channel="email", language="en", context=day.context | extra, tz=tz
    )
    assert "2 working days late" in str(other.subject) and "backup" not in other.body
    assert "first contact has not answered" in other.body
    # a message queued before this change (no hours_late, no escalated_to) still renders
    old = {k: v for k, v in day.context.items() if k not in ("hours_late", "escalated_to")}
    assert (
        "2 ngày làm việc"
        in render(
            "step.escalation", channel="email", language="vi", context=old | extra, tz=tz
        ).body
    )


def test_hour_counted_steps_come_from_the_pathway_definition(rt: Runtime) -> None:
    with Session(rt.engine) as s:
        defs = {p.key: p.definition for p in s.scalars(select(PathwayVersion))}
    assert counts_hours(defs["emergency_shelter"], "acknowledge", urgent=False)
    assert counts_hours(
        defs["emergency_aid"], "client_confirmed", urgent=False
    )  # days, hourly ladder
    assert counts_hours(defs["health_check"], "acknowledge", urgent=True)  # urgent_due: 4 hours
    assert not counts_hours(defs["health_check"], "acknowledge", urgent=False)
    assert not counts_hours(defs["id_papers"], "card_issued", urgent=True)
    assert not counts_hours(defs["legal_aid"], "case_closed", urgent=False)  # 30 calendar days


def test_vietnamese_pages_show_names_not_keys(rt: Runtime, clock: Clock, now: dt.datetime) -> None:
    """A late, escalated referral with an undeliverable message and a deactivated contact: the
    cases, dashboard, referral, admin and contact pages, read in Vietnamese, show districts,
    partners, services, steps, channels, actors and escalation levels by name."""
    code = ready_referral(rt, now)
    with transaction(rt.engine) as s:
        s.execute(
            update(Notification)
            .where(Notification.channel == "email")
            .values(status="dead", attempts=6, last_error="550 no such mailbox")
        )
        contact = s.scalars(select(Contact.id).order_by(Contact.id)).first()
    with transaction(rt.engine) as s:
        set_contact_active(s, contact_id=contact, active=False, by=rt.user(s, "admin"), now=now)
    clock.now = MON_0900
    sweep(rt.engine, ctx=rt.ctx, now=clock.now)
    keys = keys_of(rt)
    pages = {
        "mai": ["/cases", "/cases?all=1", "/dashboard", f"/referrals/{code}"],
        "hoa": ["/cases", "/dashboard", f"/referrals/{code}"],
        "admin": ["/admin", f"/admin/contacts/{contact}", "/dashboard", f"/referrals/{code}"],
    }
    for user, paths in pages.items():
        browser = logged_in(clock, user)
        for path in paths:
            answer = browser.get(path)
            assert answer.status_code == 200, (user, path)
            text = visible(answer.text)
            leaked = sorted(
                k for k in keys if re.search(rf"(?<![\w-]){re.escape(k)}(?![\w-])", text)
            )
            assert leaked == [], (user, path, leaked)
            for raw in ("EMAIL", "system:sweep", "user:", "contact:", " mức ", "level "):
                assert raw not in text, (user, path, raw)
    shown = visible(logged_in(clock, "mai").get(f"/referrals/{code}").text)
    assert VI["actor_system"] in shown and VI["channel_sms"] in shown
    assert VI["escalated_partner_backup"] in shown  # level 1, a working day after the deadline
    assert "Phường Nha Trang" in visible(logged_in(clock, "mai").get("/cases").text)  # header
    admin = visible(logged_in(clock, "admin").get(f"/admin/contacts/{contact}").text)
    by = vi("Deactivated by %(who)s at %(day)s.", who="Admin", day="09:00 23/11/2026")
    assert by in admin  # the admin's name, not `user:admin`


def test_dates_are_typed_and_shown_as_dd_mm_yyyy(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    """The report form shows dd/mm/yyyy, takes it (and ISO), and refuses a bad day on the page
    with what was typed; no native date field anywhere on these pages."""
    ready_referral(rt, now)
    hoa = logged_in(clock, "hoa")
    board = hoa.get("/dashboard").text
    assert 'type="date"' not in board
    assert 'name="from" required value="01/01/2026"' in board
    assert 'name="to" required value="23/11/2026"' in board and 'placeholder="dd/mm/yyyy"' in board
    report = hoa.get("/report", params={"from": "01/11/2026", "to": "30/11/2026", "format": "json"})
    assert report.status_code == 200 and report.json()["period"]["from"] == "2026-11-01"
    bad = hoa.get("/report", params={"from": "31/02/2026", "to": "30/11/2026"})
    assert bad.status_code == 422 and 'id="error"' in bad.text
    assert html.escape(VI["err_bad_day"] % {"text": "31/02/2026"}, quote=False) in bad.text
    assert 'value="31/02/2026"' in bad.text and 'value="30/11/2026"' in bad.text
    upside = hoa.get("/report", params={"from": "30/11/2026", "to": "01/11/2026"})
    assert upside.status_code == 422 and html.escape(VI["err_period_order"]) in upside.text
    far = hoa.get("/report", params={"from": "01/01/1999", "to": "01/11/2026"})
    assert far.status_code == 422 and "01/01/2000" in far.text


def test_a_partner_types_the_date_as_dd_mm_yyyy(rt: Runtime, now: dt.datetime) -> None:
    """The partner's page takes 05/12/2026 as 5 December; 12/31/2026 is refused, saying how to
    write it, and changes nothing."""
    code = ready_referral(rt, now)
    web = TestClient(create_app(clock=Clock(now)))
    with Session(rt.engine) as s:
        first = s.scalars(
            select(Notification.id).where(Notification.template == "referral.new")
        ).first()
    assert web.post(f"/l/{link_token(rt.ctx.vault, first)}", data={"action": "accept"}).is_success
    # the next step is overdue (before the no-show's 2 working days past it: still the partner's)
    sweep(rt.engine, ctx=rt.ctx, now=now + dt.timedelta(days=10))
    with Session(rt.engine) as s:
        notice = s.scalars(
            select(Notification.id).where(
                Notification.template == "step.overdue", Notification.contact_id.is_not(None)
            )
        ).first()
    token = link_token(rt.ctx.vault, notice)
    page = web.get(f"/l/{token}").text
    assert 'name="on"' in page and 'type="date"' not in page and 'placeholder="dd/mm/yyyy"' in page
    before = row_counts(rt)
    refused = web.post(f"/l/{token}", data={"action": "done", "on": "12/31/2026"})
    assert refused.status_code == 400 and 'id="error"' in refused.text
    assert 'value="12/31/2026"' in refused.text and row_counts(rt) == before
    done = web.post(f"/l/{token}", data={"action": "done", "on": "05/12/2026"})
    assert done.status_code == 200 and 'id="thanks"' in done.text
    with Session(rt.engine) as s:
        answered = s.scalars(
            select(Event.data)
            .join(Referral, Referral.id == Event.referral_id)
            .where(Referral.code == code, Event.kind == "link.answered")
            .order_by(Event.id.desc())  # type: ignore[union-attr]
        ).first()
    assert answered and answered["on"] == "2026-12-05"


def test_error_pages_speak_the_page_language_and_keep_tools_sentences_out(
    rt: Runtime, clock: Clock, now: dt.datetime
) -> None:
    """A Vietnamese error page shows its heading in Vietnamese, never the English sentence (a
    username, a path) written for tools; the English page keeps it."""
    hoa = logged_in(clock, "hoa")  # a manager: /admin is not theirs
    page = hoa.get("/admin")
    assert page.status_code == 403
    assert vi("You may not do this.") in page.text and "hoa" not in visible(page.text)
    unknown = hoa.get("/referrals/R-00000-00000")
    assert unknown.status_code == 404 and "unknown referral" not in unknown.text
    hoa.cookies.set("lang", "en")
    assert "admin" in visible(hoa.get("/admin").text)  # the English detail, for who reads it


def test_every_kind_of_message_has_a_name_on_the_referral_page() -> None:
    """The page's messages table names each message in words, never by its template key."""
    from referrals.notifiers.messages import Template
    from referrals.web.words import STAFF

    assert {f"template_{t.value}" for t in Template} <= set(STAFF)


@pytest.mark.parametrize(
    ("field", "typed", "said"),
    [
        ("phone", "0905 1", "không phải số điện thoại"),
        ("id_number", "0123456789", "9 (CMND) hoặc 12 (CCCD) chữ số"),
        ("name", "x" * 121, "Tối đa 120 ký tự"),
    ],
)
def test_a_typo_in_the_client_form_is_refused_in_vietnamese(
    rt: Runtime, now: dt.datetime, field: str, typed: str, said: str
) -> None:
    """A coordinator's typo is told in the office's words, not pydantic's English."""
    from support.pages import logged_in, post_form, staff_users

    staff_users(rt)
    mai = logged_in(Clock(now), "mai")
    form = {"name": "Nguyễn Thị Sai", "phone": "0905 888 777", "id_number": ""} | {field: typed}
    refused = post_form(mai, "/clients", "/clients", **form)
    assert refused.status_code == 422
    assert said in html.unescape(refused.text)
    assert "is not a" not in refused.text and "should have" not in refused.text


def test_who_opened_the_clients_details_is_folded_under_the_timeline(
    rt: Runtime, now: dt.datetime
) -> None:
    """Each visit of the partner's page that shows the client is on record, apart from the
    referral's own events: three visits, one line of the timeline's worth."""
    from support.pages import logged_in, staff_users

    code = ready_referral(rt, now)
    with Session(rt.engine) as s:
        first = s.scalars(
            select(Notification.id).join(Referral).where(Referral.code == code)
        ).first()
    partner = TestClient(create_app(clock=Clock(now)))
    for _ in range(3):
        assert partner.get(f"/l/{link_token(rt.ctx.vault, first)}").status_code == 200
    staff_users(rt)
    page = logged_in(Clock(now), "mai").get(f"/referrals/{code}").text
    timeline = page.split('id="timeline"')[1].split("</ol>")[0]
    folded = page.split('id="access"')[1].split("</details>")[0]
    assert 'data-kind="pii.viewed"' not in timeline and 'data-kind="referral.requested"' in timeline
    assert folded.count('data-kind="pii.viewed"') == 3 and "3 lần" in folded
