"""Zalo and brandname SMS through our own Apprise plugins, their receipts, and a contact's
channels tried one at a time (issue 24), against loopback fakes of Zalo's and eSMS's APIs
(tests/notifiers/fakes/), a real SMTP server, and the engine's own web endpoint."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from notifiers.fakes.esms import FakeEsms
from notifiers.fakes.zns import FakeZns
from sqlalchemy import select

from referrals.config.province import ZaloTemplate
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.workflow import Event, Notification
from referrals.notifiers.channels import Channels
from referrals.notifiers.delivery import deliver
from referrals.web.app import create_app
from support.domain import ready_referral, use_channels
from support.pages import Clock
from support.receivers import SmtpSink

TEMPLATE = "250001"
PARAMS = {
    "ma_chuyen_gui": "{{ code }}",
    "dich_vu": "{{ service }}",
    "han": "{{ due_at | local_time }}",
    "link": "{{ link }}",
}
NAME, PHONE = "Nguyễn Thị Bí Mật", "0905 111 222"


@pytest.fixture
def zns() -> Iterator[FakeZns]:
    with FakeZns(templates={TEMPLATE: list(PARAMS)}) as fake:
        yield fake


@pytest.fixture
def esms() -> Iterator[FakeEsms]:
    with FakeEsms(brandnames=("TNXH-KH",)) as fake:
        yield fake


@pytest.fixture
def urls(
    zns: FakeZns, esms: FakeEsms, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The three channels' URLs, as an operator sets them (also for the web process)."""
    found = {
        "REFERRALS_ZALO_URL": zns.url("PHONE").replace("PHONE", "{phone}"),
        "REFERRALS_SMS_URL": (
            f"esms://{esms.api_key}:{esms.secret_key}@TNXH-KH/{{phone}}"
            f"?api={esms.base_url}&callback=http://testserver/receipts/sms"
        ),
        "REFERRALS_EMAIL_URL": smtp.url(),
    }
    for name, url in found.items():
        monkeypatch.setenv(name, url)
    return found


def zalo_ready(rt: Runtime, **changes: object) -> Runtime:
    """The office's approved ZNS template for new referrals, and Zalo first for the police."""
    p = rt.province
    delivery = p.province.delivery.model_copy(
        update={
            "zalo_templates": {"referral.new": ZaloTemplate(template_id=TEMPLATE, params=PARAMS)},
            **changes,
        }
    )
    rt.province = dataclasses.replace(
        p, province=p.province.model_copy(update={"delivery": delivery})
    )  # type: ignore[misc]
    use_channels(rt, "police-nha-trang", ["zalo", "sms", "email"])
    return rt


def channels(rt: Runtime, urls: dict[str, str]) -> Channels:
    return Channels(rt.province.province.delivery, secrets=urls.get)


def rows(rt: Runtime) -> list[Notification]:
    with transaction(rt.engine) as s:
        return list(s.scalars(select(Notification).order_by(Notification.id)))


def events(rt: Runtime, kind: str) -> list[Event]:
    with transaction(rt.engine) as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_a_prompt_goes_by_zalo_with_its_template_and_no_client_detail(
    rt: Runtime, now: dt.datetime, urls: dict[str, str], zns: FakeZns, esms: FakeEsms
) -> None:
    zalo_ready(rt)
    code = ready_referral(rt, now, name=NAME, phone=PHONE)
    summary = deliver(rt, now=now, channels=channels(rt, urls))
    assert (summary.sent, summary.failed, summary.dead) == (1, 0, 0)
    (sent,) = zns.sent
    assert sent["phone"] == "84905000113" and sent["template_id"] == TEMPLATE
    data = sent["template_data"]
    assert data["ma_chuyen_gui"] == code and data["han"] == "17:00 26/11/2026"
    assert data["dich_vu"] == "Làm giấy tờ tùy thân" and "/l/" in data["link"]
    (row,) = rows(rt)
    assert sent["tracking_id"] == str(row.id)  # Zalo echoes our id
    assert (row.channel, row.status, row.provider_id) == ("zalo", "sent", sent["msg_id"])
    assert row.units == 1 and row.confirm_by == now + dt.timedelta(minutes=60)
    assert row.fallback == ["sms", "email"] and esms.sent == []
    wire = json.dumps(sent, ensure_ascii=False)
    assert NAME not in wire and "905111222" not in wire


