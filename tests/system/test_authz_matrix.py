"""The authorisation matrix, one table for the three doors: the CLI, the API and the pages.

Roles x operations x districts: a coordinator of Nha Trang (mai), one of Ninh Hòa (binh), a
manager (hoa) and an admin, each trying every operation on a Nha Trang referral and client
through every surface that offers it. Allowed must work; refused must be refused the way that
surface refuses (the CLI: exit 1; the API and pages: 404 when the thing is out of sight, 403 when
it is in sight but not theirs to change), and a refusal changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from referrals.cli.main import main
from referrals.config import get_settings
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.lifecycle import Action
from referrals.models.people import Client
from referrals.models.policy import SYSTEM
from referrals.models.workflow import Referral
from referrals.usecases.referrals.advancing import advance
from referrals.usecases.staff.tokens import issue_token
from referrals.web.app import create_app
from support.domain import consent, ready_referral, row_counts
from support.pages import Clock, csrf_of, logged_in, staff_users

USERS = ("mai", "binh", "hoa", "admin")
SEE = {"mai": True, "binh": False, "hoa": True, "admin": True}
CHANGE = {"mai": True, "binh": False, "hoa": False, "admin": True}
MATRIX: dict[str, dict[str, bool]] = {
    "read the referral": SEE,
    "list shows the referral": SEE,
    "read the client": SEE,
    "change the referral": CHANGE,
    "launch for the client": CHANGE,
    "export the client's data": {"mai": False, "binh": False, "hoa": True, "admin": True},
    "administer": {"mai": False, "binh": False, "hoa": False, "admin": True},
}
# Each successful launch needs a pathway of its own (one open referral per client and pathway).
PATHWAYS = [
    ("legal_aid", "legal-aid-centre"),
    ("tax_code", "legal-aid-centre"),
    ("health_check", "phuong-son-health"),
    ("emergency_aid", "social-work-centre"),
    ("psychosocial_support", "social-work-centre"),
    ("vocational_training", "van-ninh-vocational"),
]


class Doors:
    """The same operations through the CLI, the API and the pages, for one user."""

    def __init__(
        self,
        rt: Runtime,
        user: str,
        clock: Clock,
        token: str,
        world: dict[str, str],
        pathways: list[tuple[str, str]],
    ):
        self.rt, self.user, self.world, self.pathways = rt, user, world, pathways
        self.api = TestClient(create_app(clock=clock))
        self.auth = {"Authorization": f"Bearer {token}"}
        self.web = logged_in(clock, user)
        self.capsys: pytest.CaptureFixture[str] | None = None
        self.monkeypatch: pytest.MonkeyPatch | None = None

    # -- helpers
    def cli(self, *args: str) -> tuple[int, str]:
        assert self.monkeypatch and self.capsys
        self.monkeypatch.setenv("REFERRALS_USER", self.user)
        get_settings.cache_clear()
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, _ = self.capsys.readouterr()
        return code, out

    def version(self) -> int:
        with Session(self.rt.engine) as s:
            return s.scalars(
                select(Referral.version).where(Referral.code == self.world["ref"])
            ).one()

    def undo_hold(self) -> None:
        with transaction(self.rt.engine) as s:
            advance(
                s,
                code=self.world["ref"],
                action=Action.resume,
                by=SYSTEM,
                ctx=self.rt.ctx,
                now=dt.datetime.now(dt.UTC),
            )

    def web_post(self, path: str, **fields: str) -> int:
        token = csrf_of(self.web.get("/cases").text)
        return self.web.post(
            path, data={"csrf": token, **fields}, follow_redirects=False
        ).status_code

    # -- the operations: each returns True if allowed, False if refused the right way
    def operations(self) -> dict[str, dict[str, Callable[[], bool]]]:
        ref, client = self.world["ref"], self.world["client"]

        def refused_http(status: int, *, seen: bool) -> bool:
            return status == (403 if seen else 404)

        def hold(status_ok: Callable[[], int], seen: bool) -> bool:
            status = status_ok()
            if status in (200, 303):
                self.undo_hold()
                return True
            assert refused_http(status, seen=seen), status
            return False

        seen = SEE[self.user]

        def next_pathway() -> tuple[str, str]:
            return self.pathways.pop()

        def cli_launch() -> bool:
            pathway, partner = next_pathway() if CHANGE[self.user] else PATHWAYS[0]
            return self.cli("launch", client, "--pathway", pathway, "--partner", partner)[0] == 0

        def api_launch() -> bool:
            pathway, partner = next_pathway() if CHANGE[self.user] else PATHWAYS[0]
            r = self.api.post(
                "/api/v1/referrals",
                json={"client": client, "pathway": pathway, "partner": partner},
                headers=self.auth,
            )
            if r.status_code == 201:
                return True
            assert refused_http(r.status_code, seen=seen), r.text
            return False

        def web_launch() -> bool:
            pathway, partner = next_pathway() if CHANGE[self.user] else PATHWAYS[0]
            status = self.web_post("/launch", client=client, pathway=pathway, partner=partner)
            if status == 303:
                return True
            assert refused_http(status, seen=seen), status
            return False

        def api_get(path: str) -> bool:
            status = self.api.get(path, headers=self.auth).status_code
            assert status in (200, 404), status
            return status == 200

        def web_get(path: str) -> bool:
            status = self.web.get(path).status_code
            assert status in (200, 403, 404), status
            return status == 200

        return {
            "read the referral": {
                "cli": lambda: self.cli("show", ref)[0] == 0,
                "api": lambda: api_get(f"/api/v1/referrals/{ref}"),
                "web": lambda: web_get(f"/referrals/{ref}"),
            },
            "list shows the referral": {
                "cli": lambda: ref in self.cli("list", "--json")[1],
                "api": lambda: ref in self.api.get("/api/v1/referrals", headers=self.auth).text,
                "web": lambda: ref in self.web.get("/cases?all=1").text,
            },
            "read the client": {"web": lambda: web_get(f"/clients/{client}")},
            "change the referral": {
                "cli": lambda: hold(
                    lambda: (
                        200
                        if self.cli("advance", ref, "--action", "hold", "--reason", "other")[0] == 0
                        else (403 if seen else 404)
                    ),
                    seen,
                ),
                "api": lambda: hold(
                    lambda: (
                        self.api.post(
                            f"/api/v1/referrals/{ref}/actions",
                            json={"action": "hold", "reason": "other", "version": self.version()},
                            headers=self.auth,
                        ).status_code
                    ),
                    seen,
                ),
                "web": lambda: hold(
                    lambda: self.web_post(
                        f"/referrals/{ref}/actions",
                        action="hold",
                        reason="other",
                        version=str(self.version()),
                    ),
                    seen,
                ),
            },
            "launch for the client": {"cli": cli_launch, "api": api_launch, "web": web_launch},
            "export the client's data": {
                "cli": lambda: self.cli("client", "export", client)[0] == 0,
            },
            "administer": {
                "cli": lambda: self.cli("token", "create", self.user)[0] == 0,
                "web": lambda: self.web.get("/admin").status_code == 200,
            },
        }


@pytest.fixture
def world(rt: Runtime, now: dt.datetime) -> dict[str, str]:
    staff_users(rt)
    ref = ready_referral(rt, now)
    with Session(rt.engine) as s:
        client_id = s.scalars(select(Referral.client_id).where(Referral.code == ref)).one()
        client = s.get(Client, client_id).code  # type: ignore[union-attr]
    for pathway, partner in PATHWAYS:
        consent(rt, client, partner, pathway, now)
    return {"ref": ref, "client": client}


def test_the_authorisation_matrix_on_every_door(
    rt: Runtime,
    world: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(dt.datetime.now(dt.UTC))
    with transaction(rt.engine) as s:
        tokens = {
            u: issue_token(s, username=u, name="matrix", by=SYSTEM, now=clock.now) for u in USERS
        }
    found: dict[tuple[str, str, str], bool] = {}
    pathways = list(PATHWAYS)  # each allowed launch takes one
    for user in USERS:
        doors = Doors(rt, user, clock, tokens[user], world, pathways)
        doors.capsys, doors.monkeypatch = capsys, monkeypatch
        for operation, surfaces in doors.operations().items():
            for surface, attempt in surfaces.items():
                before = row_counts(rt)
                allowed = attempt()
                found[(operation, surface, user)] = allowed
                if not allowed:
                    assert row_counts(rt) == before, (operation, surface, user)
    wrong = [
        f"{op} via {surface} as {user}: {'allowed' if got else 'refused'}, "
        f"expected {'allowed' if MATRIX[op][user] else 'refused'}"
        for (op, surface, user), got in found.items()
        if got != MATRIX[op][user]
    ]
    assert not wrong, "\n".join(wrong)
    assert len(found) == 4 * 16  # 16 (operation, surface) pairs for each of the 4 users
