"""The JSON API: tokens, the authorisation matrix, optimistic locking, and the closed loop."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.links import link_token
from referrals.models.people import Role, User
from referrals.models.tokens import ApiToken
from referrals.models.workflow import Notification, Referral
from referrals.notifiers.channels import Channels
from referrals.notifiers.delivery import deliver
from referrals.usecases.staff.tokens import issue_token
from referrals.web.app import create_app
from support.domain import consent, new_client, ready_referral, row_counts
from support.receivers import SmtpSink


@pytest.fixture
def api(rt: Runtime) -> tuple[TestClient, dict[str, dict[str, str]]]:
    """The app and a bearer header per role: coordinators of Nha Trang and Ninh Hòa, a manager."""
    now = dt.datetime.now(dt.UTC)
    with transaction(rt.engine) as s:
        s.add(
            User(
                username="binh",
                full_name="Coordinator NH",
                role=Role.coordinator.value,
                area_key="ninh-hoa",
            )
        )
        s.execute(update(User).where(User.username == "mai").values(email="mai@chicuc.example.vn"))
        s.flush()
        tokens = {
            who: issue_token(s, username=who, name="test", by=rt.user(s, "admin"), now=now)
            for who in ("mai", "binh", "hoa")
        }
    headers = {who: {"Authorization": f"Bearer {t}"} for who, t in tokens.items()}
    return TestClient(create_app()), headers


def test_tokens_are_stored_hashed_and_checked(rt: Runtime, api) -> None:  # type: ignore[no-untyped-def]
    client, headers = api
    with transaction(rt.engine) as s:
        hashes = s.scalars(select(ApiToken.token_hash)).all()
    assert all(len(h) == 64 and not h.startswith("rf_") for h in hashes)
    assert client.get("/api/v1/partners", headers=headers["mai"]).status_code == 200
    for bad in ({}, {"Authorization": "Bearer rf_nope"}, {"Authorization": "Basic x"}):
        assert client.get("/api/v1/partners", headers=bad).status_code == 401
    with transaction(rt.engine) as s:
        s.execute(update(ApiToken).values(revoked_at=dt.datetime.now(dt.UTC)))
    assert client.get("/api/v1/partners", headers=headers["mai"]).status_code == 401


def test_the_authorisation_matrix(rt: Runtime, api) -> None:  # type: ignore[no-untyped-def]
    client, headers = api
    now = dt.datetime.now(dt.UTC)
    nt = ready_referral(rt, now)  # a Nha Trang client
    nt_client = new_client(rt, now, name="Second", phone=None)
    consent(rt, nt_client, "legal-aid-centre", "legal_aid", now)

    def version() -> int:
        with transaction(rt.engine) as s:
            return s.scalars(select(Referral.version).where(Referral.code == nt)).one()

    launch = {"client": nt_client, "pathway": "legal_aid", "partner": "legal-aid-centre"}
    expected = [
        # method, path, body, {who: status}; None is anonymous
        ("GET", "/api/v1/pathways", None, {"mai": 200, "binh": 200, "hoa": 200, None: 401}),
        ("GET", "/api/v1/partners", None, {"mai": 200, "binh": 200, "hoa": 200, None: 401}),
        ("GET", "/api/v1/referrals", None, {"mai": 200, "binh": 200, "hoa": 200, None: 401}),
        ("GET", f"/api/v1/referrals/{nt}", None, {"mai": 200, "binh": 404, "hoa": 200, None: 401}),
        (
            "GET",
            "/api/v1/referrals?district=nha-trang",
            None,
            {"mai": 200, "binh": 403, "hoa": 200, None: 401},
        ),
        ("POST", "/api/v1/referrals", launch, {"binh": 404, "hoa": 403, None: 401, "mai": 201}),
        (
            "POST",
            f"/api/v1/referrals/{nt}/actions",
            "hold",
            {"binh": 404, "hoa": 403, None: 401, "mai": 200},
        ),
    ]
    for method, path, body, outcomes in expected:
        for who, status in outcomes.items():
            payload = (
                {"action": "hold", "reason": "other", "version": version()}
                if body == "hold"
                else body
            )
            response = client.request(method, path, json=payload, headers=headers.get(who, {}))
            assert response.status_code == status, (method, path, who, response.text)
    listed = {
        who: [r["code"] for r in client.get("/api/v1/referrals", headers=headers[who]).json()]
        for who in ("mai", "binh", "hoa")
    }
    assert nt in listed["mai"] and nt in listed["hoa"] and listed["binh"] == []


def test_a_stale_version_gets_409_with_the_current_one(rt: Runtime, api) -> None:  # type: ignore[no-untyped-def]
    client, headers = api
    code = ready_referral(rt, dt.datetime.now(dt.UTC))
    shown = client.get(f"/api/v1/referrals/{code}", headers=headers["mai"]).json()
    first = client.post(
        f"/api/v1/referrals/{code}/actions",
        json={"action": "accept", "version": shown["version"]},
        headers=headers["mai"],
    )
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    before = row_counts(rt)
    stale = client.post(
        f"/api/v1/referrals/{code}/actions",
        json={"action": "cancel", "version": shown["version"]},
        headers=headers["mai"],
    )
    assert stale.status_code == 409 and stale.json()["detail"]["version"] == first.json()["version"]
    assert row_counts(rt) == before
    bad = client.post(
        f"/api/v1/referrals/{code}/actions",
        json={"action": "explode", "version": 1},
        headers=headers["mai"],
    )
    assert bad.status_code == 422 and row_counts(rt) == before


def test_the_closed_loop_through_http(rt: Runtime, api, smtp: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    client, headers = api
    now = dt.datetime.now(dt.UTC)
    person = new_client(rt, now, name="Loop Client")
    consent(rt, person, "police-nha-trang", "id_papers", now)
    launched = client.post(
        "/api/v1/referrals",
        json={"client": person, "pathway": "id_papers", "partner": "police-nha-trang"},
        headers=headers["mai"],
    )
    assert launched.status_code == 201
    code = launched.json()["code"]
    with transaction(rt.engine) as s:  # the partner's SMS link
        message = s.scalars(
            select(Notification.id)
            .join(Referral)
            .where(Referral.code == code, Notification.channel == "sms")
        ).one()
    assert (
        client.post(
            f"/l/{link_token(rt.ctx.vault, message)}", data={"action": "accept"}
        ).status_code
        == 200
    )
    shown = client.get(f"/api/v1/referrals/{code}", headers=headers["mai"]).json()
    assert shown["status"] == "accepted"
    assert [s["status"] for s in shown["steps"]][:2] == ["done", "active"]
    kinds = [e["kind"] for e in shown["events"]]
    assert "link.answered" in kinds and kinds.index("referral.accepted") > kinds.index(
        "referral.requested"
    )
    assert any(m["template"] == "referral.answered" and m["to"] == "mai" for m in shown["messages"])
    assert "Loop Client" not in launched.text + str(shown)
    # the coordinator's e-mail arrives through the outbox
    channels = Channels(
        rt.province.province.delivery, secrets={"REFERRALS_EMAIL_URL": smtp.url()}.get
    )
    deliver(rt, now=dt.datetime.now(dt.UTC), channels=channels)
    (mail,) = [m for m in smtp.mails if m.to == ["mai@chicuc.example.vn"]]
    assert (
        mail.subject == f"{code}: Công an phường Nha Trang đã nhận"
        and "Loop Client" not in mail.body
    )
    openapi = client.get("/openapi.json").json()
    assert {
        "/api/v1/referrals",
        "/api/v1/referrals/{code}",
        "/api/v1/referrals/{code}/actions",
    } <= set(openapi["paths"])
