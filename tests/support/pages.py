"""Driving the staff pages as a browser does: a logged-in client, CSRF tokens, a movable clock."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import update

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.people import Role, User
from referrals.usecases.staff.accounts import hash_password
from referrals.web.app import create_app

PASSWORD = "correct horse battery"


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password(PASSWORD)  # one scrypt per run, shared by every test user


class Clock:
    """The app's `now`, which a test moves forward (time travel for the deadlines)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@contextmanager
def served(clock: Clock | None = None) -> Iterator[str]:
    """The app on a real uvicorn server on loopback (its own thread): its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(clock=clock), host="127.0.0.1", port=port, log_level="warning"
    )
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    for _ in range(100):
        if web.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        web.should_exit = True
        thread.join(10)


def staff_users(rt: Runtime) -> None:
    """Passwords for the conftest users, and a Ninh Hòa coordinator, binh."""
    with transaction(rt.engine) as s:
        s.add(
            User(
                username="binh",
                full_name="Coordinator NH",
                role=Role.coordinator.value,
                area_key="ninh-hoa",
            )
        )
        s.flush()
        s.execute(update(User).values(password_hash=password_hash()))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def logged_in(clock: Clock, username: str) -> TestClient:
    client = TestClient(create_app(clock=clock))
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"csrf": token, "username": username, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


def post_form(browser: TestClient, path: str, page: str, **fields: object) -> Any:
    """POST a form found on `page` (its CSRF token included), without following redirects."""
    token = csrf_of(browser.get(page).text)
    data = {"csrf": token, **{k: str(v) for k, v in fields.items()}}
    return browser.post(path, data=data, follow_redirects=False)
