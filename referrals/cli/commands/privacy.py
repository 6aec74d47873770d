"""`referrals privacy`: the 2026 data-protection law as work the engine tracks (Law
91/2025/QH15, Decree 356/2025/ND-CP; usecases/privacy/): data subjects' requests, breaches,
the processing record and the retention preview. Managers' and admins' commands.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from referrals.cli.output import emit_json, table
from referrals.cli.shared import JsonOpt, NowOpt, runtime

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

privacy_app = typer.Typer(
    help="Data protection (Law 91/2025): data subjects' requests, breaches, the processing "
    "record, retention.",
    no_args_is_help=True,
)
requests_app = typer.Typer(
    help="Data subjects' requests and their deadlines.", no_args_is_help=True
)
breach_app = typer.Typer(
    help="Personal-data breaches and their 72-hour clock.", no_args_is_help=True
)
privacy_app.add_typer(requests_app, name="requests")
privacy_app.add_typer(breach_app, name="breach")

KINDS = "access, provide, correct, erase, restrict, withdraw_consent, object, protective_measure"
CHANNELS = "in_person, phone, letter, email, web, partner, representative"


class State(StrEnum):
    open = "open"
    late = "late"
    all = "all"


class Lang(StrEnum):
    vi = "vi"
    en = "en"
    both = "both"


class Format(StrEnum):
    md = "md"
    json = "json"


def when(value: str | None, what: str, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """An instant typed by a person: ISO 8601 (local time without an offset) or a day (ISO or
    dd/mm/yyyy, its start); none: now."""
    if value is None:
        return now
    from referrals.models.bounds import check_instant

    text = value.strip()
    try:
        if "/" in text:
            parsed = dt.datetime.strptime(text, "%d/%m/%Y")
        else:
            parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{what} {value!r} is not a date or time (2026-02-13, 13/02/2026 or 2026-02-13T09:30)"
        ) from None
    check_instant(parsed, what)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(dt.UTC)


def _local(iso: str | None, tz: ZoneInfo) -> str:
    if not iso:
        return "-"
    return dt.datetime.fromisoformat(iso).astimezone(tz).strftime("%d/%m/%Y %H:%M")


def _in_local(row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """A row's instants with the office's offset (as `show` prints due dates)."""
    out = dict(row)
    for k, v in row.items():
        if isinstance(v, str) and k.endswith("_at") and "T" in v:
            out[k] = dt.datetime.fromisoformat(v).astimezone(tz).isoformat()
    return out


def _request_line(r: dict[str, Any], tz: ZoneInfo) -> str:
    return (
        f"request {r['code']} ({r['kind']}, client {r['client']}): answer by "
        f"{_local(r['ack_due_at'], tz)}, done by {_local(r['due_at'], tz)}"
    )


@requests_app.command("add")
def requests_add(
    client: Annotated[str, typer.Argument(help="The client's code.")],
    kind: Annotated[str, typer.Option("--kind", help=KINDS)],
    channel: Annotated[str, typer.Option("--channel", help=CHANNELS)],
    received: Annotated[
        str | None,
        typer.Option("--received", help="When it came in (ISO or dd/mm/yyyy); default now."),
    ] = None,
    third_party: Annotated[
        bool,
        typer.Option("--third-party", help="A partner must act on it too: the longer limit."),
    ] = False,
    text: Annotated[
        str | None,
        typer.Option(
            "--text", help="The requester's words (stored encrypted under the client's key)."
        ),
    ] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a data subject's request; prints its code and its two deadlines (answer within
    2 working days, carry out within the kind's days; Decree 356 Art. 5)."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.privacy.requests import RequestIn, as_dict, record_request

    rt = runtime()
    at = parse_now(now)
    data = RequestIn.model_validate(
        {
            "client": client,
            "kind": kind,
            "channel": channel,
            "received_at": when(received, "--received", at, rt.settings.tz),
            "third_party": third_party,
            "text": text,
        }
    )
    with transaction(rt.engine) as s:
        request = record_request(
            s,
            data=data,
            cfg=rt.province.province.data_protection,
            by=rt.user(s),
            ctx=rt.ctx,
            now=at,
        )
        out = as_dict(request, client, at)
    if as_json:
        return emit_json(_in_local(out, rt.settings.tz))
    print(_request_line(out, rt.settings.tz))


@requests_app.command("ack")
def requests_ack(code: str, now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Record that the requester was answered (the request is being handled)."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.people import Client
    from referrals.usecases.privacy.requests import acknowledge, as_dict

    rt = runtime()
    at = parse_now(now)
    with transaction(rt.engine) as s:
        request = acknowledge(s, code=code, by=rt.user(s), now=at)
        client = s.get(Client, request.client_id)
        assert client is not None
        out = as_dict(request, client.code, at)
    if as_json:
        return emit_json(_in_local(out, rt.settings.tz))
    late = " (late)" if at > dt.datetime.fromisoformat(out["ack_due_at"]) else ""
    print(f"request {code}: acknowledged{late}; done by {_local(out['due_at'], rt.settings.tz)}")


@requests_app.command("extend")
def requests_extend(
    code: str,
    days: Annotated[int, typer.Option("--days", min=1, max=365, help="Calendar days added.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (told to the requester; stored encrypted).")
    ],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Extend a request's limit, once (Decree 356 Art. 5), by at most the kind's days."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.people import Client
    from referrals.usecases.privacy.requests import ExtendIn, as_dict, extend

    rt = runtime()
    at = parse_now(now)
    data = ExtendIn(days=days, reason=reason)
    with transaction(rt.engine) as s:
        request = extend(
            s,
            code=code,
            data=data,
            cfg=rt.province.province.data_protection,
            by=rt.user(s),
            ctx=rt.ctx,
            now=at,
        )
        client = s.get(Client, request.client_id)
        assert client is not None
        out = as_dict(request, client.code, at)
    if as_json:
        return emit_json(_in_local(out, rt.settings.tz))
    print(
        f"request {code}: extended by {days} days, done by {_local(out['due_at'], rt.settings.tz)}"
    )


@requests_app.command("close")
def requests_close(
    code: str,
    outcome: Annotated[str, typer.Option("--outcome", help="done, partly, refused or withdrawn.")],
    note: Annotated[
        str | None, typer.Option("--note", help="What was done or why not (stored encrypted).")
    ] = None,
    event: Annotated[
        int | None,
        typer.Option("--event", min=1, max=2**31 - 1, help="The export's or erasure's event id."),
    ] = None,
    erase: Annotated[
        bool, typer.Option("--erase", help="Erase the client now (an erasure request).")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm --erase: it cannot be undone.")
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Export the client's data to this file now, and link it."),
    ] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a request with what was done, linking the export or erasure it caused (made now
    with --export/--erase, named with --event, or the client's latest since it came in)."""
    import json

    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.people import Client
    from referrals.usecases.privacy.requests import CloseIn, as_dict, close

    if erase and not yes:
        raise click.UsageError(f"erasing the client of {code} cannot be undone: add --yes")
    rt = runtime()
    at = parse_now(now)
    data = CloseIn.model_validate(
        {
            "outcome": outcome,
            "note": note,
            "event_id": event,
            "erase": erase,
            "export": export is not None,
        }
    )
    with transaction(rt.engine) as s:
        done = close(s, code=code, data=data, by=rt.user(s), ctx=rt.ctx, now=at)
        if export is not None:  # written before the commit: no export event without its file
            export.write_text(
                json.dumps(done.export, ensure_ascii=False, indent=2), encoding="utf-8"
            )
        client = s.get(Client, done.request.client_id)
        assert client is not None
        out = as_dict(done.request, client.code, at)
        out["linked"] = {"id": done.event.id, "kind": done.event.kind} if done.event else None
    if as_json:
        return emit_json(_in_local(out, rt.settings.tz))
    linked = (
        f"; linked {out['linked']['kind']} (event {out['linked']['id']})" if out["linked"] else ""
    )
    print(f"request {code}: closed, {out['outcome']}{linked}")


