"""`referrals client` and `referrals consent`: clients, their rights, their consents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from referrals.cli.output import emit_json
from referrals.cli.shared import JsonOpt, NowOpt, runtime
from referrals.models.consents import ConsentMethod

client_app = typer.Typer(help="Clients (known by a pseudonymous code).", no_args_is_help=True)
consent_app = typer.Typer(help="Consents per partner and purpose.", no_args_is_help=True)


@client_app.command("add")
def client_add(
    name: Annotated[str, typer.Option("--name", help="Full name (stored encrypted).")],
    district: Annotated[str, typer.Option("--district", help="Area key, e.g. nha-trang.")],
    phone: Annotated[str | None, typer.Option("--phone")] = None,
    id_number: Annotated[str | None, typer.Option("--id-number", help="CMND/CCCD number.")] = None,
    different_person: Annotated[
        str | None,
        typer.Option(
            "--different-person",
            help="When a client with this phone or ID number exists and this is someone else: "
            "why (recorded, encrypted).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a client; prints the pseudonymous code used everywhere else. A phone or ID
    number that is already a client's is refused, naming that client."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.clients.clients import ClientIn, add_client

    rt = runtime()
    data = ClientIn(
        name=name,
        phone=phone,
        id_number=id_number,
        district=district,
        different_person=different_person,
    )
    with transaction(rt.engine) as s:
        c = add_client(s, data=data, ctx=rt.ctx, created_by=rt.user(s), now=parse_now(None))
    if as_json:
        return emit_json({"code": c.code, "district": c.area_key})
    print(c.code)


@client_app.command("move")
def client_move(
    code: Annotated[str, typer.Argument(help="The client's code.")],
    district: Annotated[
        str, typer.Option("--district", help="The area in force today to record them under.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Record a client under another area from today, e.g. a client of a district that ended
    in the 2025 reform under the ward that took it over (`referrals areas` lists them). Their
    referrals keep the area they were launched in."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.clients.clients import move_client

    rt = runtime()
    with transaction(rt.engine) as s:
        c = move_client(
            s,
            code=code,
            district=district,
            by=rt.user(s),
            now=parse_now(None),
            tz=rt.settings.tz,
        )
        moved = {"code": c.code, "district": c.area_key}
    if as_json:
        return emit_json(moved)
    print(f"{moved['code']} → {moved['district']}")


@client_app.command("find")
def client_find(
    text: Annotated[
        str, typer.Argument(help="A word of the name, a phone, an ID number, or a code.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Find clients of your district by name (no accents needed), phone, ID number or a
    client's or referral's code, newest activity first. Each client shown by name is recorded
    as seen by you."""
    import datetime as dt

    from referrals.cli.output import local_date, table
    from referrals.infra.db import transaction
    from referrals.usecases.clients.finding import find_clients

    rt = runtime()
    with transaction(rt.engine) as s:
        found = find_clients(
            s, by=rt.user(s), text=text, ctx=rt.ctx, now=dt.datetime.now(dt.UTC), via="cli"
        )
    rows: list[dict[str, Any]] = [
        {
            "code": f.code,
            "name": f.name,
            "district": f.district,
            "district_name": f.district_name,
            "open_referrals": f.open_referrals,
            "last_activity": f.last_activity.astimezone(rt.settings.tz).isoformat(),
        }
        for f in found
    ]
    if as_json:
        return emit_json(rows)
    if not rows:
        print("no client found")
        return
    table(
        [
            (
                r["code"],
                r["name"] or "(erased)",
                r["district_name"],
                r["open_referrals"],
                local_date(r["last_activity"], with_time=False),
            )
            for r in rows
        ],
        ["code", "name", "district", "open", "last activity"],
    )


@client_app.command("export")
def client_export(
    code: str,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
) -> None:
    """Everything held about a client (their right to see it), as JSON; the export is audited."""
    import datetime as dt

    from referrals.infra.db import transaction
    from referrals.usecases.clients.subject import export_client

    rt = runtime()
    with transaction(rt.engine) as s:
        data = export_client(s, code=code, by=rt.user(s), ctx=rt.ctx, now=dt.datetime.now(dt.UTC))
    if out is None:
        return emit_json(data)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"client {code} exported to {out}")


@client_app.command("erase")
def client_erase(
    code: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
) -> None:
    """Erase a client's name, phone and ID number for good (their right to erasure); the code
    and the anonymous history stay, so the statistics do not change."""
    import datetime as dt

    from referrals.infra.db import transaction
    from referrals.usecases.clients.subject import erase_client

    if not yes:
        raise click.UsageError(f"erasing {code} cannot be undone: add --yes to confirm")
    rt = runtime()
    with transaction(rt.engine) as s:
        erase_client(s, code=code, by=rt.user(s), now=dt.datetime.now(dt.UTC))
    print(f"client {code}: personal data erased")


@consent_app.command("grant")
def consent_grant(
    client: str,
    partner: Annotated[str, typer.Option("--partner")],
    purpose: Annotated[str, typer.Option("--purpose", help="A pathway key.")],
    method: Annotated[ConsentMethod, typer.Option("--method")] = ConsentMethod.written,
    now: NowOpt = None,
) -> None:
    """Record that the client agrees to be referred to PARTNER for PURPOSE."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.clients.clients import grant_consent

    rt = runtime()
    with transaction(rt.engine) as s:
        _, created = grant_consent(
            s,
            client_code=client,
            partner=partner,
            purpose=purpose,
            method=method,
            by=rt.user(s),
            now=parse_now(now),
        )
    print("consent recorded" if created else "consent was already recorded")


@consent_app.command("withdraw")
def consent_withdraw(
    client: str,
    partner: Annotated[str, typer.Option("--partner")],
    purpose: Annotated[str | None, typer.Option("--purpose")] = None,
    now: NowOpt = None,
) -> None:
    """Withdraw the client's consent to PARTNER (one purpose, or all)."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.clients.clients import withdraw_consent

    rt = runtime()
    with transaction(rt.engine) as s:
        done = withdraw_consent(
            s,
            client_code=client,
            partner=partner,
            purpose=purpose,
            by=rt.user(s),
            now=parse_now(now),
            ctx=rt.ctx,
        )
    cancelled = f"; referrals cancelled: {', '.join(done.cancelled)}" if done.cancelled else ""
    print(f"{done.consents} consent(s) withdrawn{cancelled}")


@client_app.command("merge")
def client_merge(
    keep: Annotated[str, typer.Argument(help="The client to keep.")],
    other: Annotated[str, typer.Argument(help="The same person's other record: merged into KEEP.")],
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why they are the same person (recorded, encrypted)."),
    ] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge OTHER into KEEP, two records of one person: OTHER's referrals and consents move to
    KEEP, its history is shown with KEEP's, and OTHER is no longer listed or launched for."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.clients.merging import MergeIn, merge_clients

    data = MergeIn(keep=keep, other=other, reason=reason)
    rt = runtime()
    with transaction(rt.engine) as s:
        done = merge_clients(s, data=data, by=rt.user(s), ctx=rt.ctx, now=parse_now(now))
    if as_json:
        return emit_json(done.as_dict(rt.settings.tz))
    print(
        f"client {done.merged} merged into {done.kept}: {len(done.referrals)} referral(s) and "
        f"{done.consents} consent(s) moved"
    )
