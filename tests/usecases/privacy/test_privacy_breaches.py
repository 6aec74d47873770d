"""Personal-data breaches: the 72-hour clock from discovery (Law 91/2025 Art. 23 k1), the sweep's
warning and overdue alert once each, who was told, and the notice's content (Decree 356 Art. 28
k1 a-d, Form 08) with counts and never a name; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import DomainError
from referrals.models.people import User
from referrals.models.privacy import Breach
from referrals.models.workflow import Event, Notification
from referrals.notifiers.rendering import render
from referrals.usecases.deadlines.sweeping import sweep
from referrals.usecases.privacy.breaches import (
    BreachIn,
    NotifyIn,
    get_breach,
    notice,
    notify,
    record_breach,
)
from support.domain import consent, launch, new_client

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NAMES = ("Lê Thị Hồng Nhung", "Phạm Thị Thu Trang", "Võ Thị Kim Oanh")


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture
def staff(rt: Runtime) -> Runtime:
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "hoa").values(email="hoa@chicuc.example.vn"))
    return rt


def record(rt: Runtime, discovered: str, **more: object) -> str:
    data = BreachIn.model_validate(
        {
            "discovered_at": local(discovered),
            "categories": ["name", "phone", "services"],
            "nature": "Máy tính xách tay của văn phòng bị mất, ổ đĩa không mã hóa",
            "place": "Trụ sở Chi cục",
            "involved": "Cán bộ văn phòng",
            "consequences": "Lộ danh sách đối tượng được chuyển gửi khám sức khỏe",
            "measures": "Đổi khóa bí mật, báo công an phường",
            **more,
        }
    )
    with transaction(rt.engine) as s:
        return record_breach(
            s,
            data=data,
            province=rt.province,
            by=rt.user(s, "hoa"),
            ctx=rt.ctx,
            now=local(discovered),
        ).code


def alerts(rt: Runtime) -> list[str]:
    with transaction(rt.engine) as s:
        return [
            e.kind
            for e in s.scalars(
                select(Event)
                .where(Event.kind.in_(["privacy.breach.warned", "privacy.breach.overdue"]))
                .order_by(Event.id)  # type: ignore[attr-defined]
            )
        ]


def test_the_clock_is_72_hours_from_discovery_through_a_weekend(staff: Runtime) -> None:
    rt = staff
    code = record(rt, "2026-02-13 22:30", occurred_at=local("2026-02-10 08:00"))  # Fri, before Tết
    with transaction(rt.engine) as s:
        breach = get_breach(s, code)
        # Hours run on through the weekend and Tết: Mon 16/02 22:30, not working days.
        assert breach.notify_due_at == local("2026-02-16 22:30")
        assert "Máy tính" not in (breach.nature_enc or "")
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-02-15 22:29"))
    assert alerts(rt) == []
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-02-15 22:30"))  # 24 hours before
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-02-16 10:00"))
    assert alerts(rt) == ["privacy.breach.warned"]
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-02-16 22:30"))
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-02-17 22:30"))
    assert alerts(rt) == ["privacy.breach.warned", "privacy.breach.overdue"]
    with transaction(rt.engine) as s:
        sent = s.scalars(select(Notification).order_by(Notification.id)).all()
    assert [n.template for n in sent] == ["privacy.alert"] * 2
    assert [n.context["state"] for n in sent] == ["soon", "late"]
    assert sent[1].context["late"] == "0 giờ" and sent[1].context["code"] == code
    text = render("privacy.alert", channel="email", language="vi", context=sent[1].context, tz=TZ)
    assert (
        text.subject
        == f"Quá hạn: Thông báo cơ quan chuyên trách trong 72 giờ (Luật 91/2025, Điều 23) ({code})"
    )
    assert f"referrals privacy breach notice {code}" in text.body


def test_telling_the_authority_in_time_stops_the_clock(staff: Runtime) -> None:
    rt = staff
    code = record(rt, "2026-11-23 09:00")
    data = NotifyIn(
        told="authority",  # type: ignore[arg-type]
        recipient="Cục A05, Bộ Công an",
        channel="portal",
        reference="A05-123",
        at=local("2026-11-24 15:00"),
    )
    with transaction(rt.engine) as s:
        notify(s, code=code, data=data, by=rt.user(s, "hoa"), now=local("2026-11-24 15:05"))
    with transaction(rt.engine) as s:
        breach = s.scalars(select(Breach)).one()
        assert breach.notified_at == local("2026-11-24 15:00")
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-11-27 09:00"))
    assert alerts(rt) == []
    with (
        pytest.raises(DomainError, match="before the breach was discovered"),
        transaction(rt.engine) as s,
    ):
        notify(
            s,
            code=code,
            data=data.model_copy(update={"at": local("2026-11-22 09:00")}),
            by=rt.user(s, "hoa"),
            now=local("2026-11-24 15:05"),
        )


def test_the_notice_has_art_28_items_and_counts_and_no_name(rt: Runtime) -> None:
    at = local("2026-11-23 09:00")
    for name in NAMES:
        client = new_client(rt, at, name=name)
        consent(rt, client, "cdc-khanh-hoa", "health_check", at)
        launch(rt, client, "health_check", "cdc-khanh-hoa", at)
    new_client(rt, at, name="Đỗ Thị Mai Anh", district="ninh-hoa")
    code = record(rt, "2026-11-24 08:00", areas=["nha-trang"])
    with transaction(rt.engine) as s:
        text, data = notice(
            s,
            code=code,
            province=rt.province,
            by=rt.user(s, "hoa"),
            ctx=rt.ctx,
            now=local("2026-11-24 09:00"),
        )
    assert data["counts"] == {"clients": 3, "name": 3, "phone": 3, "services": 3}
    vi, en = text.split("\n---\n")
    assert vi.index("THÔNG BÁO VI PHẠM") < len(vi) and "Mẫu số 08" in vi
    for item in ("điểm a", "điểm b", "điểm c", "điểm d"):
        assert f"Điều 28 khoản 1 {item}" in vi
    for item in ("Art. 28 k1 a", "Art. 28 k1 b", "Art. 28 k1 c", "Art. 28 k1 d"):
        assert item in en
    assert "Kính gửi: Cơ quan chuyên trách bảo vệ dữ liệu cá nhân, Bộ Công an" in vi
    assert "Máy tính xách tay" in vi and "Đổi khóa bí mật" in vi  # nature, measures
    assert (
        "Họ và tên: 3 bản ghi" in vi
        and "Số chủ thể dữ liệu (đối tượng) có dữ liệu đang lưu giữ: 3" in vi
    )
    assert "Chi cục Phòng, chống tệ nạn xã hội tỉnh Khánh Hòa" in vi
    assert "08:00 27/11/2026" in vi  # due: 72 hours after 08:00 24/11
    for name in (*NAMES, "Đỗ Thị Mai Anh"):
        assert name not in text and name not in str(data)
    with transaction(rt.engine) as s:
        assert s.scalars(select(Event).where(Event.kind == "privacy.breach.notice")).one()


def test_a_breach_in_the_future_or_an_unknown_area_is_refused(rt: Runtime) -> None:
    data = BreachIn.model_validate(
        {"discovered_at": local("2026-11-25 09:00"), "categories": ["name"], "nature": "lost"}
    )
    with pytest.raises(DomainError, match="future"), transaction(rt.engine) as s:
        record_breach(
            s,
            data=data,
            province=rt.province,
            by=rt.user(s, "hoa"),
            ctx=rt.ctx,
            now=local("2026-11-24 09:00"),
        )
    other = data.model_copy(update={"areas": ["atlantis"]})
    with pytest.raises(DomainError, match="no area atlantis"), transaction(rt.engine) as s:
        record_breach(
            s,
            data=other,
            province=rt.province,
            by=rt.user(s, "hoa"),
            ctx=rt.ctx,
            now=local("2026-11-26 09:00"),
        )
    with transaction(rt.engine) as s:
        assert s.scalars(select(Breach)).all() == []


def test_a_key_rotation_keeps_the_breach_texts_readable(
    staff: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The texts are sealed under the secret itself: `keys rotate` seals them again, so the
    notice still reads once the old secret is dropped."""
    from conftest import SECRET

    from referrals.config import get_settings
    from referrals.usecases.clients.keys import rotate

    code = record(staff, "2026-11-23 09:00")
    new = "a-brand-new-secret-key-0123456789abcdef0123456789"

    def switched(previous: str) -> Runtime:
        monkeypatch.setenv("REFERRALS_SECRET_KEY", new)
        monkeypatch.setenv("REFERRALS_PREVIOUS_SECRET_KEYS", previous)
        get_settings.cache_clear()
        return Runtime(get_settings())

    rotating = switched(SECRET)
    rotate(rotating.engine, vault=rotating.ctx.vault)
    after = switched("")  # the old secret gone
    with transaction(after.engine) as s:
        text, _ = notice(
            s,
            code=code,
            province=after.province,
            by=after.user(s, "hoa"),
            ctx=after.ctx,
            now=local("2026-11-24 09:00"),
        )
    assert "Máy tính xách tay của văn phòng bị mất" in text
