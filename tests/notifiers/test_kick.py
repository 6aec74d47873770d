"""The kick (notifiers/kick.py): after a commit that queued messages, never before, never after
a rollback; kicks merged; a failing start forgotten, not raised. Tests/system/test_at_once.py
runs the whole fast path with a real Prefect server and task worker."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import pytest

from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.models.errors import Conflict
from referrals.models.people import User
from referrals.notifiers import kick
from support.domain import ready_referral


@pytest.fixture
def kicks(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    seen: list[float] = []
    monkeypatch.setattr(kick, "kick", lambda: seen.append(time.monotonic()))
    return seen


def test_a_commit_that_queued_messages_kicks_once_and_a_rollback_does_not(
    rt: Runtime, now: dt.datetime, kicks: list[float]
) -> None:
    ready_referral(rt, now)  # client, consent (no message), launch (its prompts): one kick
    assert len(kicks) == 1
    with transaction(rt.engine) as s:  # a transaction that queues nothing
        s.get(User, 1)
    assert len(kicks) == 1
    with pytest.raises(Conflict), transaction(rt.engine) as s:
        kick.mark(s)  # as `queue` does, then the transaction loses a race
        raise Conflict("lost", key="conflict")
    assert len(kicks) == 1, "a rolled-back session must not kick"


def test_kicks_in_a_burst_are_merged_and_a_failing_start_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    starts: list[float] = []
    gate = threading.Event()

    def start() -> None:
        starts.append(time.monotonic())
        gate.wait(5)  # the first start is slow: everything meanwhile is one more start
        if len(starts) == 2:
            raise RuntimeError("the Prefect server is down")

    kicker = kick.Kicker(start, every=0.05)
    for _ in range(200):
        kicker.kick()
    gate.set()
    assert kicker.flush(5)
    assert len(starts) == 2
    with caplog.at_level(logging.WARNING, "referrals.deliver"):
        kicker.kick()
        assert kicker.flush(5)
    assert len(starts) == 3
    assert "did not start (RuntimeError)" in caplog.text


def test_a_process_kicks_only_when_set_for_it_and_given_a_prefect_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from referrals.config import get_settings

    monkeypatch.setenv("REFERRALS_DELIVER_AT_ONCE", "true")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    get_settings.cache_clear()
    assert not kick.enabled()
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert kick.enabled()
    monkeypatch.setenv("REFERRALS_DELIVER_AT_ONCE", "false")
    get_settings.cache_clear()
    assert not kick.enabled()
    get_settings.cache_clear()


def test_each_installation_has_its_own_task() -> None:
    """Prefect keys background tasks by function name: two provinces on one server must not
    run each other's passes (with each other's database)."""
    from referrals.notifiers.background import task_for

    a, b = task_for("khanh-hoa"), task_for("ninh-thuan")
    assert a.task_key != b.task_key and a.name == "deliver-now-khanh-hoa"
    assert task_for("khanh-hoa") is a
