"""More time on a step (issue 20, gia hạn): within the step's limit granted at once, beyond it
decided by the coordinator; the deadline and its ladder move once, from the new date; everything
on the timeline, the contact told, no client detail in any message; bad requests and lost races
refused with nothing written. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact, Organization
from referrals.models.errors import Conflict, DomainError, NotFound
from referrals.models.lifecycle import Action, Reason
from referrals.models.links import link_token
from referrals.models.people import Client, Role, User
from referrals.models.policy import Forbidden, PartnerContact
from referrals.models.workflow import Event, Extension, Notification, Referral, Step
from referrals.notifiers.rendering import declared_segments, render
from referrals.notifiers.sms import encoding
from referrals.queries.reading import Reader
from referrals.queries.report import Period, build_report
from referrals.reports.render import render as render_report
from referrals.usecases.deadlines.sweeping import sweep
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.referrals.answering import Answer, LinkRefused, answer_link
from referrals.usecases.referrals.extending import (
    ExtensionAsk,
    ask_extension,
    decide_extension,
    latest_extension,
    waiting_extensions,
)
from support.domain import ready_referral, row_counts

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NAME = "Trần Thị Bí Mật"  # the client's name: in no message, event or link
PHONE = "0905 777 321"
REASON = "Chờ Nguyễn Thị Bí Mật bổ sung giấy khai sinh"  # free text naming the client


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(dt.UTC)


LAUNCHED = local("2026-12-01 09:00")  # Tuesday
ACCEPTED = local("2026-12-01 10:00")
# Then `application_received` (5 working days, extend_limit 3): due Tue 08/12 17:00; the
# limit reaches Fri 11/12.
DUE = local("2026-12-08 17:00")


@pytest.fixture
def staff(rt: Runtime) -> Runtime:
    """The coordinator reads her requests by e-mail; a coordinator of the other district."""
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "mai").values(email="mai@chicuc.example.vn"))
        s.add(
            User(
                username="binh",
                full_name="Coordinator NH",
                role=Role.coordinator.value,
                area_key="ninh-hoa",
            )
        )
    return rt


@pytest.fixture
def case(staff: Runtime) -> tuple[str, str]:
    """An ID-papers referral the police accepted: (its code, the link of its first SMS)."""
    rt = staff
    code = ready_referral(rt, LAUNCHED, name=NAME, phone=PHONE)
    token = _token(rt, code)
    with transaction(rt.engine) as s:
        answer_link(s, ctx=rt.ctx, token=token, answer=Answer(action="accept"), now=ACCEPTED)
    assert _step(rt, code).due_at == DUE
    return code, token


def _token(rt: Runtime, code: str) -> str:
    with Session(rt.engine) as s:
        message = s.scalars(
            select(Notification.id)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Referral.code == code, Notification.channel == "sms")
            .order_by(Notification.id)
        ).first()
    assert message is not None
    return link_token(rt.ctx.vault, message)


def _step(rt: Runtime, code: str, key: str = "application_received") -> Step:
    with Session(rt.engine) as s:
        return s.scalars(
            select(Step).join(Referral).where(Referral.code == code, Step.key == key)
        ).one()


def _version(rt: Runtime, code: str) -> int:
    with Session(rt.engine) as s:
        return s.scalars(select(Referral.version).where(Referral.code == code)).one()


def ask(
    rt: Runtime,
    code: str,
    token: str,
    day: str,
    now: dt.datetime,
    step: str = "application_received",
    **extra: Any,
) -> Any:
    data = {
        "step": step,
        "version": _version(rt, code),
        "new_date": dt.date.fromisoformat(day),
        "reason": REASON,
        **extra,
    }
    with transaction(rt.engine) as s:
        return ask_extension(
            s, ctx=rt.ctx, token=token, ask=ExtensionAsk.model_validate(data), now=now
        )


def decide(rt: Runtime, code: str, extension_id: int, grant: bool, now: dt.datetime) -> Extension:
    with transaction(rt.engine) as s:
        return decide_extension(
            s,
            ctx=rt.ctx,
            code=code,
            extension_id=extension_id,
            grant=grant,
            by=rt.user(s, "mai"),
            now=now,
        )


def alerts(rt: Runtime, code: str, at: str) -> list[tuple[str, str]]:
    """What one sweep at local `at` fires on the step: (event kind, the deadline it chases)."""
    with Session(rt.engine) as s:
        before = s.scalars(select(Event.id).order_by(Event.id.desc())).first() or 0
    sweep(rt.engine, ctx=rt.ctx, now=local(at))
    with Session(rt.engine) as s:
        fired = s.scalars(
            select(Event)
            .join(Referral, Referral.id == Event.referral_id)
            .where(Referral.code == code, Event.actor == "system:sweep", Event.id > before)
            .order_by(Event.id)
        ).all()
    return [(e.kind, e.data["due_at"]) for e in fired]


def timeline(rt: Runtime, code: str) -> list[tuple[str, str]]:
    with Session(rt.engine) as s:
        events = s.scalars(
            select(Event).join(Referral).where(Referral.code == code).order_by(Event.id)
        ).all()
    return [(e.kind, e.actor) for e in events]


def messages_of(rt: Runtime, code: str, template: str) -> list[Notification]:
    with Session(rt.engine) as s:
        return list(
            s.scalars(
                select(Notification)
                .join(Referral, Referral.id == Notification.referral_id)
                .where(Referral.code == code, Notification.template == template)
                .order_by(Notification.id)
            )
        )


def no_client_detail_anywhere(rt: Runtime) -> None:
    """Neither the client's name or phone nor the reason is in any message's context, subject
    or body, or any event's data, in clear."""
    with Session(rt.engine) as s:
        texts = [
            str(n.context) + str(n.subject) + str(n.body) for n in s.scalars(select(Notification))
        ]
        texts += [str(e.data) for e in s.scalars(select(Event))]
    for secret in (NAME, "Bí Mật", "777 321", "777321", "giấy khai sinh"):
        assert not [t for t in texts if secret in t], secret


