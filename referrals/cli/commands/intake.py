"""`referrals peer-link` and `referrals intake`: peer groups' standing links and the people they
bring in (usecases/clients/intake.py)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from referrals.cli.output import emit_json
from referrals.cli.shared import JsonOpt, NowOpt, runtime

peer_link_app = typer.Typer(
    help="Peer groups' standing links to the intake form (admins).", no_args_is_help=True
)
intake_app = typer.Typer(help="People peer groups brought in.", no_args_is_help=True)


@peer_link_app.command("create")
def peer_link_create(
    contact: Annotated[
        int,
        typer.Option("--contact", help="A peer group's contact id (`referrals partners --json`)."),
    ],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a peer group's contact a standing link to the intake form; the link is printed
    once: hand it over, and revoke it when it is lost or the person leaves."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.clients.intake import create_peer_link

    rt = runtime()
    with transaction(rt.engine) as s:
        issued = create_peer_link(
            s, contact_id=contact, by=rt.user(s), ctx=rt.ctx, now=parse_now(now)
        )
    url = f"{rt.settings.public_url.rstrip('/')}/p/{issued.token}"
    if as_json:
        return emit_json(
            {"id": issued.id, "contact": contact, "peer_group": issued.group, "url": url}
        )
    print(f"peer link {issued.id} for contact {contact} ({issued.group_name}): {url}")


@peer_link_app.command("revoke")
def peer_link_revoke(
    link_id: Annotated[int, typer.Argument(metavar="ID", help="The peer link's id.")],
    now: NowOpt = None,
) -> None:
    """Revoke a standing link: it refuses every intake from now on."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.clients.intake import revoke_peer_link

    rt = runtime()
    with transaction(rt.engine) as s:
        done = revoke_peer_link(s, link_id=link_id, by=rt.user(s), now=parse_now(now))
    print(f"peer link {link_id} revoked" if done else f"peer link {link_id} was already revoked")


@intake_app.command("list")
def intake_list(now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """The intakes waiting in your scope (a coordinator's district; every one for managers and
    admins), longest waiting first. The nicknames shown are recorded as seen by you."""
    from referrals.cli.clock import parse_now
    from referrals.cli.output import local_date, table
    from referrals.infra.db import transaction
    from referrals.usecases.clients.intake import intake_queue

    rt = runtime()
    with transaction(rt.engine) as s:
        rows = intake_queue(s, by=rt.user(s), ctx=rt.ctx, now=parse_now(now), via="cli")
    found: list[dict[str, Any]] = [
        {
            "code": r.code,
            "nickname": r.nickname,
            "area": r.area,
            "area_name": r.area_name,
            "services": r.services,
            "service_names": r.service_names,
            "received_at": r.received_at.astimezone(rt.settings.tz).isoformat(),
            "peer_group": r.group,
            "peer_group_name": r.group_name,
            "agreed_to_contact": r.agreed_to_contact,
        }
        for r in rows
    ]
    if as_json:
        return emit_json(found)
    if not found:
        print("no intake waiting")
        return
    table(
        [
            (
                f["code"],
                f["nickname"],
                f["area_name"],
                ", ".join(f["service_names"]),
                local_date(f["received_at"], with_time=False),
                f["peer_group_name"],
            )
            for f in found
        ],
        ["code", "name", "area", "needs", "received", "peer group"],
    )
