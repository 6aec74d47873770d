"""A referral as a FHIR R4 Bundle, and a partner system's Task update back into the lifecycle.

The Bundle holds what another system needs to act on the referral and follow it:

- **ServiceRequest:** what is asked, for whom, by which office, of which partner.
- **Task:** the closed loop. Our statuses are the Gravity SDOH Clinical Care profile's Task
  statuses, so they map one to one. The current step is the business status; the reason of a
  decline or failure is the status reason.
- **Patient:** only the pseudonymous client code. Name, phone and ID number never leave.
- **Organization:** the office, and the partner.
- **Consent:** the consents that cover the partner.
- **Provenance:** one per change of status, from the timeline. This is the status history,
  which a round trip reproduces.

Checked against `fhir.resources` (its R4B models: R4 with the fixes of 2022) in the tests.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import Session, col

from referrals.models.directory import Organization
from referrals.models.lifecycle import Action, Reason, ReferralStatus
from referrals.models.people import Client, Consent
from referrals.models.workflow import Event, Referral, Step

NS = "urn:referrals"  # our code systems and identifier namespaces
REQUEST_STATUS = {
    ReferralStatus.draft: "draft",
    ReferralStatus.on_hold: "on-hold",
    ReferralStatus.completed: "completed",
    ReferralStatus.rejected: "revoked",
    ReferralStatus.cancelled: "revoked",
    ReferralStatus.failed: "revoked",
}
# A partner system's new Task status -> what it does to the referral (as an action link would).
TASK_ACTIONS = {
    "accepted": Action.accept,
    "rejected": Action.decline,
    "completed": Action.done,
    "on-hold": Action.hold,
    "failed": Action.fail,
    "cancelled": Action.cancel,
}


def _ref(kind: str, key: str) -> dict[str, str]:
    return {"reference": f"{kind}/{key}"}


def _at(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


def referral_bundle(
    session: Session, *, code: str, office: tuple[str, str], base: str, now: dt.datetime
) -> dict[str, Any]:
    """The Bundle (type collection) for referral `code`; `office` is (key, name)."""
    referral = session.scalars(select(Referral).where(col(Referral.code) == code)).one()
    client = session.get(Client, referral.client_id)
    partner = session.get(Organization, referral.organization_id)
    assert client is not None and partner is not None
    active = session.scalars(
        select(Step).where(col(Step.referral_id) == referral.id, col(Step.status) == "active")
    ).first()
    office_key, office_name = office
    resources = [
        _patient(client),
        *(
            _organization(key, name)
            for key, name in ((office_key, office_name), (partner.slug, partner.name))
        ),
        _service_request(referral, client, office_key, partner),
        _task(referral, client, office_key, partner, active),
        *_consents(session, referral, client, office_key, partner),
        *_provenance(session, referral),
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _at(now),
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }


def _patient(client: Client) -> dict[str, Any]:
    """Only the pseudonymous code: name, phone and ID number never leave."""
    return {
        "resourceType": "Patient",
        "id": client.code,
        "identifier": [{"system": f"{NS}:client", "value": client.code}],
        "active": client.erased_at is None,
    }


def _organization(key: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": key,
        "identifier": [{"system": f"{NS}:organization", "value": key}],
        "name": name,
    }


def _service_request(
    referral: Referral, client: Client, office_key: str, partner: Organization
) -> dict[str, Any]:
    """What is asked, for whom, by which office, of which partner."""
    return {
        "resourceType": "ServiceRequest",
        "id": referral.code,
        "identifier": [{"system": f"{NS}:referral", "value": referral.code}],
        "status": REQUEST_STATUS.get(ReferralStatus(referral.status), "active"),
        "intent": "order",
        "priority": "urgent" if referral.priority == "urgent" else "routine",
        "code": {"coding": [{"system": f"{NS}:pathway", "code": referral.pathway_key}]},
        "subject": _ref("Patient", client.code),
        "requester": _ref("Organization", office_key),
        "performer": [_ref("Organization", partner.slug)],
        "authoredOn": _at(referral.launched_at),
    }


def _task(
    referral: Referral,
    client: Client,
    office_key: str,
    partner: Organization,
    active: Step | None,
) -> dict[str, Any]:
    """The closed loop: our status, the current step as business status, the reason of a
    decline or failure as status reason."""
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": referral.code,
        "identifier": [{"system": f"{NS}:referral", "value": referral.code}],
        "status": ReferralStatus(referral.status).value,
        "intent": "order",
        "focus": _ref("ServiceRequest", referral.code),
        "for": _ref("Patient", client.code),
        "requester": _ref("Organization", office_key),
        "owner": _ref("Organization", partner.slug),
        "authoredOn": _at(referral.launched_at),
        "lastModified": _at(referral.updated_at or referral.launched_at),
    }
    if active is not None:
        task["businessStatus"] = {
            "coding": [{"system": f"{NS}:step", "code": active.key}],
            "text": active.key,
        }
    if referral.outcome_reason:
        task["statusReason"] = {
            "coding": [{"system": f"{NS}:reason", "code": referral.outcome_reason}]
        }
    return task


def _consents(
    session: Session, referral: Referral, client: Client, office_key: str, partner: Organization
) -> list[dict[str, Any]]:
    """The client's consents that cover the partner, for the referral's pathway."""
    return [
        {
            "resourceType": "Consent",
            "id": f"{referral.code}-consent-{c.id}",
            "status": "inactive" if c.withdrawn_at else "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": _ref("Patient", client.code),
            "dateTime": _at(c.granted_at),
            "organization": [_ref("Organization", office_key)],
            "policyRule": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "OPTIN",
                    }
                ]
            },
            "provision": {
                "type": "permit",
                "actor": [
                    {
                        "role": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                    "code": "IRCP",
                                }
                            ]
                        },
                        "reference": _ref("Organization", partner.slug),
                    }
                ],
                "purpose": [{"system": f"{NS}:pathway", "code": c.purpose}],
            },
        }
        for c in session.scalars(
            select(Consent)
            .where(
                col(Consent.client_id) == client.id,
                col(Consent.organization_id) == partner.id,
                col(Consent.purpose) == referral.pathway_key,
            )
            .order_by(col(Consent.id))
        )
    ]


def _provenance(session: Session, referral: Referral) -> list[dict[str, Any]]:
    """One Provenance per change of status, from the timeline: the status history."""
    return [
        {
            "resourceType": "Provenance",
            "id": f"{referral.code}-event-{e.id}",
            "target": [_ref("Task", referral.code)],
            "recorded": _at(e.at),
            "activity": {"coding": [{"system": f"{NS}:task-status", "code": e.data["to"]}]},
            "agent": [{"who": {"display": e.actor}}],
        }
        for e in session.scalars(
            select(Event)
            .where(col(Event.referral_id) == referral.id, col(Event.kind).like("referral.%"))
            .order_by(col(Event.id))
        )
        if "to" in e.data
    ]


def status_history(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    """(when, status) from a Bundle's Provenance, in order: what a receiving system rebuilds."""
    found = [
        (e["resource"]["recorded"], e["resource"]["activity"]["coding"][0]["code"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Provenance"
    ]
    return sorted(found)


class Coding(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str | None = None


class Concept(BaseModel):
    model_config = ConfigDict(extra="allow")
    coding: list[Coding] = []


class TaskUpdate(BaseModel):
    """The part of a partner system's Task we read; the rest of the resource is allowed."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Task"]
    id: str = Field(max_length=64)
    status: str
    statusReason: Concept | None = None

    def action(self) -> Action:
        if self.status not in TASK_ACTIONS:
            known = ", ".join(TASK_ACTIONS)
            raise ValueError(f"Task.status {self.status!r} is not a change we take ({known})")
        return TASK_ACTIONS[self.status]

    def reason(self) -> str | None:
        codes = [c.code for c in (self.statusReason.coding if self.statusReason else []) if c.code]
        known = [c for c in codes if c in Reason.__members__.values()]
        return known[0] if known else None
