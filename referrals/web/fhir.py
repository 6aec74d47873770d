"""FHIR over the API (/api/v1/fhir): a referral's Bundle, its Task, and a partner system's Task
update, which advances the referral as an action link would. Same tokens and district policy as
the rest of the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import ValidationError

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.interop.fhir import TaskUpdate, referral_bundle
from referrals.models.errors import DomainError, NotFound
from referrals.models.people import User
from referrals.models.policy import Forbidden
from referrals.usecases.referrals.advancing import advance, referral_for
from referrals.web.api import CodePath, Me, Problem, Rt

router = APIRouter(prefix="/api/v1/fhir", tags=["fhir"])
FHIR_JSON = "application/fhir+json"


def bundle_of(rt: Runtime, me: User, code: str) -> dict[str, Any]:
    try:
        with transaction(rt.engine) as s:
            referral_for(s, me, code)
            province = rt.province.province
            return referral_bundle(
                s,
                code=code,
                office=(province.key, province.name),
                base=rt.settings.public_url.rstrip("/") + "/api/v1/fhir",
                now=dt.datetime.now(dt.UTC),
            )
    except NotFound:
        raise HTTPException(404, f"unknown referral {code!r}") from None


@router.get("/Bundle/{code}", responses={404: {"model": Problem}})
def bundle(code: CodePath, rt: Rt, me: Me) -> dict[str, Any]:
    """The referral as a Bundle: ServiceRequest, Task, Patient (code only), Organizations,
    Consents, and a Provenance per change of status."""
    return bundle_of(rt, me, code)


@router.get("/Task/{code}", responses={404: {"model": Problem}})
def task(code: CodePath, rt: Rt, me: Me) -> dict[str, Any]:
    """The referral's Task: its closed-loop status."""
    return _task(bundle_of(rt, me, code))


@router.post(
    "/Task/{code}",
    responses={403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}},
)
def update_task(code: CodePath, body: dict[str, Any], rt: Rt, me: Me) -> dict[str, Any]:
    """A partner system's Task with a new status: accepted, rejected (with a reason in
    statusReason), completed (the current step done), on-hold, failed or cancelled."""
    try:
        update = TaskUpdate.model_validate(body)
        action = update.action()
    except (ValidationError, ValueError) as exc:
        raise HTTPException(422, str(exc).splitlines()[0]) from None
    if update.id != code:
        raise HTTPException(422, f"Task.id {update.id!r} is not {code!r}")
    try:
        with transaction(rt.engine) as s:
            found = referral_for(s, me, code, act=True)
            if found.status != update.status:
                advance(
                    s,
                    code=code,
                    action=action,
                    by=me,
                    ctx=rt.ctx,
                    now=dt.datetime.now(dt.UTC),
                    reason=update.reason(),
                )
    except NotFound:
        raise HTTPException(404, f"unknown referral {code!r}") from None
    except Forbidden:
        raise  # web/errors.py: 403
    except DomainError as exc:  # FHIR reports a Task that cannot take this status as a conflict
        raise HTTPException(409, str(exc)) from None
    return _task(bundle_of(rt, me, code))


def _task(found: dict[str, Any]) -> dict[str, Any]:
    return next(e["resource"] for e in found["entry"] if e["resource"]["resourceType"] == "Task")
