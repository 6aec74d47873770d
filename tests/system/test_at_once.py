"""Issue 21: a queued message is sent at once, through a Prefect background task, with no
delivery command and no scheduled pass running; when the fast path is broken (no task worker,
or one killed while it sends) the clock's pass still sends everything, and nothing twice but
what was in flight.

Real parts: a Prefect server (`prefect server start`), the task worker as its own process
(`python -m referrals.flows.task_worker`), kicks from fresh processes (a CLI command hands its
kick to a detached process when it ends), an SMS gateway on loopback, both databases. Each test
names its own installation (REFERRALS_PROVINCE), so its task key is its own on the shared
server: a worker of another test can never take its kicks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from referrals.infra.runtime import Runtime
from referrals.migrations import upgrade
from referrals.notifiers.delivery import WINDOW_PER_WORKER
from support.cluster import fast_config
from support.domain import consent, new_client, ready_referral
from support.prefect_server import answers, prefect_server
from support.receivers import HttpSink, free_port

pytestmark = pytest.mark.prefect
CODE = re.compile(r"R-\w{5}-\w{5}")


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only, here: what these tests add is processes and Prefect (a kick, a task worker,
    a kill), the same on both databases; the pass's leases, which differ, are tested on both in
    notifiers/test_delivery.py (a pass killed mid-batch, two passes at once). Both took 5 min of
    the suite's 15."""
    url = f"sqlite:///{tmp_path_factory.mktemp('at-once') / 'engine.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server on loopback (SQLite), for this module."""
    with prefect_server(tmp_path_factory.mktemp("prefect-server")) as api:
        yield api


def until(ready: Callable[[], object], seconds: float, what: str) -> float:
    """Wait for `ready()`; returns the seconds it took, or fails naming what never came."""
    started = time.monotonic()
    while not ready():
        assert time.monotonic() - started < seconds, f"waited {seconds} s for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


