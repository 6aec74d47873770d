"""Issue 20: the client did not come. The partner says so from its link (after confirming), or
the sweep after the pathway's wait; the referral pauses, the coordinator is told once and
chooses: a peer educator reminds the client, the client is booked again, or it closes."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session, col

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Organization
from referrals.models.errors import DomainError, IllegalTransition
from referrals.models.lifecycle import Action
from referrals.models.links import link_token
from referrals.models.people import User
from referrals.models.policy import SYSTEM
from referrals.models.workflow import Event, Notification, Referral, Step
from referrals.usecases.deadlines.sweeping import sweep
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.referrals.answering import Answer, answer_link
from referrals.usecases.referrals.no_show import Rebooking, rebook, remind_through_peer
from support.domain import ready_referral, row_counts
from support.pages import Clock, logged_in, staff_users

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # Tuesday 09:00 in Nha Trang
NAME, PHONE = "Huỳnh Thị Xuân", "0905112358"


def at(days: float) -> dt.datetime:
    return NOW + dt.timedelta(days=days)


@pytest.fixture
def accepted(rt: Runtime) -> tuple[str, str]:
    """An ID-papers referral the police accepted: the referral's code and its link; the
    coordinator reads her mail."""
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "mai").values(email="mai@chicuc.example.vn"))
    return _accepted(rt, NAME, PHONE)


def _accepted(rt: Runtime, name: str, phone: str) -> tuple[str, str]:
    code = ready_referral(rt, NOW, name=name, phone=phone)
    token = _link(rt, code)
    _answer(rt, token, "accept", "acknowledge", NOW + dt.timedelta(hours=1))
    return code, token


def _printed(rt: Runtime, code: str, when: dt.datetime = NOW) -> None:
    """The coordinator printed the client's slip: without one, no arrival could be recorded,
    and the sweep infers no no-show."""
    with transaction(rt.engine) as s:
        referral = s.scalars(select(Referral).where(Referral.code == code)).one()
        s.add(Event(referral_id=referral.id, kind="slip.printed", at=when, actor="user:mai"))


def _link(rt: Runtime, code: str) -> str:
    with Session(rt.engine) as s:
        message = s.scalars(
            select(Notification.id)
            .join(Referral, col(Referral.id) == Notification.referral_id)
            .where(Referral.code == code, Notification.channel == "sms")
        ).first()
    assert message is not None
    return link_token(rt.ctx.vault, message)


def _answer(
    rt: Runtime, token: str, action: str, step: str, now: dt.datetime, **more: object
) -> None:
    with transaction(rt.engine) as s:
        answer = Answer.model_validate({"action": action, "step": step, **more})
        answer_link(s, ctx=rt.ctx, token=token, answer=answer, now=now)


def _state(rt: Runtime, code: str) -> tuple[str, str, dt.datetime | None, dt.datetime | None]:
    with Session(rt.engine) as s:
        referral = s.scalars(select(Referral).where(Referral.code == code)).one()
        step = s.scalars(
            select(Step).where(Step.referral_id == referral.id, Step.status == "active")
        ).one()
        return referral.status, step.key, step.due_at, step.next_alert_at


def _kinds(rt: Runtime, code: str, kind: str) -> list[Event]:
    with Session(rt.engine) as s:
        return list(
            s.scalars(
                select(Event)
                .join(Referral, col(Referral.id) == Event.referral_id)
                .where(Referral.code == code, Event.kind == kind)
            )
        )


def _messages(rt: Runtime, code: str, template: str) -> list[Notification]:
    with Session(rt.engine) as s:
        return list(
            s.scalars(
                select(Notification)
                .join(Referral, col(Referral.id) == Notification.referral_id)
                .where(Referral.code == code, Notification.template == template)
            )
        )


def test_the_partner_says_the_client_did_not_come_once_confirmed(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    code, token = accepted
    before = row_counts(rt)
    with pytest.raises(DomainError, match="confirm"), transaction(rt.engine) as s:
        answer = Answer(action="no_show", step="application_received")
        answer_link(s, ctx=rt.ctx, token=token, answer=answer, now=at(1))
    assert row_counts(rt) == before  # unconfirmed: nothing written

    _answer(rt, token, "no_show", "application_received", at(1), confirm=True)
    status, step, _, next_alert = _state(rt, code)
    assert (status, step, next_alert) == ("on-hold", "application_received", None)
    (event,) = _kinds(rt, code, "referral.no_show")
    assert event.data["via"] == "link" and event.actor.startswith("contact:")
    (told,) = _messages(rt, code, "referral.no_show")
    assert told.channel == "email" and told.context["via"] == "link"
    assert NAME not in str(told.context) and PHONE not in str(told.context)
    # the page no longer offers the step: the referral waits on the coordinator
    with pytest.raises(DomainError), transaction(rt.engine) as s:
        answer = Answer(action="done", step="application_received")
        answer_link(s, ctx=rt.ctx, token=token, answer=answer, now=at(1.1))


def test_the_sweep_records_a_no_show_after_the_wait_once(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    code, _ = accepted
    _, _, due, _ = _state(rt, code)
    assert due is not None
    one_day_after = rt.ctx.calendar.shift(due, _working_days(1))
    two_days_after = rt.ctx.calendar.shift(due, _working_days(2))
    # no slip printed: no arrival could be recorded, so nothing is inferred
    assert sweep(rt.engine, ctx=rt.ctx, now=two_days_after).counts["no_show"] == 0
    _printed(rt, code)
    assert sweep(rt.engine, ctx=rt.ctx, now=one_day_after).counts["no_show"] == 0
    assert _state(rt, code)[0] == "accepted"
    assert sweep(rt.engine, ctx=rt.ctx, now=two_days_after).counts["no_show"] == 1
    assert _state(rt, code)[0] == "on-hold"
    assert (
        sweep(rt.engine, ctx=rt.ctx, now=two_days_after + dt.timedelta(days=3)).counts["no_show"]
        == 0
    )
    (event,) = _kinds(rt, code, "referral.no_show")
    assert event.data["via"] == "sweep" and event.actor == "system"
    assert len(_messages(rt, code, "referral.no_show")) == 1


def test_an_arrival_since_the_step_began_keeps_the_sweep_from_recording_a_no_show(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    """An arrival before the watched step began (the client came to acknowledge) does not
    count for it; one since does; so does a request for more time waiting on the office."""
    code, _ = accepted
    _printed(rt, code)
    with transaction(rt.engine) as s:
        referral = s.scalars(select(Referral).where(Referral.code == code)).one()
        s.add(Event(referral_id=referral.id, kind="referral.arrived", at=NOW, actor="slip"))
    assert sweep(rt.engine, ctx=rt.ctx, now=at(30)).counts["no_show"] == 1
    code, _ = _accepted(rt, "Lê Thị Đến", "0905112360")
    _printed(rt, code)
    with transaction(rt.engine) as s:
        referral = s.scalars(select(Referral).where(Referral.code == code)).one()
        s.add(Event(referral_id=referral.id, kind="referral.arrived", at=at(2), actor="slip"))
    assert sweep(rt.engine, ctx=rt.ctx, now=at(30)).counts["no_show"] == 0
    assert _state(rt, code)[0] == "accepted"


def test_a_deadline_moved_under_the_sweep_is_not_a_no_show(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    """The sweep judged by a deadline a partner's extension has just moved: under the lock it
    sees the change and records nothing."""
    from referrals.usecases.referrals.no_show import record_no_show

    code, _ = accepted
    _printed(rt, code)
    _, _, due, _ = _state(rt, code)
    assert due is not None
    with transaction(rt.engine) as s:
        s.execute(
            update(Step).where(Step.status == "active").values(due_at=due + dt.timedelta(days=5))
        )
    before = row_counts(rt)
    with pytest.raises(IllegalTransition), transaction(rt.engine) as s:
        record_no_show(
            s, code=code, by=SYSTEM, ctx=rt.ctx, now=at(30), via="sweep", observed_due=due
        )
    assert row_counts(rt) == before and _state(rt, code)[0] == "accepted"


def test_booking_again_restarts_the_step_and_tells_the_partner_once(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    code, token = accepted
    _answer(rt, token, "no_show", "application_received", at(1), confirm=True)
    before = row_counts(rt)
    with transaction(rt.engine) as s:
        mai = rt.user(s, "mai")
        for day in (at(1).date(), at(0).date(), at(120).date()):  # today, the past, too far
            with pytest.raises(DomainError):
                rebook(s, code=code, booking=Rebooking(on=day), by=mai, ctx=rt.ctx, now=at(1))
    assert row_counts(rt) == before

    new_day = dt.date(2026, 12, 9)
    with transaction(rt.engine) as s:
        rebook(
            s, code=code, booking=Rebooking(on=new_day), by=rt.user(s, "mai"), ctx=rt.ctx, now=at(1)
        )
    status, step, due, next_alert = _state(rt, code)
    assert (status, step) == ("accepted", "application_received")
    assert due == dt.datetime(2026, 12, 9, 10, 0, tzinfo=dt.UTC)  # 17:00 in Nha Trang
    assert next_alert == at(1)  # the ladder starts again from the new deadline
    told = _messages(rt, code, "step.yours")
    assert [(m.channel, m.fallback) for m in told] == [("sms", ["email"])]  # one at a time
    assert all(m.context["why"] == "rebooked" for m in told)
    assert all(NAME not in str(m.context) for m in told)
    with pytest.raises(IllegalTransition), transaction(rt.engine) as s:  # no longer waiting
        rebook(
            s, code=code, booking=Rebooking(on=new_day), by=rt.user(s, "mai"), ctx=rt.ctx, now=at(1)
        )
    # the new deadline's ladder: its reminder fires once, the day before
    reminded = sweep(rt.engine, ctx=rt.ctx, now=dt.datetime(2026, 12, 8, 10, 0, tzinfo=dt.UTC))
    again = sweep(rt.engine, ctx=rt.ctx, now=dt.datetime(2026, 12, 8, 11, 0, tzinfo=dt.UTC))
    assert reminded.counts["reminder"] == 1 and again.counts["reminder"] == 0


def _brought_in_by(rt: Runtime, code: str, group_slug: str) -> tuple[int, str]:
    """The referral's client came through an introduction of `group_slug`: (group id, its code)."""
    from referrals.models.directory import Contact
    from referrals.models.intake import Intake, PeerLink

    with transaction(rt.engine) as s:
        group = s.scalars(select(Organization).where(Organization.slug == group_slug)).one()
        contact = s.scalars(select(Contact.id).where(Contact.organization_id == group.id)).first()
        client_id = s.scalars(select(Referral.client_id).where(Referral.code == code)).one()
        link = PeerLink(contact_id=contact, organization_id=group.id, created_by="user:admin")
        s.add(link)
        s.flush()
        s.add(
            Intake(
                code="GT-TEST0-00001",
                peer_link_id=link.id,
                organization_id=group.id,
                contact_id=contact,
                area_key="nha-trang",
                services=["id_papers"],
                agreed_to_contact=True,
                status="taken",
                client_id=client_id,
            )
        )
        assert group.id is not None
        return group.id, "GT-TEST0-00001"


