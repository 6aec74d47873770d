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


def partners(as_json: JsonOpt = False) -> None:
    """The partner directory: organisations, services, areas served, contacts."""
    from referrals.queries.directory import directory

    rt = runtime()
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