ISO = dt.datetime.isoformat


def test_within_the_limit_it_is_granted_at_once_and_the_ladder_restarts_from_the_new_date(
    case: tuple[str, str], staff: Runtime
) -> None:
    rt, (code, token) = staff, case
    # The old deadline's reminder (one working day before) is queued, not yet delivered.
    assert alerts(rt, code, "2026-12-07 17:00") == [("step.reminder", ISO(DUE))]
    asked = ask(rt, code, token, "2026-12-11", local("2026-12-07 18:00"))
    new_due = local("2026-12-11 17:00")
    assert (asked.status, asked.new_due_at) == ("granted", new_due)
    step = _step(rt, code)
    assert step.due_at == new_due
    assert (step.alert_seq, step.next_alert_at, step.escalation_level) == (
        0,
        local("2026-12-07 18:00"),
        0,
    )
    assert timeline(rt, code)[-3:] == [
        ("extension.requested", f"contact:{_contact(rt)}"),
        ("extension.granted", "system"),
        ("step.due_reset", "system"),
    ]
    reminders = messages_of(rt, code, "step.reminder")
    assert reminders and {m.status for m in reminders} == {"cancelled"}  # the old deadline's
    assert messages_of(rt, code, "extension.requested") == []  # nothing for the office to do
    assert messages_of(rt, code, "extension.decided") == []  # the page said it at once

    # The old deadline passes quietly; the new one's ladder fires each alert once.
    assert alerts(rt, code, "2026-12-08 17:00") == []
    assert alerts(rt, code, "2026-12-10 16:59") == []
    assert alerts(rt, code, "2026-12-10 17:00") == [("step.reminder", ISO(new_due))]
    assert alerts(rt, code, "2026-12-10 17:00") == []
    assert alerts(rt, code, "2026-12-11 17:00") == [("step.overdue", ISO(new_due))]
    assert alerts(rt, code, "2026-12-11 17:00") == []
    with Session(rt.engine) as s:
        row = s.scalars(select(Extension)).one()
    assert (row.status, row.decided_by, row.was_due_at, row.new_due_at) == (
        "granted",
        "system",
        DUE,
        new_due,
    )
    no_client_detail_anywhere(rt)


def _contact(rt: Runtime, rank: int = 1) -> int:
    with Session(rt.engine) as s:
        return s.scalars(
            select(Contact.id)
            .join(Organization)
            .where(Organization.slug == "police-nha-trang", Contact.rank == rank)
        ).one()