def test_zalo_refuses_for_good_then_the_sms_goes_once(
    rt: Runtime,
    now: dt.datetime,
    urls: dict[str, str],
    zns: FakeZns,
    esms: FakeEsms,
    smtp: SmtpSink,
) -> None:
    zalo_ready(rt)
    code = ready_referral(rt, now, name=NAME, phone=PHONE)
    zns.fail_next(-118)  # "Zalo account not existed": the phone has no Zalo
    ch = channels(rt, urls)
    first = deliver(rt, now=now, channels=ch)
    # the SMS went in the same pass; no one alerted
    assert (first.sent, first.dead, first.handed_on) == (1, 0, 1)
    zalo, sms = rows(rt)
    assert (zalo.channel, zalo.status, zalo.attempts) == ("zalo", "dead", 1)
    assert (sms.channel, sms.status, sms.fallback) == ("sms", "sent", ["email"])
    (request,) = esms.sent
    assert request["Phone"] == "0905000113" and request["Brandname"] == "TNXH-KH"
    assert request["RequestId"] == str(sms.id) and code in request["Content"]
    # the police asked for unaccented SMS: GSM-7, one segment billed, not sent as Unicode
    assert sms.units == 1 and request["IsUnicode"] == "0"
    (moved,) = events(rt, "message.fallback")
    assert moved.data == {"message": zalo.id, "channel": "zalo", "to": "sms", "why": "failed"}
    assert events(rt, "message.dead") == []
    # later passes send nothing again on either channel, and no e-mail
    for minutes in (30, 59):  # the SMS's receipt is not due before an hour has passed
        deliver(rt, now=now + dt.timedelta(minutes=minutes), channels=ch)
    assert len(zns.sent) == 1 and len(esms.sent) == 1 and smtp.mails == []  # the one Zalo refused


def test_unconfirmed_in_time_the_next_channel_carries_it_and_nothing_goes_twice(
    rt: Runtime,
    now: dt.datetime,
    urls: dict[str, str],
    zns: FakeZns,
    esms: FakeEsms,
    smtp: SmtpSink,
) -> None:
    zalo_ready(rt, confirm_minutes=30)
    ready_referral(rt, now, name=NAME, phone=PHONE)
    ch = channels(rt, urls)
    deliver(rt, now=now, channels=ch)
    assert len(zns.sent) == 1 and esms.sent == []
    assert deliver(rt, now=now + dt.timedelta(minutes=29), channels=ch).handed_on == 0
    late = now + dt.timedelta(minutes=31)
    moved = deliver(rt, now=late, channels=ch)
    assert (moved.handed_on, moved.sent) == (1, 1)  # no receipt from Zalo: the SMS goes
    assert len(esms.sent) == 1
    later = late + dt.timedelta(minutes=31)  # nor from eSMS: the e-mail goes
    assert deliver(rt, now=later, channels=ch).sent == 1
    assert len(smtp.mails) == 1
    for minutes in (40, 120, 600):  # nothing left to try, nothing twice
        deliver(rt, now=later + dt.timedelta(minutes=minutes), channels=ch)
    assert (len(zns.sent), len(esms.sent), len(smtp.mails)) == (1, 1, 1)
    by_channel = {n.channel: n for n in rows(rt)}
    assert set(by_channel) == {"zalo", "sms", "email"} and len(rows(rt)) == 3
    assert [e.data["why"] for e in events(rt, "message.fallback")] == [
        "unconfirmed",
        "unconfirmed",
    ]


