"""Messages and the passes that make and send them: the outbox, `deliver`, `sweep` (deadlines),
`digest`, and the record of past sweeps."""

from __future__ import annotations

from typing import Annotated

import typer

from referrals.cli.output import emit_json, local_date, table
from referrals.cli.shared import JsonOpt, NowOpt, Via, ViaOpt, operator, runtime
from referrals.models.bounds import MAX_ROWS
from referrals.models.lifecycle import MessageStatus

outbox_app = typer.Typer(help="Messages to partners and staff, and their delivery state.")


@outbox_app.callback(invoke_without_command=True)
def outbox(
    ctx: typer.Context,
    status: Annotated[MessageStatus | None, typer.Option("--status")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=0, max=MAX_ROWS, help="At most this many; 0 for all.")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Messages, newest first: who, what, and whether it was delivered."""
    if ctx.invoked_subcommand:
        return
    operator("outbox", managers=True)
    from referrals.config.settings import get_settings
    from referrals.queries.reading import Reader, list_messages

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        rows = list_messages(
            reader, tz=settings.tz, status=status.value if status else None, limit=limit
        )
    if as_json:
        return emit_json(rows)
    table(
        [
            (
                m["id"],
                m["referral"] or "-",
                m["channel"],
                m["to"],
                m["template"],
                m["status"],
                m["attempts"],
                local_date(m["sent_at"] or m["next_attempt_at"]),
                (m["last_error"] or "")[:60],
            )
            for m in rows
        ],
        ("id", "referral", "channel", "to", "message", "status", "tries", "when", "last error"),
    )


@outbox_app.command("revoke")
def outbox_revoke(message_id: int, now: NowOpt = None) -> None:
    """Withdraw the partner's link in message ID: it opens a "withdrawn" page from now on."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.referrals.answering import revoke_link

    rt = runtime()
    with transaction(rt.engine) as s:
        row = revoke_link(
            s,
            message_id=message_id,
            by=rt.user(s),
            now=parse_now(now),
        )
    print(f"the link in message {row.id} is withdrawn")


@outbox_app.command("retry")
def outbox_retry(message_id: int, now: NowOpt = None) -> None:
    """Send a failed or dead message again (after fixing the address or the channel)."""
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.notifiers.outbox import retry

    rt = runtime()
    with transaction(rt.engine) as s:
        row = retry(s, message_id=message_id, by=rt.user(s), now=parse_now(now))
    print(f"message {row.id} is queued again")


def deliver(
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, max=MAX_ROWS, help="At most this many messages.")
    ] = None,
    now: NowOpt = None,
    via: ViaOpt = Via.auto,
    as_json: JsonOpt = False,
) -> None:
    """One delivery pass: send every due message through its channel, record each outcome."""
    operator("deliver")
    from referrals.cli.clock import parse_now

    when = parse_now(now)
    use_prefect = via.runs_flow
    if use_prefect:
        from referrals.flows.deliver import deliver_notifications

        summary = deliver_notifications(now=when, limit=limit)
    else:
        from referrals.notifiers.delivery import deliver as deliver_pass

        summary = deliver_pass(runtime(), now=when, limit=limit).as_dict()
    if as_json:
        return emit_json(summary)
    print(
        f"{summary['sent']} sent, {summary['failed']} failed (will retry), {summary['dead']} dead, "
        f"{summary['deferred']} held for quiet hours or a gateway's limit, "
        f"{summary.get('handed_on', 0)} moved on to the contact's next channel"
    )
    for kind, n in summary["waiting"].items():
        env = f"REFERRALS_{kind.upper()}_URL"
        print(f"{n} {kind} messages wait: the {kind} channel is off (set {env})")


def sweep(
    now: NowOpt = None,
    via: ViaOpt = Via.auto,
    as_json: JsonOpt = False,
) -> None:
    """One deadline pass: reminders before deadlines, overdue notices, escalation levels."""
    operator("sweep")
    from referrals.cli.clock import parse_now

    when = parse_now(now)
    use_prefect = via.runs_flow
    if use_prefect:
        from referrals.flows.sweep import sweep_deadlines

        summary = sweep_deadlines(now=when)
    else:
        from referrals.usecases.deadlines.sweeping import sweep_and_seal

        rt = runtime()
        summary = sweep_and_seal(rt.engine, ctx=rt.ctx, now=when)
    if as_json:
        return emit_json(summary)
    print(
        f"{summary['steps']} steps looked at: {summary['reminder']} reminders, "
        f"{summary['overdue']} overdue notices, {summary['escalation']} escalations; "
        f"{summary['messages']} messages queued"
        + (
            f"; {summary['skipped']} recipients skipped (see the timeline)"
            if summary["skipped"]
            else ""
        )
    )
    late, noticed, erased = (
        summary.get(k, 0) for k in ("privacy_alerts", "retention_noticed", "retention_erased")
    )
    if late or noticed or erased:  # data-protection work (usecases/privacy/sweep.py)
        print(
            f"data protection: {late} late requests or breaches escalated; retention: "
            f"{noticed} clients announced, {erased} erased"
        )


def digest(now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Queue today's digest e-mail for each manager (once a day; `deliver` sends it)."""
    operator("digest")
    from referrals.cli.clock import parse_now
    from referrals.infra.db import transaction
    from referrals.usecases.deadlines.digest import queue_digests

    rt = runtime()
    with transaction(rt.engine) as s:
        counts = queue_digests(
            s, ctx=rt.ctx, now=parse_now(now), config=rt.province.province.digest
        )
    if as_json:
        return emit_json(counts)
    print(
        f"{counts['queued']} digests queued, {counts['already']} already queued today, "
        f"{counts['nothing_to_say']} managers with nothing to report"
    )


def sweeps(
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_ROWS)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The last deadline passes, newest first, with what each fired."""
    from referrals.config.settings import get_settings
    from referrals.queries.reading import Reader, list_sweeps

    settings = get_settings()
    with Reader.open(settings.database_url) as reader:
        rows = list_sweeps(reader, tz=settings.tz, limit=limit)
    if as_json:
        return emit_json(rows)
    table(
        [
            (
                local_date(r["now"]),
                local_date(r["finished_at"]) if r["finished_at"] else "unfinished",
                r["counts"].get("reminder", 0),
                r["counts"].get("overdue", 0),
                r["counts"].get("escalation", 0),
                r["counts"].get("messages", 0),
                r["counts"].get("skipped", 0),
            )
            for r in rows
        ],
        ("swept up to", "finished", "reminders", "overdue", "escalations", "messages", "skipped"),
    )
