"""Pathway templates (pathways.yaml): the steps, their deadlines and the escalation ladder
(re-exported by referrals.config.province)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, field_validator, model_validator

from referrals.config.fields import Key, Strict, Text


class DueRule(Strict):
    """How long a step may take once active: working days, calendar days or hours."""

    working_days: int | None = Field(default=None, ge=1, le=365)
    days: int | None = Field(default=None, ge=1, le=365)
    hours: int | None = Field(default=None, ge=1, le=24 * 60)

    @model_validator(mode="after")
    def _exactly_one(self) -> DueRule:
        if sum(v is not None for v in (self.working_days, self.days, self.hours)) != 1:
            raise ValueError("give exactly one of working_days, days, hours")
        return self

    def describe(self) -> str:
        for unit in ("working_days", "days", "hours"):
            if (n := getattr(self, unit)) is not None:
                return f"{n} {unit.replace('_', ' ')}"
        raise AssertionError("unreachable")


class Rung(Strict):
    """One escalation level: how long after the deadline, and who is told."""

    after: DueRule
    to: Literal["partner_backup", "coordinator", "district_manager"]


class Ladder(Strict):
    """What happens around a step's deadline: a reminder before it, a notice at it, then
    escalation levels after it. The one doing the step (the partner's first contacts, or the
    coordinator for a coordinator's step) gets the reminder and the overdue notice."""

    remind_before: DueRule | None = DueRule(working_days=1)
    overdue: bool = True
    escalate: list[Rung] = Field(
        default=[
            Rung(after=DueRule(working_days=1), to="partner_backup"),
            Rung(after=DueRule(working_days=3), to="coordinator"),
            Rung(after=DueRule(working_days=5), to="district_manager"),
        ]
    )

    @field_validator("escalate")
    @classmethod
    def _increasing(cls, rungs: list[Rung]) -> list[Rung]:
        units = {next(k for k, v in r.after.model_dump().items() if v) for r in rungs}
        if len(units) > 1:
            raise ValueError("give every escalation delay in the same unit")
        delays = [next(v for v in r.after.model_dump().values() if v) for r in rungs]
        if delays != sorted(set(delays)):
            raise ValueError("escalation delays must grow from one level to the next")
        return rungs


class StepTemplate(Strict):
    key: Key
    actor: Literal["partner", "coordinator"]
    name: Text
    name_en: Text
    due: DueRule
    urgent_due: DueRule | None = None
    ladder: Ladder | None = Field(default=None, description="overrides the pathway's ladder")
    asks: Text | None = Field(
        default=None, description="a date the partner gives when the step is done, e.g. issued on"
    )
    asks_en: Text | None = None
    extend_limit: DueRule | None = Field(
        default=None,
        description="how far past its deadline the partner may move it without the coordinator "
        "(gia hạn); none: every request for more time waits for the coordinator",
    )


class NoShow(Strict):
    """When the sweep records that the client never came: `after` past the deadline of `step`
    (the step the client must come in for), with no arrival recorded from the slip; or past the
    appointment, when an earlier step of the partner's (`appointment`) asks for its date."""

    step: Key
    after: DueRule = DueRule(working_days=2)
    appointment: Key | None = None


class Pathway(Strict):
    """A versioned template: the steps a referral of this kind goes through."""

    key: Key
    name: Text
    name_en: Text
    steps: list[StepTemplate] = Field(min_length=1)
    ladder: Ladder = Ladder()
    shares: list[Literal["name", "phone", "id_number"]] = Field(
        default=[],
        description="what the partner sees of the client on its page, while consent covers it",
    )
    no_show: NoShow | None = Field(
        default=None, description="the sweep records a no-show; None: only the partner can"
    )
    slip: bool = Field(
        default=True,
        description="a referral slip may be printed; false where paper could put the person at "
        "risk (a violence victim taken to a shelter)",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[StepTemplate]) -> list[StepTemplate]:
        if steps[0].key != "acknowledge" or steps[0].actor != "partner":
            raise ValueError("the first step must be `acknowledge` by the partner")
        keys = [s.key for s in steps]
        if dupes := sorted({k for k in keys if keys.count(k) > 1}):
            raise ValueError(f"step keys repeat: {', '.join(dupes)}")
        return steps

    @model_validator(mode="after")
    def _no_show_step(self) -> Pathway:
        if self.no_show is not None:
            step = next((s for s in self.steps if s.key == self.no_show.step), None)
            if step is None or step.actor != "partner" or step is self.steps[0]:
                raise ValueError(
                    "no_show.step must be one of the partner's steps after acknowledge"
                )
            keys = [s.key for s in self.steps]
            booked = next((s for s in self.steps if s.key == self.no_show.appointment), None)
            if self.no_show.appointment is not None and (
                booked is None
                or booked.asks is None
                or keys.index(booked.key) >= keys.index(step.key)
            ):
                raise ValueError("no_show.appointment must be an earlier step that asks a date")
        return self

    @property
    def digest(self) -> str:
        """Content hash: a changed template becomes a new version, running referrals keep theirs."""
        data = self.model_dump(mode="json")
        for step in data["steps"]:  # a step with no extend_limit hashes as before it existed
            if step.get("extend_limit") is None:
                step.pop("extend_limit", None)
        if data.get("no_show") is None:  # and so do the pathway's fields left at their default
            data.pop("no_show", None)
        if data.get("slip") is True:
            data.pop("slip", None)
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class ServiceGroup(Strict):
    """Services the office counts together in its reports, each person once: the 2019 report's
    "30 people used legal help" counts ID papers and tax codes with legal advice."""

    key: Key
    name: Text
    name_en: Text
    pathways: list[Key] = Field(min_length=1)
