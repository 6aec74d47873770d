"""Setting up and looking after an installation: `init`, `serve`, `doctor`, `upgrade-check`,
`check`, `backup`, `restore`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from referrals.cli.output import emit_json
from referrals.cli.shared import JsonOpt, operator, runtime
from referrals.models.bounds import MAX_PORT, MAX_SECONDS


def init(
    demo: Annotated[
        bool, typer.Option("--demo", help="Add demo users, clients and referrals.")
    ] = False,
) -> None:
    """Migrate the database to head and load the province's config (safe to re-run)."""
    from referrals.cli.setup import initialise

    initialise(runtime(create=True), demo=demo)


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
    every: Annotated[
        int,
        typer.Option(
            "--every",
            min=1,
            max=MAX_SECONDS,
            help="Seconds between the clock's passes: the deadline sweep, then delivery of "
            "whatever is still due (retries, quiet hours ended).",
        ),
    ] = 300,
    at_once: Annotated[
        bool,
        typer.Option(
            "--at-once/--no-at-once",
            help="Send each message as soon as it is queued (a Prefect task worker), not at "
            "the next clock's pass.",
        ),
    ] = True,
) -> None:
    """Run the engine on this machine: the web app, a Prefect server and the scheduled flows."""
    from referrals.cli.serving import serve as run
    from referrals.config.settings import get_settings

    runtime().engine  # noqa: B018  (refuses a missing database before starting anything)
    status = run(
        data_dir=get_settings().data_dir.resolve(),
        host=host,
        port=port,
        prefect_port=prefect_port,
        every=every,
        at_once=at_once,
    )
    raise typer.Exit(status)


def doctor(as_json: JsonOpt = False) -> None:
    """Check this deployment: settings, database and schema, keys, consistency, channels,
    Prefect and its workers, clocks; each problem with its fix (exit 1 if any fails)."""
    from referrals.cli.doctor import Doctor, show

    found = Doctor().run()
    show(found, as_json=as_json)  # {"healthy": ..., "checks": [...]} in JSON
    if not found.healthy:
        raise typer.Exit(1)


def upgrade_check(as_json: JsonOpt = False) -> None:
    """Is anything out of date with this version? Migrations pending, Prefect deployments unlike
    deploy/prefect.yaml, REFERRALS_* variables it does not read; each with its fix (exit 1 if
    any is). `doctor` runs these checks too."""
    from referrals.cli.doctor import Doctor, show

    found = Doctor().upgrade()
    show(found, as_json=as_json, verdict="up_to_date")
    if not found.healthy:
        raise typer.Exit(1)


def check(as_json: JsonOpt = False) -> None:
    """Check the database's invariants and the audit chain; name the rows that break them."""
    operator("check", managers=True)
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


def backup(
    out: Annotated[Path, typer.Option("--out", help="Folder for the data backup.")],
    keys_out: Annotated[
        Path | None,
        typer.Option("--keys-out", help="Folder for the data keys: another medium, kept shorter."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Back up the data and, apart, the clients' data keys (README: Backups)."""
    operator("backup")
    import datetime as dt

    from referrals.cli.backup import backup as run_backup

    rt = runtime()
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
    rt = runtime(create=True)
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
