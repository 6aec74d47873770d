"""After a client did not come, the coordinator's choices from the command line, as on the
referral's page (usecases/referrals/no_show.py): book again, or have a peer educator remind the
client. Closing it as unreachable is `referrals advance CODE --action fail --reason
client_unreachable`."""

from __future__ import annotations

from typing import Annotated

import typer

from referrals.cli.output import emit_json
from referrals.cli.shared import JsonOpt, NowOpt, runtime

no_show_app = typer.Typer(help="After a client did not come: book again, or have them reminded.")


@no_show_app.command("rebook")
def no_show_rebook(
    code: str,
    on: Annotated[str, typer.Option("--on", help="The new date, dd/mm/yyyy (after today).")],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Book referral CODE again: its step is due at the end of that office day, its reminders
    start again, and the partner is told."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.locale.dates import parse_day
    from referrals.usecases.referrals.no_show import Rebooking, rebook

    rt = runtime()
    booking = Rebooking(on=parse_day(on))
    with transaction(rt.engine) as s:
        referral = rebook(
            s, code=code, booking=booking, by=rt.user(s), ctx=rt.ctx, now=parse_now(now)
        )
        status = referral.status
    if as_json:
        return emit_json({"code": code, "status": status, "on": booking.on.isoformat()})
    print(f"{code} booked again for {booking.on:%d/%m/%Y}; it is {status} again")


@no_show_app.command("remind")
def no_show_remind(
    code: str,
    group: Annotated[str, typer.Option("--group", help="The peer group's slug.")],
    now: NowOpt = None,
) -> None:
    """Ask peer group GROUP to remind referral CODE's client to call the office (they get a
    code and the office's phone, nothing else)."""
    from sqlalchemy import select
    from sqlmodel import col

    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.directory import Organization
    from referrals.models.errors import NotFound
    from referrals.usecases.referrals.arrival import office_of
    from referrals.usecases.referrals.no_show import remind_through_peer

    rt = runtime()
    office = office_of(rt.province.province)
    with transaction(rt.engine) as s:
        group_id = s.scalars(
            select(col(Organization.id)).where(col(Organization.slug) == group)
        ).first()
        if group_id is None:
            raise NotFound(f"no peer group {group!r}")
        given = remind_through_peer(
            s,
            code=code,
            group_id=group_id,
            by=rt.user(s),
            ctx=rt.ctx,
            now=parse_now(now),
            office_phone=office.phone or "",
        )
    print(f"{group} asked to remind the client of {code} (by code {given})")