def test_beyond_the_limit_the_coordinator_grants_and_the_deadline_moves_once(
    case: tuple[str, str], staff: Runtime
) -> None:
    rt, (code, token) = staff, case
    asked = ask(rt, code, token, "2026-12-18", local("2026-12-04 10:00"))
    assert asked.status == "requested"
    assert _step(rt, code).due_at == DUE  # the old deadline stands meanwhile
    (told,) = messages_of(rt, code, "extension.requested")
    assert (told.channel, told.context["step"], told.context["new_due_at"]) == (
        "email",
        "application_received",
        ISO(local("2026-12-18 17:00")),
    )
    assert timeline(rt, code)[-1] == ("extension.requested", f"contact:{_contact(rt)}")
    # Undecided, the old deadline's ladder goes on.
    assert alerts(rt, code, "2026-12-08 17:00") == [("step.overdue", ISO(DUE))]

    decided = decide(rt, code, asked.extension_id, True, local("2026-12-09 08:00"))
    new_due = local("2026-12-18 17:00")
    assert (decided.status, decided.decided_by) == ("granted", "user:mai")
    assert _step(rt, code).due_at == new_due
    assert timeline(rt, code)[-2:] == [
        ("extension.granted", "user:mai"),
        ("step.due_reset", "user:mai"),
    ]
    told_partner = messages_of(rt, code, "extension.decided")
    assert {(m.channel, m.contact_id, tuple(m.fallback)) for m in told_partner} == {
        ("sms", _contact(rt), ("email",)),
    }
    assert all(m.context["granted"] and m.context["due_at"] == ISO(new_due) for m in told_partner)
    assert alerts(rt, code, "2026-12-09 08:01") == []  # no overdue notice for the old deadline
    assert alerts(rt, code, "2026-12-17 17:00") == [("step.reminder", ISO(new_due))]
    assert alerts(rt, code, "2026-12-18 17:00") == [("step.overdue", ISO(new_due))]
    assert alerts(rt, code, "2026-12-18 17:00") == []
    _renders_within_budget(rt, told_partner)
    no_client_detail_anywhere(rt)


def _renders_within_budget(rt: Runtime, rows: list[Notification]) -> None:
    """The queued messages as delivery renders them: an SMS in one unaccented segment."""
    for m in rows:
        context = {**m.context, "link": f"{rt.settings.public_url}/l/{'a' * 18}", "sender": "TNXH"}
        out = render(m.template, channel=m.channel, language=m.language, context=context, tz=TZ)
        if m.channel == "sms":
            sms = render(
                m.template,
                channel="sms",
                language=m.language,
                context=context,
                tz=TZ,
                unaccented=True,
            )
            budget = declared_segments(m.template, m.language)
            assert budget and encoding(sms.body).segments <= budget
        assert NAME not in out.body and REASON not in out.body


def test_a_refusal_keeps_the_deadline_and_the_partner_may_ask_again(
    case: tuple[str, str], staff: Runtime
) -> None:
    rt, (code, token) = staff, case
    asked = ask(rt, code, token, "2026-12-18", local("2026-12-04 10:00"))
    refused = decide(rt, code, asked.extension_id, False, local("2026-12-04 11:00"))
    assert refused.status == "refused" and _step(rt, code).due_at == DUE
    assert timeline(rt, code)[-1] == ("extension.refused", "user:mai")
    told = messages_of(rt, code, "extension.decided")
    assert told and all(not m.context["granted"] and m.context["due_at"] == ISO(DUE) for m in told)
    with Session(rt.engine) as s:
        assert latest_extension(s, code=code, step_key="application_received").status == "refused"  # type: ignore[union-attr]
    again = ask(rt, code, token, "2026-12-10", local("2026-12-04 12:00"))
    assert again.status == "granted"  # within the limit, once nothing waits
    assert alerts(rt, code, "2026-12-08 17:00") == []


@pytest.mark.parametrize(
    ("day", "at", "changes", "refusal"),
    [
        ("2026-12-08", "2026-12-04 10:00", {}, "extension_not_later"),  # the deadline's own day
        ("2026-12-07", "2026-12-04 10:00", {}, "extension_not_later"),
        ("2026-12-09", "2026-12-09 17:30", {}, "extension_past"),  # a day already over
        ("2027-03-10", "2026-12-04 10:00", {}, "extension_too_far"),  # 96 days ahead
        ("2026-12-10", "2026-12-04 10:00", {"version": 1}, "answered"),  # a stale page
        ("2026-12-10", "2026-12-04 10:00", {"step": "acknowledge"}, "answered"),  # done step
        ("2026-12-10", "2026-12-04 10:00", {"step": "card_issued"}, "answered"),  # not yet
    ],
)
def test_bad_requests_are_refused_with_nothing_written(
    case: tuple[str, str],
    staff: Runtime,
    day: str,
    at: str,
    changes: dict[str, Any],
    refusal: str,
) -> None:
    rt, (code, token) = staff, case
    before = row_counts(rt)
    with pytest.raises((DomainError, LinkRefused)) as refused:
        ask(rt, code, token, day, local(at), **changes)
    said = refused.value.why if isinstance(refused.value, LinkRefused) else refused.value.key
    assert said == refusal
    assert row_counts(rt) == before and _step(rt, code).due_at == DUE


