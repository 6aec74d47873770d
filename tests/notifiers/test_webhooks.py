"""Webhooks out (issue 10): another system subscribes, receives signed events through the
outbox, refuses a forged signature by its own check, and gets everything after an outage."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from referrals.infra.runtime import Runtime
from referrals.models.workflow import Notification
from referrals.notifiers.delivery import deliver
from support.domain import cli, decline_with_note, ready_referral, row_counts
from support.receivers import SignedSink

KINDS = "referral.*,link.answered"


@pytest.fixture
def sink() -> Iterator[SignedSink]:
    receiver = SignedSink().start()
    yield receiver
    receiver.stop()


def _subscribe(capsys: pytest.CaptureFixture[str], sink: SignedSink, name: str = "dhis2") -> str:
    status, out, err = cli(
        capsys, "webhook", "add", name, "--url", sink.url(), "--events", KINDS, "--json"
    )
    assert status == 0, err
    return str(json.loads(out)["secret"])


def _webhooks(rt: Runtime) -> dict[str, int]:
    with Session(rt.engine) as s:
        rows = s.scalars(select(Notification.status).where(Notification.channel == "webhook"))
        found: dict[str, int] = {}
        for status in rows:
            found[status] = found.get(status, 0) + 1
        return found


def test_signed_events_arrive_without_anything_personal(
    rt: Runtime, now: dt.datetime, sink: SignedSink, capsys: pytest.CaptureFixture[str]
) -> None:
    sink.secret = _subscribe(capsys, sink)
    code = ready_referral(rt, now, name="Hồ Thị Kín", phone="0905 888 777")
    decline_with_note(rt, code, "Hồ Thị Kín không đến", now)
    summary = deliver(rt, now=now)
    assert summary.webhooks["sent"] == len(sink.events) > 0 and sink.rejected == 0
    kinds = [e["kind"] for e in sink.events]
    assert "referral.requested" in kinds and "link.answered" in kinds
    assert all(e["referral"] == code for e in sink.events)
    assert [e["id"] for e in sink.events] == sorted(e["id"] for e in sink.events)
    answered = next(e for e in sink.events if e["kind"] == "link.answered")
    assert answered["status"] == "rejected" and "note_enc" not in answered["data"]
    assert "Kín" not in json.dumps(sink.events, ensure_ascii=False)
    assert "consent.granted" not in kinds  # not subscribed
    again = deliver(rt, now=now + dt.timedelta(minutes=1))  # nothing twice
    assert again.webhooks == {"queued": 0, "sent": 0, "failed": 0, "dead": 0}
    assert _webhooks(rt) == {"sent": len(sink.events)}


def test_a_forged_signature_is_refused_and_the_engine_gives_up_in_time(
    rt: Runtime, now: dt.datetime, sink: SignedSink, capsys: pytest.CaptureFixture[str]
) -> None:
    _subscribe(capsys, sink)
    sink.secret = "not-the-secret-we-were-given"  # the receiver's check fails
    ready_referral(rt, now)
    deliver(rt, now=now)
    assert sink.events == [] and sink.rejected > 0
    assert set(_webhooks(rt)) == {"failed"}
    later = now
    for _ in range(8):  # every retry refused, until the last attempt
        later += dt.timedelta(days=1)
        deliver(rt, now=later)
    assert set(_webhooks(rt)) == {"dead"} and sink.events == []
    with Session(rt.engine) as s:  # on the timeline, but no e-mail to the office about it
        alerts = s.scalars(select(Notification).where(Notification.template == "message.dead"))
        assert list(alerts) == []


def test_everything_arrives_after_an_outage(
    rt: Runtime, now: dt.datetime, sink: SignedSink, capsys: pytest.CaptureFixture[str]
) -> None:
    sink.secret = _subscribe(capsys, sink)
    sink.stop()  # the other system is down
    codes = [ready_referral(rt, now, phone=f"0905 888 70{i}") for i in range(3)]
    first = deliver(rt, now=now)
    assert first.webhooks["failed"] == 1 and sink.events == []  # tried once, the rest wait
    assert _webhooks(rt)["queued"] == first.webhooks["queued"] - 1
    sink.start()  # back; the retries come due
    deliver(rt, now=now + dt.timedelta(hours=1))
    assert {e["referral"] for e in sink.events} == set(codes)
    assert _webhooks(rt) == {"sent": len(sink.events)}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["bad name!", "--url", "http://x.example/e", "--events", "referral.*"], "name"),
        (["ok-name", "--url", "ftp://x.example/e", "--events", "referral.*"], "url"),
        (["ok-name", "--url", "http://x.example/e", "--events", "referral;drop"], "event kind"),
    ],
)
def test_bad_subscriptions_are_refused(
    rt: Runtime, args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = row_counts(rt)
    status, _, err = cli(capsys, "webhook", "add", *args)
    assert status != 0 and words in err, err
    assert row_counts(rt) == before


def test_an_idle_pass_costs_one_query_and_new_events_still_fan_out(
    rt: Runtime, now: dt.datetime, sink: SignedSink, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21: a delivery pass with nothing due and nothing to fan out asks one question of
    the database and ends; an event a webhook has not had yet is something to do."""
    from sqlalchemy import event

    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        statements.append(sql)

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        idle = deliver(rt, now=now)
        assert len(statements) == 1, statements
        assert idle.claimed == 0 and idle.webhooks == dict.fromkeys(
            ("queued", "sent", "failed", "dead"), 0
        )
        sink.secret = _subscribe(capsys, sink)
        ready_referral(rt, now, name="Hồ Thị Kín", phone="0905 888 777")
        with Session(rt.engine) as s:  # the launch's SMS and e-mail are no longer due
            s.execute(update(Notification).values(status="sent"))
            s.commit()
        statements.clear()
        busy = deliver(rt, now=now)
        assert len(statements) > 1 and busy.webhooks["sent"] == len(sink.events) > 0
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)
