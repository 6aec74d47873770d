"""Webhook subscriptions: added (their secret shown once, stored sealed), switched off, listed.

The table, what a subscription asks for and which events it wants are in models/subscriptions.py.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from referrals.infra.crypto import Vault
from referrals.models.errors import DomainError, NotFound
from referrals.models.policy import Acting, require_role
from referrals.models.roles import Role
from referrals.models.subscriptions import Webhook, WebhookIn
from referrals.models.workflow import Event


def add_webhook(
    session: Session, *, data: WebhookIn, vault: Vault, by: Acting
) -> tuple[Webhook, str]:
    """A new subscription and its secret (returned once, stored sealed); an admin's act."""
    require_role(by, Role.admin, doing="webhook add")
    if session.scalars(select(col(Webhook.id)).where(col(Webhook.name) == data.name)).first():
        raise DomainError(f"a webhook named {data.name!r} exists already")
    secret = secrets.token_urlsafe(32)
    latest = session.scalar(select(func.max(Event.id))) or 0
    hook = Webhook(
        name=data.name,
        url=data.url,
        events=data.events,
        secret_enc=vault.encrypt(secret, "webhook.secret") or "",
        after_event_id=latest,
    )
    session.add(hook)
    session.flush()
    return hook, secret


def set_webhook_active(session: Session, *, name: str, active: bool, by: Acting) -> Webhook:
    """Switch a subscription off (its queued events are given up) or on; an admin's act."""
    require_role(by, Role.admin, doing="webhook off" if not active else "webhook on")
    hook = session.scalars(select(Webhook).where(col(Webhook.name) == name)).first()
    if hook is None:
        raise NotFound(f"unknown webhook {name!r}")
    hook.active = active
    return hook


def list_webhooks(session: Session) -> list[dict[str, Any]]:
    return [
        {"name": h.name, "url": h.url, "events": h.events, "active": h.active}
        for h in session.scalars(select(Webhook).order_by(Webhook.name))
    ]
