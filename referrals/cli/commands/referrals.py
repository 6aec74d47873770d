"""Referrals: launch one, or a CSV file of them; list, show, move on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from referrals.cli.output import emit_json, local_date, table
from referrals.cli.shared import JsonOpt, NowOpt, Via, ViaOpt, rt_session, runtime
from referrals.models.bounds import MAX_ROWS
from referrals.models.lifecycle import Action

if TYPE_CHECKING:
    from referrals.config.settings import Settings
    from referrals.infra.calendar import WorkingCalendar


def launch(
    client: str,
    pathway: Annotated[str, typer.Option("--pathway")],
    partner: Annotated[str, typer.Option("--partner")],
    urgent: Annotated[bool, typer.Option("--urgent")] = False,
    override_consent: Annotated[
        str | None,
        typer.Option(
            "--override-consent",
            help="Managers only, without the client's consent: emergency_protection, "
            "client_unable_to_consent or legal_obligation (recorded on the referral).",
        ),
    ] = None,
    now: NowOpt = None,
    via: ViaOpt = Via.auto,
    as_json: JsonOpt = False,
) -> None:
    """Launch a referral of CLIENT to PARTNER along PATHWAY; prints the referral code."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.codes import new_code
    from referrals.usecases.referrals.launching import LaunchRequest

    request = LaunchRequest(
        client_code=client,
        pathway=pathway,
        partner=partner,
        urgent=urgent,
        consent_override=override_consent,
    )
    code, when = new_code("R"), parse_now(now)
    rt = runtime()
    use_prefect = via.runs_flow  # either way, launch_one asks the policy (models/policy.py)
    if use_prefect:
        from referrals.flows.launch import run_launch

        run_launch(code=code, request=request, now=when)
    else:
        from referrals.usecases.referrals.launching import launch_one

        with transaction(rt.engine) as s:
            launch_one(s, code=code, request=request, coordinator=rt.user(s), ctx=rt.ctx, now=when)
    if as_json:
        return emit_json({"code": code, "via": "prefect" if use_prefect else "direct"})
    print(code)


def import_csv(
    file: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False, readable=True)] = None,
    template: Annotated[
        Path | None,
        typer.Option(
            "--template", help="Write an Excel workbook to fill in (drop-downs of valid values)."
        ),
    ] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Launch many referrals from a spreadsheet (.xlsx or CSV): all rows or none."""
    from referrals.cli.clock import parse_now
    from referrals.cli.progress import progress_bar
    from referrals.infra.db import transaction
    from referrals.usecases.referrals.importing import import_referrals, import_template

    rt = runtime()
    if template is not None:
        with rt_session(rt) as s:
            template.write_bytes(import_template(s))
        print(f"template written to {template}")
        return
    if file is None:
        raise click.UsageError("give the FILE to import, or --template OUT.xlsx to get one")
    with progress_bar() as progress, transaction(rt.engine) as s:
        report = import_referrals(
            s,
            data=file.read_bytes(),
            coordinator=rt.user(s),
            ctx=rt.ctx,
            now=parse_now(now),
            progress=progress,
        )
    summary = {
        "referrals": report.referrals,
        "launched": len(report.referrals),
        "clients_created": report.clients_created,
        "clients_found": report.clients_found,
        "consents_recorded": report.consents_recorded,
    }
    if as_json:
        return emit_json(summary)
    print(
        f"{summary['launched']} referrals launched; {report.clients_created} new clients, "
        f"{report.clients_found} found; {report.consents_recorded} consents recorded"
    )


def list_cmd(
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only referrals waiting past a deadline.")
    ] = False,
    status: Annotated[str | None, typer.Option("--status")] = None,
    partner: Annotated[str | None, typer.Option("--partner")] = None,
    district: Annotated[str | None, typer.Option("--district")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=0, max=MAX_ROWS, help="At most this many; 0 for all.")
    ] = 100,
    offset: Annotated[
        int, typer.Option("--offset", min=0, max=MAX_ROWS, help="Skip this many (paging).")
    ] = 0,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Referrals, newest first (most late first with --overdue), a page of 100 unless --limit."""
    from referrals.cli.clock import parse_now
    from referrals.config.settings import get_settings
    from referrals.models.policy import listing_district
    from referrals.queries.reading import Reader, acting_user, list_referrals

    settings = get_settings()
    # working days late off hour-counted steps: the holidays calendar is loaded only for this
    calendar = _working_calendar(settings) if overdue else None
    with Reader.open(settings.database_url) as reader:
        district = listing_district(acting_user(reader, settings.user), district)
        rows = list_referrals(
            reader,
            tz=settings.tz,
            now=parse_now(now),
            calendar=calendar,
            overdue=overdue,
            status=status,
            partner=partner,
            district=district,
            limit=limit,
            offset=offset,
        )
    if as_json:
        return emit_json(rows)
    if overdue:
        return _overdue_table(rows)
    _referrals_table(rows)


