"""The outbox delivered through Apprise to real receivers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select, update

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.links import message_of
from referrals.models.people import User
from referrals.models.workflow import Event, Notification
from referrals.notifiers.channels import Channels
from referrals.notifiers.delivery import WINDOW_PER_WORKER, Summary, deliver
from referrals.notifiers.outbox import Keeper, claim, retry
from referrals.notifiers.sms import encoding
from referrals.usecases.referrals.advancing import advance
from support.domain import ready_referral, use_channels
from support.receivers import HttpSink, SmtpSink

NAME, PHONE, ID_NUMBER = "Nguyễn Thị Bí Mật", "0905 111 222", "079190001234"
PII = (NAME, "Nguyen Thi Bi Mat", "905111222", "905 111 222", ID_NUMBER)


def channels(rt: Runtime, smtp: SmtpSink | None, http: HttpSink | None) -> Channels:
    urls = {"REFERRALS_EMAIL_URL": smtp and smtp.url(), "REFERRALS_SMS_URL": http and http.url()}
    return Channels(rt.province.province.delivery, secrets=urls.get)


def with_delivery(rt: Runtime, **changes: object) -> Runtime:
    """The same runtime with other delivery settings (the config is frozen)."""
    p = rt.province
    delivery = p.province.delivery.model_copy(update=changes)
    rt.province = dataclasses.replace(
        p, province=p.province.model_copy(update={"delivery": delivery})
    )  # type: ignore[misc]
    return rt


def referral(rt: Runtime, now: dt.datetime, **kw: str) -> str:
    return ready_referral(rt, now, name=NAME, phone=PHONE, id_number=ID_NUMBER, **kw)


def messages(rt: Runtime) -> list[Notification]:
    with transaction(rt.engine) as s:
        return list(s.scalars(select(Notification).order_by(Notification.id)))


def test_partners_receive_their_prompt_on_their_first_channel_with_a_link_and_no_pii(
    rt: Runtime, now: dt.datetime, smtp: SmtpSink, http: HttpSink
) -> None:
    """One message per prompt, on the contact's first channel: e-mail for the first two
    referrals, SMS for the next two (police: Vietnamese, unaccented SMS; Saphira: English)."""
    use_channels(rt, "police-nha-trang", ["email", "sms"])
    use_channels(rt, "saphira-legal", ["email", "sms"])
    police = referral(rt, now)
    lawyer = referral(rt, now, pathway="legal_aid", partner="saphira-legal")
    use_channels(rt, "police-nha-trang", ["sms", "email"])
    use_channels(rt, "saphira-legal", ["sms", "email"])
    police_sms_code = ready_referral(rt, now, name="B", phone=None)
    lawyer_sms_code = ready_referral(rt, now, "legal_aid", "saphira-legal", name="C", phone=None)
    summary = deliver(rt, now=now, channels=channels(rt, smtp, http))
    assert (summary.sent, summary.failed, summary.dead) == (4, 0, 0)

    mails = {m.to[0]: m for m in smtp.mails}
    assert set(mails) == {
        "tiepnhan.police-nha-trang@example.vn",
        "tiepnhan.saphira-legal@example.vn",
    }
    vi, en = (
        mails["tiepnhan.police-nha-trang@example.vn"],
        mails["tiepnhan.saphira-legal@example.vn"],
    )
    assert vi.subject == f"Chuyển gửi mới {police}: Làm giấy tờ tùy thân"
    assert "Xác nhận tiếp nhận, trước 17:00 26/11/2026" in vi.body  # 2 working days; 24/11 off
    assert en.subject == f"New referral {lawyer}: Legal advice" and "Dear colleague" in en.body
    assert vi.sender == "chicuc@example.vn"

    sms = {h.payload["to"]: h.payload["message"] for h in http.hits}
    assert set(sms) == {"+84905000113", "+84905000103"} and len(http.hits) == 2
    police_sms = sms["+84905000113"]
    assert police_sms.startswith(
        f"TNXH Khanh Hoa: chuyen gui moi {police_sms_code} (Lam giay to tuy than)"
    )
    assert encoding(police_sms).segments == 1 and encoding(police_sms).name == "GSM-7"
    assert sms["+84905000103"].startswith(
        f"TNXH Khanh Hoa: new referral {lawyer_sms_code} (Legal advice)"
    )

    # every message carries a link to itself, signed; nothing about the client travels
    rows = {n.id: n for n in messages(rt)}
    for text in [m.body for m in smtp.mails] + list(sms.values()):
        link = text.split("/l/")[1].split()[0]
        assert message_of(rt.ctx.vault, link) in rows
    wire = " ".join(
        [m.message.as_string() for m in smtp.mails] + [str(h.payload) for h in http.hits]
    )
    for secret in PII:
        assert secret not in wire
    assert all(n.status == "sent" and n.attempts == 1 and n.body for n in rows.values())
    assert all(n.sent_at is not None and n.lease_token is None for n in rows.values())
    # what each bills: one SMS segment, nothing for e-mail; no receipt expected from either
    assert sorted((n.channel, n.units) for n in rows.values()) == [
        ("email", None),
        ("email", None),
        ("sms", 1),
        ("sms", 1),
    ]
    assert all(n.confirm_by is None for n in rows.values())
    # the other channel waits as the fallback; nothing moved on to it (all went)
    assert {(n.channel, tuple(n.fallback)) for n in rows.values()} == {
        ("email", ("sms",)),
        ("sms", ("email",)),
    }


def test_a_receiver_that_is_down_gets_everything_once_it_is_back(
    rt: Runtime, now: dt.datetime, smtp: SmtpSink, http: HttpSink
) -> None:
    code = referral(rt, now)
    http.stop()  # the SMS gateway is down; e-mail works, but a retry is not a failure for good
    ch = channels(rt, smtp, http)
    first = deliver(rt, now=now, channels=ch)
    assert (first.sent, first.failed) == (0, 1)
    (sms,) = [n for n in messages(rt) if n.channel == "sms"]
    assert sms.status == "failed" and sms.attempts == 1 and sms.last_error
    delay = (sms.next_attempt_at - now).total_seconds()
    assert 30 <= delay <= 60  # first retry: 60 s with jitter in [1/2, 1]

    assert deliver(rt, now=now, channels=ch).claimed == 0  # not due yet: backoff holds
    later = now + dt.timedelta(seconds=61)
    assert deliver(rt, now=later, channels=ch).failed == 1  # still down
    (sms,) = [n for n in messages(rt) if n.channel == "sms"]
    assert sms.attempts == 2 and 60 <= (sms.next_attempt_at - later).total_seconds() <= 120

    http.start()
    back = deliver(rt, now=later + dt.timedelta(minutes=3), channels=ch)
    assert back.sent == 1
    assert [h.payload["to"] for h in http.hits] == ["+84905000113"]
    assert smtp.mails == []  # the SMS went in the end: the e-mail was never needed
    assert code in http.hits[0].payload["message"]


def test_after_the_last_attempt_a_message_is_dead_and_people_are_alerted(
    rt: Runtime, now: dt.datetime, smtp: SmtpSink, http: HttpSink
) -> None:
    with_delivery(rt, max_attempts=3)
    use_channels(rt, "police-nha-trang", ["sms"])  # no other channel to hand the prompt on to
    with transaction(rt.engine) as s:
        s.execute(update(User).where(User.username == "mai").values(email="mai@chicuc.example.vn"))
        s.execute(update(User).where(User.username == "hoa").values(email="hoa@chicuc.example.vn"))
    code = referral(rt, now)
    http.stop()
    ch = channels(rt, smtp, http)
    at = now
    for _ in range(3):
        deliver(rt, now=at, channels=ch)
        at += dt.timedelta(hours=1)
    sms = next(n for n in messages(rt) if n.channel == "sms" and n.template == "referral.new")
    assert sms.status == "dead" and sms.attempts == 3
    with transaction(rt.engine) as s:
        kinds = [e.kind for e in s.scalars(select(Event).where(Event.kind == "message.dead"))]
    assert kinds == ["message.dead"]

    # the alerts go out by e-mail to the referral's coordinator and the manager
    deliver(rt, now=at, channels=ch)
    alerts = {m.to[0]: m for m in smtp.mails if "không gửi được" in m.subject.lower()}
    assert set(alerts) == {"mai@chicuc.example.vn", "hoa@chicuc.example.vn"}
    body = alerts["mai@chicuc.example.vn"].body
    assert code in body and f"referrals outbox retry {sms.id}" in body
    assert f"/referrals/{code}" in body
    assert deliver(rt, now=at + dt.timedelta(days=1), channels=ch).claimed == 0  # dead stays dead

    # fixed: someone sends it again
    http.start()
    with transaction(rt.engine) as s:
        retry(s, message_id=sms.id, by=rt.user(s, "admin"), now=at)
    assert deliver(rt, now=at, channels=ch).sent == 1
    assert [h.payload["to"] for h in http.hits] == ["+84905000113"]


def test_quiet_hours_hold_sms_until_morning_unless_urgent(
    rt: Runtime, now: dt.datetime, smtp: SmtpSink, http: HttpSink
) -> None:
    night = dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC)  # 22:30 in Nha Trang
    routine = referral(rt, night)
    urgent_code = ready_referral(
        rt, night, pathway="emergency_shelter", partner="social-work-centre", name="B"
    )
    ch = channels(rt, smtp, http)
    summary = deliver(rt, now=night, channels=ch)
    assert summary.deferred == 1  # the police's SMS
    assert {h.payload["to"] for h in http.hits} == {"+84905000119"}  # on duty: no quiet hours
    assert smtp.mails == []  # held is not failed: the prompt does not move on to e-mail
    held = next(n for n in messages(rt) if n.channel == "sms" and n.contact_id and routine)
    morning = dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC)  # 07:00 local
    assert held.next_attempt_at == morning and held.attempts == 0
    assert deliver(rt, now=morning - dt.timedelta(minutes=1), channels=ch).claimed == 0
    assert deliver(rt, now=morning, channels=ch).sent == 1
    assert urgent_code


def test_a_channel_that_is_off_keeps_its_messages_waiting(
    rt: Runtime, now: dt.datetime, smtp: SmtpSink
) -> None:
    use_channels(rt, "police-nha-trang", ["sms"])  # SMS only: nothing else can carry it
    referral(rt, now)
    summary = deliver(rt, now=now, channels=channels(rt, smtp, None))
    assert summary.sent == 0 and summary.waiting == {"sms": 1} and summary.handed_on == 0
    assert [n.status for n in messages(rt) if n.channel == "sms"] == ["queued"]


def test_a_prompt_due_on_a_channel_that_is_off_moves_on_to_the_next(
    rt: Runtime, now: dt.datetime, smtp: SmtpSink
) -> None:
    code = referral(rt, now)  # police: SMS, then e-mail
    summary = deliver(rt, now=now, channels=channels(rt, smtp, None))
    assert (summary.handed_on, summary.sent, summary.waiting) == (1, 1, {})
    rows = {n.channel: n for n in messages(rt)}
    assert rows["sms"].status == "cancelled" and rows["sms"].fell_back_at == now
    assert rows["email"].status == "sent" and rows["email"].fallback == []
    assert [m.subject for m in smtp.mails] == [f"Chuyển gửi mới {code}: Làm giấy tờ tùy thân"]
    with transaction(rt.engine) as s:
        (event,) = s.scalars(select(Event).where(Event.kind == "message.fallback"))
    assert event.data == {"message": rows["sms"].id, "channel": "sms", "to": "email", "why": "off"}
    assert deliver(rt, now=now, channels=channels(rt, smtp, None)).claimed == 0  # once


def test_cancelling_tells_the_partner_who_was_told(
    rt: Runtime, now: dt.datetime, smtp: SmtpSink, http: HttpSink
) -> None:
    code = referral(rt, now)
    ch = channels(rt, smtp, http)
    deliver(rt, now=now, channels=ch)
    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.cancel, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)
    assert deliver(rt, now=now, channels=ch).sent == 1  # on the channel that reached them
    assert smtp.mails == []
    assert http.hits[-1].payload["message"].startswith(f"TNXH Khanh Hoa: chuyen gui {code}")


def test_two_passes_at_once_deliver_each_message_exactly_once(
    rt: Runtime, now: dt.datetime, http: HttpSink
) -> None:
    with_delivery(rt, concurrency=1)  # claims of 8: neither pass can take all 15 at once
    http.delay = 0.05
    for i in range(15):
        ready_referral(rt, now, name=f"Client {i}", phone=None)
    ch = channels(rt, None, http)
    summaries = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        summaries.append(deliver(rt, now=now, channels=ch))

    passes = [threading.Thread(target=run) for _ in range(2)]
    for t in passes:
        t.start()
    for t in passes:
        t.join()
    sent = Counter(re.search(r"R-\w{5}-\w{5}", h.payload["message"])[0] for h in http.hits)
    assert len(sent) == 15 and set(sent.values()) == {1}
    assert sum(s.sent for s in summaries) == 15 and sum(s.lost for s in summaries) == 0
    assert all(s.claimed > 0 for s in summaries), summaries  # both passes took a share


def test_a_pass_killed_mid_batch_loses_nothing_and_repeats_at_most_the_in_flight(
    rt: Runtime, now: dt.datetime, http: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL the delivering process mid-batch; after its lease expires the next pass finishes."""
    concurrency = rt.province.province.delivery.concurrency
    codes = {ready_referral(rt, now, name=f"Client {i}", phone=None) for i in range(30)}
    http.delay = 0.2
    monkeypatch.setenv("REFERRALS_SMS_URL", http.url())
    monkeypatch.setenv("REFERRALS_EMAIL_URL", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "referrals.cli", "deliver", "--now", now.isoformat()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while len(http.hits) < concurrency and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    arrived_before = len(http.hits)
    assert concurrency <= arrived_before < 30  # killed in the middle

    lease = rt.province.province.delivery.lease_seconds
    assert deliver(rt, now=now, channels=channels(rt, None, http)).claimed == 0  # still leased
    after = now + dt.timedelta(seconds=lease + 1)
    deliver(rt, now=after, channels=channels(rt, None, http))
    time.sleep(0.3)  # answers to the killed process's last requests
    got = Counter(re.search(r"R-\w{5}-\w{5}", h.payload["message"])[0] for h in http.hits)
    assert set(got) == codes  # nothing lost
    repeats = sum(n - 1 for n in got.values())
    in_flight = concurrency * WINDOW_PER_WORKER  # sent and not yet recorded, at most
    assert max(got.values()) <= 2 and repeats <= in_flight
    assert {n.status for n in messages(rt) if n.channel == "sms"} == {"sent"}


def test_a_claim_takes_at_most_its_limit_and_never_a_leased_row(
    rt: Runtime, now: dt.datetime
) -> None:
    for i in range(7):
        ready_referral(rt, now, name=f"Client {i}", phone=None)
    with transaction(rt.engine) as s:
        first = claim(s, kinds=["sms"], now=now, limit=3, lease_seconds=60)
    with transaction(rt.engine) as s:
        second = claim(s, kinds=["sms"], now=now, limit=3, lease_seconds=60)
        third = claim(s, kinds=["sms"], now=now, limit=3, lease_seconds=60)
    ids = [c.id for c in first + second + third]
    assert [len(first), len(second), len(third)] == [3, 3, 1] and len(set(ids)) == 7
    with transaction(rt.engine) as s:  # the leases run out: everything is claimable again
        again = claim(
            s, kinds=["sms"], now=now + dt.timedelta(seconds=60), limit=10, lease_seconds=60
        )
    assert sorted(c.id for c in again) == sorted(ids)


def codes_sent(http: HttpSink) -> Counter[str]:
    return Counter(re.search(r"R-\w{5}-\w{5}", h.payload["message"])[0] for h in http.hits)


def test_a_sender_slower_than_its_lease_keeps_its_messages(
    rt: Runtime, now: dt.datetime, http: HttpSink
) -> None:
    """The pass renews its leases while it sends: another pass, later, takes none of them."""
    lease = 2  # seconds (the settings refuse less than 10; model_copy does not check)
    with_delivery(rt, concurrency=1, lease_seconds=lease)
    http.delay = 0.25  # 16 messages one at a time: 4 s, twice the lease
    codes = {ready_referral(rt, now, name=f"Client {i}", phone=None) for i in range(16)}
    ch = channels(rt, None, http)
    first: list[Summary] = []
    slow = threading.Thread(target=lambda: first.append(deliver(rt, now=now, channels=ch)))
    began = time.monotonic()
    slow.start()
    time.sleep(lease + 1)  # every lease the slow pass took has run out, unless it renewed them
    assert slow.is_alive() and len(http.hits) < 16  # it is still sending
    later = now + dt.timedelta(seconds=time.monotonic() - began)
    second = deliver(rt, now=later, channels=ch)
    slow.join()
    assert second.claimed == 0, second
    assert first[0].sent == 16 and first[0].lost == 0, first
    got = codes_sent(http)
    assert set(got) == codes and set(got.values()) == {1}


def test_a_dead_senders_messages_go_out_a_minute_later(
    rt: Runtime, now: dt.datetime, http: HttpSink
) -> None:
    """A sender claimed and died (no renewal): the first pass a minute on sends everything."""
    codes = {ready_referral(rt, now, name=f"Client {i}", phone=None) for i in range(5)}
    lease = rt.province.province.delivery.lease_seconds
    with transaction(rt.engine) as s:  # what a pass does first, then its process is killed
        assert len(claim(s, kinds=["sms"], now=now, limit=10, lease_seconds=lease)) == 5
    ch = channels(rt, None, http)
    restarted = now + dt.timedelta(seconds=5)
    assert deliver(rt, now=restarted, channels=ch).claimed == 0  # the dead sender's lease holds
    a_minute_on = now + dt.timedelta(seconds=61)
    assert deliver(rt, now=a_minute_on, channels=ch).sent == 5
    got = codes_sent(http)
    assert set(got) == codes and set(got.values()) == {1}


def test_renewing_keeps_its_own_rows_and_never_takes_back_another_senders(
    rt: Runtime, now: dt.datetime
) -> None:
    for i in range(4):
        ready_referral(rt, now, name=f"Client {i}", phone=None)
    at = now
    keeper = Keeper(rt.engine, lease_seconds=60, clock=lambda: at, every=3600)  # renew by hand
    with keeper:
        with transaction(rt.engine) as s:
            mine = claim(s, kinds=["sms"], now=now, limit=4, lease_seconds=60)
        assert {c.token for c in mine} == {keeper.token}
        assert keeper.held == {c.id for c in mine} and len(mine) == 4
        with transaction(rt.engine) as s:  # a lapse: its own lease ran out; the sender lives
            s.execute(update(Notification).values(lease_until=now))
            assert claim(s, kinds=["sms"], now=now, limit=4, lease_seconds=60) == []  # ours
    at = now + dt.timedelta(seconds=1)
    assert keeper.renew() == 4
    # the lease lapses again (the database was away); another sender takes two rows
    with transaction(rt.engine) as s:
        theirs = claim(
            s, kinds=["sms"], now=now + dt.timedelta(seconds=61), limit=2, lease_seconds=60
        )
    at = now + dt.timedelta(seconds=62)
    assert keeper.renew() == 2
    assert keeper.held == {c.id for c in mine} - {c.id for c in theirs}
    rows = {n.id: n for n in messages(rt) if n.channel == "sms"}
    for c in theirs:
        assert rows[c.id].lease_token == c.token != keeper.token
        assert rows[c.id].lease_until == now + dt.timedelta(seconds=121)
    for i in keeper.held:
        assert rows[i].lease_token == keeper.token
        assert rows[i].lease_until == now + dt.timedelta(seconds=122)


def test_closing_a_referral_frees_the_messages_a_pass_holds(rt: Runtime, now: dt.datetime) -> None:
    """A pass holds a referral's messages when the coordinator cancels it: the cancelled rows
    keep no lease (the invariant `check` asks), and the pass's outcome writes nothing over them."""
    from referrals.notifiers.outbox import Sent, mark_failed, mark_sent
    from referrals.queries.invariants import check
    from referrals.queries.reading import Reader

    code = referral(rt, now)
    with transaction(rt.engine) as s:
        held = claim(s, kinds=["sms", "email"], now=now, limit=10, lease_seconds=60)
    assert len(held) == 1  # the SMS; the e-mail waits as its fallback
    with transaction(rt.engine) as s:
        advance(s, code=code, action=Action.cancel, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)
    with transaction(rt.engine) as s:
        assert mark_sent(s, [Sent(held[0], None, "body")], now=now) == 0
        delivery = rt.province.province.delivery
        assert mark_failed(s, held[0], now=now, error="x", delivery=delivery) is None
    assert {(m.status, m.lease_token) for m in messages(rt) if m.template == "referral.new"} == {
        ("cancelled", None)
    }
    connection = rt.engine.raw_connection()
    try:
        assert check(Reader(connection, rt.engine.dialect.name), vault=rt.ctx.vault) == []
    finally:
        connection.close()


def test_a_reminder_sent_while_its_step_is_answered_is_recorded_once(
    rt: Runtime, now: dt.datetime
) -> None:
    """A pass records a reminder as sent just as the partner answers its step. On PostgreSQL the
    pass commits between the answer's read and its write: the reminder stays sent (it went),
    where it used to become "cancelled" with a send time (the soak found that). On SQLite the
    answer holds the write lock by then, so the pass records after it and matches nothing (its
    lease went with the cancellation). Either way `check` holds."""
    import threading

    from sqlalchemy import event

    from referrals.models.links import link_token
    from referrals.notifiers.outbox import Sent, mark_sent
    from referrals.queries.invariants import check
    from referrals.queries.reading import Reader
    from referrals.usecases.deadlines.sweeping import sweep
    from referrals.usecases.referrals.answering import Answer, answer_link

    referral(rt, now)
    later = now + dt.timedelta(days=2, hours=8)
    sweep(rt.engine, ctx=rt.ctx, now=later)  # the acknowledgement's reminder is queued
    with transaction(rt.engine) as s:
        held = [
            c
            for c in claim(s, kinds=["sms", "email"], now=later, limit=10, lease_seconds=60)
            if c.template == "step.reminder"
        ]
        first = s.scalars(select(Notification.id).where(Notification.template == "referral.new"))
        token = link_token(rt.ctx.vault, next(iter(first)))
    assert held
    postgres = rt.engine.dialect.name == "postgresql"

    def record() -> None:
        with transaction(rt.engine) as s:
            mark_sent(s, [Sent(c, None, "body") for c in held], now=later)

    pass_ = threading.Thread(target=record)

    def meanwhile(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        reads = "notification.context" in statement and "notification.template IN" in statement
        if reads and not pass_.is_alive() and pass_.ident is None:
            pass_.start()
            if postgres:
                pass_.join()

    event.listen(rt.engine, "after_cursor_execute", meanwhile)
    try:
        with transaction(rt.engine) as s:
            answer_link(s, ctx=rt.ctx, token=token, answer=Answer(action="accept"), now=later)
    finally:
        event.remove(rt.engine, "after_cursor_execute", meanwhile)
    pass_.join()
    with transaction(rt.engine) as s:
        got = {(n.status, n.sent_at is not None) for n in (s.get(Notification, c.id) for c in held)}
    assert got == ({("sent", True)} if postgres else {("cancelled", False)})
    connection = rt.engine.raw_connection()
    try:
        assert check(Reader(connection, rt.engine.dialect.name), vault=rt.ctx.vault) == []
    finally:
        connection.close()
