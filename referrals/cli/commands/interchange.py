"""The directory and the referrals for people and for other systems: `partners` and `pathways`
as text or JSON, a referral as a FHIR Bundle, the directory as an Open Referral HSDS file (out and
back in)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from referrals.cli.output import emit_json
from referrals.cli.shared import JsonOpt, admin, rt_session, runtime, write_document

fhir_app = typer.Typer(help="FHIR R4: a referral as a Bundle.", no_args_is_help=True)
directory_app = typer.Typer(
    help="The partner directory as Open Referral HSDS 3.1 JSON.", no_args_is_help=True
)


def partners(
    everyone: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Also the partners, services and contacts no longer (or not yet) in force.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The partner directory as it is today: organisations, services, the areas they serve,
    contacts (--all: with those no longer in force, their dates and successors)."""
    import datetime as dt

    from referrals.queries.directory import directory

    rt = runtime()
    today = dt.datetime.now(rt.settings.tz).date()
    with rt_session(rt) as s:
        data = directory(s, None if everyone else today)
    if as_json:
        return emit_json(data)
    for p in data:
        ended = (
            f"  (until {dt.date.fromisoformat(p['valid_to']):%d/%m/%Y})" if p["valid_to"] else ""
        )
        print(f"{p['slug']}  {p['name']}{ended}")
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


def areas(
    on: Annotated[
        str | None,
        typer.Option("--on", help="The day, dd/mm/yyyy or ISO (default: today, local time)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The province's areas in force on a day, each with when it was in force and the areas it
    succeeded and that succeeded it (the 2025 reform: districts, then wards and communes)."""
    import datetime as dt

    from referrals.config import load_province
    from referrals.config.areas import areas_on, predecessors
    from referrals.config.settings import get_settings
    from referrals.locale.dates import parse_day

    settings = get_settings()
    day = parse_day(on) if on else dt.datetime.now(settings.tz).date()
    every = load_province(settings.config_dir).province.areas
    shown = [
        {
            "key": a.key,
            "name": a.name,
            "name_en": a.name_en,
            "level": a.level,
            "parent": a.parent,
            "valid_from": a.valid_from.isoformat() if a.valid_from else None,
            "valid_to": a.valid_to.isoformat() if a.valid_to else None,
            "predecessors": predecessors(every, a.key),
            "successors": list(a.successors),
            "source": a.source,
        }
        for a in areas_on(every, day)
    ]
    if as_json:
        return emit_json({"on": day.isoformat(), "areas": shown})
    print(f"areas in force on {day:%d/%m/%Y}: {len(shown)}")
    for a in shown:
        since = (
            f"since {dt.date.fromisoformat(a['valid_from']):%d/%m/%Y}" if a["valid_from"] else ""
        )
        until = f"until {dt.date.fromisoformat(a['valid_to']):%d/%m/%Y}" if a["valid_to"] else ""
        before = f"  (was {', '.join(a['predecessors'])})" if a["predecessors"] else ""
        print(f"{a['key']:<24} {a['level']:<9} {a['name']}  {since} {until}".rstrip() + before)


def pathways(as_json: JsonOpt = False) -> None:
    """The pathway templates (latest versions) with their steps and due rules."""
    from referrals.queries.directory import pathway_templates

    rt = runtime()
    with rt_session(rt) as s:
        data = pathway_templates(s)
    if as_json:
        return emit_json(data)
    for p in data:
        print(f"{p['key']} v{p['version']}  {p['name']}")
        for st in p["steps"]:
            print(f"    {st['key']:<22} {st['actor']:<12} {st['due']}")


@fhir_app.command("export")
def fhir_export(
    code: str,
    out: Annotated[Path | None, typer.Option("--out", help="Write the Bundle here.")] = None,
) -> None:
    """Referral CODE as a FHIR Bundle (JSON): ServiceRequest, Task, Patient by code only,
    Organizations, Consents and the status history as Provenance."""
    import datetime as dt

    from referrals.interop.fhir import referral_bundle
    from referrals.usecases.referrals.advancing import referral_for

    rt = runtime()
    with rt_session(rt) as s:
        referral_for(s, rt.user(s), code)  # who may not see it is told it does not exist
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

    rt = runtime()
    with rt_session(rt) as s:
        rt.user(s)  # REFERRALS_USER must be a known, active user
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

    from referrals.cli.directory import import_file, print_change

    rt = runtime()
    with rt_session(rt) as s:
        user = admin(rt, s, what="import the directory")
        username = user.username
    change = import_file(rt, file, user=username, now=dt.datetime.now(dt.UTC), dry_run=dry_run)
    print_change(change, dry_run=dry_run)