@pytest.mark.parametrize(
    "form",
    [
        {"reason": ""},
        {"reason": "   "},
        {"reason": "x" * 301},
        {"new_date": "tomorrow"},
        {"client_name": NAME},  # nothing but what the page sends
        {"version": 0},
    ],
)
def test_a_form_that_is_not_a_request_is_refused_before_anything(form: dict[str, Any]) -> None:
    data = {"step": "application_received", "version": 3, "new_date": "2026-12-10", "reason": "x"}
    with pytest.raises(ValidationError):
        ExtensionAsk.model_validate(data | form)


def test_no_request_on_a_paused_or_closed_referral(case: tuple[str, str], staff: Runtime) -> None:
    rt, (code, token) = staff, case
    with transaction(rt.engine) as s:
        advance(
            s,
            code=code,
            action=Action.hold,
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=local("2026-12-02 09:00"),
            reason=Reason.other.value,
        )
    before = row_counts(rt)
    with pytest.raises(DomainError) as paused:
        ask(rt, code, token, "2026-12-10", local("2026-12-02 10:00"))
    assert paused.value.key == "on_hold" and row_counts(rt) == before
    with transaction(rt.engine) as s:
        advance(
            s,
            code=code,
            action=Action.cancel,
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=local("2026-12-02 11:00"),
            reason=Reason.no_longer_needed.value,
        )
    before = row_counts(rt)
    with pytest.raises(LinkRefused) as closed:
        ask(rt, code, token, "2026-12-10", local("2026-12-02 12:00"))
    assert closed.value.why == "closed" and row_counts(rt) == before


def test_one_request_waits_at_a_time_and_the_index_holds_under_a_race(
    case: tuple[str, str], staff: Runtime
) -> None:
    rt, (code, token) = staff, case
    asked = ask(rt, code, token, "2026-12-18", local("2026-12-04 10:00"))
    before = row_counts(rt)
    with pytest.raises(Conflict) as waiting:
        ask(rt, code, token, "2026-12-21", local("2026-12-04 10:05"))
    assert waiting.value.key == "extension_waiting" and row_counts(rt) == before
    # Two writers that both read "nothing waits": the partial unique index refuses the second.
    with pytest.raises(Conflict), transaction(rt.engine) as s:
        first = s.get(Extension, asked.extension_id)
        assert first is not None
        s.add(
            Extension(
                referral_id=first.referral_id,
                step_id=first.step_id,
                contact_id=first.contact_id,
                asked_at=first.asked_at,
                was_due_at=first.was_due_at,
                new_due_at=first.new_due_at,
            )
        )
    assert row_counts(rt) == before


def test_only_staff_who_may_act_decide(case: tuple[str, str], staff: Runtime) -> None:
    rt, (code, token) = staff, case
    asked = ask(rt, code, token, "2026-12-18", local("2026-12-04 10:00"))
    before = row_counts(rt)
    now = local("2026-12-04 11:00")
    with transaction(rt.engine) as s:
        partner = PartnerContact(
            contact_id=_contact(rt),
            organization_id=s.scalars(
                select(Organization.id).where(Organization.slug == "police-nha-trang")
            ).one(),
        )
        hoa, binh = rt.user(s, "hoa"), rt.user(s, "binh")
    for by, refusal in ((partner, Forbidden), (hoa, Forbidden), (binh, NotFound)):
        with pytest.raises(refusal), transaction(rt.engine) as s:
            decide_extension(
                s,
                ctx=rt.ctx,
                code=code,
                extension_id=asked.extension_id,
                grant=True,
                by=by,
                now=now,
            )
    with pytest.raises(NotFound):
        decide(rt, code, asked.extension_id + 1000, True, now)
    assert row_counts(rt) == before
    decide(rt, code, asked.extension_id, True, now)
    before = row_counts(rt)
    with pytest.raises(Conflict) as twice:
        decide(rt, code, asked.extension_id, False, now)
    assert twice.value.key == "extension_decided" and row_counts(rt) == before


