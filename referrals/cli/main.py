"""`referrals`: the operators' command line. Errors are one line on stderr, never a traceback.

Nothing here imports Prefect unless a command runs a flow: `import prefect` alone costs 1-2 s.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from referrals.cli.output import emit_json, local_date, table
from referrals.models.bounds import MAX_PORT, MAX_ROWS, MAX_SECONDS

app = typer.Typer(
    help="Referral-workflow engine: launch and follow referrals to partner organisations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
client_app = typer.Typer(help="Clients (known by a pseudonymous code).", no_args_is_help=True)
consent_app = typer.Typer(help="Consents per partner and purpose.", no_args_is_help=True)
app.add_typer(client_app, name="client")
app.add_typer(consent_app, name="consent")
outbox_app = typer.Typer(help="Messages to partners and staff, and their delivery state.")
token_app = typer.Typer(help="API tokens (for /api/v1).", no_args_is_help=True)
app.add_typer(token_app, name="token")
user_app = typer.Typer(help="Staff accounts for the web pages.", no_args_is_help=True)
app.add_typer(user_app, name="user")
keys_app = typer.Typer(help="Encryption keys: status and rotation.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(
    help="The append-only audit trail and its hash chain.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")
app.add_typer(outbox_app, name="outbox")
webhook_app = typer.Typer(
    help="Other systems' subscriptions to the engine's events.", no_args_is_help=True
)
app.add_typer(webhook_app, name="webhook")
fhir_app = typer.Typer(help="FHIR R4: a referral as a Bundle.", no_args_is_help=True)
app.add_typer(fhir_app, name="fhir")
directory_app = typer.Typer(
    help="The partner directory as Open Referral HSDS 3.1 JSON.", no_args_is_help=True
)
app.add_typer(directory_app, name="directory")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
NowOpt = Annotated[str | None, typer.Option("--now", help="Pretend it is this ISO 8601 instant.")]


def _acting(
    rt: Any,
    s: Any,
    *,
    area: str | None = None,
    what: str = "",
    admin: bool = False,
    managers: bool = False,
) -> Any:
    """REFERRALS_USER, once the policy (models/policy.py) allows what the command does."""
    from referrals.models.people import Role
    from referrals.models.policy import require_area, require_role

    user = rt.user(s)
    if admin:
        require_role(user, Role.admin, doing=what)
    elif managers:
        require_role(user, Role.manager, Role.admin, doing=what)
    if area is not None:
        require_area(user, area, what=what)
    return user


def _operator(what: str, *, managers: bool = False) -> None:
    """Operator commands are for admins (reading the outbox, for managers too); read cheaply."""
    from referrals.config.settings import get_settings
    from referrals.models.policy import require_role
    from referrals.models.roles import Role
    from referrals.queries.reading import Reader, acting_user

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        roles = (Role.manager, Role.admin) if managers else (Role.admin,)
        require_role(acting_user(reader, settings.user), *roles, doing=what)


def _client_acting(rt: Any, s: Any, code: str) -> Any:
    """REFERRALS_USER, if it may act on client CODE's district (else: unknown client)."""
    from referrals.usecases.clients.clients import get_client

    return _acting(rt, s, area=get_client(s, code).area_key, what=f"client {code!r}")


def _runtime() -> Any:
    from referrals.infra.runtime import Runtime

    return Runtime()


@app.command()
def init(
    demo: Annotated[
        bool, typer.Option("--demo", help="Add demo users, clients and referrals.")
    ] = False,
) -> None:
    """Migrate the database to head and load the province's config (safe to re-run)."""
    from referrals.cli.setup import initialise

    initialise(_runtime(), demo=demo)


@app.command()
def partners(as_json: JsonOpt = False) -> None:
    """The partner directory: organisations, services, areas served, contacts."""
    from referrals.queries.directory import directory

    rt = _runtime()
    with rt_session(rt) as s:
        data = directory(s)
    if as_json:
        return emit_json(data)
    for p in data:
        print(f"{p['slug']}  {p['name']}")
        for svc in p["services"]:
            print(f"    {svc['pathway']:<22} {svc['name']}  [{', '.join(svc['areas'])}]")
        for place in p["locations"]:
            hours = "; ".join(
                f"{','.join(h['days'])} {h['opens']}-{h['closes']}" for h in place["hours"]
            )
            print(f"    @{place['key']} {place['name']}: {place['address']}  {hours}")
        for c in p["contacts"]:
            mark = "" if c["active"] else "  (inactive)"
            print(
                f"    #{c['rank']} {c['name']}, {c['role']}: {c['phone'] or '-'} {c['email'] or '-'}{mark}"
            )