@requests_app.command("list")
def requests_list(
    state: Annotated[State, typer.Option("--state", help="open, late or all.")] = State.open,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests, the next deadline first (their texts are not shown: `show` opens them)."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.privacy.requests import list_requests

    rt = runtime()
    at = parse_now(now)
    tz = rt.settings.tz
    with transaction(rt.engine) as s:
        rows = list_requests(s, by=rt.user(s), now=at, state=state.value)
    if as_json:
        return emit_json([_in_local(r, tz) for r in rows])
    if not rows:
        print("no request")
        return
    table(
        [
            (
                r["code"],
                r["client"],
                r["kind"],
                r["channel"],
                _local(r["received_at"], tz),
                _local(r["ack_due_at"], tz) if not r["acknowledged_at"] else "answered",
                _local(r["due_at"], tz) + (" (+)" if r["extended"] else ""),
                r["outcome"] or ("LATE" if r["late"] else "open"),
            )
            for r in rows
        ],
        ("code", "client", "kind", "channel", "received", "answer by", "done by", "state"),
    )


@requests_app.command("show")
def requests_show(code: str, now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """One request with its texts opened (the requester's words, the extension's reason, the
    outcome note); reading them is recorded on the client's history."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.people import Client, actor_name
    from referrals.models.workflow import Event
    from referrals.usecases.privacy.requests import (
        as_dict,
        get_request,
        opened_text,
        require_staff,
    )

    rt = runtime()
    at = parse_now(now)
    with transaction(rt.engine) as s:
        user = rt.user(s)
        require_staff(user, "reading a request")
        request = get_request(s, code)
        client = s.get(Client, request.client_id)
        assert client is not None
        out = as_dict(request, client.code, at) | opened_text(s, request, rt.ctx)
        s.add(
            Event(
                client_id=client.id,
                kind="pii.viewed",
                at=at,
                actor=actor_name(user),
                data={"fields": ["privacy.text"], "via": "cli", "request": code},
            )
        )
    if as_json:
        return emit_json(_in_local(out, rt.settings.tz))
    tz = rt.settings.tz
    print(_request_line(out, tz))
    for label, key in (("text", "text"), ("extension", "extension_reason"), ("note", "note")):
        if out[key]:
            print(f"{label}: {out[key]}")
    print(f"state: {out['outcome'] or ('LATE' if out['late'] else 'open')}")


@breach_app.command("add")
def breach_add(
    discovered: Annotated[
        str, typer.Option("--discovered", help="When it was discovered (ISO; the clock starts).")
    ],
    category: Annotated[
        list[str],
        typer.Option(
            "--category", help="name, phone, id_number, services, consents, notes (repeat)."
        ),
    ],
    nature: Annotated[str, typer.Option("--nature", help="What happened (stored encrypted).")],
    area: Annotated[
        list[str] | None, typer.Option("--area", help="Only these areas' clients (repeat).")
    ] = None,
    pathway: Annotated[
        list[str] | None, typer.Option("--pathway", help="Only these services' clients (repeat).")
    ] = None,
    occurred: Annotated[str | None, typer.Option("--occurred", help="When it happened.")] = None,
    place: Annotated[str | None, typer.Option("--place")] = None,
    involved: Annotated[
        str | None, typer.Option("--involved", help="Organisations and people involved.")
    ] = None,
    consequences: Annotated[str | None, typer.Option("--consequences")] = None,
    measures: Annotated[str | None, typer.Option("--measures", help="Measures taken.")] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a personal-data breach; the specialised agency must be told within 72 hours of
    its discovery (Law 91/2025 Art. 23 k1)."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.privacy.breaches import BreachIn, as_dict, record_breach

    rt = runtime()
    at = parse_now(now)
    tz = rt.settings.tz
    data = BreachIn.model_validate(
        {
            "discovered_at": when(discovered, "--discovered", at, tz),
            "occurred_at": when(occurred, "--occurred", at, tz) if occurred else None,
            "categories": category,
            "areas": area or [],
            "pathways": pathway or [],
            "place": place,
            "nature": nature,
            "involved": involved,
            "consequences": consequences,
            "measures": measures,
        }
    )
    with transaction(rt.engine) as s:
        breach = record_breach(
            s, data=data, province=rt.province, by=rt.user(s), ctx=rt.ctx, now=at
        )
        out = as_dict(s, breach, at)
    if as_json:
        return emit_json(_in_local(out, tz))
    print(f"breach {out['code']}: notify the agency by {_local(out['notify_due_at'], tz)}")


@breach_app.command("notify")
def breach_notify(
    code: str,
    told: Annotated[
        str, typer.Option("--told", help="authority, subjects, controller, partner or other.")
    ],
    recipient: Annotated[
        str, typer.Option("--recipient", help="Which body or group (never a person's name).")
    ],
    channel: Annotated[str, typer.Option("--channel", help="e.g. portal, letter, email.")],
    reference: Annotated[str | None, typer.Option("--reference", help="Their reference.")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="When they were told; default now.")
    ] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record who was told of a breach and when (telling the authority stops its clock)."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.privacy.breaches import NotifyIn, as_dict, get_breach, notify

    rt = runtime()
    clock = parse_now(now)
    tz = rt.settings.tz
    data = NotifyIn.model_validate(
        {
            "told": told,
            "recipient": recipient,
            "channel": channel,
            "reference": reference,
            "at": when(at, "--at", clock, tz),
        }
    )
    with transaction(rt.engine) as s:
        notify(s, code=code, data=data, by=rt.user(s), now=clock)
        out = as_dict(s, get_breach(s, code), clock)
    if as_json:
        return emit_json(_in_local(out, tz))
    late = (
        " (after the 72 hours)" if data.at > dt.datetime.fromisoformat(out["notify_due_at"]) else ""
    )
    print(f"breach {code}: {told} told {_local(data.at.isoformat(), tz)}{late}")


@breach_app.command("notice")
def breach_notice(
    code: str,
    lang: Annotated[Lang, typer.Option("--lang", help="vi, en or both (vi first).")] = Lang.both,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The notice to the specialised agency (Decree 356 Art. 28 k1 a-d, Form 08), as markdown:
    office, contact, nature, categories and counts (never a name), consequences, measures."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.privacy.breaches import notice

    rt = runtime()
    at = parse_now(now)
    with transaction(rt.engine) as s:
        text, data = notice(
            s, code=code, province=rt.province, by=rt.user(s), ctx=rt.ctx, now=at, lang=lang.value
        )
        if out is not None:
            out.write_text(text + "\n", encoding="utf-8")
    if as_json:
        return emit_json({**_in_local(data, rt.settings.tz), "markdown": text})
    if out is not None:
        print(f"notice written to {out}")
    else:
        print(text)


@breach_app.command("list")
def breach_list(now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Breaches, newest first, with their clocks and who was told."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.privacy.breaches import list_breaches

    rt = runtime()
    at = parse_now(now)
    tz = rt.settings.tz
    with transaction(rt.engine) as s:
        rows = list_breaches(s, by=rt.user(s), now=at)
    if as_json:
        return emit_json([_in_local(r, tz) for r in rows])
    if not rows:
        print("no breach")
        return
    table(
        [
            (
                r["code"],
                _local(r["discovered_at"], tz),
                _local(r["notify_due_at"], tz),
                _local(r["notified_at"], tz)
                if r["notified_at"]
                else ("OVERDUE" if r["overdue"] else f"{r['hours_left']} h left"),
                ", ".join(t["recipient"] for t in r["told"]) or "-",
            )
            for r in rows
        ],
        ("code", "discovered", "notify by", "agency told", "told"),
    )


@privacy_app.command("record")
def record(
    fmt: Annotated[Format, typer.Option("--format", help="md or json.")] = Format.md,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The processing record for the impact-assessment dossier (Decree 356 Art. 19, Form 10):
    data held, purposes, partners, retention, protective measures; counts, never names."""
    import json

    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.privacy.record import as_markdown, processing_record

    rt = runtime()
    at = parse_now(now)
    with transaction(rt.engine) as s:
        data = processing_record(s, province=rt.province, by=rt.user(s), now=at)
    if as_json or fmt is Format.json:
        text = json.dumps(data, ensure_ascii=False, indent=None if out is None else 2)
    else:
        text = as_markdown(data, rt.settings.tz)
    if out is None:
        print(text.rstrip("\n"))
        return
    out.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    print(f"processing record written to {out}")


@privacy_app.command("retention")
def retention(now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """What the sweep's retention would do at --now (a dry run, nothing written): the clients
    due a notice and those it would erase, by code."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.privacy.requests import require_staff
    from referrals.usecases.privacy.retention import preview, ready

    rt = runtime()
    at = parse_now(now)
    cfg = rt.province.province.data_protection
    tz = rt.settings.tz
    with transaction(rt.engine) as s:
        require_staff(rt.user(s), "the retention preview")
        found = preview(s, cfg=cfg, now=at)
    rows = [
        {
            **d.as_dict(tz),
            "action": "erase" if ready(d, cfg, at) else ("wait" if d.noticed_at else "notice"),
        }
        for d in found
    ]
    if as_json:
        return emit_json({"retention_days": cfg.retention_days, "clients": rows})
    if cfg.retention_days is None:
        print("retention is off (data_protection.retention_days is not set in province.yaml)")
        return
    if not rows:
        print(f"no client due (retention: {cfg.retention_days} days without activity)")
        return
    table(
        [
            (r["client"], _local(r["last_activity"], tz), _local(r["erase_from"], tz), r["action"])
            for r in rows
        ],
        ("client", "last activity", "erase from", "next sweep"),
    )
