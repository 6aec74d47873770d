"""Data subjects' requests (Decree 356/2025 Art. 5) on the province's calendar: their deadlines
over weekends and Tết, one escalation per lateness, one extension, and closure linking the
export or erasure it caused; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from referrals.config.privacy import DataProtection, RequestKind
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import DomainError
from referrals.models.people import Client, User
from referrals.models.privacy import Channel, Outcome, PrivacyRequest
from referrals.models.workflow import Event, Notification
from referrals.notifiers.rendering import render
from referrals.usecases.clients.subject import export_client
from referrals.usecases.deadlines.sweeping import sweep
from referrals.usecases.privacy.requests import (
    CloseIn,
    ExtendIn,
    RequestIn,
    acknowledge,
    close,
    due_dates,
    extend,
    get_request,
    opened_text,
    record_request,
)
from support.domain import new_client

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CFG = DataProtection()
NAME = "Trần Thị Bích Ngọc"
WORDS = "Tôi muốn xem toàn bộ hồ sơ của tôi, số điện thoại 0905 123 456"


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture
def staff(rt: Runtime) -> Runtime:
    """The manager has an e-mail address: escalations reach managers by e-mail."""
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "hoa").values(email="hoa@chicuc.example.vn"))
    return rt


def add(
    rt: Runtime,
    client: str,
    kind: RequestKind,
    received: dt.datetime,
    *,
    third_party: bool = False,
    text: str | None = WORDS,
) -> str:
    data = RequestIn(
        client=client,
        kind=kind,
        channel=Channel.in_person,
        received_at=received,
        third_party=third_party,
        text=text,
    )
    with transaction(rt.engine) as s:
        return record_request(
            s, data=data, cfg=CFG, by=rt.user(s, "hoa"), ctx=rt.ctx, now=received
        ).code


def row(rt: Runtime, code: str) -> PrivacyRequest:
    with transaction(rt.engine) as s:
        found = get_request(s, code)
        s.expunge(found)
        return found


def test_deadlines_skip_the_weekend_and_tet_2026(rt: Runtime) -> None:
    cal = rt.ctx.calendar
    friday = local("2026-02-13 10:00")  # the Friday before Tết Bính Ngọ
    # Tết 2026 in the calendar: 16/02 (giao thừa) to 20/02 (mùng 4), then a weekend.
    assert [d.day for d in (dt.date(2026, 2, 16) + dt.timedelta(i) for i in range(5))] == [
        16,
        17,
        18,
        19,
        20,
    ]
    assert not any(cal.is_working_day(dt.date(2026, 2, d)) for d in range(14, 23))
    assert cal.is_working_day(dt.date(2026, 2, 23))

    def dues(kind: RequestKind, cfg: DataProtection = CFG, **kw: bool) -> tuple[dt.datetime, ...]:
        return due_dates(cal, cfg, kind=kind, received_at=friday, third_party=False, **kw)

    # 02 working days: Mon 23/02 and Tue 24/02, at the office's closing time.
    ack, done = dues(RequestKind.access)
    assert ack == local("2026-02-24 17:00")
    assert done == local("2026-02-23 17:00")  # 10 calendar days (Art. 5 k3)
    assert dues(RequestKind.erase)[1] == local("2026-03-05 17:00")  # 20 days (k4)
    assert dues(RequestKind.withdraw_consent)[1] == local("2026-02-28 17:00")  # 15 (k2): Saturday
    rolled = DataProtection(roll_to_working_day=True)
    assert dues(RequestKind.withdraw_consent, rolled)[1] == local("2026-03-02 17:00")  # Monday
    third = due_dates(cal, CFG, kind=RequestKind.erase, third_party=True, received_at=friday)
    assert third[1] == local("2026-03-15 17:00")  # 30 days via a third party (k4)
    # A request received on a Saturday: the working days start on Monday.
    saturday = local("2026-11-28 09:00")
    ack, _ = due_dates(cal, CFG, kind=RequestKind.object, third_party=False, received_at=saturday)
    assert ack == local("2026-12-01 17:00")  # Mon 30/11, Tue 01/12


def test_a_request_is_recorded_with_its_dates_and_its_words_sealed(rt: Runtime) -> None:
    client = new_client(rt, local("2026-02-01 09:00"), name=NAME)
    code = add(rt, client, RequestKind.access, local("2026-02-13 10:00"))
    r = row(rt, code)
    assert (r.ack_due_at, r.due_at) == (local("2026-02-24 17:00"), local("2026-02-23 17:00"))
    assert r.text_enc and "xem" not in r.text_enc
    with transaction(rt.engine) as s:
        assert opened_text(s, get_request(s, code), rt.ctx)["text"] == WORDS
        events = s.scalars(select(Event).where(Event.kind.like("privacy.%"))).all()  # type: ignore[attr-defined]
    assert [e.kind for e in events] == ["privacy.request.received"]
    assert WORDS not in str(events[0].data) and NAME not in str(events[0].data)


def test_a_coordinator_may_not_record_a_request(rt: Runtime) -> None:
    client = new_client(rt, local("2026-02-01 09:00"))
    data = RequestIn(
        client=client,
        kind=RequestKind.erase,
        channel=Channel.phone,
        received_at=local("2026-02-13 10:00"),
    )
    with pytest.raises(DomainError, match="manager or admin"), transaction(rt.engine) as s:
        record_request(
            s, data=data, cfg=CFG, by=rt.user(s, "mai"), ctx=rt.ctx, now=data.received_at
        )


def escalations(rt: Runtime) -> list[tuple[str, str]]:
    with transaction(rt.engine) as s:
        events = s.scalars(
            select(Event).where(Event.kind == "privacy.request.escalated").order_by(Event.id)
        ).all()
    return [(e.data["request"], e.data["which"]) for e in events]


def test_each_lateness_is_escalated_once_to_managers(staff: Runtime) -> None:
    rt = staff
    client = new_client(rt, local("2026-02-01 09:00"), name=NAME)
    code = add(rt, client, RequestKind.access, local("2026-02-13 10:00"))
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-02-23 16:59"))
    assert escalations(rt) == []
    # Over Tết the 10 calendar days (23/02) end before the 2 working days (24/02).
    summary = sweep(rt.engine, ctx=rt.ctx, now=local("2026-02-23 17:00"))
    assert summary.counts["privacy_alerts"] == 1
    assert escalations(rt) == [(code, "due")]
    summary = sweep(rt.engine, ctx=rt.ctx, now=local("2026-02-24 17:00"))
    assert summary.counts["privacy_alerts"] == 1
    assert escalations(rt) == [(code, "due"), (code, "ack")]
    again = sweep(rt.engine, ctx=rt.ctx, now=local("2026-02-24 17:00"))
    later = sweep(rt.engine, ctx=rt.ctx, now=local("2026-03-10 09:00"))
    assert again.counts["privacy_alerts"] == later.counts["privacy_alerts"] == 0
    assert escalations(rt) == [(code, "due"), (code, "ack")]
    with transaction(rt.engine) as s:
        sent = s.scalars(select(Notification).order_by(Notification.id)).all()
        manager = s.scalars(select(User).where(User.username == "hoa")).one()
    assert [(n.template, n.channel, n.user_id) for n in sent] == [
        ("privacy.alert", "email", manager.id)
    ] * 2
    for n in sent:  # the alert says what is late and how to see it; no name, no words
        text = render(n.template, channel="email", language="vi", context=n.context, tz=TZ)
        assert text.subject is not None and text.subject.startswith("Quá hạn: ")
        assert code in text.subject and f"referrals privacy requests show {code}" in text.body
        assert NAME not in text.body and WORDS not in text.body
        assert "Phản hồi chủ thể dữ liệu" in text.body or "Thực hiện yêu cầu" in text.body


def test_an_acknowledged_request_is_escalated_only_when_undone(staff: Runtime) -> None:
    rt = staff
    client = new_client(rt, local("2026-02-01 09:00"))
    code = add(rt, client, RequestKind.erase, local("2026-02-13 10:00"))
    with transaction(rt.engine) as s:
        acknowledge(s, code=code, by=rt.user(s, "hoa"), now=local("2026-02-23 09:00"))
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-03-05 16:00"))
    assert escalations(rt) == []
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-03-05 17:00"))
    sweep(rt.engine, ctx=rt.ctx, now=local("2026-03-06 17:00"))
    assert escalations(rt) == [(code, "due")]
    with pytest.raises(DomainError, match="already acknowledged"), transaction(rt.engine) as s:
        acknowledge(s, code=code, by=rt.user(s, "hoa"), now=local("2026-03-06 09:00"))


def test_one_extension_a_second_is_refused_and_nothing_changes(rt: Runtime) -> None:
    client = new_client(rt, local("2026-02-01 09:00"))
    code = add(rt, client, RequestKind.erase, local("2026-02-13 10:00"))

    def extend_by(days: int, at: str) -> PrivacyRequest:
        with transaction(rt.engine) as s:
            return extend(
                s,
                code=code,
                data=ExtendIn(days=days, reason="Cần đối tác xác nhận đã xóa"),
                cfg=CFG,
                by=rt.user(s, "hoa"),
                ctx=rt.ctx,
                now=local(at),
            )

    with pytest.raises(DomainError, match="at most 20 days"):
        extend_by(21, "2026-03-01 09:00")  # erasure: +20 at most (Art. 5 k4)
    extend_by(20, "2026-03-01 09:00")
    once = row(rt, code)
    assert (once.was_due_at, once.due_at) == (local("2026-03-05 17:00"), local("2026-03-25 17:00"))
    assert once.extension_reason_enc and "đối tác" not in once.extension_reason_enc
    with transaction(rt.engine) as s:
        before = s.scalar(select(func.count()).select_from(Event))
    with pytest.raises(DomainError, match="already extended once"):
        extend_by(5, "2026-03-02 09:00")
    twice = row(rt, code)
    assert twice.model_dump() == once.model_dump()
    with transaction(rt.engine) as s:
        assert s.scalar(select(func.count()).select_from(Event)) == before


def test_an_extension_after_the_limit_is_refused(rt: Runtime) -> None:
    client = new_client(rt, local("2026-02-01 09:00"))
    code = add(rt, client, RequestKind.access, local("2026-02-13 10:00"))
    with pytest.raises(DomainError, match="before the limit passes"), transaction(rt.engine) as s:
        extend(
            s,
            code=code,
            data=ExtendIn(days=5, reason="late"),
            cfg=CFG,
            by=rt.user(s, "hoa"),
            ctx=rt.ctx,
            now=local("2026-02-24 09:00"),
        )
    assert row(rt, code).extended_at is None


def closing(rt: Runtime, code: str, at: str, **data: object) -> tuple[PrivacyRequest, Event | None]:
    with transaction(rt.engine) as s:
        done = close(
            s,
            code=code,
            data=CloseIn.model_validate(data),
            by=rt.user(s, "hoa"),
            ctx=rt.ctx,
            now=local(at),
        )
        s.expunge_all()
        return done.request, done.event


def test_closing_an_access_request_links_its_export(rt: Runtime) -> None:
    client = new_client(rt, local("2026-02-01 09:00"), name=NAME)
    made_now = add(rt, client, RequestKind.access, local("2026-02-13 10:00"))
    request, event = closing(rt, made_now, "2026-02-20 10:00", outcome="done", export=True)
    assert event is not None and event.kind == "client.exported"
    assert request.event_id == event.id and request.outcome == Outcome.done

    # An export made before, from the client's page: the latest since the request is linked.
    earlier = add(rt, client, RequestKind.provide, local("2026-03-02 10:00"))
    with transaction(rt.engine) as s:
        exported = export_client(
            s, code=client, by=rt.user(s, "hoa"), ctx=rt.ctx, now=local("2026-03-03 10:00")
        )
    # The export holds the person's requests too, their words opened: they are theirs.
    held = {r["code"]: r for r in exported["data_requests"]}
    assert set(held) == {made_now, earlier} and held[earlier]["text"] == WORDS
    assert held[made_now]["outcome"] == Outcome.done and held[earlier]["closed_at"] is None
    request, linked = closing(
        rt, earlier, "2026-03-04 10:00", outcome="done", note="Đã gửi bản sao"
    )
    assert linked is not None and linked.kind == "client.exported" and linked.id != event.id
    assert request.event_id == linked.id
    with transaction(rt.engine) as s:
        assert opened_text(s, get_request(s, earlier), rt.ctx)["note"] == "Đã gửi bản sao"
    with pytest.raises(DomainError, match="was closed"):
        closing(rt, earlier, "2026-03-05 10:00", outcome="done")


def test_closing_an_erasure_links_it_and_shreds_the_words(rt: Runtime) -> None:
    client = new_client(rt, local("2026-02-01 09:00"), name=NAME)
    code = add(rt, client, RequestKind.erase, local("2026-02-13 10:00"))
    with pytest.raises(DomainError, match="done by an erasure"):
        closing(rt, code, "2026-02-20 10:00", outcome="done")  # nothing erased yet
    assert row(rt, code).closed_at is None
    request, event = closing(rt, code, "2026-02-20 10:00", outcome="done", erase=True)
    assert event is not None and event.kind == "client.erased" and request.event_id == event.id
    with transaction(rt.engine) as s:
        person = s.scalars(select(Client).where(Client.code == client)).one()
        assert person.erased_at is not None and person.name_enc is None
        assert opened_text(s, get_request(s, code), rt.ctx)["text"] is None  # shredded


def test_a_refused_request_needs_no_link(rt: Runtime) -> None:
    client = new_client(rt, local("2026-02-01 09:00"))
    code = add(rt, client, RequestKind.erase, local("2026-02-13 10:00"), text=None)
    request, event = closing(
        rt, code, "2026-02-20 10:00", outcome="refused", note="Đang có chuyển gửi mở"
    )
    assert event is None and request.outcome == "refused"
