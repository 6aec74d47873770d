"""Races, as users make them: ten requests at once against a real server, on both databases.

Each race has one winner; every loser gets a clean refusal (409 or 422, never a 500), and the
database's invariants (`referrals check`) hold afterwards. The server is uvicorn on loopback, so
requests really overlap in its thread pool, as they do in production.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.links import link_token
from referrals.models.workflow import Event, Notification, Referral
from referrals.queries.invariants import check
from referrals.queries.reading import Reader
from referrals.usecases.staff.tokens import issue_token
from support.domain import consent, new_client, ready_referral
from support.pages import Clock, served

RACERS = 10


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def _race(url: str, body: bytes, headers: dict[str, str]) -> Counter[int]:
    with ThreadPoolExecutor(RACERS) as pool:
        return Counter(pool.map(lambda _: _post(url, body, headers), range(RACERS)))


def _token(rt: Runtime, now: dt.datetime) -> dict[str, str]:
    with transaction(rt.engine) as s:
        token = issue_token(s, username="mai", name="race", by=rt.user(s, "admin"), now=now)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def _invariants_hold(rt: Runtime) -> None:
    connection = rt.engine.raw_connection()
    try:
        broken = check(Reader(connection, rt.engine.dialect.name), vault=rt.ctx.vault)
    finally:
        connection.close()
    assert broken == [], [vars(b) for b in broken]


def _one_winner(statuses: Counter[int], won: int, lost: set[int]) -> None:
    assert statuses[won] == 1, statuses
    assert set(statuses) - {won} <= lost, statuses  # never a 500


def test_parallel_launches_of_one_referral(rt: Runtime, now: dt.datetime) -> None:
    client = new_client(rt, now)
    consent(rt, client, "police-nha-trang", "id_papers", now)
    body = json.dumps(
        {"client": client, "pathway": "id_papers", "partner": "police-nha-trang"}
    ).encode()
    with served() as base:
        statuses = _race(f"{base}/api/v1/referrals", body, _token(rt, now))
    _one_winner(statuses, 201, {409, 422})
    with transaction(rt.engine) as s:
        assert s.scalar(select(func.count()).select_from(Referral)) == 1
    _invariants_hold(rt)


def test_parallel_actions_with_one_version(rt: Runtime, now: dt.datetime) -> None:
    code = ready_referral(rt, now)
    body = json.dumps({"action": "accept", "version": 1}).encode()
    with served() as base:
        statuses = _race(f"{base}/api/v1/referrals/{code}/actions", body, _token(rt, now))
    # 409: the version moved on; 422: a loser that read the new state finds nothing to accept.
    _one_winner(statuses, 200, {409, 422})
    with transaction(rt.engine) as s:
        referral = s.scalars(select(Referral).where(Referral.code == code)).one()
        assert (referral.status, referral.version) == ("accepted", 2)
        accepted = select(func.count()).where(
            Event.referral_id == referral.id, Event.kind == "referral.accepted"
        )
        assert s.scalar(accepted) == 1
    _invariants_hold(rt)


def test_parallel_answers_through_one_link(rt: Runtime, now: dt.datetime) -> None:
    code = ready_referral(rt, now)
    with transaction(rt.engine) as s:
        message = s.scalars(
            select(Notification.id).join(Referral).where(Referral.code == code)
        ).first()
    assert message is not None
    token = link_token(rt.ctx.vault, message)
    body = urllib.parse.urlencode({"action": "accept"}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with served(Clock(now + dt.timedelta(hours=1))) as base:
        statuses = _race(f"{base}/l/{token}", body, form)
    _one_winner(statuses, 200, {409})
    with transaction(rt.engine) as s:
        status = s.scalar(select(Referral.status).where(Referral.code == code))
    assert status == "accepted"
    _invariants_hold(rt)


def test_parallel_advances_from_the_command_line(rt: Runtime, now: dt.datetime) -> None:
    """Three `referrals advance` processes at once: one moves the referral, the others each say
    why not in one line (never "internal error"), and the referral moved once."""
    code = ready_referral(rt, now)
    command = [sys.executable, "-m", "referrals.cli", "advance", code, "--action", "accept"]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(run.wait(120), run.stderr.read() if run.stderr else "") for run in runs]
    assert sorted(rc for rc, _ in results) == [0, 1, 1], results
    for rc, err in results:
        if rc:
            assert err.startswith("error: ") and err.count("\n") == 1, err
            assert "internal error" not in err and "Traceback" not in err, err
    with transaction(rt.engine) as s:
        referral = s.scalars(select(Referral).where(Referral.code == code)).one()
    assert (referral.status, referral.version) == ("accepted", 2)
    _invariants_hold(rt)