def _remind(rt: Runtime, code: str, group: int, now: dt.datetime) -> str:
    with transaction(rt.engine) as s:
        return remind_through_peer(
            s,
            code=code,
            group_id=group,
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=now,
            office_phone="0258 000 0100",
        )


def test_the_group_that_brought_the_client_in_is_asked_to_remind_once(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    """By the introduction's code, the one they know; once per no-show however often the
    button is pressed; never a group that did not bring the client in."""
    from referrals.models.errors import NotFound

    code, token = accepted
    group, intake = _brought_in_by(rt, code, "sao-bien-nha-trang")
    with pytest.raises(IllegalTransition):  # nothing to remind of before a no-show
        _remind(rt, code, group, at(1))
    _answer(rt, token, "no_show", "application_received", at(1), confirm=True)
    with Session(rt.engine) as s:
        other = s.scalars(
            select(Organization.id).where(Organization.slug == "sao-bien-ninh-hoa")
        ).one()
    with pytest.raises(NotFound):  # a group that did not bring the client in
        _remind(rt, code, other, at(1.1))
    assert _remind(rt, code, group, at(1.1)) == intake
    assert _remind(rt, code, group, at(1.1)) == intake  # a double click
    told = _messages(rt, code, "client.remind")
    assert told and {m.context["code"] for m in told} == {intake}
    assert len(told) == len({(m.contact_id, m.channel) for m in told})  # each once
    assert len(_kinds(rt, code, "referral.peer_reminded")) == 1
    assert all(NAME not in str(m.context) and PHONE not in str(m.context) for m in told)
    assert _state(rt, code)[0] == "on-hold"  # still waiting on the coordinator


def test_closing_as_unreachable_after_a_no_show(rt: Runtime, accepted: tuple[str, str]) -> None:
    code, token = accepted
    _answer(rt, token, "no_show", "application_received", at(1), confirm=True)
    with transaction(rt.engine) as s:
        advance(
            s,
            code=code,
            action=Action.fail,
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=at(2),
            reason="client_unreachable",
        )
    with Session(rt.engine) as s:
        referral = s.scalars(select(Referral).where(Referral.code == code)).one()
    assert (referral.status, referral.outcome_reason) == ("failed", "client_unreachable")


def test_a_resumed_partner_step_is_the_partners_again(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    code, _ = accepted
    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.hold, by=rt.user(s, "mai"), ctx=rt.ctx, now=at(1))
    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.resume, by=rt.user(s, "mai"), ctx=rt.ctx, now=at(2))
    told = _messages(rt, code, "step.yours")
    assert len(told) == 1 and all(m.context["why"] == "resumed" for m in told)