class Installation:
    """One province's processes around the test's database: the task worker, kicks, passes."""

    def __init__(self, rt: Runtime, api: str, sink: HttpSink, folder: Path) -> None:
        self.api, self.folder = api, folder
        self.name = f"t{secrets.token_hex(3)}"
        self.env = {
            **os.environ,
            "REFERRALS_DATABASE_URL": rt.settings.database_url,
            "REFERRALS_SECRET_KEY": rt.settings.secret_key,
            "REFERRALS_DATA_DIR": str(folder),
            "REFERRALS_CONFIG_DIR": str(fast_config(folder, lease_seconds=10)),
            "REFERRALS_PROVINCE": self.name,
            "REFERRALS_SMS_URL": sink.url(),
            "REFERRALS_EMAIL_URL": "",
            "REFERRALS_DELIVER_AT_ONCE": "true",
            "PREFECT_API_URL": api,
            "PREFECT_HOME": str(folder / "prefect-home"),
            "TMPDIR": str(folder),
        }
        self.worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        """The task worker, once it is subscribed to this installation's task."""
        from referrals.notifiers.background import task_for

        with (self.folder / "tasks.log").open("ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "referrals.flows.task_worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        key = task_for(self.name).task_key
        until(lambda: self._subscribed(key), 60, "the task worker to subscribe")

    def _subscribed(self, key: str) -> bool:
        assert self.worker is not None and self.worker.poll() is None, self.log()
        found = httpx.post(
            f"{self.api}/task_workers/filter",
            json={"task_worker_filter": {"task_keys": [key]}},
            timeout=5,
        )
        return found.status_code == 200 and bool(found.json())

    def stop_worker(self, sig: signal.Signals = signal.SIGINT) -> None:
        if self.worker is not None:
            self.worker.send_signal(sig)
            self.worker.wait(20)
            self.worker = None

    def log(self) -> str:
        return (self.folder / "tasks.log").read_text(errors="replace")[-3000:]

    def referrals(self, *args: str, **env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "referrals.cli", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def doctor(self) -> dict[str, dict[str, str]]:
        done = subprocess.run(
            [sys.executable, "-m", "referrals.cli", "doctor", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
        )
        return {c["check"]: c for c in json.loads(done.stdout)["checks"]}

    def kick(self) -> None:
        """What a process that queued messages does after its commit (here, a fresh one)."""
        self.referrals_python("import referrals.notifiers.kick as k; k.start_task()")

    def referrals_python(self, code: str) -> None:
        done = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()


@pytest.fixture
def place(rt: Runtime, prefect_api: str, http: HttpSink, tmp_path: Path) -> Iterator[Installation]:
    one = Installation(rt, prefect_api, http, tmp_path)
    try:
        yield one
    finally:
        one.stop_worker(signal.SIGKILL)


def codes_sent(sink: HttpSink) -> Counter[str]:
    return Counter(m[0] for h in sink.hits if (m := CODE.search(h.payload["message"])))


def test_a_launch_is_sent_at_once_with_no_pass_running(
    place: Installation, rt: Runtime, http: HttpSink, now: dt.datetime
) -> None:
    """A CLI launch's SMS reaches the gateway in seconds: nothing but the kick starts a pass
    (no `deliver`, no clock). The same launch with the fast path off waits."""
    place.start_worker()
    waiting = new_client(rt, now, name="Nguyễn Thị Lan")
    consent(rt, waiting, "police-nha-trang", "id_papers", now)
    off = place.referrals(
        "launch", waiting, "--pathway", "id_papers", "--partner", "police-nha-trang",
        "--via", "direct", REFERRALS_DELIVER_AT_ONCE="false",
    )  # fmt: skip
    time.sleep(4)
    assert http.hits == [], "with the fast path off, nothing is sent before a pass"

    client = new_client(rt, now, name="Trần Văn Minh")
    consent(rt, client, "police-nha-trang", "id_papers", now)
    started = time.monotonic()
    code = place.referrals(
        "launch", client, "--pathway", "id_papers", "--partner", "police-nha-trang",
        "--via", "direct",
    )  # fmt: skip
    command = time.monotonic() - started
    took = until(lambda: code in codes_sent(http), 30, "the SMS of a launch") + command
    assert codes_sent(http) == Counter({code: 1, off: 1})  # the pass also sent the waiting one
    # Alone the command takes about 2 s; waiting for a pass would take the 30 s above. The bound
    # leaves room for a 2-core CI whose other worker runs the cluster and guide tests meanwhile
    # (5.4 s was measured there on 2026-12-02).
    assert command < 8, f"the command kept its user {command:.1f} s (its kick is handed off)"
    assert took < 15, took


def test_with_no_task_worker_the_clock_sends_everything_once(
    place: Installation, rt: Runtime, http: HttpSink, now: dt.datetime
) -> None:
    """Kicks go to a Prefect server with no worker listening: nothing is sent until the clock's
    pass sends it all; a worker that starts later runs the waiting kicks and sends nothing
    twice."""
    codes = {ready_referral(rt, now) for i in range(3)}
    found = place.doctor()["task worker"]
    assert found["level"] == "fail" and f"deliver-now-{place.name}" in found["detail"], found
    place.kick()
    place.kick()
    time.sleep(3)
    assert http.hits == []
    at = f"datetime.datetime.fromisoformat({now.isoformat()!r})"  # no step overdue yet
    place.referrals_python(f"import datetime; from referrals.flows.clock import clock; clock({at})")
    assert codes_sent(http) == Counter(dict.fromkeys(codes, 1))
    place.start_worker()  # begins with a pass; Prefect may also hand it the waiting kicks
    until(lambda: "first pass: sent 0" in place.log(), 30, "the worker's first pass")
    time.sleep(3)
    assert codes_sent(http) == Counter(dict.fromkeys(codes, 1))
    assert place.doctor()["task worker"]["level"] == "ok"


def test_a_task_worker_killed_while_it_sends_loses_nothing(
    place: Installation, rt: Runtime, http: HttpSink, now: dt.datetime
) -> None:
    """SIGKILL of the task worker mid-pass: once the lease runs out, the next pass sends the
    rest; repeated are at most the messages that were in flight."""
    place.start_worker()
    codes = {ready_referral(rt, now, phone=None) for i in range(40)}
    http.delay = 0.5  # 40 at 8 at once: 2.5 s of sending, to kill it in
    place.kick()
    concurrency = rt.province.province.delivery.concurrency
    until(lambda: len(http.hits) >= concurrency, 30, "the kicked pass to start sending")
    place.stop_worker(signal.SIGKILL)
    before = len(http.hits)
    assert before < 40, "killed in the middle"
    time.sleep(10 + 1)  # the fast config's lease
    place.referrals("deliver", "--via", "direct")
    time.sleep(0.5)  # answers to the killed worker's last requests
    got = codes_sent(http)
    assert set(got) == codes  # nothing lost
    repeats = sum(n - 1 for n in got.values())
    assert max(got.values()) <= 2 and repeats <= concurrency * WINDOW_PER_WORKER


def test_a_launch_through_the_web_app_is_sent_at_once(
    place: Installation, rt: Runtime, http: HttpSink, now: dt.datetime
) -> None:
    """The coordinator's door: the web app (long-lived) kicks from its own thread after the
    launch's commit, and the SMS follows within seconds; the request does not wait for it."""
    from referrals.infra.db import transaction
    from referrals.models.policy import SYSTEM
    from referrals.usecases.staff.tokens import issue_token

    place.start_worker()
    with transaction(rt.engine) as s:
        token = issue_token(s, username="mai", name="test", by=SYSTEM, now=now)
    clients = [new_client(rt, now) for _ in range(2)]
    for client in clients:
        consent(rt, client, "police-nha-trang", "id_papers", now)
    port = free_port()
    app = ["uvicorn", "referrals.web.app:create_app", "--factory", "--port", str(port)]
    with (place.folder / "web.log").open("ab") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", *app],
            env=place.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        until(lambda: answers(f"{base}/login"), 60, "the web app to answer")
        for client in clients:
            started = time.monotonic()
            answer = httpx.post(
                f"{base}/api/v1/referrals",
                json={"client": client, "pathway": "id_papers", "partner": "police-nha-trang"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            request = time.monotonic() - started
            assert answer.status_code in (200, 201), answer.text
            code = answer.json()["code"]
            took = until(lambda c=code: c in codes_sent(http), 30, "the SMS") + request
            assert request < 2 and took < 10, (request, took)
    finally:
        web.send_signal(signal.SIGINT)
        web.wait(20)
    assert len(codes_sent(http)) == 2 and max(codes_sent(http).values()) == 1
    # two task runs, one result file (counts only), overwritten by each: a year of kicks
    # leaves one file, not a hundred thousand
    stored = place.folder / "prefect-home" / "storage"
    assert [p.name for p in stored.iterdir()] == [f"deliver-now-{place.name}"]
