"""How late a step is, in the unit its deadline is counted in, and what its escalation level means.

A step whose deadline counts hours (the emergency pathways, an urgent acknowledgement), or whose
ladder escalates after hours, is late by hours: "22 h late", where working days would say
"0 working days late" until the next morning. Every other step is late by working days, as its
deadline and its ladder count them. The pathway version's definition says which (pathways.yaml,
as stored with the version a referral was launched with), so the pages, the CLI, the API and
the escalation messages all say the same.

Plain dicts in, no ORM: the read models (queries/reading.py) use this on rows read with the DB-API
driver, and the sweep (usecases/deadlines/sweeping.py) on the definitions it has loaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # a type only: queries/ sits above infra/, but the CLI's reads stay light
    from referrals.infra.calendar import WorkingCalendar

Unit = Literal["hours", "working_days"]
HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Late:
    """Lateness in whole units: `amount` hours or working days (0: less than one)."""

    unit: Unit
    amount: int


def step_of(definition: Mapping[str, Any] | None, step_key: str | None) -> Mapping[str, Any]:
    """A step's template in a pathway version's definition ({} when unknown)."""
    for step in (definition or {}).get("steps") or []:
        if step.get("key") == step_key:
            return dict(step)
    return {}


def _ladder(definition: Mapping[str, Any] | None, step_key: str | None) -> Mapping[str, Any]:
    """The step's own ladder, else its pathway's (as models/deadlines.py `ladder_of` picks)."""
    return step_of(definition, step_key).get("ladder") or (definition or {}).get("ladder") or {}


def _counts_hours(rule: Mapping[str, Any] | None) -> bool:
    return rule is not None and rule.get("hours") is not None


def counts_hours(definition: Mapping[str, Any] | None, step_key: str | None, urgent: bool) -> bool:
    """Whether the step's lateness reads in hours: its deadline (the urgent one for an urgent
    referral, when the step has one) or its escalation ladder counts hours."""
    step = step_of(definition, step_key)
    rule = (step.get("urgent_due") if urgent else None) or step.get("due")
    rungs = _ladder(definition, step_key).get("escalate") or []
    return _counts_hours(rule) or any(_counts_hours(r.get("after")) for r in rungs)


def how_late(
    due_at: dt.datetime,
    now: dt.datetime,
    *,
    hours: bool,
    calendar: WorkingCalendar | None = None,
) -> Late:
    """Whole hours late (`hours`), else whole working days late (needs the calendar)."""
    if hours:
        return Late("hours", max(0, int((now - due_at) // HOUR)))
    if calendar is None:
        raise ValueError("counting working days late needs the working calendar")
    return Late("working_days", calendar.working_days_between(due_at, now))


def escalation_rungs(definition: Mapping[str, Any] | None, step_key: str | None) -> list[str]:
    """Whom each escalation level of the step's ladder tells, level 1 first (`partner_backup`,
    `coordinator`, `district_manager`)."""
    rungs = _ladder(definition, step_key).get("escalate")
    if rungs is None and definition is not None:  # a definition stored before ladders: the default
        return ["partner_backup", "coordinator", "district_manager"]
    return [str(r["to"]) for r in rungs or []]


def escalated_to(
    definition: Mapping[str, Any] | None, step_key: str | None, level: int | None
) -> str | None:
    """Whom escalation `level` of the step's ladder told; None below level 1 or beyond it."""
    rungs = escalation_rungs(definition, step_key)
    return rungs[level - 1] if level and 1 <= level <= len(rungs) else None
