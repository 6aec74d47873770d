"""What the command modules share: the common options, the runtime, and the checks that the
acting user (REFERRALS_USER) may do what a command does.

Only typer and the standard library at module level: every command module imports this one, and
`referrals --help` should not wait for the ORM.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # the commands import these when they run: `--help` stays fast
    from sqlmodel import Session

    from referrals.infra.runtime import Runtime
    from referrals.models.people import User

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
NowOpt = Annotated[str | None, typer.Option("--now", help="Pretend it is this ISO 8601 instant.")]


class Via(StrEnum):
    """`--via`: how a command that has a Prefect flow runs (launch, deliver, sweep)."""

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


def runtime(*, create: bool = False) -> Runtime:
    """Settings, engine, province and context (infra/runtime.py), built when a command runs.
    `create`: this command may create the database (init, restore); no other may."""
    from referrals.infra.runtime import Runtime

    return Runtime(create=create)


def admin(rt: Runtime, s: Session, *, what: str) -> User:
    """REFERRALS_USER, if an admin: for the operator commands that change the installation
    (the use cases that act on records ask the policy themselves, with the user they receive)."""
    from referrals.models.policy import require_role
    from referrals.models.roles import Role

    user = rt.user(s)
    require_role(user, Role.admin, doing=what)
    return user


def operator(what: str, *, managers: bool = False) -> None:
    """Operator commands are for admins (reading the outbox, for managers too); read cheaply."""
    from referrals.config.settings import get_settings
    from referrals.models.policy import require_role
    from referrals.models.roles import Role
    from referrals.queries.reading import Reader, acting_user

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        roles = (Role.manager, Role.admin) if managers else (Role.admin,)
        require_role(acting_user(reader, settings.user), *roles, doing=what)


def rt_session(rt: Runtime) -> Session:
    """A plain session on RT's database, for commands that read through the ORM."""
    from sqlmodel import Session

    return Session(rt.engine)


def write_document(doc: Any, out: Path | None) -> None:
    """An interchange document (FHIR, HSDS), indented: to `--out`, or on stdout."""
    import json

    text = json.dumps(doc, ensure_ascii=False, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        print(f"written {out}")
    else:
        print(text)