def test_a_prompt_answered_before_its_receipt_does_not_move_on(
    rt: Runtime, now: dt.datetime, urls: dict[str, str], zns: FakeZns, esms: FakeEsms
) -> None:
    """The partner accepted through the Zalo message's link: it evidently arrived, so no SMS
    follows when its receipt is late."""
    from referrals.models.links import link_token
    from referrals.usecases.referrals.answering import Answer, answer_link

    zalo_ready(rt, confirm_minutes=30)
    ready_referral(rt, now, name=NAME, phone=PHONE)
    ch = channels(rt, urls)
    deliver(rt, now=now, channels=ch)
    (zalo,) = rows(rt)
    with transaction(rt.engine) as s:
        token = link_token(rt.ctx.vault, zalo.id)
        later = now + dt.timedelta(minutes=10)
        answer_link(s, ctx=rt.ctx, token=token, answer=Answer(action="accept"), now=later)
    deliver(rt, now=now + dt.timedelta(hours=2), channels=ch)
    assert esms.sent == [] and events(rt, "message.fallback") == []
    assert rows(rt)[0].fell_back_at is not None  # its turn ended, with nothing to send


@pytest.fixture
def web(rt: Runtime, now: dt.datetime) -> TestClient:
    return TestClient(create_app(clock=Clock(now)))


