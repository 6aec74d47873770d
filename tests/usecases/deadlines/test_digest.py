"""The managers' morning digest: reaches a real SMTP server, once a day, with no client PII."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.people import Role, User
from referrals.models.workflow import Notification
from referrals.notifiers.channels import Channels
from referrals.notifiers.delivery import deliver
from referrals.notifiers.rendering import render
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
    assert mail.subject == "Tóm tắt ngày 27/11/2026: 1 chuyển gửi quá hạn"
    assert "Mới quá hạn từ hôm qua: 1" in mail.body
    assert "Hoàn thành hôm qua: 1" in mail.body
    # names in the manager's language, not keys, and the coordinator responsible
    assert (
        f"- {late}  Công an phường Nha Trang  Xác nhận tiếp nhận  trễ 1 ngày làm việc"
        "  (cán bộ điều phối: Coordinator NT)"
    ) in mail.body
    assert "police-nha-trang" not in mail.body and "acknowledge" not in mail.body
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


def test_the_digest_counts_hours_on_hour_counted_steps(rt: Runtime) -> None:
    """Tue 01/12 07:30: a temporary accommodation launched Mon 09:00 (acknowledgement due 11:00,
    counted in hours) is 20 hours late, not "0 working days"; an urgent support launched at
    03:00 (due 07:00) less than an hour late; ID papers due Thu 26/11 17:00 still say working
    days. Each names its partner, step and coordinator, never a key or the client."""
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "hoa").values(email="hoa@chicuc.example.vn"))
    papers = ready_referral(rt, local("2026-11-23 09:00"), name=NAME, phone=PHONE)
    shelter = ready_referral(
        rt, local("2026-11-30 09:00"), pathway="emergency_shelter", partner="social-work-centre"
    )
    aid = ready_referral(
        rt, local("2026-12-01 03:00"), pathway="emergency_aid", partner="social-work-centre"
    )
    assert digests(rt, local("2026-12-01 07:30"))["queued"] == 1
    with Session(rt.engine) as s:
        (message,) = s.scalars(
            select(Notification).where(Notification.template == "digest.daily")
        ).all()
    assert message.language == "vi"
    by_code = {r["code"]: r for r in message.context["overdue"]}
    assert [r["code"] for r in message.context["overdue"]] == [papers, shelter, aid]
    assert by_code[shelter]["hours_late"] == 20 and by_code[aid]["hours_late"] == 0
    assert by_code[papers]["hours_late"] is None and by_code[papers]["days_late"] == 3
    assert by_code[shelter]["step_name"] == "Xác nhận tiếp nhận"
    assert by_code[shelter]["partner_name"] == "Trung tâm Công tác xã hội tỉnh Khánh Hòa"
    assert by_code[shelter]["coordinator_name"] == "Coordinator NT"

    extra = {"link": "https://x.example/"}
    tz = rt.settings.tz
    mail = render(
        "digest.daily", channel="email", language="vi", context=message.context | extra, tz=tz
    )
    centre = "Trung tâm Công tác xã hội tỉnh Khánh Hòa"
    coordinator = "(cán bộ điều phối: Coordinator NT)"
    assert f"- {shelter}  {centre}  Xác nhận tiếp nhận  trễ 20 giờ  {coordinator}" in mail.body
    assert f"- {aid}  {centre}  Xác nhận tiếp nhận  trễ chưa đến 1 giờ  {coordinator}" in mail.body
    assert f"- {papers}  Công an phường Nha Trang  Xác nhận tiếp nhận  trễ 3 ngày làm việc" in (
        mail.body
    )
    assert "trễ 0 ngày làm việc" not in mail.body and "trễ 0 giờ" not in mail.body
    for key in ("social-work-centre", "police-nha-trang", "acknowledge", "emergency_shelter"):
        assert key not in mail.body
    for secret in (NAME, "Tran Thi Kin Dao", "905333444", "905 333 444"):
        assert secret not in mail.body and secret not in str(message.context)

    # the English template says the same in its words, one hour or many
    english = render(
        "digest.daily", channel="email", language="en", context=message.context | extra, tz=tz
    ).body
    assert f"- {shelter}  {centre}  Xác nhận tiếp nhận  20 hours late  (coordinator: " in english
    assert f"{aid}  {centre}  Xác nhận tiếp nhận  less than an hour late" in english
    assert "3 working days late" in english
    one = [{**by_code[shelter], "hours_late": 1}, {**by_code[papers], "days_late": 1}]
    english = render(
        "digest.daily",
        channel="email",
        language="en",
        context=message.context | extra | {"overdue": one},
        tz=tz,
    ).body
    assert "  1 hour late" in english and "  1 working day late" in english

    # a digest queued before the names were (keys and working days only) still renders
    before = {
        k: v for k, v in by_code[papers].items() if k in ("code", "partner", "step", "days_late")
    }
    old = render(
        "digest.daily",
        channel="email",
        language="vi",
        context=message.context | extra | {"overdue": [before]},
        tz=tz,
    ).body
    assert f"- {papers}  police-nha-trang  acknowledge  trễ 3 ngày làm việc" in old
