"""schemathesis against the app's own OpenAPI schema: generated requests never cause a 5xx."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.usecases.staff.tokens import issue_token
from referrals.web.app import create_app
from support.domain import ready_referral

# The schema from the app itself, not from GET /openapi.json through the app: that would start
# its lifespan, which refuses to run before the test's database exists (web/app.py).
APP = create_app()
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture
def bearer(rt: Runtime) -> dict[str, str]:
    """A coordinator's token, and one referral for the generated requests to find."""
    ready_referral(rt, dt.datetime.now(dt.UTC))
    with transaction(rt.engine) as s:
        token = issue_token(
            s, username="mai", name="fuzz", by=rt.user(s, "admin"), now=dt.datetime.now(dt.UTC)
        )
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_generated_request_causes_a_server_error(case, bearer) -> None:  # type: ignore[no-untyped-def]
    response = case.call(headers=bearer)
    assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text)
