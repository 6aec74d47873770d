"""FHIR (issue 10, slice): every exported resource validates with fhir.resources (R4B models),
the Patient is the code alone, and a partner system's Task updates drive the lifecycle; the
status history rebuilt from the Bundle is the engine's own."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from sqlalchemy import select
from sqlmodel import Session

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.interop.fhir import status_history
from referrals.models.people import Role, User
from referrals.models.workflow import Event, Referral
from referrals.usecases.staff.tokens import issue_token
from referrals.web.app import create_app
from support.domain import cli, ready_referral, row_counts

MODELS = {m.__name__: m for m in (Patient, Organization, ServiceRequest, Task, Consent, Provenance)}
NAME, PHONE = "Đặng Thị Mật", "0905 321 654"


@pytest.fixture
def api(rt: Runtime) -> tuple[TestClient, dict[str, dict[str, str]]]:
    now = dt.datetime.now(dt.UTC)
    with transaction(rt.engine) as s:
        s.add(User(username="binh", full_name="NH", role=Role.coordinator, area_key="ninh-hoa"))
        s.flush()
        tokens = {
            w: issue_token(s, username=w, name="fhir", by=rt.user(s, "admin"), now=now)
            for w in ("mai", "binh")
        }
    return TestClient(create_app()), {
        w: {"Authorization": f"Bearer {t}"} for w, t in tokens.items()
    }


def _validated(bundle: dict[str, object]) -> dict[str, object]:
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:  # type: ignore[union-attr]
        resource = entry["resource"]
        MODELS[resource["resourceType"]].model_validate(resource)
    return bundle


def _history(rt: Runtime, code: str) -> list[str]:
    with Session(rt.engine) as s:
        rows = s.scalars(
            select(Event.data).join(Referral).where(Referral.code == code).order_by(Event.id)
        )
        return [d["to"] for d in rows if "to" in d]


def test_the_bundle_validates_and_holds_nothing_personal(
    rt: Runtime, now: dt.datetime, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = ready_referral(rt, now, name=NAME, phone=PHONE, id_number="079190321654")
    status, _, err = cli(capsys, "fhir", "export", code, "--out", str(tmp_path / "b.json"))
    assert status == 0, err
    bundle = _validated(json.loads((tmp_path / "b.json").read_text(encoding="utf-8")))
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]  # type: ignore[index]
    assert sorted(set(kinds)) == sorted(MODELS)
    text = json.dumps(bundle, ensure_ascii=False)
    for secret in (NAME, "321 654", "321654"):
        assert secret not in text
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )  # type: ignore[index]
    assert set(patient) == {"resourceType", "id", "identifier", "active"}
    task = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task")  # type: ignore[index]
    assert task["status"] == "requested" and task["businessStatus"]["text"] == "acknowledge"


def test_a_partner_systems_task_updates_drive_the_referral(
    rt: Runtime, now: dt.datetime, api: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    client, headers = api
    code = ready_referral(rt, now)
    task = client.get(f"/api/v1/fhir/Task/{code}", headers=headers["mai"]).json()
    Task.model_validate(task)
    for status in ("accepted", "on-hold"):
        answer = client.post(
            f"/api/v1/fhir/Task/{code}", headers=headers["mai"], json=task | {"status": status}
        )
        assert answer.status_code == 200, answer.text
        task = answer.json()
        assert Task.model_validate(task).status == status
    before = row_counts(rt)
    for body, expected in [
        (task | {"status": "accepted"}, 409),  # on-hold -> accepted is not a move
        (task | {"status": "entered-in-error"}, 422),
        (task | {"resourceType": "Patient"}, 422),
        (task | {"id": "R-OTHER-OTHER"}, 422),
    ]:
        answer = client.post(f"/api/v1/fhir/Task/{code}", headers=headers["mai"], json=body)
        assert answer.status_code == expected, (body["status"], answer.text)
    assert row_counts(rt) == before
    # Another district's coordinator neither sees nor moves it.
    assert client.get(f"/api/v1/fhir/Bundle/{code}", headers=headers["binh"]).status_code == 404
    moved = client.post(f"/api/v1/fhir/Task/{code}", headers=headers["binh"], json=task)
    assert moved.status_code == 404

    # The round trip: the history another system rebuilds from the Bundle is the engine's.
    bundle = _validated(client.get(f"/api/v1/fhir/Bundle/{code}", headers=headers["mai"]).json())
    assert [s for _, s in status_history(bundle)] == _history(rt, code)
    assert _history(rt, code) == ["requested", "accepted", "on-hold"]


def test_a_decline_carries_its_reason_both_ways(
    rt: Runtime, now: dt.datetime, api: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    client, headers = api
    code = ready_referral(rt, now)
    task = client.get(f"/api/v1/fhir/Task/{code}", headers=headers["mai"]).json()
    reason = {"coding": [{"system": "urn:referrals:reason", "code": "partner_lacks_capacity"}]}
    answer = client.post(
        f"/api/v1/fhir/Task/{code}",
        headers=headers["mai"],
        json=task | {"status": "rejected", "statusReason": reason},
    )
    assert answer.status_code == 200, answer.text
    back = Task.model_validate(answer.json())
    assert back.status == "rejected"
    assert back.statusReason.coding[0].code == "partner_lacks_capacity"  # type: ignore[union-attr,index]
    request = next(
        e["resource"]
        for e in client.get(f"/api/v1/fhir/Bundle/{code}", headers=headers["mai"]).json()["entry"]
        if e["resource"]["resourceType"] == "ServiceRequest"
    )
    assert ServiceRequest.model_validate(request).status == "revoked"