@app.command()
def pathways(as_json: JsonOpt = False) -> None:
    """The pathway templates (latest versions) with their steps and due rules."""
    from referrals.queries.directory import pathway_templates

    rt = _runtime()
    with rt_session(rt) as s:
        data = pathway_templates(s)
    if as_json:
        return emit_json(data)
    for p in data:
        print(f"{p['key']} v{p['version']}  {p['name']}")
        for st in p["steps"]:
            print(f"    {st['key']:<22} {st['actor']:<12} {st['due']}")


@client_app.command("add")
def client_add(
    name: Annotated[str, typer.Option("--name", help="Full name (stored encrypted).")],
    district: Annotated[str, typer.Option("--district", help="Area key, e.g. nha-trang.")],
    phone: Annotated[str | None, typer.Option("--phone")] = None,
    id_number: Annotated[str | None, typer.Option("--id-number", help="CMND/CCCD number.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a client; prints the pseudonymous code used everywhere else."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.clients.clients import ClientIn, add_client

    rt = _runtime()
    data = ClientIn(name=name, phone=phone, id_number=id_number, district=district)
    with transaction(rt.engine) as s:
        me = _acting(rt, s, area=data.district, what=f"district {data.district}")
        c = add_client(s, data=data, ctx=rt.ctx, created_by=me, now=parse_now(None))
    if as_json:
        return emit_json({"code": c.code, "district": c.area_key})
    print(c.code)


@client_app.command("export")
def client_export(
    code: str,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
) -> None:
    """Everything held about a client (their right to see it), as JSON; the export is audited."""
    import datetime as dt

    from referrals.infra.db import transaction
    from referrals.usecases.clients.subject import export_client

    rt = _runtime()
    with transaction(rt.engine) as s:
        me = _acting(rt, s, managers=True, what="client export")
        data = export_client(s, code=code, by=me, ctx=rt.ctx, now=dt.datetime.now(dt.UTC))
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
    rt = _runtime()
    with transaction(rt.engine) as s:
        me = _acting(rt, s, managers=True, what="client erase")
        erase_client(s, code=code, by=me, now=dt.datetime.now(dt.UTC))
    print(f"client {code}: personal data erased")


class Method(StrEnum):
    written = "written"
    verbal = "verbal"


@consent_app.command("grant")
def consent_grant(
    client: str,
    partner: Annotated[str, typer.Option("--partner")],
    purpose: Annotated[str, typer.Option("--purpose", help="A pathway key.")],
    method: Annotated[Method, typer.Option("--method")] = Method.written,
    now: NowOpt = None,
) -> None:
    """Record that the client agrees to be referred to PARTNER for PURPOSE."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.people import ConsentMethod
    from referrals.usecases.clients.clients import grant_consent

    rt = _runtime()
    with transaction(rt.engine) as s:
        me = _client_acting(rt, s, client)
        _, created = grant_consent(
            s,
            client_code=client,
            partner=partner,
            purpose=purpose,
            method=ConsentMethod(method.value),
            by=me,
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

    rt = _runtime()
    with transaction(rt.engine) as s:
        me = _client_acting(rt, s, client)
        done = withdraw_consent(
            s,
            client_code=client,
            partner=partner,
            purpose=purpose,
            by=me,
            now=parse_now(now),
            ctx=rt.ctx,
        )
    cancelled = f"; referrals cancelled: {', '.join(done.cancelled)}" if done.cancelled else ""
    print(f"{done.consents} consent(s) withdrawn{cancelled}")


class Via(StrEnum):
    auto = "auto"
    direct = "direct"
    prefect = "prefect"

    @property
    def runs_flow(self) -> bool:
        """Run the Prefect flow: when asked to, or (auto) when a Prefect server is configured
        and answers. A coordinator's launch never waits on Prefect being up: the referral and
        its outbox are in the database, and the workers catch up when Prefect is back."""
        if self is not Via.auto:
            return self is Via.prefect
        api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
        if not api:
            return False
        import http.client
        import urllib.request

        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2):
                return True
        except (OSError, ValueError, http.client.HTTPException):
            sys.stderr.write(f"note: Prefect at {api} does not answer; running directly\n")
            return False


ViaOpt = Annotated[
    Via, typer.Option("--via", help="auto: the Prefect flow if PREFECT_API_URL is set.")
]


@app.command()
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
    from referrals.models.codes import new_code
    from referrals.usecases.referrals.launching import LaunchRequest

    request = LaunchRequest(
        client_code=client,
        pathway=pathway,
        partner=partner,
        urgent=urgent,
        consent_override=override_consent,
    )
    from referrals.infra.db import transaction

    code, when = new_code("R"), parse_now(now)
    rt = _runtime()
    with transaction(rt.engine) as s:
        # A coordinator launches in their district; a launch without consent is a manager's
        # decision (usecases/referrals/launching.py checks the role again).
        me = (
            _acting(rt, s, managers=True, what="a launch without consent")
            if override_consent
            else _client_acting(rt, s, client)
        )
    use_prefect = via.runs_flow
    if use_prefect:
        from referrals.flows.launch import run_launch

        run_launch(code=code, request=request, now=when)
    else:
        from referrals.usecases.referrals.launching import launch_one

        with transaction(rt.engine) as s:
            launch_one(s, code=code, request=request, coordinator=me, ctx=rt.ctx, now=when)
    if as_json:
        return emit_json({"code": code, "via": "prefect" if use_prefect else "direct"})
    print(code)


@app.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Launch many referrals from a CSV file: all rows or none."""
    from referrals.cli.clock import parse_now
    from referrals.cli.progress import progress_bar
    from referrals.infra.db import transaction
    from referrals.usecases.referrals.importing import import_referrals

    rt = _runtime()
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


@app.command("list")
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
    from referrals.models.policy import Forbidden, district_scope
    from referrals.queries.reading import Reader, acting_user, list_referrals

    settings = get_settings()
    calendar = None
    if overdue:  # how late, in working days: the holidays calendar is only loaded for this
        from referrals.config import load_province
        from referrals.infra.calendar import WorkingCalendar

        province = load_province(settings.config_dir).province
        calendar = WorkingCalendar.for_province(province, settings.tz)
    with Reader.open(settings.database_url) as reader:
        scope = district_scope(acting_user(reader, settings.user))
        if scope is not None and district not in (None, scope):
            raise Forbidden(f"{settings.user} works in {scope}, not {district}")
        rows = list_referrals(
            reader,
            tz=settings.tz,
            now=parse_now(now),
            calendar=calendar,
            overdue=overdue,
            status=status,
            partner=partner,
            district=scope or district,
            limit=limit,
            offset=offset,
        )
    if as_json:
        return emit_json(rows)
    if overdue:
        return table(
            [
                (
                    r["code"],
                    r["partner"],
                    r["active_step"],
                    local_date(r["next_due_at"]),
                    r["days_late"],
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
                "working days late",
                "level",
                "district",
                "client",
            ),
        )
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


class ReportFormat(StrEnum):
    md = "md"
    csv = "csv"
    json = "json"
    html = "html"


@app.command()
def report(
    first: Annotated[
        str, typer.Option("--from", help="First day, ISO (2026-01-01) or dd/mm/yyyy.")
    ],
    last: Annotated[str, typer.Option("--to", help="Last day, included.")],
    fmt: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.md,
    district: Annotated[str | None, typer.Option("--district", help="One district only.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="vi or en.")] = "vi",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The period report: clients and referrals by service and district, partners' response
    times, messages; as of the end of the period, so a past period's figures do not move."""
    from referrals.cli.clock import parse_now
    from referrals.config.settings import get_settings
    from referrals.reports.period import period_report

    text = period_report(
        first=first,
        last=last,
        fmt="json" if as_json else fmt.value,
        now=parse_now(now),
        district=district,
        lang=lang,
        user=get_settings().user,
    )
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    print(f"report written to {out}")


@app.command()
def show(code: str, now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """One referral: steps with due dates in local time, the timeline, the messages."""
    from referrals.cli.clock import parse_now
    from referrals.config.settings import get_settings
    from referrals.models.policy import require_area
    from referrals.queries.reading import Reader, acting_user, show_referral

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        me = acting_user(reader, settings.user)
        r = show_referral(reader, code=code, tz=settings.tz, now=parse_now(now))
        require_area(me, r["district"], what=f"referral {code!r}", act=False)
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


class ActionChoice(StrEnum):
    accept = "accept"
    decline = "decline"
    done = "done"
    fail = "fail"
    hold = "hold"
    resume = "resume"
    cancel = "cancel"


@app.command()
def advance(
    code: str,
    action: Annotated[ActionChoice, typer.Option("--action")],
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
    from referrals.models.lifecycle import Action
    from referrals.usecases.referrals.advancing import advance as advance_referral

    rt = _runtime()
    with transaction(rt.engine) as s:  # the use case asks the policy (models/policy.py)
        r = advance_referral(
            s,
            code=code,
            action=Action(action.value),
            by=rt.user(s),
            ctx=rt.ctx,
            now=parse_now(now),
            step_key=step,
            reason=reason,
        )
    print(f"{r.code} is {r.status}")


@app.command()
def deliver(
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, max=MAX_ROWS, help="At most this many messages.")
    ] = None,
    now: NowOpt = None,
    via: ViaOpt = Via.auto,
    as_json: JsonOpt = False,
) -> None:
    """One delivery pass: send every due message through its channel, record each outcome."""
    _operator("deliver")
    from referrals.cli.clock import parse_now

    when = parse_now(now)
    use_prefect = via.runs_flow
    if use_prefect:
        from referrals.flows.deliver import deliver_notifications

        summary = deliver_notifications(now=when, limit=limit)
    else:
        from referrals.notifiers.delivery import deliver as deliver_pass

        summary = deliver_pass(_runtime(), now=when, limit=limit).as_dict()
    if as_json:
        return emit_json(summary)
    print(
        f"{summary['sent']} sent, {summary['failed']} failed (will retry), {summary['dead']} dead, "
        f"{summary['deferred']} held for quiet hours"
    )
    for kind, n in summary["waiting"].items():
        env = "REFERRALS_SMS_URL" if kind == "sms" else "REFERRALS_EMAIL_URL"
        print(f"{n} {kind} messages wait: the {kind} channel is off (set {env})")


@app.command()
def sweep(
    now: NowOpt = None,
    via: ViaOpt = Via.auto,
    as_json: JsonOpt = False,
) -> None:
    """One deadline pass: reminders before deadlines, overdue notices, escalation levels."""
    _operator("sweep")
    from referrals.cli.clock import parse_now

    when = parse_now(now)
    use_prefect = via.runs_flow
    if use_prefect:
        from referrals.flows.sweep import sweep_deadlines

        summary = sweep_deadlines(now=when)
    else:
        from referrals.usecases.deadlines.sweeping import sweep_and_seal

        rt = _runtime()
        summary = sweep_and_seal(rt.engine, ctx=rt.ctx, now=when)
    if as_json:
        return emit_json(summary)
    print(
        f"{summary['steps']} steps looked at: {summary['reminder']} reminders, "
        f"{summary['overdue']} overdue notices, {summary['escalation']} escalations; "
        f"{summary['messages']} messages queued"
        + (
            f"; {summary['skipped']} recipients skipped (see the timeline)"
            if summary["skipped"]
            else ""
        )
    )


@app.command()
def digest(now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Queue today's digest e-mail for each manager (once a day; `deliver` sends it)."""
    _operator("digest")
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.deadlines.digest import queue_digests

    rt = _runtime()
    with transaction(rt.engine) as s:
        counts = queue_digests(
            s, ctx=rt.ctx, now=parse_now(now), config=rt.province.province.digest
        )
    if as_json:
        return emit_json(counts)
    print(
        f"{counts['queued']} digests queued, {counts['already']} already queued today, "
        f"{counts['nothing_to_say']} managers with nothing to report"
    )


@app.command()
def sweeps(
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_ROWS)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The last deadline passes, newest first, with what each fired."""
    from referrals.config.settings import get_settings
    from referrals.queries.reading import Reader, list_sweeps

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        rows = list_sweeps(reader, tz=settings.tz, limit=limit)
    if as_json:
        return emit_json(rows)
    table(
        [
            (
                local_date(r["now"]),
                local_date(r["finished_at"]) if r["finished_at"] else "unfinished",
                r["counts"].get("reminder", 0),
                r["counts"].get("overdue", 0),
                r["counts"].get("escalation", 0),
                r["counts"].get("messages", 0),
                r["counts"].get("skipped", 0),
            )
            for r in rows
        ],
        ("swept up to", "finished", "reminders", "overdue", "escalations", "messages", "skipped"),
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="The web app's address.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=MAX_PORT, help="The web app's port.")
    ] = 8000,
    prefect_port: Annotated[
        int,
        typer.Option(
            "--prefect-port", min=1, max=MAX_PORT, help="The local Prefect server's port (and UI)."
        ),
    ] = 4200,
    sweep_every: Annotated[
        int,
        typer.Option(
            "--sweep-every", min=1, max=MAX_SECONDS, help="Seconds between deadline sweeps."
        ),
    ] = 300,
    deliver_every: Annotated[
        int,
        typer.Option(
            "--deliver-every", min=1, max=MAX_SECONDS, help="Seconds between delivery passes."
        ),
    ] = 60,
) -> None:
    """Run the engine on this machine: the web app, a Prefect server and the scheduled flows."""
    from referrals.cli.serving import serve as run
    from referrals.config.settings import get_settings

    status = run(
        data_dir=get_settings().data_dir.resolve(),
        host=host,
        port=port,
        prefect_port=prefect_port,
        sweep_every=sweep_every,
        deliver_every=deliver_every,
    )
    raise typer.Exit(status)


class MessageStatusChoice(StrEnum):
    queued = "queued"
    failed = "failed"
    sent = "sent"
    dead = "dead"
    cancelled = "cancelled"


@outbox_app.callback(invoke_without_command=True)
def outbox(
    ctx: typer.Context,
    status: Annotated[MessageStatusChoice | None, typer.Option("--status")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=0, max=MAX_ROWS, help="At most this many; 0 for all.")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Messages, newest first: who, what, and whether it was delivered."""
    if ctx.invoked_subcommand:
        return
    _operator("outbox", managers=True)
    from referrals.config.settings import get_settings
    from referrals.queries.reading import Reader, list_messages

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        rows = list_messages(
            reader, tz=settings.tz, status=status.value if status else None, limit=limit
        )
    if as_json:
        return emit_json(rows)
    table(
        [
            (
                m["id"],
                m["referral"] or "-",
                m["channel"],
                m["to"],
                m["template"],
                m["status"],
                m["attempts"],
                local_date(m["sent_at"] or m["next_attempt_at"]),
                (m["last_error"] or "")[:60],
            )
            for m in rows
        ],
        ("id", "referral", "channel", "to", "message", "status", "tries", "when", "last error"),
    )


@outbox_app.command("revoke")
def outbox_revoke(message_id: int, now: NowOpt = None) -> None:
    """Withdraw the partner's link in message ID: it opens a "withdrawn" page from now on."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.people import actor_name
    from referrals.usecases.referrals.answering import revoke_link

    rt = _runtime()
    with transaction(rt.engine) as s:
        row = revoke_link(
            s,
            message_id=message_id,
            actor=actor_name(_acting(rt, s, admin=True, what="outbox revoke")),
            now=parse_now(now),
        )
    print(f"the link in message {row.id} is withdrawn")


@outbox_app.command("retry")
def outbox_retry(message_id: int, now: NowOpt = None) -> None:
    """Send a failed or dead message again (after fixing the address or the channel)."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.people import actor_name
    from referrals.notifiers.outbox import retry

    rt = _runtime()
    with transaction(rt.engine) as s:
        me = _acting(rt, s, admin=True, what="outbox retry")
        row = retry(s, message_id=message_id, actor=actor_name(me), now=parse_now(now))
    print(f"message {row.id} is queued again")


@token_app.command("create")
def token_create(
    username: str,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "api",
) -> None:
    """Issue an API token for USERNAME; it is printed once and stored only as a hash."""
    _operator("token create")
    import datetime as dt

    from referrals.infra.db import transaction
    from referrals.models.tokens import issue_token

    rt = _runtime()
    with transaction(rt.engine) as s:
        token = issue_token(s, username=username, name=name, now=dt.datetime.now(dt.UTC))
    print(token)


class StaffRole(StrEnum):
    coordinator = "coordinator"
    manager = "manager"
    admin = "admin"


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@user_app.command("add")
def user_add(
    username: str,
    full_name: Annotated[str, typer.Option("--name", help="Shown in the pages.")],
    role: Annotated[StaffRole, typer.Option("--role")],
    district: Annotated[
        str | None, typer.Option("--district", help="A coordinator's area key.")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="For alerts and digests.")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a staff account with a password (at least 10 characters) for the web pages."""
    import datetime as dt

    from referrals.infra.db import transaction
    from referrals.models.people import actor_name
    from referrals.usecases.staff.accounts import UserIn, add_user

    data = UserIn(
        username=username, full_name=full_name, role=role.value, district=district, email=email
    )
    password = _password(password_stdin)
    rt = _runtime()
    with transaction(rt.engine) as s:
        add_user(
            s,
            data=data,
            password=password,
            by=actor_name(_acting(rt, s, admin=True, what="user add")),
            now=dt.datetime.now(dt.UTC),
        )
    print(f"user {data.username} added ({data.role})")


@user_app.command("password")
def user_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set USERNAME's password; it ends the user's web sessions and lifts a lockout."""
    import datetime as dt

    from referrals.infra.db import transaction
    from referrals.models.people import actor_name
    from referrals.usecases.staff.accounts import set_password

    password = _password(password_stdin)
    rt = _runtime()
    with transaction(rt.engine) as s:
        set_password(
            s,
            username=username,
            password=password,
            by=actor_name(_acting(rt, s, admin=True, what="user password")),
            now=dt.datetime.now(dt.UTC),
        )
    print(f"password of {username} set")


@keys_app.command("status")
def keys_status(as_json: JsonOpt = False) -> None:
    """Which secret wraps the clients' data keys, and how many clients wait for `keys rotate`."""
    _operator("keys status")
    from sqlmodel import Session

    from referrals.usecases.clients.keys import key_status

    rt = _runtime()
    with Session(rt.engine) as s:
        status = key_status(s, rt.ctx.vault)
    if as_json:
        return emit_json(status)
    print(
        f"current key {status['current']}: {status['to_rotate']} clients still under an older "
        "key or without a data key of their own"
    )


@keys_app.command("rotate")
def keys_rotate(
    batch: Annotated[int, typer.Option("--batch", min=1, max=10_000)] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Re-wrap every client's data key under the current REFERRALS_SECRET_KEY (the old one in
    REFERRALS_PREVIOUS_SECRET_KEYS); a batch per transaction, resumable after an interruption."""
    _operator("keys rotate")
    from sqlmodel import Session

    from referrals.cli.progress import progress_bar
    from referrals.usecases.clients.keys import key_status, rotate

    rt = _runtime()
    with Session(rt.engine) as s:
        total = key_status(s, rt.ctx.vault)["to_rotate"]
    with progress_bar() as update:
        moved = rotate(
            rt.engine,
            vault=rt.ctx.vault,
            batch=batch,
            progress=lambda done: update("rotate", done, total),
        )
    if as_json:
        return emit_json({"rotated": moved, "current": rt.ctx.vault.key_id})
    print(f"{moved} clients moved under key {rt.ctx.vault.key_id}")


@audit_app.command("seal")
def audit_seal(as_json: JsonOpt = False) -> None:
    """Seal the events written since the last pass into the chain (the sweep does this too)."""
    _operator("audit seal")
    from referrals.usecases.audit import seal

    rt = _runtime()
    sealed = seal(rt.engine, vault=rt.ctx.vault)
    if as_json:
        return emit_json({"sealed": sealed})
    print(f"{sealed} events sealed")


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Check the chain from its start: the first broken link, if any, is named (exit 1)."""
    from referrals.config.settings import get_settings
    from referrals.infra.crypto import vault_for
    from referrals.queries.reading import Reader
    from referrals.queries.audit import verify

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        verdict = verify(reader, vault=vault_for(settings.secret_key, settings.previous_keys))
    if as_json:
        emit_json(verdict.as_dict())
    elif verdict.ok:
        print(
            f"chain intact: {verdict.sealed} events sealed, {verdict.unsealed} waiting for the "
            f"next seal; head {verdict.head_seq} {verdict.head_hash[:16]}"
        )
    else:
        sys.stderr.write(
            f"error: the audit chain breaks at event {verdict.first_broken}: {verdict.why} "
            f"({verdict.sealed} events before it are intact)\n"
        )
    if not verdict.ok:
        raise typer.Exit(1)


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """Check this deployment: settings, database and schema, keys, consistency, channels,
    Prefect and its workers, clocks; each problem with its fix (exit 1 if any fails)."""
    from referrals.cli.doctor import Doctor

    found = Doctor().run()
    if as_json:
        emit_json({"healthy": found.healthy, "checks": found.as_dicts()})
    else:
        marks = {"ok": "✓", "warn": "!", "fail": "✗"}
        for f in found.findings:
            print(f"{marks[f.level]} {f.check}: {f.detail}")
            if f.fix and f.level != "ok":
                print(f"    fix: {f.fix}")
    if not found.healthy:
        raise typer.Exit(1)


@app.command()
def check(as_json: JsonOpt = False) -> None:
    """Check the database's invariants and the audit chain; name the rows that break them."""
    _operator("check", managers=True)
    from referrals.config.settings import get_settings
    from referrals.infra.crypto import vault_for
    from referrals.queries.invariants import RULES, check
    from referrals.queries.reading import Reader

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        broken = check(reader, vault=vault_for(settings.secret_key, settings.previous_keys))
    if as_json:
        emit_json({"ok": not broken, "broken": [vars(b) for b in broken]})
    elif broken:
        for b in broken:
            sys.stderr.write(f"broken: {b.rule} ({b.meaning}): {b.count} rows, e.g. {b.ids}\n")
    else:
        print(f"all {len(RULES) + 1} rules hold")
    if broken:
        raise typer.Exit(1)


@app.command()
def backup(
    out: Annotated[Path, typer.Option("--out", help="Folder for the data backup.")],
    keys_out: Annotated[
        Path | None,
        typer.Option("--keys-out", help="Folder for the data keys: another medium, kept shorter."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Back up the data and, apart, the clients' data keys (README: Backups)."""
    _operator("backup")
    import datetime as dt

    from referrals.cli.backup import backup as run_backup

    rt = _runtime()
    done = run_backup(
        rt.engine,
        rt.settings.database_url,
        out=out,
        keys_out=keys_out or out,
        now=dt.datetime.now(dt.UTC),
    )
    if as_json:
        return emit_json(
            {"data": str(done.data), "keys": str(done.keys), "keys_count": done.keys_count}
        )
    print(f"data: {done.data}")
    print(f"keys: {done.keys} ({done.keys_count} clients)")


@app.command()
def restore(
    data: Annotated[Path, typer.Argument(help="The data backup's folder.")],
    keys: Annotated[Path | None, typer.Option("--keys", help="The keys backup's folder.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Yes, restore into this database.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into an empty database, then migrate it to this code's schema."""
    from referrals.cli.backup import restore as run_restore

    if not yes:
        raise typer.BadParameter("restoring writes a whole database: add --yes")
    rt = _runtime()
    done = run_restore(rt.engine, rt.settings.database_url, data_dir=data, keys_dir=keys)
    if as_json:
        return emit_json(done)
    print(
        f"restored; {done['keys']} data keys back"
        + (
            f", {done['keys_of_erased_clients']} left out (clients erased)"
            if done["keys_of_erased_clients"]
            else ""
        )
        + "; now run `referrals doctor`"
    )
    if done["clients_without_keys"]:
        sys.stderr.write(
            f"warning: {done['clients_without_keys']} clients have no data key"
            + ("" if keys else " (no --keys folder)")
            + ": their details are unreadable; restore the keys backup taken with this data\n"
        )


@webhook_app.command("add")
def webhook_add(
    name: str,
    url: Annotated[str, typer.Option("--url", help="Where the events are POSTed.")],
    events: Annotated[
        str, typer.Option("--events", help="Comma-separated kinds, e.g. referral.*,step.done")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Subscribe URL to the events; prints the signing secret, once."""
    _operator("webhook add")
    from referrals.infra.db import transaction
    from referrals.models.subscriptions import WebhookIn, add_webhook

    data = WebhookIn(name=name, url=url, events=[e for e in events.split(",") if e.strip()])
    rt = _runtime()
    with transaction(rt.engine) as s:
        hook, secret = add_webhook(s, data=data, vault=rt.ctx.vault)
    if as_json:
        return emit_json({"name": hook.name, "secret": secret})
    print(f"webhook {hook.name}: events signed with this secret (shown once):")
    print(secret)


@webhook_app.command("list")
def webhook_list(as_json: JsonOpt = False) -> None:
    """The subscriptions."""
    _operator("webhook list")
    from referrals.models.subscriptions import list_webhooks

    rt = _runtime()
    with rt_session(rt) as s:
        hooks = list_webhooks(s)
    if as_json:
        return emit_json(hooks)
    for h in hooks:
        state = "" if h["active"] else " (off)"
        print(f"{h['name']}{state}: {h['url']} <- {', '.join(h['events'])}")


@webhook_app.command("off")
def webhook_off(name: str) -> None:
    """Stop a subscription (its queued events are given up)."""
    _operator("webhook off")
    from referrals.infra.db import transaction
    from referrals.models.subscriptions import set_webhook_active

    rt = _runtime()
    with transaction(rt.engine) as s:
        set_webhook_active(s, name=name, active=False)
    print(f"webhook {name} is off")


@fhir_app.command("export")
def fhir_export(
    code: str,
    out: Annotated[Path | None, typer.Option("--out", help="Write the Bundle here.")] = None,
) -> None:
    """Referral CODE as a FHIR Bundle (JSON): ServiceRequest, Task, Patient by code only,
    Organizations, Consents and the status history as Provenance."""
    import datetime as dt

    from referrals.interop.fhir import referral_bundle
    from referrals.usecases.referrals.advancing import get_referral

    rt = _runtime()
    with rt_session(rt) as s:
        _acting(rt, s, area=get_referral(s, code).area_key, what=f"referral {code!r}")
        province = rt.province.province
        found = referral_bundle(
            s,
            code=code,
            office=(province.key, province.name),
            base=rt.settings.public_url.rstrip("/") + "/api/v1/fhir",
            now=dt.datetime.now(dt.UTC),
        )
    write_document(found, out)


@directory_app.command("export")
def directory_export(
    out: Annotated[Path | None, typer.Option("--out", help="Write the file here.")] = None,
) -> None:
    """The active directory (partners, services, locations, contacts, capacities) as HSDS."""
    import datetime as dt

    from referrals.interop.hsds import export_directory

    rt = _runtime()
    with rt_session(rt) as s:
        _acting(rt, s, what="export the directory")
        doc = export_directory(
            s, province=rt.province, tz=rt.settings.tz, now=dt.datetime.now(dt.UTC)
        )
    write_document(doc, out)


@directory_app.command("import")
def directory_import(
    file: Path,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file and say what would change.")
    ] = False,
) -> None:
    """Replace the directory with an HSDS file: partners.yaml is rewritten (the old one kept
    as partners.yaml.<time>.bak) and loaded; partners missing from the file become inactive."""
    import datetime as dt

    from referrals.cli.directory import import_file

    rt = _runtime()
    with rt_session(rt) as s:
        user = _acting(rt, s, admin=True, what="import the directory")
        username = user.username
    change = import_file(rt, file, user=username, now=dt.datetime.now(dt.UTC), dry_run=dry_run)
    verb = "would change" if dry_run else "imported"
    print(
        f"{verb}: {len(change.added)} new, {len(change.changed)} changed, "
        f"{len(change.removed)} made inactive; {change.capacities} capacities"
    )
    for label, slugs in (
        ("new", change.added),
        ("changed", change.changed),
        ("inactive", change.removed),
    ):
        for slug in slugs:
            print(f"  {label:<9}{slug}")


def write_document(doc: Any, out: Path | None) -> None:
    """An interchange document (FHIR, HSDS), indented: to `--out`, or on stdout."""
    import json

    text = json.dumps(doc, ensure_ascii=False, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        print(f"written {out}")
    else:
        print(text)


def rt_session(rt: Any) -> Any:
    from sqlmodel import Session

    return Session(rt.engine)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning every expected failure into one line on stderr."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="referrals", standalone_mode=False)
    except (typer.Exit, click.exceptions.Exit) as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `referrals` alone shows the help
            print(exc.format_message())  # type: ignore[attr-defined]
            sys.exit(0)
        if hasattr(exc, "format_message") and hasattr(
            exc, "exit_code"
        ):  # click's usage errors (typer vendors click)
            sys.stderr.write(f"error: {exc.format_message()} (see `referrals --help`)\n")
            sys.exit(exc.exit_code)
        if os.environ.get("REFERRALS_DEBUG"):
            raise
        from referrals.cli.errors import one_line  # pydantic and SQLAlchemy: only on the error path

        sys.stderr.write(f"error: {one_line(exc)}\n")
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
