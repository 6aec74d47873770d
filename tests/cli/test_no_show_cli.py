"""`referrals no-show rebook|remind` in fresh processes, as a coordinator at a terminal would."""

from __future__ import annotations

import datetime as dt
import subprocess

from sqlalchemy import select
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.links import link_token
from referrals.models.workflow import Notification, Referral
from referrals.usecases.referrals.answering import Answer, answer_link
from support.commands import referrals
from support.domain import ready_referral


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Each command's first run in a fresh process, its repeats here (support/commands.py)."""
    return referrals(*args, REFERRALS_USER="mai")


def status(rt: Runtime, code: str) -> str:
    with Session(rt.engine) as s:
        return s.scalars(select(Referral.status).where(Referral.code == code)).one()


def test_rebook_and_remind_in_fresh_processes(rt: Runtime, now: dt.datetime) -> None:
    code = ready_referral(rt, now)
    with Session(rt.engine) as s:
        message = s.scalars(
            select(Notification.id).join(Referral).where(Referral.code == code)
        ).first()
    assert message is not None
    token = link_token(rt.ctx.vault, message)
    for answer in (
        Answer(action="accept"),
        Answer(action="no_show", step="application_received", confirm=True),
    ):
        with transaction(rt.engine) as s:
            answer_link(s, ctx=rt.ctx, token=token, answer=answer, now=now)
    assert status(rt, code) == "on-hold"

    # No peer group brought this client in: none may be asked to remind them.
    refused = run("no-show", "remind", code, "--group", "sao-bien-nha-trang")
    assert refused.returncode == 1 and "no peer group brought this client in" in refused.stderr
    for bad in (("--on", "31/02/2026"), ("--on", "23/11/2026")):  # not a date; not after today
        refused = run("no-show", "rebook", code, *bad, "--now", "2026-11-23T10:00:00+07:00")
        assert refused.returncode == 1 and refused.stderr.startswith("error: ")
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert status(rt, code) == "on-hold"
    booked = run(
        "no-show", "rebook", code, "--on", "30/11/2026", "--now", "2026-11-23T10:00:00+07:00"
    )
    assert booked.returncode == 0, booked.stderr
    assert booked.stdout.strip() == f"{code} booked again for 30/11/2026; it is accepted again"
    assert status(rt, code) == "accepted"
    unknown = run("no-show", "remind", code, "--group", "no-such-group")
    assert unknown.returncode == 1 and "no-such-group" in unknown.stderr
