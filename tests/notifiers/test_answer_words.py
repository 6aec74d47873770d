"""The "partner answered" e-mail names the step the partner finished, in the coordinator's words:
the subject a coordinator scans in their inbox says "Tiếp nhận đủ hồ sơ", not `application_received`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.links import link_token
from referrals.models.people import User
from referrals.models.workflow import Notification, Referral
from referrals.notifiers.channels import Channels
from referrals.notifiers.delivery import deliver
from referrals.notifiers.rendering import render
from referrals.usecases.deadlines.sweeping import sweep
from referrals.usecases.referrals.answering import Answer, answer_link
from support.domain import ready_referral
from support.receivers import SmtpSink

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NAME, PHONE, ID_NUMBER = "Phạm Thị Kín Tiếng", "0905 444 555", "079190008888"
POLICE = "Công an phường Nha Trang"


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def answer(rt: Runtime, code: str, template: str, step: str, action: str, now: dt.datetime) -> None:
    """The partner answers from the link of the first `template` message about `step`."""
    with transaction(rt.engine) as s:
        messages = s.scalars(
            select(Notification)
            .join(Referral)
            .where(Referral.code == code, Notification.template == template)
            .order_by(Notification.id)
        ).all()
        (asked, *_) = [m.id for m in messages if m.context.get("step") == step]
        assert asked is not None
        token = link_token(rt.ctx.vault, asked)
        answer_link(
            s, ctx=rt.ctx, token=token, answer=Answer.model_validate({"action": action}), now=now
        )


def test_the_answered_mail_names_the_step_in_the_coordinators_language(
    rt: Runtime, smtp: SmtpSink
) -> None:
    """ID papers launched Mon 23/11 09:00 and accepted at 10:00; the reminder of Mon 30/11
    asks for the complete application (due Tue 01/12 17:00); the police answer "done" from it."""
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "mai").values(email="mai@chicuc.example.vn"))
    code = ready_referral(
        rt, local("2026-11-23 09:00"), name=NAME, phone=PHONE, id_number=ID_NUMBER
    )
    answer(rt, code, "referral.new", "acknowledge", "accept", local("2026-11-23 10:00"))
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-11-30 17:00"))
    answer(rt, code, "step.reminder", "application_received", "done", local("2026-11-30 18:00"))

    with transaction(rt.engine) as s:
        told = s.scalars(
            select(Notification)
            .where(Notification.template == "referral.answered")
            .order_by(Notification.id)
        ).all()
        contexts = [n.context for n in told]
    assert [c["answer"] for c in contexts] == ["accept", "done"]
    assert contexts[0]["step_name"] == "Xác nhận tiếp nhận"  # staff read Vietnamese
    assert contexts[1]["step_name"] == "Tiếp nhận đủ hồ sơ"
    assert contexts[1]["step"] == "application_received"  # the key stays, for the outbox's search

    channels = Channels(
        rt.province.province.delivery, secrets={"REFERRALS_EMAIL_URL": smtp.url()}.get
    )
    deliver(rt, now=local("2026-11-30 18:01"), channels=channels)
    mails = [m for m in smtp.mails if m.to == ["mai@chicuc.example.vn"]]
    assert len(mails) == 2
    done = next(m for m in mails if "đã xong bước" in m.subject)
    assert done.subject == f'{code}: {POLICE} đã xong bước "Tiếp nhận đủ hồ sơ"'
    assert f'{POLICE} đã xong bước "Tiếp nhận đủ hồ sơ"' in done.body
    for mail in mails:
        text = mail.subject + mail.body
        assert "application_received" not in text and "acknowledge" not in text
        raw = mail.message.as_string()
        for secret in (NAME, "Pham Thi Kin Tieng", "905444555", "905 444 555", ID_NUMBER):
            assert secret not in raw and secret not in mail.body

    # a message queued before step names were in the context still renders, with the key
    old = {k: v for k, v in contexts[1].items() if k != "step_name"} | {"link": "https://x/"}
    before = render("referral.answered", channel="email", language="vi", context=old, tz=TZ)
    assert before.subject == f'{code}: {POLICE} đã xong bước "application_received"'
