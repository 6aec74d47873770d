"""`referrals peer-link create|revoke` and `referrals intake list` as operators and coordinators
run them: each call a fresh process, on both databases (issue 20, item 6). The link is printed
once and opens the intake form; a refusal is one line on stderr and exit 1; the list is the
coordinator's district only, and what it showed is on record."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from sqlalchemy import select
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.directory import Contact, Organization
from referrals.models.workflow import Event
from referrals.usecases.clients.intake import IntakeIn, PeerLinkRefused, submit_intake
from support.commands import referrals, refused


def run(user: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Each command's first run in a fresh process, its repeats here (support/commands.py)."""
    return referrals(*args, REFERRALS_USER=user)


def contact_of(rt: Runtime, slug: str) -> str:
    with Session(rt.engine) as s:
        found = s.scalars(
            select(Contact.id)
            .join(Organization, Organization.id == Contact.organization_id)  # type: ignore[arg-type]
            .where(Organization.slug == slug)
        ).first()
    return str(found)


def send(rt: Runtime, token: str, now: dt.datetime, area: str = "nha-trang") -> str:
    data = IntakeIn(nickname="Bé Na", area=area, services=["legal_aid"])
    with transaction(rt.engine) as s:
        return submit_intake(s, ctx=rt.ctx, token=token, data=data, now=now)


def test_peer_links_and_the_intake_list_in_fresh_processes(rt: Runtime, now: dt.datetime) -> None:
    peer = contact_of(rt, "sao-bien-nha-trang")
    done = run(
        "admin", "peer-link", "create", "--contact", peer, "--json", "--now", now.isoformat()
    )
    assert done.returncode == 0, done.stderr
    link = json.loads(done.stdout)
    assert link["peer_group"] == "sao-bien-nha-trang" and link["contact"] == int(peer)
    assert link["url"].startswith(f"{rt.settings.public_url}/p/")
    token = link["url"].rsplit("/", 1)[1]
    here = send(rt, token, now)
    there = run("admin", "peer-link", "create", "--contact", contact_of(rt, "sao-bien-ninh-hoa"))
    assert there.returncode == 0, there.stderr
    assert (
        " for contact " in there.stdout and "(Nhóm đồng đẳng Sao Biển Ninh Hòa): " in there.stdout
    )
    elsewhere = send(rt, there.stdout.strip().rsplit("/", 1)[1], now, area="ninh-hoa")

    # Refusals: a coordinator, a partner's contact, a contact that does not exist.
    assert "for admin users" in refused(run("mai", "peer-link", "create", "--contact", peer))
    police = contact_of(rt, "police-nha-trang")
    assert "not a peer group" in refused(run("admin", "peer-link", "create", "--contact", police))
    assert "unknown contact 999999" in refused(
        run("admin", "peer-link", "create", "--contact", "999999")
    )

    # The coordinator's list: her district only; the manager's: every one, as text too.
    listed = run("mai", "intake", "list", "--json", "--now", now.isoformat())
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["code"], row["nickname"], row["area"]) == (here, "Bé Na", "nha-trang")
    assert row["service_names"] == ["Tư vấn pháp lý"] and row["received_at"].endswith("+07:00")
    shown = run("hoa", "intake", "list")
    assert shown.returncode == 0, shown.stderr
    assert here in shown.stdout and elsewhere in shown.stdout and "23/11/2026" in shown.stdout
    with Session(rt.engine) as s:
        seen = s.scalars(select(Event).where(Event.kind == "intake.listed")).all()
    assert {(e.actor, e.data["via"]) for e in seen} == {("user:mai", "cli"), ("user:hoa", "cli")}

    # Revoked: the link refuses; revoking again says so; an unknown id is refused.
    done = run("admin", "peer-link", "revoke", str(link["id"]))
    assert done.returncode == 0 and done.stdout.strip() == f"peer link {link['id']} revoked"
    with pytest.raises(PeerLinkRefused):
        send(rt, token, now)
    again = run("admin", "peer-link", "revoke", str(link["id"]))
    assert again.stdout.strip() == f"peer link {link['id']} was already revoked"
    assert "for admin users" in refused(run("mai", "peer-link", "revoke", str(link["id"])))
    assert "unknown peer link 999" in refused(run("admin", "peer-link", "revoke", "999"))
