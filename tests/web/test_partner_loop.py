"""Issue 20, the partner's whole loop: one link serves every step of the referral that is the
partner's, one after the other, and nothing else (a coordinator's step, another referral, a
stale or replayed form, a GET)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact, Organization
from referrals.models.links import link_token
from referrals.models.people import User
from referrals.models.workflow import Event, Notification, Referral, Step
from referrals.usecases.referrals.answering import revoke_link
from referrals.web.app import create_app
from support.domain import ready_referral, row_counts
from support.pages import Clock

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # a Tuesday morning in Nha Trang


@pytest.fixture
def web(rt: Runtime) -> TestClient:
    with transaction(rt.engine) as s:  # the coordinator reads her answers by e-mail
        s.execute(update(User).where(User.username == "mai").values(email="mai@chicuc.example.vn"))
    return TestClient(create_app(clock=Clock(NOW)))


def sms_link(rt: Runtime, pathway: str = "id_papers", partner: str = "police-nha-trang") -> str:
    """A referral launched now, and the link of its first SMS to the partner."""
    code = ready_referral(rt, NOW, pathway=pathway, partner=partner)
    with transaction(rt.engine) as s:
        message = s.scalars(
            select(Notification.id)
            .join(Referral, Referral.id == Notification.referral_id)
            .where(Referral.code == code, Notification.channel == "sms")
        ).first()
    assert message is not None
    return link_token(rt.ctx.vault, message)


def form_of(page: str) -> dict[str, str]:
    """The hidden fields the page's answer forms carry: the step and the referral's version."""
    step = re.search(r'name="step" value="([^"]+)"', page)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert step and version, "the page offers no answer"
    return {"step": step[1], "version": version[1]}


def steps_of(rt: Runtime, token: str) -> list[tuple[str, str]]:
    with Session(rt.engine) as s:
        referral_id = s.scalars(
            select(Notification.referral_id).where(Notification.id == _message(rt, token))
        ).one()
        rows = s.execute(
            select(Step.key, Step.status).where(Step.referral_id == referral_id).order_by(Step.seq)
        ).all()
    return [(k, v) for k, v in rows]


def _message(rt: Runtime, token: str) -> int:
    from referrals.models.links import message_of

    message = message_of(rt.ctx.vault, token)
    assert message is not None
    return message


def test_a_partner_completes_every_step_of_theirs_from_one_link(
    rt: Runtime, web: TestClient
) -> None:
    token = sms_link(rt)
    page = web.get(f"/l/{token}").text
    assert 'data-step="acknowledge" data-status="active"' in page
    assert "Tiếp nhận đủ hồ sơ" in page and "Cấp thẻ căn cước" in page  # the steps to come

    accepted = web.post(f"/l/{token}", data={"action": "accept", **form_of(page)})
    assert accepted.status_code == 200 and 'id="thanks"' in accepted.text
    assert accepted.url.path == f"/l/{token}"  # redirected back to the same link's page
    # The next step is the partner's: shown at once with its due date, ready to answer.
    assert form_of(accepted.text)["step"] == "application_received"
    assert re.search(r'id="current">Tiếp nhận đủ hồ sơ<', accepted.text)
    assert re.search(r"Hạn \d\d/\d\d/2026</span>", accepted.text)  # dd/mm/yyyy
    assert 'data-step="acknowledge" data-status="done"' in accepted.text

    received = web.post(f"/l/{token}", data={"action": "done", **form_of(accepted.text)})
    assert received.status_code == 200 and form_of(received.text)["step"] == "card_issued"
    assert "Ngày cấp thẻ" in received.text  # the pathway asks the date the card was issued

    issued = web.post(
        f"/l/{token}", data={"action": "done", "on": "05/12/2026", **form_of(received.text)}
    )
    assert issued.status_code == 200 and 'id="thanks"' in issued.text
    # The next step is the coordinator's: the page says so and offers nothing to answer.
    assert 'id="next-by"' in issued.text and 'name="action"' not in issued.text
    assert steps_of(rt, token) == [
        ("acknowledge", "done"),
        ("application_received", "done"),
        ("card_issued", "done"),
        ("client_confirmed", "active"),
    ]
    with Session(rt.engine) as s:
        answers = s.scalars(
            select(Event).where(Event.kind == "link.answered").order_by(Event.id)
        ).all()
        told = s.scalars(
            select(Notification.context).where(Notification.template == "referral.answered")
        ).all()
    assert [(e.data["step"], e.data["action"]) for e in answers] == [
        ("acknowledge", "accept"),
        ("application_received", "done"),
        ("card_issued", "done"),
    ]
    assert {e.actor for e in answers} == {answers[0].actor} and answers[0].actor.startswith(
        "contact:"
    )
    assert answers[-1].data["on"] == "2026-12-05" and len(told) == 3  # the coordinator is told


def test_a_coordinators_step_cannot_be_answered_from_the_link(rt: Runtime, web: TestClient) -> None:
    token = sms_link(rt)
    version = form_of(web.get(f"/l/{token}").text)["version"]
    before = row_counts(rt)
    for form in (
        {"action": "done", "step": "client_confirmed", "version": version},
        {"action": "accept", "step": "client_confirmed", "version": version},
        {"action": "done", "step": "card_issued", "version": version},  # not yet due
    ):
        refused = web.post(f"/l/{token}", data=form)
        assert refused.status_code == 409 and 'id="refused"' in refused.text, form
    assert row_counts(rt) == before
    with transaction(rt.engine) as s:  # the partner's steps done by hand: the coordinator's now
        s.execute(
            update(Step)
            .where(Step.key != "client_confirmed")
            .values(status="done", completed_at=NOW)
        )
        s.execute(update(Step).where(Step.key == "client_confirmed").values(status="active"))
        s.execute(update(Referral).values(status="in-progress"))
    page = web.get(f"/l/{token}").text
    assert 'id="next-by"' in page and 'name="action"' not in page and 'name="version"' not in page
    before = row_counts(rt)
    refused = web.post(f"/l/{token}", data={"action": "done", "step": "client_confirmed"})
    assert refused.status_code == 409 and row_counts(rt) == before


def test_a_stale_or_replayed_answer_is_refused_and_writes_nothing(
    rt: Runtime, web: TestClient
) -> None:
    token = sms_link(rt)
    first = form_of(web.get(f"/l/{token}").text)
    assert web.post(f"/l/{token}", data={"action": "accept", **first}).status_code == 200
    before = row_counts(rt)
    replayed = web.post(f"/l/{token}", data={"action": "accept", **first})  # a double tap
    assert replayed.status_code == 409 and 'id="refused"' in replayed.text
    assert 'id="current-step"' in replayed.text and "Internal" not in replayed.text
    # The right step with the version of before the accept: a stale page, refused too.
    stale_form = {"action": "done", "step": "application_received", "version": first["version"]}
    stale = web.post(f"/l/{token}", data=stale_form)
    assert stale.status_code == 409 and row_counts(rt) == before
    assert steps_of(rt, token)[1] == ("application_received", "active")


def test_a_link_answers_only_its_own_referral_and_contact(rt: Runtime, web: TestClient) -> None:
    mine, theirs = sms_link(rt), sms_link(rt)
    their_form = form_of(web.get(f"/l/{theirs}").text)
    assert web.post(f"/l/{mine}", data={"action": "accept", **their_form}).status_code in (
        200,
        409,
    )
    assert steps_of(rt, theirs)[0] == ("acknowledge", "active")  # never the other referral

    with transaction(rt.engine) as s:  # a message of this referral to another partner's contact
        message = s.get(Notification, _message(rt, theirs))
        assert message is not None
        stranger = s.scalars(
            select(Contact.id)
            .join(Organization, Organization.id == Contact.organization_id)
            .where(Organization.slug != "police-nha-trang")
        ).first()
        other = Notification(
            referral_id=message.referral_id,
            contact_id=stranger,
            channel="sms",
            template="step.reminder",
            language="vi",
            context={"code": "x", "step": "acknowledge"},
            idempotency_key="test:stranger",
            next_attempt_at=NOW,
            created_at=NOW,
        )
        s.add(other)
        s.flush()
        assert other.id is not None
        strangers = link_token(rt.ctx.vault, other.id)
    before = row_counts(rt)
    assert web.get(f"/l/{strangers}").status_code == 410
    refused = web.post(f"/l/{strangers}", data={"action": "accept", **their_form})
    assert refused.status_code == 410 and row_counts(rt) == before
    with transaction(rt.engine) as s:  # the contact who got the link leaves the partner
        s.execute(update(Contact).where(Contact.id == message.contact_id).values(active=False))
    assert web.post(f"/l/{theirs}", data={"action": "accept", **their_form}).status_code == 410
    assert row_counts(rt) == before


def test_opening_a_link_changes_nothing(rt: Runtime, web: TestClient) -> None:
    token = sms_link(rt, pathway="legal_aid", partner="legal-aid-centre")  # shares nothing
    before = row_counts(rt)
    for path in (f"/l/{token}", f"/l/{token}?done=accept", f"/l/{token}?done=junk"):
        page = web.get(path)
        assert page.status_code == 200 and 'name="step" value="acknowledge"' in page.text
    assert row_counts(rt) == before and steps_of(rt, token)[0] == ("acknowledge", "active")


def test_revoked_and_expired_links_are_refused_midway(rt: Runtime, web: TestClient) -> None:
    token = sms_link(rt)
    page = web.get(f"/l/{token}").text
    assert web.post(f"/l/{token}", data={"action": "accept", **form_of(page)}).status_code == 200
    form = form_of(web.get(f"/l/{token}").text)
    with transaction(rt.engine) as s:
        revoke_link(s, message_id=_message(rt, token), by=rt.user(s, "admin"), now=NOW)
    before = row_counts(rt)
    assert web.get(f"/l/{token}").status_code == 410
    assert web.post(f"/l/{token}", data={"action": "done", **form}).status_code == 410
    assert row_counts(rt) == before

    token = sms_link(rt)
    form = form_of(web.get(f"/l/{token}").text)
    late = TestClient(create_app(clock=Clock(NOW + dt.timedelta(days=61))))
    expired = late.post(f"/l/{token}", data={"action": "accept", **form})
    assert expired.status_code == 410 and "hết hạn" in expired.text
    assert steps_of(rt, token)[0] == ("acknowledge", "active")
