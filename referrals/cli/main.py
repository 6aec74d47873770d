"""`referrals`: the operators' command line. Errors are one line on stderr, never a traceback.

This module makes the app and adds the commands (cli/commands/, one module per kind of thing they
act on). Nothing here imports Prefect unless a command runs a flow: `import prefect` alone costs
1-2 s.
"""

from __future__ import annotations

import os
import sys

import click
import typer

from referrals.cli.commands.clients import client_app, consent_app
from referrals.cli.commands.extensions import extension_app
from referrals.cli.commands.intake import intake_app, peer_link_app
from referrals.cli.commands.interchange import directory_app, fhir_app, partners, pathways
from referrals.cli.commands.keys import audit_app, keys_app
from referrals.cli.commands.no_shows import no_show_app
from referrals.cli.commands.operations import backup, check, doctor, init, restore, serve
from referrals.cli.commands.outbox import deliver, digest, outbox_app, sweep, sweeps
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
    ("check", check),
    ("backup", backup),
    ("restore", restore),
):
    app.command(name)(command)
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
):
    app.add_typer(group, name=name)


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
