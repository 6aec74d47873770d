"""Partners' requests for more time on a step (gia hạn): the ones waiting, and the coordinator's
decision (usecases/referrals/extending.py; the referral's page offers the same)."""

from __future__ import annotations

from typing import Annotated

import typer

from referrals.cli.output import emit_json, local_date, table
from referrals.cli.shared import JsonOpt, NowOpt, runtime

extension_app = typer.Typer(help="Partners' requests for more time on a step (gia hạn).")


@extension_app.command("list")
def extension_list(
    district: Annotated[str | None, typer.Option("--district")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests waiting for a coordinator, oldest first (a coordinator sees their district's)."""
    from referrals.config.settings import get_settings
    from referrals.models.policy import listing_district
    from referrals.queries.extensions import waiting_requests
    from referrals.queries.reading import Reader, acting_user

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        district = listing_district(acting_user(reader, settings.user), district)
        rows = waiting_requests(reader, tz=settings.tz, district=district)
    if as_json:
        return emit_json(rows)
    table(
        [
            (
                r["id"],
                r["code"],
                r["partner"],
                r["step"],
                local_date(r["was_due_at"]),
                local_date(r["new_due_at"]),
                local_date(r["asked_at"]),
            )
            for r in rows
        ],
        ("id", "referral", "partner", "step", "due now", "asked for", "asked at"),
    )


@extension_app.command("decide")
def extension_decide(
    code: str,
    extension_id: Annotated[int, typer.Argument(min=1, max=2**31 - 1)],
    grant: Annotated[
        bool,
        typer.Option(
            "--grant/--refuse",
            help="Grant: the step is due on the date asked for, its reminders start again. "
            "Refuse: the deadline stays. The partner is told either way.",
        ),
    ],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grant or refuse request ID for more time on referral CODE."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.models.workflow import Step
    from referrals.usecases.referrals.extending import decide_extension

    rt = runtime()
    with transaction(rt.engine) as s:
        row = decide_extension(
            s,
            ctx=rt.ctx,
            code=code,
            extension_id=extension_id,
            grant=grant,
            by=rt.user(s),
            now=parse_now(now),
        )
        step = s.get(Step, row.step_id)
        assert step is not None and step.due_at is not None
        due = step.due_at.astimezone(rt.settings.tz)
    if as_json:
        return emit_json(
            {"code": code, "extension": row.id, "status": row.status, "due_at": due.isoformat()}
        )
    print(f"request {row.id} on {code} {row.status}; {step.key} is due {due:%H:%M %d/%m/%Y}")
