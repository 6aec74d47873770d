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
from typing import Annotated, Any

import typer

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


def runtime() -> Any:
    """Settings, engine, province and context (infra/runtime.py), built when a command runs."""
    from referrals.infra.runtime import Runtime

    return Runtime()


def acting(
    rt: Any,
    s: Any,
    *,
    area: str | None = None,
    what: str = "",
    admin: bool = False,
    managers: bool = False,
) -> Any:
    """REFERRALS_USER, once the policy (models/policy.py) allows what the command does."""
    from referrals.models.policy import require_area, require_role
    from referrals.models.roles import Role

    user = rt.user(s)
    if admin:
        require_role(user, Role.admin, doing=what)
    elif managers:
        require_role(user, Role.manager, Role.admin, doing=what)
    if area is not None:
        require_area(user, area, what=what)
    return user


def client_acting(rt: Any, s: Any, code: str) -> Any:
    """REFERRALS_USER, if it may act on client CODE's district (else: unknown client)."""
    from referrals.usecases.clients.clients import get_client

    return acting(rt, s, area=get_client(s, code).area_key, what=f"client {code!r}")


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


def rt_session(rt: Any) -> Any:
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
