"""Partners answer from the link in their message: the page, the answers, and every refusal."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from referrals.infra.client_keys import cipher_of
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.links import link_token, message_of
from referrals.models.people import Client, User
from referrals.models.workflow import Event, Notification, Referral, Step
from referrals.usecases.clients.clients import withdraw_consent
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.referrals.answering import revoke_link
from referrals.web.app import create_app
from support.domain import prompt_on_both_channels, ready_referral, row_counts

NAME, PHONE = "Lê Thị Riêng", "0905 888 777"


@pytest.fixture
def web(rt: Runtime) -> TestClient:
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "mai").values(email="mai@chicuc.example.vn"))
    return TestClient(create_app())


def launched(rt: Runtime, **kw: str) -> tuple[str, dict[str, str]]:
    """A referral launched now (links last 60 days), its prompt sent by SMS and then by e-mail
    (no receipt in time), and a link token per channel."""
    now = dt.datetime.now(dt.UTC)
    code = ready_referral(rt, now, name=NAME, phone=PHONE, **kw)
    prompt_on_both_channels(rt, code, now)
    with transaction(rt.engine) as s:
        rows = s.execute(
            select(Notification.channel, Notification.id)
            .join(Referral)
            .where(Referral.code == code, Notification.template == "referral.new")
        ).all()
    return code, {channel: link_token(rt.ctx.vault, i) for channel, i in rows}


def referral(rt: Runtime, code: str) -> tuple[str, list[tuple[str, str]]]:
    with transaction(rt.engine) as s:
        r = s.scalars(select(Referral).where(Referral.code == code)).one()
        steps = s.execute(
            select(Step.key, Step.status).where(Step.referral_id == r.id).order_by(Step.seq)
        ).all()
    return r.status, [tuple(x) for x in steps]  # type: ignore[misc]


def test_the_page_shows_the_prompt_and_only_what_the_pathway_shares_with_consent(
    rt: Runtime, web: TestClient
) -> None:
    code, links = launched(rt, id_number="079190001234")
    page = web.get(f"/l/{links['sms']}")
    assert page.status_code == 200
    assert code in page.text and "Làm giấy tờ tùy thân" in page.text
    assert "Xác nhận tiếp nhận" in page.text and "<script" not in page.text
    # id_papers shares the name and ID number with the police, under the client's consent
    assert NAME in page.text and "079190001234" in page.text and "888" not in page.text
    with transaction(rt.engine) as s:
        viewed = s.scalars(select(Event).where(Event.kind == "pii.viewed")).one()
    assert viewed.data["fields"] == ["id_number", "name"] and viewed.actor.startswith("contact:")
    with transaction(rt.engine) as s:  # consent withdrawn: the page shows nothing of the client
        withdraw_consent(
            s,
            client_code=_client_code(s, code),
            partner="police-nha-trang",
            purpose="id_papers",
            by=rt.user(s),
            now=dt.datetime.now(dt.UTC),
            ctx=rt.ctx,
        )
    page = web.get(f"/l/{links['sms']}")
    assert NAME not in page.text and "079190001234" not in page.text

    english = launched(rt, pathway="legal_aid", partner="saphira-legal")[1]["email"]
    page = web.get(f"/l/{english}")
    assert "Accept the referral" in page.text and NAME not in page.text  # legal aid shares nothing


def _client_code(s, code: str) -> str:  # type: ignore[no-untyped-def]
    return s.scalars(
        select(Client.code)
        .join(Referral, Referral.client_id == Client.id)
        .where(Referral.code == code)
    ).one()


def test_the_closed_loop_from_the_links(rt: Runtime, web: TestClient) -> None:
    code, links = launched(rt)
    answered = web.post(f"/l/{links['sms']}", data={"action": "accept"})
    assert answered.status_code == 200 and 'id="thanks"' in answered.text
    status, steps = referral(rt, code)
    assert status == "accepted" and steps[:2] == [
        ("acknowledge", "done"),
        ("application_received", "active"),
    ]
    # The same answer again is refused: its step is answered (409). A link is no longer used up
    # by one answer (issue 20): the e-mail's link now shows the partner's next step to answer.
    assert web.post(f"/l/{links['sms']}", data={"action": "accept"}).status_code == 409
    page = web.get(f"/l/{links['email']}").text
    assert 'id="refused"' not in page and 'name="step" value="application_received"' in page

    # the next steps may also be answered from the links of the messages that ask for them
    for key in ("application_received", "card_issued"):
        with transaction(rt.engine) as s:
            step_id = s.scalars(
                select(Step.id).join(Referral).where(Referral.code == code, Step.key == key)
            ).one()
            msg = Notification(
                referral_id=s.scalars(select(Referral.id).where(Referral.code == code)).one(),
                contact_id=s.scalars(
                    select(Notification.contact_id).where(Notification.template == "referral.new")
                ).first(),
                channel="sms",
                template="step.reminder",
                language="vi",
                context={"code": code, "step": key},
                idempotency_key=f"test:{step_id}",
                next_attempt_at=dt.datetime.now(dt.UTC),
                created_at=dt.datetime.now(dt.UTC),
            )
            s.add(msg)
            s.flush()
            token = link_token(rt.ctx.vault, msg.id)  # type: ignore[arg-type]
        page = web.get(f"/l/{token}")
        assert "Đã xong" in page.text and 'value="accept"' not in page.text
        if key == "card_issued":  # the pathway asks for the date the card was issued
            assert "Ngày cấp thẻ" in page.text
            assert web.post(f"/l/{token}", data={"action": "done"}).status_code == 409
        done = web.post(f"/l/{token}", data={"action": "done", "on": "2026-12-01"})
        assert done.status_code == 200
    status, steps = referral(rt, code)
    assert status == "in-progress" and steps[-1] == ("client_confirmed", "active")
    with transaction(rt.engine) as s:
        told = s.scalars(
            select(Notification).where(Notification.template == "referral.answered")
        ).all()
        kinds = s.scalars(
            select(Event.kind).join(Referral).where(Referral.code == code).order_by(Event.id)
        ).all()
    assert [n.context["answer"] for n in told] == ["accept", "done", "done"]
    assert kinds.count("link.answered") == 3
    with transaction(rt.engine) as s:  # the coordinator closes the loop
        advance(
            s,
            code=code,
            action=Action.done,
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=dt.datetime.now(dt.UTC),
        )
    assert referral(rt, code)[0] == "completed"


def test_a_decline_tells_the_coordinator_who_else_offers_the_service(
    rt: Runtime, web: TestClient
) -> None:
    code, links = launched(rt, pathway="legal_aid", partner="legal-aid-centre")
    form = {
        "action": "decline",
        "reason": "partner_lacks_capacity",
        "note": f"khách {NAME} đã chuyển đi",
        "confirm": "true",
    }
    assert web.post(f"/l/{links['sms']}", data=form).status_code == 200
    assert referral(rt, code)[0] == "rejected"
    with transaction(rt.engine) as s:
        (told,) = s.scalars(
            select(Notification).where(Notification.template == "referral.answered")
        ).all()
        answered = s.scalars(select(Event).where(Event.kind == "link.answered")).one()
        client = s.scalars(select(Client).join(Referral).where(Referral.code == code)).one()
        cipher = cipher_of(s, rt.ctx.vault, client)
    assert told.context["alternatives"] == ["Công ty Dịch vụ pháp lý Saphira Nha Trang"]
    assert told.context["reason"] == "partner_lacks_capacity"
    assert (
        NAME not in str(answered.data)
        and cipher.decrypt(answered.data["note_enc"], "event.note") == form["note"]
    )


@pytest.mark.parametrize("case", ["forged", "other-message", "junk"])
def test_forged_and_tampered_links_change_nothing(rt: Runtime, web: TestClient, case: str) -> None:
    code, links = launched(rt)
    token = links["sms"]
    bad = {
        "forged": token[:-1] + ("a" if token[-1] != "a" else "b"),
        "other-message": link_token(rt.ctx.vault, 999999)[:-13] + token[-13:],
        "junk": "not-a-token%00",
    }[case]
    before = row_counts(rt)
    assert web.get(f"/l/{bad}").status_code == 404
    response = web.post(f"/l/{bad}", data={"action": "accept"})
    assert response.status_code == 404 and "không hợp lệ" in response.text
    assert row_counts(rt) == before and referral(rt, code)[0] == "requested"


def test_expired_and_revoked_links_are_refused(rt: Runtime, web: TestClient) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=61)
    code = ready_referral(rt, old, name="Old")
    with transaction(rt.engine) as s:
        msg = s.scalars(select(Notification).join(Referral).where(Referral.code == code)).first()
    response = web.post(f"/l/{link_token(rt.ctx.vault, msg.id)}", data={"action": "accept"})
    assert response.status_code == 410 and "hết hạn" in response.text
    assert referral(rt, code)[0] == "requested"

    code = ready_referral(
        rt, dt.datetime.now(dt.UTC), "health_check", "phuong-son-health", name="C"
    )
    with transaction(rt.engine) as s:
        first = s.scalars(select(Notification.id).join(Referral).where(Referral.code == code))
        links = {"sms": link_token(rt.ctx.vault, first.one())}
    with transaction(rt.engine) as s:  # cancelled before delivery: its links are withdrawn
        advance(
            s,
            code=code,
            action=Action.cancel,
            by=rt.user(s, "mai"),
            ctx=rt.ctx,
            now=dt.datetime.now(dt.UTC),
        )
    response = web.get(f"/l/{links['sms']}")
    assert response.status_code == 410 and "thu hồi" in response.text

    code, links = launched(
        rt, pathway="health_check", partner="ninh-hiep-health", district="ninh-hoa"
    )
    with transaction(rt.engine) as s:  # a link withdrawn by hand (sent to a lost phone)
        message_id = message_of(rt.ctx.vault, links["sms"])
        revoke_link(s, message_id=message_id, by=rt.user(s, "admin"), now=dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
    response = web.post(f"/l/{links['sms']}", data={"action": "accept"})
    assert response.status_code == 410 and referral(rt, code)[0] == "requested"
    assert web.get(f"/l/{links['email']}").status_code == 200  # the e-mail's link still works


def test_a_bad_form_is_refused_and_changes_nothing(rt: Runtime, web: TestClient) -> None:
    code, links = launched(rt)
    before = row_counts(rt)
    for form in (
        {"action": "delete"},
        {"action": "accept", "extra": "x"},
        {"action": "decline", "reason": "client_refused"},
        {"action": "done"},
    ):
        response = web.post(f"/l/{links['sms']}", data=form)
        assert response.status_code in (400, 409), form
    assert row_counts(rt) == before and referral(rt, code)[0] == "requested"


def test_a_partner_says_how_full_it_is_and_coordinators_see_it_at_launch(
    rt: Runtime, web: TestClient
) -> None:
    from support.pages import Clock, logged_in, staff_users

    code, links = launched(rt, pathway="legal_aid", partner="legal-aid-centre")
    token = links["sms"]
    assert 'id="capacity"' in web.get(f"/l/{token}").text
    before = row_counts(rt)
    for bad in ({"capacity": "maybe"}, {"capacity": "full", "extra": "x"}, {}):
        assert web.post(f"/l/{token}/capacity", data=bad).status_code == 400
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert web.post(f"/l/{forged}/capacity", data={"capacity": "full"}).status_code == 404
    assert row_counts(rt) == before

    page = web.post(f"/l/{token}/capacity", data={"capacity": "waitlist"})
    assert page.status_code == 200 and 'id="capacity-thanks"' in page.text
    # After answering, the link still takes a capacity update.
    assert web.post(f"/l/{token}", data={"action": "accept"}).status_code == 200
    page = web.post(f"/l/{token}/capacity", data={"capacity": "full"})
    assert page.status_code == 200 and 'id="capacity-thanks"' in page.text
    with transaction(rt.engine) as s:
        changes = s.scalars(
            select(Event.data).where(Event.kind == "service.capacity").order_by(Event.id)
        ).all()
    assert [(c["was"], c["capacity"]) for c in changes] == [
        ("open", "waitlist"),
        ("waitlist", "full"),
    ]

    staff_users(rt)
    mai = logged_in(Clock(dt.datetime.now(dt.UTC)), "mai")
    with transaction(rt.engine) as s:
        client = s.scalars(select(Referral.client_id).where(Referral.code == code)).one()
        client_code = s.scalars(select(Client.code).where(Client.id == client)).one()
    launch = mai.get(f"/launch?client={client_code}").text
    assert re.search(r"Trung tâm Trợ giúp pháp lý[^<]* — Hết chỗ<", launch)
