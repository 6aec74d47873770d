"""A client's rights: to see everything held about them, and to have it erased."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session

from referrals.cli.main import main
from referrals.infra.client_keys import cipher_of
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.people import Client, ClientKey
from referrals.models.workflow import Event, Referral
from referrals.queries.reading import Reader
from referrals.queries.report import Period, build_report
from referrals.usecases.referrals.advancing import advance
from support.domain import cli, decline_with_note, ready_referral, row_counts, sqlite_files

NAME, PHONE, ID_NUMBER = "Đinh Thị Quyền", "0905 246 135", "079190246135"


@pytest.fixture
def person(rt: Runtime, now: dt.datetime) -> tuple[str, str]:
    ref = ready_referral(rt, now, name=NAME, phone=PHONE, id_number=ID_NUMBER)
    with Session(rt.engine) as s:
        client_id = s.scalars(select(Referral.client_id).where(Referral.code == ref)).one()
        return s.get(Client, client_id).code, ref  # type: ignore[union-attr]


def test_export_holds_everything_and_is_audited(
    rt: Runtime, person: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, ref = person
    status, out, err = cli(capsys, "client", "export", code)
    assert status == 0, err
    data = json.loads(out)
    assert data["client"] | {"created_at": None} == {
        "code": code,
        "district": "nha-trang",
        "name": NAME,
        "phone": "+84905246135",
        "id_number": ID_NUMBER,
        "created_at": None,
        "erased_at": None,
    }
    assert [c["partner"] for c in data["consents"]] == ["police-nha-trang"]
    (referral,) = data["referrals"]
    assert referral["code"] == ref and len(referral["steps"]) == 4
    assert {m["template"] for m in referral["messages"]} == {"referral.new"}
    assert {"client.added", "consent.granted", "referral.requested"} <= {
        e["kind"] for e in data["history"]
    }
    with Session(rt.engine) as s:
        (exported,) = s.scalars(select(Event).where(Event.kind == "client.exported")).all()
    assert exported.actor == "user:admin" and NAME not in json.dumps(exported.data)
    assert cli(capsys, "client", "export", "C-NOPE1-NOPE1")[0] == 1


def test_erasure_waits_for_open_referrals_then_keeps_the_statistics(
    rt: Runtime, person: tuple[str, str], now: dt.datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    code, ref = person
    status, _, err = cli(capsys, "client", "erase", code)
    assert status != 0 and "--yes" in err
    before = row_counts(rt)
    status, _, err = cli(capsys, "client", "erase", code, "--yes")
    assert status == 1 and ref in err and "open referrals" in err
    assert row_counts(rt) == before
    with transaction(rt.engine) as s:
        advance(s, code=ref, action=Action.cancel, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)

    period = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30), ZoneInfo("Asia/Ho_Chi_Minh"))

    def figures() -> dict[str, object]:
        with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as reader:
            report = build_report(
                reader, period=period, calendar=rt.ctx.calendar, now=now + dt.timedelta(hours=1)
            )
        return {k: report[k] for k in ("rows", "services", "total", "partners")}

    report_before = figures()
    status, out, err = cli(capsys, "client", "erase", code, "--yes")
    assert status == 0 and "erased" in out, err
    with Session(rt.engine) as s:
        client = s.scalars(select(Client).where(Client.code == code)).one()
        assert client.erased_at is not None
        assert (client.name_enc, client.phone_enc, client.id_number_enc) == (None, None, None)
        assert (client.phone_lookup, client.id_number_lookup) == (None, None)
        assert s.scalars(select(Event.kind).where(Event.kind == "client.erased")).one()
    assert figures() == report_before  # the statistics do not move
    exported = json.loads(cli(capsys, "client", "export", code)[1])
    assert exported["client"]["name"] is None and exported["referrals"][0]["code"] == ref
    status, _, err = cli(capsys, "client", "erase", code, "--yes")
    assert status == 1 and "already erased" in err
    if rt.engine.dialect.name == "sqlite":  # nothing readable of the person in the file
        raw = sqlite_files(rt)
        for secret in (NAME, ID_NUMBER, "905246135"):
            assert secret.encode() not in raw


def test_erasure_shreds_every_copy_of_the_data(
    rt: Runtime, person: tuple[str, str], now: dt.datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    """The partner's note lives on in the append-only events and the details in any dump made
    before: after erasure neither opens, whatever secret one holds."""
    code, ref = person
    note = f"{NAME} đã chuyển vào Sài Gòn"
    decline_with_note(rt, ref, note, now)

    def sealed() -> tuple[Client, list[str | None], str]:
        with Session(rt.engine) as s:
            client = s.scalars(select(Client).where(Client.code == code)).one()
            answered = s.scalars(select(Event).where(Event.kind == "link.answered")).one()
            values = [client.name_enc, client.phone_enc, client.id_number_enc]
            return client, values, answered.data["note_enc"]

    client, dump, note_enc = sealed()  # a copy of the data, as a backup holds it
    with Session(rt.engine) as s:
        cipher = cipher_of(s, rt.ctx.vault, client)
    assert cipher.decrypt(dump[0], "client.name") == NAME
    assert cipher.decrypt(note_enc, "event.note") == note
    assert NAME not in "".join(v or "" for v in dump) + note_enc
    exported = json.loads(cli(capsys, "client", "export", code)[1])
    assert {"action": "decline", "note": note}.items() <= next(
        e["data"] for e in exported["history"] if e["kind"] == "link.answered"
    ).items()

    status, _, err = cli(capsys, "client", "erase", code, "--yes")
    assert status == 0, err
    client, values, still = sealed()
    assert values == [None, None, None] and still == note_enc  # the event cannot change
    with Session(rt.engine) as s:
        assert s.get(ClientKey, client.id) is None
        shredded = cipher_of(s, rt.ctx.vault, client)
    assert shredded.shredded
    assert shredded.decrypt(note_enc, "event.note") is None
    assert [shredded.decrypt(v, "client.x") for v in dump] == [None, None, None]
    for token, column in [(note_enc, "event.note"), (dump[0], "client.name")]:
        with pytest.raises(ValueError):  # nor does the secret itself open them
            rt.ctx.vault.decrypt(token, column)
    exported = json.loads(cli(capsys, "client", "export", code)[1])
    assert (
        next(e for e in exported["history"] if e["kind"] == "link.answered")["data"]["note"] is None
    )


def test_the_client_page_after_erasure(
    rt: Runtime, person: tuple[str, str], now: dt.datetime
) -> None:
    from support.pages import Clock, logged_in, post_form, staff_users

    code, ref = person
    with transaction(rt.engine) as s:
        advance(s, code=ref, action=Action.cancel, by=rt.user(s, "mai"), ctx=rt.ctx, now=now)
    main_args = ["client", "erase", code, "--yes"]
    with pytest.raises(SystemExit):
        main(main_args)
    staff_users(rt)
    mai = logged_in(Clock(now + dt.timedelta(minutes=5)), "mai")
    page = mai.get(f"/clients/{code}").text
    assert 'id="erased"' in page and 'id="reveal"' not in page
    refused = post_form(mai, f"/clients/{code}/reveal", f"/clients/{code}", purpose="other")
    assert refused.status_code == 422 and "đã được xoá" in refused.text


def test_the_export_holds_the_reasons_partners_gave_for_more_time(
    rt: Runtime, person: tuple[str, str], now: dt.datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    """A partner's reason for more time is free text about the client: the export opens it."""
    from referrals.models.links import link_token
    from referrals.models.workflow import Notification
    from referrals.usecases.referrals.answering import Answer, answer_link
    from referrals.usecases.referrals.extending import ExtensionAsk, ask_extension

    code, ref = person
    with Session(rt.engine) as s:
        message = s.scalars(
            select(Notification.id).join(Referral).where(Referral.code == ref)
        ).first()
    assert message is not None
    token = link_token(rt.ctx.vault, message)
    with transaction(rt.engine) as s:
        answer_link(s, ctx=rt.ctx, token=token, answer=Answer(action="accept"), now=now)
    with Session(rt.engine) as s:
        version = s.scalars(select(Referral.version).where(Referral.code == ref)).one()
    reason = f"{NAME} chưa nộp ảnh"
    with transaction(rt.engine) as s:
        ask = ExtensionAsk(
            step="application_received",
            version=version,
            new_date=dt.date(2026, 12, 2),
            reason=reason,
        )
        ask_extension(s, ctx=rt.ctx, token=token, ask=ask, now=now + dt.timedelta(hours=1))
    status, out, err = cli(capsys, "client", "export", code)
    assert status == 0, err
    (asked,) = json.loads(out)["extensions"]
    assert (asked["referral"], asked["step"], asked["reason"]) == (
        ref,
        "application_received",
        reason,
    )
