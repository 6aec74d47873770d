"""`referrals`: the operators' command line. Errors are one line on stderr, never a traceback.

This module makes the app and adds the commands (cli/commands/, one module per kind of thing they
act on). Nothing here imports Prefect unless a command runs a flow: `import prefect` alone costs
1-2 s.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from referrals.cli.commands.clients import client_app, consent_app
from referrals.cli.commands.extensions import extension_app
from referrals.cli.commands.intake import intake_app, peer_link_app
from referrals.cli.commands.interchange import (
    areas,
    directory_app,
    fhir_app,
    partners,
    pathways,
)
from referrals.cli.commands.keys import audit_app, keys_app
from referrals.cli.commands.no_shows import no_show_app
from referrals.cli.commands.operations import (
    backup,
    check,
    doctor,
    init,
    restore,
    serve,
    upgrade_check,
)
from referrals.cli.commands.outbox import deliver, digest, outbox_app, sweep, sweeps
from referrals.cli.commands.privacy import privacy_app
from referrals.cli.commands.referrals import advance, import_csv, launch, list_cmd, show
from referrals.cli.commands.report import report
from referrals.cli.commands.slips import slip
from referrals.cli.commands.users import token_app, user_app
from referrals.cli.commands.webhooks import webhook_app

app = typer.Typer(
    help="Referral-workflow engine: launch and follow referrals to partner organisations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# `referrals --help` lists the commands in the order they are added, then the groups.
for name, command in (
    ("init", init),
    ("partners", partners),
    ("areas", areas),
    ("pathways", pathways),
    ("launch", launch),
    ("import", import_csv),
    ("list", list_cmd),
    ("report", report),
    ("show", show),
    ("advance", advance),
    ("slip", slip),
    ("deliver", deliver),
    ("sweep", sweep),
    ("digest", digest),
    ("sweeps", sweeps),
    ("serve", serve),
    ("doctor", doctor),
    ("upgrade-check", upgrade_check),
    ("check", check),
    ("backup", backup),
    ("restore", restore),
):
    app.command(name)(command)


@app.callback()
def options(
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            metavar="FILE",
            help="Read the installation's settings from FILE (as REFERRALS_SETTINGS_FILE does).",
        ),
    ] = None,
) -> None:
    """Referral-workflow engine: launch and follow referrals to partner organisations."""
    # `main` has applied --settings before anything read the settings (the help's epilog too).


for name, group in (
    ("client", client_app),
    ("consent", consent_app),
    ("extension", extension_app),
    ("no-show", no_show_app),
    ("token", token_app),
    ("user", user_app),
    ("keys", keys_app),
    ("audit", audit_app),
    ("outbox", outbox_app),
    ("webhook", webhook_app),
    ("fhir", fhir_app),
    ("directory", directory_app),
    ("peer-link", peer_link_app),
    ("intake", intake_app),
    ("privacy", privacy_app),
):
    app.add_typer(group, name=name)


def _apply_settings_option(argv: list[str]) -> None:
    """`--settings FILE` before the command: applied first, so every reader of the settings,
    in this process and its children, finds the same installation."""
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            return  # the command's name: its own options come after
        value = None
        if arg == "--settings" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--settings="):
            value = arg.split("=", 1)[1]
        if value:
            from referrals.config.settings import SETTINGS_FILE_VARIABLE

            os.environ[SETTINGS_FILE_VARIABLE] = str(Path(value).expanduser().resolve())


# Read from the settings file into this process's environment, for Prefect's client (which reads
# only the environment) and for the commands that call the Prefect API (doctor, deliver --via).
FOR_PREFECT = ("PREFECT_", "SSL_CERT_FILE")


def _prefect_from_settings_file() -> None:
    """The settings file's PREFECT_* lines (the server's address and auth string in production),
    unless the environment sets them: so `referrals --settings /etc/referrals/khanh-hoa.env
    doctor` reaches the province's Prefect server as its units do."""
    from referrals.config.settings import settings_file

    try:
        path = settings_file()
    except ValueError:
        return  # a named file that is not there: get_settings says so, in one line
    if path is None:
        return
    from dotenv import dotenv_values

    for key, value in dotenv_values(path).items():
        if key.startswith(FOR_PREFECT) and value is not None:
            os.environ.setdefault(key, value)


def where() -> str:
    """Where this process finds its installation: `referrals --help`'s epilog, and doctor's."""
    from referrals.config.settings import get_settings, settings_file

    try:
        settings, file = get_settings(), settings_file()
    except Exception as exc:  # the help must show even when the settings are wrong
        from referrals.cli.errors import one_line

        return f"Settings: {one_line(exc)}"
    database = _without_password(settings.database_url)
    return "\n".join(
        (
            "\b",  # click: keep these lines as they are
            f"Data folder:   {settings.data_dir}",
            f"Database:      {database}",
            f"Settings file: {file or 'none (name one with --settings or REFERRALS_SETTINGS_FILE)'}",
        )
    )


def _without_password(url: str) -> str:
    """The URL with its password as ***, as SQLAlchemy prints it (without loading SQLAlchemy:
    `--help` stays fast)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning every expected failure into one line on stderr."""
    args = sys.argv[1:] if argv is None else argv
    _apply_settings_option(args)
    _prefect_from_settings_file()
    command = typer.main.get_command(app)
    if not args or "--help" in args:
        command.epilog = where()
    try:
        result = command.main(args=args, prog_name="referrals", standalone_mode=False)
    except (typer.Exit, click.exceptions.Exit) as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `referrals` alone shows the help
            print(exc.format_message())  # type: ignore[attr-defined]  # click's, matched by name
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
