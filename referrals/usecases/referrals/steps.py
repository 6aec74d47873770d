"""What answering a step, a no-show and an extension share: the step's pointless reminders
cancelled, and the step's name as the referral's coordinator reads it."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from referrals.models.lifecycle import DUE
from referrals.models.people import User
from referrals.models.workflow import Notification, PathwayVersion, Referral
from referrals.notifiers import messages
from referrals.queries.lateness import step_of


def cancel_reminders(session: Session, referral_id: int, step_key: str) -> None:
    """Reminders about the answered step that have not gone yet are cancelled (the rule of it,
    against a pass recording one at that moment: `Notification.cancelling`)."""
    due = [s.value for s in DUE]
    waiting = session.execute(
        select(col(Notification.id), col(Notification.context)).where(
            col(Notification.referral_id) == referral_id,
            col(Notification.status).in_(due),
            col(Notification.template).in_(messages.CHASING),
        )
    ).all()
    ids = [i for i, context in waiting if context.get("step") == step_key]
    if ids:
        cancel = Notification.cancelling(
            col(Notification.id).in_(ids), reason="the step was answered"
        )
        session.execute(cancel)


def coordinator_step_name(session: Session, referral: Referral, step_key: str) -> str:
    """The step's name as the referral's coordinator reads it (their language), from the pathway
    version the referral was launched with: the subject names the step, not its key."""
    coordinator = session.get(User, referral.coordinator_id)
    definition = session.scalars(
        select(col(PathwayVersion.definition)).where(
            col(PathwayVersion.key) == referral.pathway_key,
            col(PathwayVersion.version) == referral.pathway_version,
        )
    ).one()
    step = step_of(definition, step_key)
    language = messages.language_of(coordinator)
    return messages.in_language(
        language, step.get("name") or step_key, step.get("name_en") or step_key
    )
