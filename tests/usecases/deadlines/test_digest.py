"""The managers' morning digest: reaches a real SMTP server, once a day, with no client PII."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.people import Role, User
from referrals.models.workflow import Notification
from referrals.notifiers.channels import Channels
from referrals.notifiers.delivery import deliver
from referrals.usecases.deadlines.digest import queue_digests
from referrals.usecases.referrals.advancing import advance
from support.domain import ready_referral
from support.receivers import SmtpSink

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NAME, PHONE, ID_NUMBER = "Trần Thị Kín Đáo", "0905 333 444", "079190009999"


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def digests(rt: Runtime, now: dt.datetime) -> dict[str, int]:
    with transaction(rt.engine) as s:
        return queue_digests(s, ctx=rt.ctx, now=now, config=rt.province.province.digest)


def test_the_digest_reaches_each_manager_once_a_day_without_pii(
    rt: Runtime, smtp: SmtpSink
) -> None:
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "hoa").values(email="hoa@chicuc.example.vn"))
        s.add(
            User(
                username="lan",
                full_name="Manager NH",
                role=Role.manager.value,
                area_key="ninh-hoa",
                email="lan@chicuc.example.vn",
            )
        )
    late = ready_referral(
        rt, local("2026-11-23 09:00"), name=NAME, phone=PHONE, id_number=ID_NUMBER
    )
    done = ready_referral(
        rt,
        local("2026-11-23 09:00"),
        pathway="emergency_aid",
        partner="social-work-centre",
        name="B",
    )
    with transaction(rt.engine) as s:  # completed yesterday (the emergency pathway, step by step)
        for _ in range(3):
            advance(
                s,
                code=done,
                action=Action.done,
                by=rt.user(s, "mai"),
                ctx=rt.ctx,
                now=local("2026-11-26 15:00"),
            )

    morning = local("2026-11-27 07:30")  # the police's acknowledgement was due 26/11 17:00
    assert digests(rt, morning) == {"queued": 1, "already": 0, "nothing_to_say": 1}  # lan: Ninh Hòa
    assert digests(rt, morning + dt.timedelta(minutes=5)) == {
        "queued": 0,
        "already": 1,
        "nothing_to_say": 1,
    }
    channels = Channels(
        rt.province.province.delivery, secrets={"REFERRALS_EMAIL_URL": smtp.url()}.get
    )
    assert deliver(rt, now=morning, channels=channels).sent >= 1
    (mail,) = [m for m in smtp.mails if m.to == ["hoa@chicuc.example.vn"]]
    assert mail.subject == "Tóm tắt ngày 27/11/2026: 1 giới thiệu quá hạn"
    assert "Mới quá hạn từ hôm qua: 1" in mail.body
    assert "Hoàn thành hôm qua: 1" in mail.body
    assert f"- {late}  police-nha-trang  acknowledge  trễ 1 ngày làm việc" in mail.body
    raw = mail.message.as_string()
    for secret in (NAME, "Tran Thi Kin Dao", "905333444", "905 333 444", ID_NUMBER):
        assert secret not in raw and secret not in mail.body

    # the next day: nothing new is late... but the referral still is, so there is a digest
    assert digests(rt, local("2026-11-28 07:30"))["queued"] == 1
    with transaction(rt.engine) as s:
        keys = s.scalars(
            select(Notification.idempotency_key).where(Notification.template == "digest.daily")
        ).all()
    assert len(keys) == 2 and len(set(keys)) == 2


def test_no_digest_when_there_is_nothing_to_say_unless_asked(rt: Runtime) -> None:
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "hoa").values(email="hoa@chicuc.example.vn"))
    assert digests(rt, local("2026-11-27 07:30")) == {
        "queued": 0,
        "already": 0,
        "nothing_to_say": 1,
    }
    p = rt.province
    import dataclasses

    config = p.province.digest.model_copy(update={"when_empty": True})
    rt.province = dataclasses.replace(  # type: ignore[misc]
        p, province=p.province.model_copy(update={"digest": config})
    )
    assert digests(rt, local("2026-11-27 07:30"))["queued"] == 1
