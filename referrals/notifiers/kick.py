"""The kick: after a session that queued messages commits, start a delivery pass at once
(the `deliver-now` background task of notifiers/background.py, whose docstring says why).

Whatever queues a message marks its session (`mark`); a listener on every Session's commit
kicks, only where the process is set for it (`REFERRALS_DELIVER_AT_ONCE` and
`PREFECT_API_URL`). The web app, and any process with Prefect loaded (a flow run, the task
worker), hand the kick to one thread, which merges kicks (at most one `.delay()` per KICK_EVERY
seconds), imports Prefect itself (never in a request) and never raises; such a process waits up
to FLUSH seconds at exit for its last kick. A CLI command hands its kicks, when it ends, to one
detached process. A kick lost is the clock's to mend: the message stays queued for its pass.

This module imports nothing of the outbox, so `addressing.queue` can mark sessions.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from referrals.config import get_settings

log = logging.getLogger("referrals.deliver")
PENDING = "referrals.deliver_at_once"  # a key in Session.info
KICK_EVERY = 0.5  # seconds between two `.delay()` calls of one process; kicks between are merged
FLUSH = 5.0  # seconds a process that ends waits for its last kick


def mark(session: Session) -> None:
    """This session queued messages: deliver them at once after it commits."""
    session.info[PENDING] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(PENDING, False):
        kick()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(PENDING, None)


class Kicker:
    """One thread that turns kicks into calls of `start`, at most one per `every` seconds:
    kicks that come meanwhile are merged into the next call. `start` failing is logged (kinds
    only) and forgotten: the clock's pass sends what it would have."""

    def __init__(self, start: Callable[[], object], every: float = KICK_EVERY) -> None:
        self.start, self.every = start, every
        self.wanted, self.idle = threading.Event(), threading.Event()
        self.idle.set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def kick(self) -> None:
        with self.lock:
            self.idle.clear()
            self.wanted.set()
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="deliver-at-once", daemon=True
                )
                self.thread.start()

    def flush(self, timeout: float = FLUSH) -> bool:
        """Wait until every kick so far has been passed on; False if `timeout` ran out."""
        return self.idle.wait(timeout)

    def _run(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            try:
                self.start()
            except Exception as exc:  # a lost kick is the clock's to mend
                log.warning(
                    "delivery at once did not start (%s): the clock's pass will send",
                    type(exc).__name__,
                )
            with self.lock:
                if not self.wanted.is_set():
                    self.idle.set()
            time.sleep(self.every)


def start_task() -> None:
    """`.delay()` the installation's task (what a kick does; also `python -c` of a hand-off)."""
    from referrals.infra.runtime import Runtime
    from referrals.notifiers.background import task_for

    task_for(Runtime.current().key).delay()


_STATE: dict[str, Any] = {"long_lived": False, "kicker": None, "handed_off": False}


def long_lived() -> None:
    """This process stays up (the web app): its kicks load Prefect once, in the kick thread."""
    _STATE["long_lived"] = True


def enabled() -> bool:
    """This process may start the task: set for it, and a Prefect server named."""
    return get_settings().deliver_at_once and bool(os.environ.get("PREFECT_API_URL"))


def kick() -> None:
    """Start a delivery pass soon, if this process is set to (never raises, never waits).

    A long-lived process, or one that has loaded Prefect already (a flow run, the task worker),
    kicks from its thread. Any other (a CLI command) hands its kicks, when it ends, to one
    detached process: the person at the terminal does not wait the 2-4 s that loading Prefect
    costs, and a bulk import starts one pass, not one per row."""
    if not enabled():
        return
    if _STATE["long_lived"] or "prefect" in sys.modules:
        kicker = _STATE["kicker"]
        if kicker is None:
            kicker = _STATE["kicker"] = Kicker(start_task)
            atexit.register(kicker.flush)
        kicker.kick()
    elif not _STATE["handed_off"]:
        _STATE["handed_off"] = True
        atexit.register(_hand_off)


def _hand_off() -> None:
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-c", "import referrals.notifiers.kick as k; k.start_task()"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command, and a Ctrl-C at its terminal
        )
