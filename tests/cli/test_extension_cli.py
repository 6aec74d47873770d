"""`referrals extension list` and `referrals extension decide CODE ID --grant|--refuse` as an
operator runs them: each call a fresh process, on both databases. The list shows codes and
dates (never the reason); a decision moves the deadline and tells the partner; a refusal is one
line on stderr and exit 1."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.links import link_token
from referrals.models.workflow import Notification, Referral, Step
from referrals.usecases.referrals.answering import Answer, answer_link
from referrals.usecases.referrals.extending import ExtensionAsk, ask_extension
from support.commands import referrals, refused
from support.domain import ready_referral

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
REASON = "hồ sơ của chị Lan còn thiếu giấy khai sinh"


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(dt.UTC)


def run(user: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Each command's first run in a fresh process, its repeats here (support/commands.py)."""
    return referrals(*args, REFERRALS_USER=user)


def asked_beyond_the_limit(rt: Runtime) -> tuple[str, int]:
    """An ID-papers referral accepted on Tue 01/12, its next step (due Tue 08/12) asked to move
    to Fri 18/12, past its three working days: (code, the request's id)."""
    code = ready_referral(rt, local("2026-12-01 09:00"))
    with Session(rt.engine) as s:
        message = s.scalars(
            select(Notification.id).join(Referral).where(Referral.code == code)
        ).first()
    assert message is not None
    token = link_token(rt.ctx.vault, message)
    with transaction(rt.engine) as s:
        answer_link(
            s,
            ctx=rt.ctx,
            token=token,
            answer=Answer(action="accept"),
            now=local("2026-12-01 10:00"),
        )
    ask = ExtensionAsk(
        step="application_received", version=2, new_date=dt.date(2026, 12, 18), reason=REASON
    )
    with transaction(rt.engine) as s:
        asked = ask_extension(s, ctx=rt.ctx, token=token, ask=ask, now=local("2026-12-02 09:00"))
    assert asked.status == "requested"
    return code, asked.extension_id


def test_list_and_decide_in_fresh_processes(rt: Runtime) -> None:
    code, extension = asked_beyond_the_limit(rt)

    listed = run("mai", "extension", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["id"], row["code"], row["step"], row["partner"]) == (
        extension,
        code,
        "application_received",
        "police-nha-trang",
    )
    assert row["was_due_at"] == "2026-12-08T17:00:00+07:00"
    assert row["new_due_at"] == "2026-12-18T17:00:00+07:00"
    assert "giấy khai sinh" not in listed.stdout  # the reason stays sealed
    text = run("mai", "extension", "list")
    assert text.returncode == 0 and code in text.stdout and "18/12/2026 17:00" in text.stdout

    # Neither a manager nor nobody's choice: one line each, nothing changed.
    assert "may read" in refused(run("hoa", "extension", "decide", code, str(extension), "--grant"))
    missing = run("mai", "extension", "decide", code, str(extension))
    assert missing.returncode == 2 and "--grant" in missing.stderr

    done = run(
        "mai",
        "extension",
        "decide",
        code,
        str(extension),
        "--grant",
        "--now",
        "2026-12-03T09:00:00+07:00",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "code": code,
        "extension": extension,
        "status": "granted",
        "due_at": "2026-12-18T17:00:00+07:00",
    }
    with Session(rt.engine) as s:
        due = s.scalars(
            select(Step.due_at)
            .join(Referral)
            .where(Referral.code == code, Step.key == "application_received")
        ).one()
        told = s.scalars(
            select(Notification.channel).where(Notification.template == "extension.decided")
        ).all()
    assert due == local("2026-12-18 17:00") and told == ["sms"]  # the e-mail waits as fallback

    assert "already granted" in refused(
        run("mai", "extension", "decide", code, str(extension), "--refuse")
    )
    empty = run("mai", "extension", "list", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