def test_the_coordinator_chooses_from_the_referral_page(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    code, token = accepted
    _answer(rt, token, "no_show", "application_received", at(1), confirm=True)
    staff_users(rt)
    web = logged_in(Clock(at(1.2)), "mai")
    page = web.get(f"/referrals/{code}").text
    assert 'id="no-show"' in page and 'id="remind"' not in page  # no group brought them in
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert csrf and version
    keep = {"csrf": csrf[1], "version": version[1]}
    bad = web.post(f"/referrals/{code}/no-show/rebook", data=keep | {"on": "31/02/2026"})
    assert bad.status_code == 422 and _state(rt, code)[0] == "on-hold"
    done = web.post(
        f"/referrals/{code}/no-show/rebook",
        data=keep | {"on": "09/12/2026"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and _state(rt, code)[0] == "accepted"
    assert 'id="no-show"' not in web.get(f"/referrals/{code}").text


def _working_days(n: int):  # type: ignore[no-untyped-def]
    from referrals.config.province import DueRule

    return DueRule(working_days=n)


def test_no_show_counts_stay_consistent(rt: Runtime, accepted: tuple[str, str]) -> None:
    """Two sweeps at once record one no-show (the referral's lock and version)."""
    import threading

    code, _ = accepted
    _printed(rt, code)
    _, _, due, _ = _state(rt, code)
    assert due is not None
    when = rt.ctx.calendar.shift(due, _working_days(3))
    results: list[int] = []

    def run() -> None:
        results.append(sweep(rt.engine, ctx=rt.ctx, now=when).counts["no_show"])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 1
    with Session(rt.engine) as s:
        assert (
            s.scalar(
                select(func.count()).select_from(Event).where(Event.kind == "referral.no_show")
            )
            == 1
        )


def test_an_arrival_after_a_no_show_is_recorded_and_moves_nothing(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    """Whoever holds the slip can press its button: the arrival is on the timeline for the
    coordinator, who re-books; the referral stays paused and nobody is messaged."""
    from referrals.models.links import slip_token
    from referrals.usecases.referrals.arrival import record_arrival

    code, token = accepted
    _answer(rt, token, "no_show", "application_received", at(1), confirm=True)
    with Session(rt.engine) as s:
        referral_id = s.scalars(select(Referral.id).where(Referral.code == code)).one()
    with transaction(rt.engine) as s:
        view = record_arrival(s, ctx=rt.ctx, token=slip_token(rt.ctx.vault, referral_id), now=at(2))
    assert view.arrived_at == at(2) and _state(rt, code)[0] == "on-hold"
    assert _messages(rt, code, "step.yours") == []


def test_a_partner_step_after_the_offices_step_prompts_the_partner(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    """A pathway where the office acts between two partner steps (here the referral's own
    steps are made so): once the office's step is done, the partner hears it is theirs."""
    code, _ = accepted
    with transaction(rt.engine) as s:
        referral_id = s.scalars(select(Referral.id).where(Referral.code == code)).one()
        s.execute(
            update(Step)
            .where(Step.referral_id == referral_id, Step.key == "application_received")
            .values(actor="coordinator")
        )
    assert _messages(rt, code, "step.yours") == []
    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.done, by=rt.user(s, "mai"), ctx=rt.ctx, now=at(1))
    told = _messages(rt, code, "step.yours")
    assert len(told) == 1 and {m.context["step"] for m in told} == {"card_issued"}
    assert all(m.context["why"] == "turn" for m in told)


def test_the_report_counts_arrivals_and_no_shows_per_partner(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    """One client did not come (twice: re-booked, then again) and one arrived: the police's row
    says 1 arrived and 1 did not come, and a period that ended before the no-show says none."""
    from referrals.models.links import slip_token
    from referrals.queries.reading import Reader
    from referrals.queries.report import Period, build_report
    from referrals.usecases.referrals.arrival import record_arrival

    code, token = accepted
    came = ready_referral(rt, NOW, name="Lê Văn Tới", phone="0905112359")
    with Session(rt.engine) as s:
        came_id = s.scalars(select(Referral.id).where(Referral.code == came)).one()
    with transaction(rt.engine) as s:
        record_arrival(s, ctx=rt.ctx, token=slip_token(rt.ctx.vault, came_id), now=at(1))
    _answer(rt, token, "no_show", "application_received", at(1), confirm=True)
    with transaction(rt.engine) as s:
        rebook(
            s,
            code=code,
            booking=Rebooking(on=dt.date(2026, 12, 4)),
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=at(1.1),
        )
    _answer(rt, token, "no_show", "application_received", at(4), confirm=True)

    def police(last: dt.date) -> dict[str, object]:
        period = Period(dt.date(2026, 12, 1), last, rt.ctx.tz)
        with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as reader:
            report = build_report(reader, period=period, calendar=rt.ctx.calendar, now=at(30))
        return next(p for p in report["partners"] if p["partner"] == "police-nha-trang")

    december = police(dt.date(2026, 12, 31))
    assert (december["arrived"], december["no_show"]) == (1, 1)
    first_day = police(dt.date(2026, 12, 1))  # as of 2/12 00:00 local: nothing recorded yet
    assert (first_day["arrived"], first_day["no_show"]) == (0, 0)


def test_the_partner_page_says_paused_and_keeps_no_show_after_a_scan(
    rt: Runtime, accepted: tuple[str, str]
) -> None:
    from referrals.models.links import slip_token
    from referrals.usecases.referrals.answering import view_link
    from referrals.usecases.referrals.arrival import record_arrival

    code, token = accepted
    with transaction(rt.engine) as s:
        view = view_link(s, ctx=rt.ctx, token=token, now=at(1), share=False)
    assert view.actions == ["done", "no_show"] and not view.paused
    with Session(rt.engine) as s:
        referral_id = s.scalars(select(Referral.id).where(Referral.code == code)).one()
    with transaction(rt.engine) as s:
        record_arrival(s, ctx=rt.ctx, token=slip_token(rt.ctx.vault, referral_id), now=at(1))
        view = view_link(s, ctx=rt.ctx, token=token, now=at(1), share=False)
    # the partner knows better than a slip's button, which whoever holds it can press
    assert view.actions == ["done", "no_show"]
    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.hold, by=rt.user(s, "mai"), ctx=rt.ctx, now=at(2))
    with transaction(rt.engine) as s:
        view = view_link(s, ctx=rt.ctx, token=token, now=at(2), share=False)
    assert view.paused and view.actions == []


def test_the_sweep_counts_from_the_appointment_the_partner_gave(rt: Runtime) -> None:
    """Health check: the station books the exam for Thursday 03/12; the client does not come.
    The no-show is recorded a working day after the appointment, long before the exam step's
    own deadline; once re-booked, the new deadline rules, not the old appointment."""
    code = ready_referral(rt, NOW, pathway="health_check", partner="phuong-son-health")
    _printed(rt, code)
    token = _link(rt, code)
    _answer(rt, token, "accept", "acknowledge", at(0.1))
    _answer(rt, token, "done", "appointment_set", at(0.2), on="2026-12-03")
    _, step, due, _ = _state(rt, code)
    assert step == "exam_done" and due is not None and due > at(10)
    friday_noon = dt.datetime(2026, 12, 4, 5, 0, tzinfo=dt.UTC)  # 12:00 in Nha Trang
    assert sweep(rt.engine, ctx=rt.ctx, now=friday_noon).counts["no_show"] == 0
    friday_evening = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)  # 17:00: a working day on
    assert sweep(rt.engine, ctx=rt.ctx, now=friday_evening).counts["no_show"] == 1
    assert _state(rt, code)[0] == "on-hold"
    with transaction(rt.engine) as s:
        rebook(
            s,
            code=code,
            booking=Rebooking(on=dt.date(2026, 12, 10)),
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=friday_evening,
        )
    monday = dt.datetime(2026, 12, 7, 5, 0, tzinfo=dt.UTC)
    assert sweep(rt.engine, ctx=rt.ctx, now=monday).counts["no_show"] == 0  # not the old date
    assert _state(rt, code)[0] == "in-progress"


def test_an_appointment_in_the_past_or_far_ahead_is_refused(rt: Runtime) -> None:
    """The sweep counts a no-show from the appointment: a date before today, or more than 90
    days ahead, is refused with nothing written."""
    code = ready_referral(rt, NOW, pathway="health_check", partner="phuong-son-health")
    token = _link(rt, code)
    _answer(rt, token, "accept", "acknowledge", at(0.1))
    before = row_counts(rt)
    for day in ("2026-11-30", "2027-06-01"):
        with pytest.raises(DomainError, match="appointment"):
            _answer(rt, token, "done", "appointment_set", at(0.2), on=day)
    assert row_counts(rt) == before
    _answer(rt, token, "done", "appointment_set", at(0.2), on="2026-12-01")  # today will do
    assert _state(rt, code)[1] == "exam_done"
