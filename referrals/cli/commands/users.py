"""`referrals user` and `referrals token`: staff accounts and API tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from referrals.cli.shared import runtime
from referrals.models.roles import Role

user_app = typer.Typer(help="Staff accounts for the web pages.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (for /api/v1).", no_args_is_help=True)


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
    role: Annotated[Role, typer.Option("--role")],
    district: Annotated[
        str | None, typer.Option("--district", help="A coordinator's area key.")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="For alerts and digests.")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a staff account with a password (at least 10 characters) for the web pages."""
    import datetime as dt

    from referrals.infra.db import transaction
    from referrals.usecases.staff.accounts import UserIn, add_user

    data = UserIn(
        username=username, full_name=full_name, role=role.value, district=district, email=email
    )
    password = _password(password_stdin)
    rt = runtime()
    with transaction(rt.engine) as s:
        add_user(
            s,
            data=data,
            password=password,
            by=rt.user(s),
            now=dt.datetime.now(dt.UTC),
        )
    print(f"user {data.username} added ({data.role})")


@user_app.command("password")
def user_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set USERNAME's password; it ends the user's web sessions and lifts a lockout."""
    import datetime as dt

    from referrals.infra.db import transaction
    from referrals.usecases.staff.accounts import set_password

    password = _password(password_stdin)
    rt = runtime()
    with transaction(rt.engine) as s:
        set_password(
            s,
            username=username,
            password=password,
            by=rt.user(s),
            now=dt.datetime.now(dt.UTC),
        )
    print(f"password of {username} set")


@token_app.command("create")
def token_create(
    username: str,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "api",
) -> None:
    """Issue an API token for USERNAME; it is printed once and stored only as a hash."""
    import datetime as dt

    from referrals.infra.db import transaction
    from referrals.usecases.staff.tokens import issue_token

    rt = runtime()
    with transaction(rt.engine) as s:
        token = issue_token(
            s, username=username, name=name, by=rt.user(s), now=dt.datetime.now(dt.UTC)
        )
    print(token)
