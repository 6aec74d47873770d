"""Consent as data: withdrawing it closes the partner's open referrals; overriding it is a
manager's recorded decision with a fixed reason."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlmodel import Session

from referrals.config import get_settings
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import DomainError
from referrals.models.workflow import Event, Notification, Referral
from referrals.usecases.clients.clients import withdraw_consent
from referrals.usecases.referrals.launching import LaunchRequest, Override, launch_referrals
from support.domain import cli, consent, new_client, ready_referral, row_counts

NAME = "Lý Thị Đồng Ý"


def test_withdrawing_consent_cancels_that_partners_open_referral_and_tells_it(
    rt: Runtime, now: dt.datetime
) -> None:
    ref = ready_referral(rt, now, name=NAME)
    with Session(rt.engine) as s:
        referral = s.scalars(select(Referral).where(Referral.code == ref)).one()
        client_code = s.scalars(select(Referral.code).where(Referral.id == -1)).first() or _code(
            s, referral.client_id
        )
        # The partner received the referral (the "referral.new" rows were delivered).
        for n in s.scalars(select(Notification).where(Notification.referral_id == referral.id)):
            n.status = "sent"
            s.add(n)
        s.commit()
    consent(rt, client_code, "legal-aid-centre", "legal_aid", now)
    other = _launch(rt, client_code, "legal_aid", "legal-aid-centre", now)
    later = now + dt.timedelta(hours=2)
    with transaction(rt.engine) as s:
        done = withdraw_consent(
            s,
            client_code=client_code,
            partner="police-nha-trang",
            purpose=None,
            by=rt.user(s, "mai"),
            now=later,
            ctx=rt.ctx,
        )
    assert done.consents == 1 and done.cancelled == [ref]
    with Session(rt.engine) as s:
        closed = s.scalars(select(Referral).where(Referral.code == ref)).one()
        assert (closed.status, closed.outcome_reason) == ("cancelled", "consent_withdrawn")
        untouched = s.scalars(select(Referral).where(Referral.code == other)).one()
        assert untouched.status == "requested"  # another partner, another consent
        told = s.scalars(
            select(Notification).where(
                Notification.referral_id == closed.id, Notification.template == "referral.closed"
            )
        ).all()
        assert told and all(NAME not in str(n.context) for n in told)
        assert {"code", "service", "closed_at"} == set(told[0].context)


def _code(s: Session, client_id: int) -> str:
    from referrals.models.people import Client

    return s.get(Client, client_id).code  # type: ignore[union-attr]


def _launch(
    rt: Runtime, client: str, pathway: str, partner: str, now: dt.datetime, **kw: object
) -> str:
    username = kw.pop("as_user", "mai")
    with transaction(rt.engine) as s:
        request = LaunchRequest(client_code=client, pathway=pathway, partner=partner, **kw)  # type: ignore[arg-type]
        return launch_referrals(
            s,
            requests=[request],
            coordinator=rt.user(s, username),
            ctx=rt.ctx,
            now=now,  # type: ignore[arg-type]
        )[0]


def test_only_a_manager_may_launch_without_consent_and_it_is_recorded(
    rt: Runtime,
    now: dt.datetime,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = new_client(rt, now, name=NAME)
    before = row_counts(rt)
    with pytest.raises(DomainError, match="no consent"):
        _launch(rt, client, "emergency_shelter", "social-work-centre", now)
    with pytest.raises(DomainError, match="only a manager"):
        _launch(
            rt,
            client,
            "emergency_shelter",
            "social-work-centre",
            now,
            consent_override=Override.emergency_protection,
        )
    assert row_counts(rt) == before
    monkeypatch.setenv("REFERRALS_USER", "hoa")  # the manager
    get_settings.cache_clear()
    shelter = (
        "launch",
        client,
        "--pathway",
        "emergency_shelter",
        "--partner",
        "social-work-centre",
    )
    code, _, err = cli(capsys, *shelter, "--override-consent", "a good reason in free text")
    assert code == 1 and "consent_override" in err and row_counts(rt) == before
    code, _, err = cli(capsys, *shelter, "--override-consent", "emergency_protection", "--json")
    assert code == 0, err
    with Session(rt.engine) as s:
        (event,) = s.scalars(select(Event).where(Event.kind == "consent.overridden")).all()
    assert event.actor == "user:hoa"
    assert event.data == {"reason": "emergency_protection", "partner": "social-work-centre"}