def _working_calendar(settings: Settings) -> WorkingCalendar:
    from referrals.config import load_province
    from referrals.infra.calendar import WorkingCalendar

    province = load_province(settings.config_dir).province
    return WorkingCalendar.for_province(province, settings.tz)


def _late(row: dict[str, Any]) -> str:
    """How late, in the unit the step's deadline counts (queries/lateness.py, as the pages say
    it): "22 h" on an hour-counted step, where working days would read 0 until the next
    morning; else "4 working days"."""
    if row.get("late_unit") == "hours":
        return f"{row['hours_late']} h"
    days = row["days_late"]
    return f"{days} working day{'' if days == 1 else 's'}"


def _overdue_table(rows: list[dict[str, Any]]) -> None:
    table(
        [
            (
                r["code"],
                r["partner"],
                r["active_step"],
                local_date(r["next_due_at"]),
                _late(r),
                r["escalation_level"],
                r["district"],
                r["client"],
            )
            for r in rows
        ],
        (
            "code",
            "waiting on",
            "step",
            "was due",
            "late",
            "level",
            "district",
            "client",
        ),
    )


def _referrals_table(rows: list[dict[str, Any]]) -> None:
    table(
        [
            (
                r["code"],
                r["status"],
                r["pathway"],
                r["partner"],
                r["district"],
                r["client"],
                r["active_step"],
                local_date(r["next_due_at"]) + ("  LATE" if r["overdue"] else ""),
            )
            for r in rows
        ],
        ("code", "status", "pathway", "partner", "district", "client", "waiting on", "due"),
    )


def show(code: str, now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """One referral: steps with due dates in local time, the timeline, the messages."""
    from referrals.cli.clock import parse_now
    from referrals.config.settings import get_settings
    from referrals.queries.reading import Reader, acting_user, referral_for

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        me = acting_user(reader, settings.user)
        r = referral_for(reader, me, code=code, tz=settings.tz, now=parse_now(now))
    if as_json:
        return emit_json(r)
    print(
        f"{r['code']}  {r['pathway']} -> {r['partner']}  [{r['status']}]  client {r['client']}, "
        f"{r['district']}, launched {local_date(r['launched_at'])} by {r['coordinator']}"
    )
    print("\nsteps:")
    table(
        [
            (
                s["key"],
                s["actor"],
                s["status"],
                local_date(s["due_at"]),
                local_date(s["completed_at"]),
            )
            for s in r["steps"]
        ],
        ("step", "by", "status", "due", "completed"),
    )
    print("\ntimeline:")
    table(
        [(local_date(e["at"]), e["kind"], e["actor"], _brief(e["data"])) for e in r["events"]],
        ("when", "what", "who", "details"),
    )
    print("\nmessages:")
    table(
        [(m["channel"], m["to"], m["template"], m["status"], m["attempts"]) for m in r["messages"]],
        ("channel", "to", "message", "status", "attempts"),
    )


def _brief(data: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items() if k not in ("from", "to"))


def advance(
    code: str,
    action: Annotated[Action, typer.Option("--action")],
    step: Annotated[
        str | None, typer.Option("--step", help="The step to mark done (default: the active one).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="For decline/fail/cancel/hold: a reason code.")
    ] = None,
    now: NowOpt = None,
) -> None:
    """Move a referral on: accept, decline, done, fail, hold, resume, cancel."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.referrals.advancing import advance as advance_referral

    rt = runtime()
    with transaction(rt.engine) as s:  # the use case asks the policy (models/policy.py)
        r = advance_referral(
            s,
            code=code,
            action=action,
            by=rt.user(s),
            ctx=rt.ctx,
            now=parse_now(now),
            step_key=step,
            reason=reason,
        )
    print(f"{r.code} is {r.status}")
