"""A step's deadline ladder as a list of alerts in time order, and which of them are due now.

The ladder is data (`pathways.yaml`, versioned with the pathway): a reminder before the
deadline, a notice at it, escalation levels after it. A step row keeps only a cursor into this
list (`alert_seq`, `next_alert_at`), so a sweep reads just the steps whose next alert has come.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from referrals.config.province import Ladder

if TYPE_CHECKING:  # a type only: models/ sits below infra/ (.importlinter)
    from referrals.infra.calendar import WorkingCalendar

Kind = Literal["reminder", "overdue", "escalation"]
ACTOR = "actor"  # the one doing the step: the partner's first contacts, or the coordinator


@dataclass(frozen=True)
class Alert:
    kind: Kind
    level: int  # 0 for the reminder and the overdue notice, 1.. for escalation levels
    at: dt.datetime
    to: str  # ACTOR, "partner_backup", "coordinator" or "district_manager"


def ladder_of(definition: dict[str, Any], step_key: str) -> Ladder:
    """The ladder for one step of a pathway version's definition (its own, or the pathway's)."""
    for step in definition["steps"]:
        if step["key"] == step_key and step.get("ladder"):
            return Ladder.model_validate(step["ladder"])
    return Ladder.model_validate(definition.get("ladder") or {})


def schedule(ladder: Ladder, due_at: dt.datetime, calendar: WorkingCalendar) -> list[Alert]:
    alerts: list[Alert] = []
    if ladder.remind_before is not None:
        at = calendar.shift(due_at, ladder.remind_before, back=True)
        alerts.append(Alert("reminder", 0, at, ACTOR))
    if ladder.overdue:
        alerts.append(Alert("overdue", 0, due_at, ACTOR))
    for level, rung in enumerate(ladder.escalate, start=1):
        alerts.append(Alert("escalation", level, calendar.shift(due_at, rung.after), rung.to))
    return sorted(alerts, key=lambda a: a.at)  # stable: a level never overtakes its predecessor


def due_now(
    alerts: list[Alert], seq: int, due_at: dt.datetime, now: dt.datetime
) -> tuple[list[Alert], int, dt.datetime | None]:
    """The alerts from `seq` whose time has come, the new cursor, and when the next one falls.

    A sweep that comes late (the engine was down, or a step was imported long overdue) does not
    send a burst: a reminder whose deadline has passed is dropped (the overdue notice says more),
    and of several escalation levels reached only the highest fires.
    """
    fire: list[Alert] = []
    while seq < len(alerts) and alerts[seq].at <= now:
        alert = alerts[seq]
        if not (alert.kind == "reminder" and due_at <= now):
            fire.append(alert)
        seq += 1
    escalations = [a for a in fire if a.kind == "escalation"]
    if len(escalations) > 1:
        fire = [a for a in fire if a.kind != "escalation"] + escalations[-1:]
    return fire, seq, alerts[seq].at if seq < len(alerts) else None
