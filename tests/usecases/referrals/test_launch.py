"""Launching: a launched referral is whole; every refusal is clear and writes nothing."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import DomainError
from referrals.models.workflow import Notification, Referral, Step
from referrals.queries.reading import Reader, show_referral
from referrals.usecases.clients.clients import withdraw_consent
from support.domain import consent, launch, new_client, ready_referral, row_counts

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_launched_referral_has_steps_deadline_events_and_outbox(
    rt: Runtime, now: dt.datetime
) -> None:
    code = ready_referral(rt, now)
    with transaction(rt.engine) as s:
        ref = s.scalars(select(Referral).where(Referral.code == code)).one()
        steps = list(s.scalars(select(Step).where(Step.referral_id == ref.id).order_by(Step.seq)))
        outbox = list(s.scalars(select(Notification).where(Notification.referral_id == ref.id)))
    with Reader.open(rt.settings.database_url) as reader:
        shown = show_referral(reader, code=code, tz=VN, now=now)
    assert ref.status == "requested" and ref.pathway_version == 1 and ref.version == 1
    assert [st.key for st in steps] == [
        "acknowledge",
        "application_received",
        "card_issued",
        "client_confirmed",
    ]
    assert [st.status for st in steps] == ["active", "pending", "pending", "pending"]
    # Monday 23/11/2026; Tuesday 24/11 is Vietnam Cultural Day: 2 working days end Thursday 26/11 17:00.
    assert steps[0].due_at == dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
    assert shown["steps"][0]["due_at"] == "2026-11-26T17:00:00+07:00"
    assert [e["kind"] for e in shown["events"]] == ["referral.requested", "step.active"]
    # The partner's first-rank contacts, on the first of their channels, the rest waiting as its
    # fallback (never two at once); nothing about the client.
    assert {(n.channel, n.template, n.status, tuple(n.fallback)) for n in outbox} == {
        ("sms", "referral.new", "queued", ("email",)),
    }
    assert all(
        set(n.context) == {"code", "service", "step", "step_name", "due_at", "urgent"}
        for n in outbox
    )
    assert len({n.idempotency_key for n in outbox}) == len(outbox)


def test_urgent_uses_the_urgent_deadline(rt: Runtime, now: dt.datetime) -> None:
    client = new_client(rt, now)
    consent(rt, client, "phuong-son-health", "health_check", now)
    code = launch(rt, client, "health_check", "phuong-son-health", now, urgent=True)
    with Reader.open(rt.settings.database_url) as reader:
        shown = show_referral(reader, code=code, tz=VN, now=now)
    assert shown["priority"] == "urgent"
    assert shown["steps"][0]["due_at"] == "2026-11-23T13:00:00+07:00"  # 4 hours, not 2 working days


REFUSALS = [
    (
        "no consent",
        lambda rt, c, now: None,
        "id_papers",
        "police-nha-trang",
        "no consent from client",
    ),
    (
        "other purpose",
        lambda rt, c, now: consent(rt, c, "police-nha-trang", "tax_code", now),
        "id_papers",
        "police-nha-trang",
        "no consent",
    ),
    (
        "unknown partner",
        lambda rt, c, now: None,
        "id_papers",
        "police-hanoi",
        "unknown partner 'police-hanoi'",
    ),
    (
        "unknown pathway",
        lambda rt, c, now: None,
        "passport",
        "police-nha-trang",
        "unknown pathway 'passport'",
    ),
    (
        "wrong district",
        lambda rt, c, now: consent(rt, c, "police-ninh-hoa", "id_papers", now),
        "id_papers",
        "police-ninh-hoa",
        "does not serve nha-trang for id_papers; partners that do: police-nha-trang",
    ),
    (
        "service not offered",
        lambda rt, c, now: consent(rt, c, "police-nha-trang", "legal_aid", now),
        "legal_aid",
        "police-nha-trang",
        "does not offer legal_aid",
    ),
]


@pytest.mark.parametrize(
    ("why", "prepare", "pathway", "partner", "message"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_refusals_are_clear_and_write_nothing(
    rt: Runtime, now: dt.datetime, why: str, prepare, pathway: str, partner: str, message: str
) -> None:
    client = new_client(rt, now)
    prepare(rt, client, now)
    before = row_counts(rt)
    with pytest.raises(DomainError, match=message):
        launch(rt, client, pathway, partner, now)
    assert row_counts(rt) == before


def test_withdrawn_consent_is_refused(rt: Runtime, now: dt.datetime) -> None:
    client = new_client(rt, now)
    consent(rt, client, "police-nha-trang", "id_papers", now - dt.timedelta(days=3))
    with transaction(rt.engine) as s:
        withdraw_consent(
            s,
            client_code=client,
            partner="police-nha-trang",
            purpose=None,
            by=None,
            now=now - dt.timedelta(days=1),
            ctx=rt.ctx,
        )
    before = row_counts(rt)
    with pytest.raises(DomainError, match=r"withdrew consent .* on 22/11/2026"):
        launch(rt, client, "id_papers", "police-nha-trang", now)
    assert row_counts(rt) == before


def test_a_second_open_referral_for_the_same_pathway_is_refused(
    rt: Runtime, now: dt.datetime
) -> None:
    code = ready_referral(rt, now)
    with transaction(rt.engine) as s:
        client = s.scalars(select(Referral.client_id).where(Referral.code == code)).one()
    from referrals.models.people import Client

    with transaction(rt.engine) as s:
        client_code = s.get(Client, client).code
    before = row_counts(rt)
    with pytest.raises(DomainError, match=f"already has an open id_papers referral {code}"):
        launch(rt, client_code, "id_papers", "police-nha-trang", now)
    assert row_counts(rt) == before


def test_the_database_itself_refuses_a_second_open_referral(rt: Runtime, now: dt.datetime) -> None:
    """Two launches racing past the check still meet the partial unique index."""
    from sqlalchemy.exc import IntegrityError

    from referrals.models.errors import Conflict

    code = ready_referral(rt, now)
    with pytest.raises(Conflict) as refused, transaction(rt.engine) as s:
        ref = s.scalars(select(Referral).where(Referral.code == code)).one()
        data = ref.model_dump(exclude={"id", "code", "version"})
        s.add(Referral(**data, code="R-RACE0-00000"))
        s.flush()
    assert isinstance(refused.value.__cause__, IntegrityError)


def test_future_launch_time_is_refused(rt: Runtime, now: dt.datetime) -> None:
    from referrals.usecases.referrals.launching import LaunchRequest, launch_referrals

    client = new_client(rt, now)
    consent(rt, client, "police-nha-trang", "id_papers", now)
    request = LaunchRequest(
        client_code=client,
        pathway="id_papers",
        partner="police-nha-trang",
        launched_at=now + dt.timedelta(days=2),
    )
    with pytest.raises(DomainError, match="in the future"), transaction(rt.engine) as s:
        launch_referrals(s, requests=[request], coordinator=rt.user(s), ctx=rt.ctx, now=now)
