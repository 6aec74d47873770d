"""The deadline sweep with the real calendar: reminders, overdue notices and escalation levels
fire at the right local instants, to the right people, once each, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact, Organization
from referrals.models.lifecycle import Action
from referrals.models.people import User
from referrals.models.workflow import Event, Notification, Step, SweepRun
from referrals.usecases.deadlines.sweeping import sweep
from referrals.usecases.referrals.advancing import advance
from support.domain import ready_referral

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture
def staff(rt: Runtime) -> Runtime:
    """The coordinator and the manager have e-mail addresses (escalations reach them by e-mail)."""
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "mai").values(email="mai@chicuc.example.vn"))
        s.execute(update(User).where(User.username == "hoa").values(email="hoa@chicuc.example.vn"))
    return rt


def fired(rt: Runtime, code_step: str | None = None) -> list[tuple[str, int, list[str]]]:
    """(event kind, level, recipients) of every alert so far, in order."""
    with transaction(rt.engine) as s:
        events = s.scalars(
            select(Event).where(Event.actor == "system:sweep").order_by(Event.id)
        ).all()
    return [
        (e.kind, e.data["level"], e.data["to"])
        for e in events
        if code_step is None or e.data["step"] == code_step
    ]


def police(rt: Runtime) -> dict[int, int]:
    """The police's contacts: rank -> id."""
    with transaction(rt.engine) as s:
        rows = s.execute(
            select(Contact.rank, Contact.id)
            .join(Organization)
            .where(Organization.slug == "police-nha-trang")
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def test_a_ladder_fires_each_level_at_its_local_instant_across_a_weekend(
    staff: Runtime,
) -> None:
    rt = staff
    launched = local("2026-11-23 09:00")  # Monday; Tuesday 24/11 is a public holiday
    code = ready_referral(rt, launched)
    ranks = police(rt)
    with transaction(rt.engine) as s:
        step = s.scalars(select(Step).where(Step.seq == 0)).one()
    assert step.due_at == local("2026-11-26 17:00")  # two working days: Wed 25, Thu 26

    expected = [
        # (sweep at, what fires)
        ("2026-11-23 09:00", []),
        ("2026-11-25 16:59", []),
        ("2026-11-25 17:00", [("step.reminder", 0, [f"contact:{ranks[1]}"])]),
        ("2026-11-25 17:00", []),  # the same instant again: nothing twice
        ("2026-11-26 17:00", [("step.overdue", 0, [f"contact:{ranks[1]}"])]),
        ("2026-11-27 16:00", []),
        ("2026-11-27 17:00", [("step.escalated", 1, [f"contact:{ranks[2]}"])]),  # Friday
        ("2026-11-30 17:00", []),  # the weekend does not count
        ("2026-12-01 17:00", [("step.escalated", 2, ["user:mai"])]),  # 3 working days late
        ("2026-12-03 17:00", [("step.escalated", 3, ["user:hoa"])]),  # 5 working days late
        ("2027-01-31 17:00", []),  # the ladder is done
    ]
    seen = 0
    for at, alerts in expected:
        summary = sweep(rt.engine, ctx=rt.ctx, now=local(at))
        now_fired = fired(rt)[seen:]
        assert now_fired == alerts, at
        seen += len(alerts)
        # one message per person told: a contact's first channel (the rest wait as fallback)
        assert summary.counts["messages"] == len(alerts)

    with transaction(rt.engine) as s:
        messages = s.execute(
            select(
                Notification.template,
                Notification.channel,
                Notification.contact_id,
                Notification.user_id,
                Notification.context,
            )
            .where(Notification.template != "referral.new")
            .order_by(Notification.id)
        ).all()
        step = s.get(Step, step.id)
    assert [(m.template, m.channel) for m in messages] == [
        ("step.reminder", "sms"),  # the contact's first channel; e-mail waits as its fallback
        ("step.overdue", "sms"),
        ("step.escalation", "sms"),
        ("step.escalation", "email"),  # staff: by e-mail
        ("step.escalation", "email"),
    ]
    assert messages[-1].context["days_late"] == 5 and messages[-1].context["code"] == code
    assert step.escalation_level == 3 and step.reminders_sent == 1 and step.next_alert_at is None


def test_tet_pushes_the_deadline_and_its_reminder_past_the_holidays(rt: Runtime) -> None:
    code = ready_referral(rt, local("2027-02-03 09:00"))  # Wednesday before Tết 2027
    with transaction(rt.engine) as s:
        step = s.scalars(select(Step).where(Step.seq == 0)).one()
    assert step.due_at == local("2027-02-12 17:00")  # 4/2 to 10/2 are Tết: Thu 11, Fri 12
    sweep(rt.engine, ctx=rt.ctx, now=local("2027-02-03 09:00"))
    sweep(rt.engine, ctx=rt.ctx, now=local("2027-02-10 18:00"))  # in the middle of Tết
    assert fired(rt) == []
    sweep(rt.engine, ctx=rt.ctx, now=local("2027-02-11 17:00"))
    assert [kind for kind, _, _ in fired(rt)] == ["step.reminder"]
    sweep(rt.engine, ctx=rt.ctx, now=local("2027-02-15 17:00"))  # Monday: overdue, then level 1
    assert [kind for kind, _, _ in fired(rt)] == ["step.reminder", "step.overdue", "step.escalated"]
    assert code


def test_a_step_done_before_its_deadline_fires_nothing_more(staff: Runtime) -> None:
    rt = staff
    code = ready_referral(rt, local("2026-11-23 09:00"))
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-11-23 09:00"))
    with transaction(rt.engine) as s:
        advance(
            s,
            code=code,
            action=Action.accept,
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=local("2026-11-25 10:00"),
        )
    for at in ("2026-11-25 17:00", "2026-11-26 17:00", "2026-12-01 17:00", "2026-12-10 17:00"):
        sweep(rt.engine, ctx=rt.ctx, now=local(at))
    assert fired(rt, "acknowledge") == []
    # the next step has its own ladder: 5 working days from 25/11 10:00 is 2/12 17:00
    assert [k for k, _, _ in fired(rt, "application_received")][:2] == [
        "step.reminder",
        "step.overdue",
    ]


def test_an_inactive_contact_is_passed_over_and_the_timeline_says_why(staff: Runtime) -> None:
    rt = staff
    ready_referral(rt, local("2026-11-23 09:00"))
    ranks = police(rt)
    with transaction(rt.engine) as s:
        s.execute(update(Contact).where(Contact.id == ranks[1]).values(active=False))
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-11-25 17:00"))
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-11-27 17:00"))
    with transaction(rt.engine) as s:
        events = s.scalars(
            select(Event).where(Event.actor == "system:sweep").order_by(Event.id)
        ).all()
    reminder, overdue, level1 = events
    assert reminder.data["to"] == [f"contact:{ranks[2]}"]  # the next rank is asked
    assert reminder.data["skipped"] == [f"contact {ranks[1]} (rank 1) is inactive"]
    assert overdue.data["to"] == [f"contact:{ranks[2]}"]
    assert level1.data["to"] == [] and "no active backup contact" in level1.data["skipped"][-1]


def test_two_sweeps_at_once_fire_each_alert_once(staff: Runtime) -> None:
    rt = staff
    launched = local("2026-11-23 09:00")
    for i in range(25):
        ready_referral(rt, launched, name=f"Client {i}", phone=None)
    late = local("2026-11-27 17:00")  # reminder, overdue and level 1 are all due
    results, errors = [], []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            results.append(sweep(rt.engine, ctx=rt.ctx, now=late, chunk=5))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with transaction(rt.engine) as s:
        kinds = dict(
            s.execute(
                select(Event.kind, func.count())
                .where(Event.actor == "system:sweep")
                .group_by(Event.kind)
            ).all()
        )
        keys = s.scalars(select(Notification.idempotency_key)).all()
        runs = s.scalars(select(SweepRun)).all()
    # the reminder is stale once the deadline has passed: overdue and level 1 fire, once each
    assert kinds == {"step.overdue": 25, "step.escalated": 25}
    # referral.new + overdue + level 1, one message each (the first channel)
    assert len(keys) == len(set(keys)) == 25 + 25 * 2
    assert sum(r.counts["overdue"] for r in runs) == 25 and all(r.finished_at for r in runs)


def test_a_late_sweep_sends_the_overdue_notice_and_only_the_highest_level(staff: Runtime) -> None:
    rt = staff
    ready_referral(rt, local("2026-11-23 09:00"))
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-12-10 09:00"))  # the engine was down for weeks
    assert fired(rt) == [
        ("step.overdue", 0, [f"contact:{police(rt)[1]}"]),
        ("step.escalated", 3, ["user:hoa"]),
    ]
    with transaction(rt.engine) as s:
        step = s.scalars(select(Step).where(Step.seq == 0)).one()
    assert step.escalation_level == 3 and step.next_alert_at is None
