"""`referrals webhook`: other systems' subscriptions to the engine's events."""

from __future__ import annotations

from typing import Annotated

import typer

from referrals.cli.output import emit_json
from referrals.cli.shared import JsonOpt, operator, rt_session, runtime

webhook_app = typer.Typer(
    help="Other systems' subscriptions to the engine's events.", no_args_is_help=True
)


@webhook_app.command("add")
def webhook_add(
    name: str,
    url: Annotated[str, typer.Option("--url", help="Where the events are POSTed.")],
    events: Annotated[
        str, typer.Option("--events", help="Comma-separated kinds, e.g. referral.*,step.done")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Subscribe URL to the events; prints the signing secret, once."""
    from referrals.infra.db import transaction
    from referrals.models.subscriptions import WebhookIn
    from referrals.usecases.staff.webhooks import add_webhook

    data = WebhookIn(name=name, url=url, events=[e for e in events.split(",") if e.strip()])
    rt = runtime()
    with transaction(rt.engine) as s:
        hook, secret = add_webhook(s, data=data, vault=rt.ctx.vault, by=rt.user(s))
    if as_json:
        return emit_json({"name": hook.name, "secret": secret})
    print(f"webhook {hook.name}: events signed with this secret (shown once):")
    print(secret)


@webhook_app.command("list")
def webhook_list(as_json: JsonOpt = False) -> None:
    """The subscriptions."""
    operator("webhook list")
    from referrals.usecases.staff.webhooks import list_webhooks

    rt = runtime()
    with rt_session(rt) as s:
        hooks = list_webhooks(s)
    if as_json:
        return emit_json(hooks)
    for h in hooks:
        state = "" if h["active"] else " (off)"
        print(f"{h['name']}{state}: {h['url']} <- {', '.join(h['events'])}")


@webhook_app.command("off")
def webhook_off(name: str) -> None:
    """Stop a subscription (its queued events are given up)."""
    from referrals.infra.db import transaction
    from referrals.usecases.staff.webhooks import set_webhook_active

    rt = runtime()
    with transaction(rt.engine) as s:
        set_webhook_active(s, name=name, active=False, by=rt.user(s))
    print(f"webhook {name} is off")
