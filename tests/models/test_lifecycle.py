"""The lifecycle: every legal move, every illegal one, and random action sequences on a real database."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import Conflict, DomainError, IllegalTransition
from referrals.models.lifecycle import (
    CLOSED,
    REFERRAL_MOVES,
    STEP_MOVES,
    WORKING,
    Action,
    ReferralStatus,
    StepStatus,
    referral_move,
    step_move,
)
from referrals.models.workflow import Event, Referral, Step
from referrals.usecases.referrals.advancing import advance
from support.domain import ready_referral

R = ReferralStatus
# Written out independently of the table in lifecycle.py (FHIR Task, Gravity SDOH closed loop).
EXPECTED = {
    ("submit", R.draft): R.requested,
    ("accept", R.requested): R.accepted,
    ("decline", R.requested): R.rejected,
    ("start", R.accepted): R.in_progress,
    ("complete", R.accepted): R.completed,
    ("complete", R.in_progress): R.completed,
    **{("fail", s): R.failed for s in (R.requested, R.accepted, R.in_progress, R.on_hold)},
    **{("hold", s): R.on_hold for s in (R.requested, R.accepted, R.in_progress)},
    # the client did not come: only once the partner has accepted (issue 20)
    **{("no_show", s): R.on_hold for s in (R.accepted, R.in_progress)},
    **{
        ("cancel", s): R.cancelled
        for s in (R.draft, R.requested, R.accepted, R.in_progress, R.on_hold)
    },
}


@pytest.mark.parametrize(("trigger", "status"), list(itertools.product(REFERRAL_MOVES, R)))
def test_every_referral_move(trigger: str, status: R) -> None:
    if trigger in ("resume", "rebook"):  # both return to where the referral was held from
        if status == R.on_hold:
            assert referral_move(trigger, status, R.in_progress) == R.in_progress
            with pytest.raises(IllegalTransition):
                referral_move(trigger, status, None)
        else:
            with pytest.raises(IllegalTransition):
                referral_move(trigger, status, R.accepted)
    elif (trigger, status) in EXPECTED:
        assert referral_move(trigger, status) == EXPECTED[(trigger, status)]
    else:
        with pytest.raises(
            IllegalTransition, match=f"cannot {trigger} a referral that is {status}"
        ):
            referral_move(trigger, status)


def test_closed_statuses_are_final() -> None:
    for trigger, status in itertools.product(REFERRAL_MOVES, CLOSED):
        with pytest.raises(IllegalTransition):
            referral_move(trigger, status, R.accepted)


@pytest.mark.parametrize(("trigger", "status"), list(itertools.product(STEP_MOVES, StepStatus)))
def test_every_step_move(trigger: str, status: StepStatus) -> None:
    legal = {
        ("activate", "pending"): "active",
        ("done", "active"): "done",
        ("fail", "active"): "failed",
        ("skip", "pending"): "skipped",
        ("skip", "active"): "skipped",
    }
    if (trigger, status.value) in legal:
        assert step_move(trigger, status) == legal[(trigger, status.value)]
    else:
        with pytest.raises(IllegalTransition):
            step_move(trigger, status)


def _snapshot(s: Session, code: str) -> tuple:
    ref = s.scalars(select(Referral).where(Referral.code == code)).one()
    steps = tuple(
        s.execute(
            select(Step.key, Step.status).where(Step.referral_id == ref.id).order_by(Step.seq)
        )
    )
    events = s.scalar(select(func.count()).select_from(Event).where(Event.referral_id == ref.id))
    kinds = list(
        s.scalars(select(Event.kind).where(Event.referral_id == ref.id).order_by(Event.id))
    )
    return ref.status, ref.version, ref.outcome, steps, events, kinds


def _act(rt: Runtime, code: str, action: Action, reason: str | None, at: dt.datetime) -> None:
    with transaction(rt.engine) as s:
        advance(
            s, code=code, action=action, by=rt.user(s, "mai"), ctx=rt.ctx, now=at, reason=reason
        )


def test_a_referral_walks_its_whole_pathway(rt: Runtime, now: dt.datetime) -> None:
    code = ready_referral(rt, now)
    for i, action in enumerate([Action.accept, Action.done, Action.done, Action.done]):
        _act(rt, code, action, None, now + dt.timedelta(days=i + 1))
    with transaction(rt.engine) as s:
        status, version, outcome, steps, _, kinds = _snapshot(s, code)
    assert (status, outcome, version) == ("completed", "successful", 5)
    assert all(st == "done" for _, st in steps)
    assert [k for k in kinds if k.startswith("referral.")] == [
        "referral.requested",
        "referral.accepted",
        "referral.in-progress",
        "referral.completed",
    ]


def test_hold_and_resume_restart_the_clock(rt: Runtime, now: dt.datetime) -> None:
    code = ready_referral(rt, now)
    _act(rt, code, Action.hold, "client_unreachable", now + dt.timedelta(hours=1))
    with pytest.raises(IllegalTransition, match="on hold; resume it first"):
        _act(rt, code, Action.accept, None, now + dt.timedelta(hours=2))
    _act(rt, code, Action.resume, None, dt.datetime(2026, 12, 7, 2, tzinfo=dt.UTC))  # Monday 07/12
    with transaction(rt.engine) as s:
        status, *_, kinds = _snapshot(s, code)
        due = s.scalar(
            select(Step.due_at).join(Referral).where(Referral.code == code, Step.status == "active")
        )
    assert status == "requested" and kinds[-1] == "step.due_reset"
    assert due == dt.datetime(2026, 12, 9, 10, tzinfo=dt.UTC)


def test_decline_needs_a_known_reason(rt: Runtime, now: dt.datetime) -> None:
    code = ready_referral(rt, now)
    with pytest.raises(DomainError, match="decline needs --reason"):
        _act(rt, code, Action.decline, None, now)
    with pytest.raises(DomainError, match="unknown reason 'busy'"):
        _act(rt, code, Action.decline, "busy", now)
    _act(rt, code, Action.decline, "partner-lacks-capacity", now)
    with transaction(rt.engine) as s:
        status, _, outcome, steps, *_ = _snapshot(s, code)
        reason = s.scalar(select(Referral.outcome_reason).where(Referral.code == code))
    assert (status, outcome, reason) == ("rejected", "not-successful", "partner_lacks_capacity")
    assert [st for _, st in steps] == ["failed", "skipped", "skipped", "skipped"]


def test_a_stale_writer_gets_a_conflict(rt: Runtime, now: dt.datetime) -> None:
    code = ready_referral(rt, now)
    with transaction(rt.engine) as s:
        version = s.scalar(select(Referral.version).where(Referral.code == code))
    _act(rt, code, Action.accept, None, now)
    with pytest.raises(Conflict, match="changed"), transaction(rt.engine) as s:
        advance(
            s,
            code=code,
            action=Action.done,
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=now,
            expected_version=version,
        )


actions = st.lists(
    st.tuples(st.sampled_from(list(Action)), st.sampled_from([None, "client_refused", "other"])),
    min_size=1,
    max_size=10,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=actions)
def test_random_action_sequences_keep_every_invariant(
    rt: Runtime, now: dt.datetime, sequence: list
) -> None:
    code = ready_referral(rt, now, pathway="emergency_aid", partner="social-work-centre")
    at = now
    for action, reason in sequence:
        at += dt.timedelta(hours=1)
        with transaction(rt.engine) as s:
            before = _snapshot(s, code)
        try:
            _act(rt, code, action, reason, at)
        except DomainError:
            with transaction(rt.engine) as s:
                assert _snapshot(s, code) == before, "a refused action changed something"
            continue
        with transaction(rt.engine) as s:
            status, version, outcome, steps, events, kinds = _snapshot(s, code)
        old_status = before[0]
        assert version == before[1] + 1 and events > before[4]
        states = [st for _, st in steps]
        assert states.count("active") <= 1
        if status in WORKING:
            assert states.count("active") == 1
        if status in CLOSED:
            assert "active" not in states and "pending" not in states and outcome is not None
        done = [st == "done" for st in states]
        assert done == sorted(done, reverse=True), "steps are done in order"
        if status != old_status:
            assert f"referral.{status}" in kinds[len(before[5]) :], (
                "a status change without its event"
            )


def test_the_database_refuses_a_second_active_step(rt: Runtime, now: dt.datetime) -> None:
    from sqlalchemy.exc import IntegrityError

    from referrals.models.errors import Conflict

    code = ready_referral(rt, now)
    with pytest.raises(Conflict) as refused, transaction(rt.engine) as s:
        ref_id = s.scalar(select(Referral.id).where(Referral.code == code))
        pending = s.scalars(select(Step).where(Step.referral_id == ref_id, Step.seq == 1)).one()
        pending.status = StepStatus.active.value
        s.flush()
    assert isinstance(refused.value.__cause__, IntegrityError)
