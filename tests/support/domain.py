"""Small helpers shared by the tests: driving the domain the way the CLI does, counting rows."""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Reason
from referrals.models.links import link_token
from referrals.models.people import ConsentMethod
from referrals.models.workflow import Notification, Referral
from referrals.usecases.clients.clients import (
    ClientIn,
    LikelySame,
    SamePerson,
    add_client,
    get_client,
    grant_consent,
)
from referrals.usecases.referrals.answering import Answer, answer_link
from referrals.usecases.referrals.launching import LaunchRequest, launch_referrals

_PHONES = itertools.count(111_222)
_GIVEN = ("Lan", "Hoa", "Mai", "Cúc", "Đào", "Huệ", "Thu", "Xuân")


def new_client(
    rt: Runtime,
    now: dt.datetime,
    name: str | None = None,
    district: str = "nha-trang",
    phone: str | None = "",
    id_number: str | None = None,
) -> str:
    """A new client; without a phone given, one no other test client has. A phone or ID number
    that is already a client's gives that client, as a coordinator would use them."""
    if phone == "":
        phone = f"0905 {next(_PHONES):06d}"
    if name is None:  # a name no other test client has, nor one a letter away
        name = f"Nguyễn Thị {secrets.choice(_GIVEN)} {secrets.token_hex(4)}"
    data = ClientIn(name=name, phone=phone, id_number=id_number, district=district)
    try:
        with transaction(rt.engine) as s:
            return add_client(s, data=data, ctx=rt.ctx, created_by=rt.user(s), now=now).code
    except LikelySame:  # a test's two people of one name: a coordinator would say so
        other = data.model_copy(update={"different_person": "a test's namesake"})
        with transaction(rt.engine) as s:
            return add_client(s, data=other, ctx=rt.ctx, created_by=rt.user(s), now=now).code
    except SamePerson as known:  # the same phone or ID number: that client, as a coordinator would
        code = str(known.params["clients"]).split(", ")[0]
        with transaction(rt.engine) as s:
            if get_client(s, code).area_key == district:
                return code
            other = data.model_copy(update={"different_person": "a test's client elsewhere"})
            return add_client(s, data=other, ctx=rt.ctx, created_by=rt.user(s), now=now).code


def consent(rt: Runtime, client: str, partner: str, purpose: str, now: dt.datetime) -> None:
    with transaction(rt.engine) as s:
        grant_consent(
            s,
            client_code=client,
            partner=partner,
            purpose=purpose,
            method=ConsentMethod.written,
            by=rt.user(s),
            now=now,
        )


def launch(
    rt: Runtime, client: str, pathway: str, partner: str, now: dt.datetime, urgent: bool = False
) -> str:
    with transaction(rt.engine) as s:
        request = LaunchRequest(client_code=client, pathway=pathway, partner=partner, urgent=urgent)
        return launch_referrals(
            s, requests=[request], coordinator=rt.user(s, "mai"), ctx=rt.ctx, now=now
        )[0]


def ready_referral(
    rt: Runtime,
    now: dt.datetime,
    pathway: str = "id_papers",
    partner: str = "police-nha-trang",
    **client: str,
) -> str:
    code = new_client(rt, now, **client)
    consent(rt, code, partner, pathway, now)
    return launch(rt, code, pathway, partner, now)


def decline_with_note(rt: Runtime, referral: str, note: str, now: dt.datetime) -> None:
    """The partner declines through the first message's link, writing a free-text note."""
    with transaction(rt.engine) as s:
        message = s.scalars(
            select(Notification.id).join(Referral).where(Referral.code == referral)
        ).first()
        assert message is not None
        answer = Answer(
            action="decline", reason=Reason.partner_lacks_capacity, note=note, confirm=True
        )
        answer_link(s, ctx=rt.ctx, token=link_token(rt.ctx.vault, message), answer=answer, now=now)


def row_counts(rt: Runtime) -> dict[str, int]:
    with rt.engine.connect() as c:
        return {
            t.name: c.execute(select(func.count()).select_from(t)).scalar_one()
            for t in SQLModel.metadata.sorted_tables
        }


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `referrals ARGS` in this process: (exit code, stdout, stderr)."""
    from referrals.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def sqlite_files(rt: Runtime) -> bytes:
    """The SQLite database's file and its WAL, as bytes, to look for what must not be in them.

    The engine's connections are closed first: a file of the database opened and closed in this
    process drops every POSIX lock the process holds on it, so a connection left open would go
    on with a WAL index that another process (a CLI test's subprocess) has since reset, and the
    two would no longer see each other's writes."""
    rt.engine.dispose()
    path = Path(rt.settings.database_url.removeprefix("sqlite:///"))
    return b"".join(f.read_bytes() for f in (path, *path.parent.glob(path.name + "-*")))


def use_channels(rt: Runtime, partner: str, channels: list[str]) -> None:
    """The partner's contacts try these channels, in this order (partners.yaml `channels`, as
    `referrals init` stores it)."""
    from referrals.models.directory import Contact, Organization

    with transaction(rt.engine) as s:
        org = s.scalars(select(Organization.id).where(Organization.slug == partner)).one()
        for contact in s.scalars(select(Contact).where(Contact.organization_id == org)):
            contact.channels = list(channels)


def prompt_on_both_channels(rt: Runtime, code: str, now: dt.datetime) -> None:
    """The referral's prompt went by SMS, no receipt came in time, so it moved on to the
    contact's e-mail (notifiers/fallback.py): the partner holds two messages, two links."""
    from sqlalchemy import update

    from referrals.notifiers import fallback

    with transaction(rt.engine) as s:
        (sms,) = s.scalars(
            select(Notification.id)
            .join(Referral)
            .where(
                Referral.code == code,
                Notification.template == "referral.new",
                Notification.channel == "sms",
            )
        )
        s.execute(
            update(Notification)
            .where(Notification.id == sms)
            .values(status="sent", sent_at=now, attempts=1, confirm_by=now)
        )
        assert fallback.hand_on(s, sms, reason=fallback.UNCONFIRMED, now=now) == "email"