def test_zalo_receipts_deliver_once_and_forged_or_unknown_ones_change_nothing(
    rt: Runtime, now: dt.datetime, urls: dict[str, str], zns: FakeZns, web: TestClient
) -> None:
    zalo_ready(rt)
    ready_referral(rt, now, name=NAME, phone=PHONE)
    deliver(rt, now=now, channels=channels(rt, urls))
    msg_id = zns.sent[0]["msg_id"]

    forged_headers, body = zns.delivery_event(msg_id, timestamp=now, oa_secret="not-the-secret")
    answer = web.post("/receipts/zalo", content=body, headers=forged_headers)
    assert answer.status_code == 403 and rows(rt)[0].status == "sent"

    stale_headers, stale = zns.delivery_event(msg_id, timestamp=now - dt.timedelta(hours=2))
    assert web.post("/receipts/zalo", content=stale, headers=stale_headers).status_code == 403

    other_headers, other = zns.delivery_event("not-ours-123", timestamp=now, tracking_id="")
    answer = web.post("/receipts/zalo", content=other, headers=other_headers)
    assert answer.status_code == 200 and answer.json() == {"applied": 0, "unknown": 1, "already": 0}

    headers, body = zns.delivery_event(msg_id, timestamp=now)
    answer = web.post("/receipts/zalo", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json()["applied"] == 1
    (row,) = rows(rt)
    assert row.status == "delivered" and row.receipt_at is not None
    (delivered,) = events(rt, "message.delivered")
    assert delivered.data["message"] == row.id and delivered.referral_id == row.referral_id

    replay = web.post("/receipts/zalo", content=body, headers=headers)
    assert replay.status_code == 409 and len(events(rt, "message.delivered")) == 1
    # delivered: never unconfirmed, so nothing moves on
    later = deliver(rt, now=now + dt.timedelta(hours=3), channels=channels(rt, urls))
    assert later.handed_on == 0 and len(rows(rt)) == 1


def test_an_undelivered_sms_hands_the_prompt_to_email_and_the_page_says_so(
    rt: Runtime,
    now: dt.datetime,
    urls: dict[str, str],
    esms: FakeEsms,
    smtp: SmtpSink,
    web: TestClient,
) -> None:
    code = ready_referral(rt, now, name=NAME, phone=PHONE)  # police: SMS, then e-mail
    ch = channels(rt, urls)
    deliver(rt, now=now, channels=ch)
    (request,) = esms.sent
    callback = request["CallbackUrl"]
    assert callback.startswith("http://testserver/receipts/sms?") and "sig=" in callback

    method, url, headers, _ = esms.callback(
        request["answer"]["SMSID"], delivered=False, reason_code=4
    )
    parts = urlsplit(url)
    tampered = url.replace("sig=", "sig=0")
    assert web.get(urlsplit(tampered).path + "?" + urlsplit(tampered).query).status_code == 403
    answer = web.request(method, parts.path + "?" + parts.query, headers=headers)
    assert answer.status_code == 200 and answer.json()["applied"] == 1
    sms = rows(rt)[0]
    assert sms.status == "undelivered" and sms.last_error
    assert deliver(rt, now=now + dt.timedelta(minutes=1), channels=ch).sent == 1
    assert [m.subject for m in smtp.mails] == [f"Chuyển gửi mới {code}: Làm giấy tờ tùy thân"]
    (moved,) = events(rt, "message.fallback")
    assert moved.data["why"] == "undelivered"

    from web.test_wording import visible

    from support.pages import logged_in, staff_users

    staff_users(rt)
    page = logged_in(Clock(now), "mai").get(f"/referrals/{code}").text
    assert "không đến được" in page and "tin được gửi qua kênh tiếp theo" in page
    assert "undelivered" not in visible(page)  # no internal key on the page


def test_the_dashboard_counts_unconfirmed_and_the_report_counts_costs(
    rt: Runtime, now: dt.datetime, urls: dict[str, str], zns: FakeZns, esms: FakeEsms
) -> None:
    from referrals.queries.reading import Reader, count_unconfirmed
    from referrals.queries.report import Period, build_report
    from support.pages import logged_in, staff_users

    zalo_ready(rt, confirm_minutes=30, prices={"zalo": 300, "sms": 850})
    use_channels(rt, "police-nha-trang", ["zalo"])  # Zalo only: it stays unconfirmed
    ready_referral(rt, now, name=NAME, phone=PHONE)
    use_channels(rt, "saphira-legal", ["sms"])
    ready_referral(rt, now, "legal_aid", "saphira-legal", name="B", phone=None)
    deliver(rt, now=now, channels=channels(rt, urls))
    late = now + dt.timedelta(hours=1)
    deliver(rt, now=late, channels=channels(rt, urls))
    connection = rt.engine.raw_connection()
    try:
        reader = Reader(connection, rt.engine.dialect.name)
        assert count_unconfirmed(reader, now=late) == 2  # Zalo and eSMS said nothing
        period = Period(dt.date(2026, 11, 1), dt.date(2026, 12, 31), rt.settings.tz)
        report = build_report(
            reader,
            period=period,
            calendar=rt.ctx.calendar,
            now=late,
            prices=rt.province.province.delivery.prices,
        )
    finally:
        connection.close()
    assert report["costs"] == [
        {
            "month": "2026-11",
            "channel": "sms",
            "messages": 1,
            "units": 1,
            "price": 850,
            "cost": 850,
        },
        {
            "month": "2026-11",
            "channel": "zalo",
            "messages": 1,
            "units": 1,
            "price": 300,
            "cost": 300,
        },
    ]
    staff_users(rt)
    page = logged_in(Clock(late), "hoa").get("/dashboard").text
    assert 'id="unconfirmed-count">2<' in page


def test_a_gateway_that_asks_us_to_slow_down_gets_its_wait_and_no_attempt_is_counted(
    rt: Runtime, now: dt.datetime, urls: dict[str, str], zns: FakeZns, esms: FakeEsms
) -> None:
    zalo_ready(rt)
    ready_referral(rt, now, name=NAME, phone=PHONE)
    zns.rate_limit_next(30)  # HTTP 429, Retry-After: 30
    ch = channels(rt, urls)
    first = deliver(rt, now=now, channels=ch)
    assert (first.sent, first.failed, first.deferred, first.handed_on) == (0, 0, 1, 0)
    (row,) = rows(rt)
    assert row.status == "queued" and row.attempts == 0
    assert row.next_attempt_at == now + dt.timedelta(seconds=30)
    assert deliver(rt, now=now + dt.timedelta(seconds=29), channels=ch).claimed == 0
    assert deliver(rt, now=now + dt.timedelta(seconds=30), channels=ch).sent == 1
    assert [r.status for r in rows(rt)] == ["sent"] and esms.sent == []