def test_a_request_whose_step_was_done_meanwhile_can_no_longer_be_granted(
    case: tuple[str, str], staff: Runtime
) -> None:
    rt, (code, token) = staff, case
    asked = ask(rt, code, token, "2026-12-18", local("2026-12-04 10:00"))
    with transaction(rt.engine) as s:
        answer = Answer(action="done", step="application_received")
        answer_link(s, ctx=rt.ctx, token=token, answer=answer, now=local("2026-12-07 09:00"))
    before = row_counts(rt)
    with pytest.raises(DomainError) as stale:
        decide(rt, code, asked.extension_id, True, local("2026-12-07 10:00"))
    assert stale.value.key == "extension_stale" and row_counts(rt) == before
    decide(rt, code, asked.extension_id, False, local("2026-12-07 10:00"))  # tidied away
    assert messages_of(rt, code, "extension.decided") == []  # nothing left to tell the partner
    assert _step(rt, code, "card_issued").due_at == local("2026-12-16 17:00")  # untouched


def test_the_coordinator_reads_the_reason_and_that_is_recorded(
    case: tuple[str, str], staff: Runtime
) -> None:
    rt, (code, token) = staff, case
    ask(rt, code, token, "2026-12-18", local("2026-12-04 10:00"))
    now = local("2026-12-04 11:00")
    with transaction(rt.engine) as s:
        (mine,) = waiting_extensions(s, ctx=rt.ctx, code=code, by=rt.user(s, "mai"), now=now)
    assert (mine.reason, mine.step, mine.grantable) == (REASON, "application_received", True)
    assert mine.new_due_at == local("2026-12-18 17:00") and "(demo)" in mine.asked_by
    with transaction(rt.engine) as s:
        (theirs,) = waiting_extensions(s, ctx=rt.ctx, code=code, by=rt.user(s, "hoa"), now=now)
    assert theirs.reason is None  # a manager reads the case, not the client's details
    with Session(rt.engine) as s:
        viewed = s.scalars(select(Event).where(Event.kind == "pii.viewed")).all()
        client = s.scalars(select(Client.id).join(Referral).where(Referral.code == code)).one()
    assert [(e.actor, e.client_id, e.data["fields"]) for e in viewed] == [
        ("user:mai", client, ["extension.reason"])
    ]


def test_the_report_counts_the_new_deadline_and_the_extended_steps(
    case: tuple[str, str], staff: Runtime
) -> None:
    """Done on Thu 10/12, after the old deadline (08/12) but within the granted one (11/12):
    on time, and one step extended; a refused request extends nothing."""
    rt, (code, token) = staff, case
    other = ready_referral(rt, LAUNCHED)
    other_token = _token(rt, other)
    with transaction(rt.engine) as s:
        accept = Answer(action="accept")
        answer_link(s, ctx=rt.ctx, token=other_token, answer=accept, now=ACCEPTED)
    ask(rt, code, token, "2026-12-11", local("2026-12-07 09:00"))
    refused = ask(rt, other, other_token, "2026-12-18", local("2026-12-07 09:00"))
    decide(rt, other, refused.extension_id, False, local("2026-12-07 10:00"))
    for t in (token, other_token):
        with transaction(rt.engine) as s:
            done = Answer(action="done", step="application_received")
            answer_link(s, ctx=rt.ctx, token=t, answer=done, now=local("2026-12-10 09:00"))
    period = Period(dt.date(2026, 12, 1), dt.date(2026, 12, 31), TZ)
    with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as reader:
        report = build_report(
            reader, period=period, calendar=rt.ctx.calendar, now=local("2026-12-10 12:00")
        )
    (police,) = [p for p in report["partners"] if p["partner"] == "police-nha-trang"]
    # Both acknowledgements on time; the extended step on time, the other one late.
    assert (police["steps_on_time"], police["steps_counted"]) == (3, 4)
    assert police["steps_extended"] == 1
    table = render_report(report, "md", lang="en")
    assert "Steps given more time" in table and "| 75% (3/4) | 1 |" in table


def test_an_acknowledgement_is_answered_not_put_off(staff: Runtime) -> None:
    rt = staff
    code = ready_referral(rt, LAUNCHED)
    token = _token(rt, code)
    before = row_counts(rt)
    with pytest.raises(DomainError) as refused:
        ask(rt, code, token, "2026-12-10", local("2026-12-02 09:00"), step="acknowledge")
    assert refused.value.key == "extension_acknowledge" and row_counts(rt) == before
