"""`referrals serve` for real: a local Prefect server, scheduled deliver and sweep runs, a clean
stop, and no orphans when the supervisor is killed outright.

Runs on the embedded default (SQLite) only: the flows themselves are tested on both databases.
The tests share one engine (database and Prefect state): the second start is the quicker.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support.receivers import SmtpSink, free_port

pytestmark = pytest.mark.prefect
SECRET = "serve-secret-0123456789abcdef0123456789abcdef"


def referrals(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "referrals.cli", *args], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An initialised engine's environment (its database is `REFERRALS_DATA_DIR/engine.db`)."""
    folder = tmp_path_factory.mktemp("serve")
    env = {
        **os.environ,
        "REFERRALS_DATABASE_URL": f"sqlite:///{folder / 'engine.db'}",
        "REFERRALS_DATA_DIR": str(folder),
        "REFERRALS_SECRET_KEY": SECRET,
        "REFERRALS_EMAIL_URL": "",
        "PREFECT_HOME": str(folder / "client-prefect"),
        "TMPDIR": str(folder),
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",  # the runner looks for due runs (default 10 s)
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("REFERRALS_SMS_URL", None)
    referrals(env, "init")
    return env


def start_serve(env: dict[str, str], port: int, web_port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "referrals.cli",
            "serve",
            "--prefect-port",
            str(port),
            "--port",
            str(web_port),
            "--every",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def sweeps(env: dict[str, str]) -> int:
    with sqlite3.connect(Path(env["REFERRALS_DATA_DIR"]) / "engine.db") as c:
        return c.execute("SELECT count(*) FROM sweeprun WHERE finished_at IS NOT NULL").fetchone()[
            0
        ]


def wait_for_sweeps(env: dict[str, str], serve: subprocess.Popen[bytes], more_than: int) -> None:
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and sweeps(env) <= more_than:
        time.sleep(0.5)
        assert serve.poll() is None, serve.stdout.read().decode() if serve.stdout else ""
    assert sweeps(env) > more_than, "no scheduled sweep ran"


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent, process group, state) of a process, None once it is gone (or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else (int(fields[1]), int(fields[2]), fields[0])


def _processes() -> dict[int, tuple[int, int, str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def descendants(root: int, procs: dict[int, tuple[int, int, str]] | None = None) -> set[int]:
    procs = _processes() if procs is None else procs
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (parent, _, _) in procs.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree - {root}


def test_serve_runs_the_schedules_and_stops_cleanly(engine: dict[str, str], smtp: SmtpSink) -> None:
    env = {**engine, "REFERRALS_EMAIL_URL": smtp.url()}
    client = referrals(env, "client", "add", "--name", "Serve Test", "--district", "nha-trang")
    referrals(
        env, "consent", "grant", client, "--partner", "police-nha-trang", "--purpose", "id_papers"
    )
    code = referrals(
        env, "launch", client, "--pathway", "id_papers", "--partner", "police-nha-trang"
    )

    port, web_port = free_port(), free_port()
    serve = start_serve(env, port, web_port)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not smtp.mails:
            time.sleep(1)
            assert serve.poll() is None, serve.stdout.read().decode() if serve.stdout else ""
        wait_for_sweeps(env, serve, 0)
        assert [m.to for m in smtp.mails] == [["tiepnhan.police-nha-trang@example.vn"]]
        assert code in smtp.mails[0].subject
        # the partner's link in that e-mail opens the served web app's page
        link = next(w for w in smtp.mails[0].body.split() if "/l/" in w)
        token = link.rsplit("/l/", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/l/{token}", timeout=10) as page:
            assert page.status == 200 and code in page.read().decode()
        children = descendants(serve.pid)
    finally:
        started = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            serve.kill()
            raise AssertionError("serve did not stop on SIGTERM") from None
    took = time.monotonic() - started
    assert serve.returncode == 0 and took < 10, f"serve took {took:.1f} s to stop"
    assert not [pid for pid in children if _stat(pid)], "a child outlived serve"
    for gone in (port, web_port):  # the Prefect server and the web app stopped too
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", gone)) != 0


def test_children_die_with_a_killed_serve(engine: dict[str, str]) -> None:
    """SIGKILL leaves the supervisor no chance to stop anything: the children see it go."""
    serve = start_serve(engine, free_port(), free_port())
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:  # until the runner is at work: a flow run started
            procs = _processes()
            children = descendants(serve.pid, procs)
            if any(procs[pid][0] != serve.pid for pid in children):
                break
            assert serve.poll() is None, serve.stdout.read().decode() if serve.stdout else ""
            time.sleep(0.2)
        else:
            raise AssertionError("no flow run started")
        groups = {procs[pid][1] for pid in children}
        groups.discard(os.getpgrp())
        assert len(children) >= 3, children  # the Prefect server, the runner, the web app
    finally:
        serve.send_signal(signal.SIGKILL)
        serve.wait()
    killed = time.monotonic()

    def left() -> list[int]:  # the children and anything in their process groups (flow runs)
        return [p for p, (_, g, _) in _processes().items() if p in children or g in groups]

    while left() and time.monotonic() - killed < 15:
        time.sleep(0.1)
    took = time.monotonic() - killed
    orphans = left()
    for pid in orphans:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"orphans {orphans} still there {took:.1f} s after serve was killed"


@pytest.mark.parametrize("taken", ["--prefect-port", "--port"])
def test_serve_refuses_at_once_when_a_port_is_taken(engine: dict[str, str], taken: str) -> None:
    """Issue 21: another program on the Prefect port (or the web port) stops `serve` before it
    starts anything, with one line naming the port; it never registers its deployments on a
    server it did not start, and leaves no process behind."""
    port, web_port = free_port(), free_port()
    held = port if taken == "--prefect-port" else web_port
    with socket.socket() as other:
        other.bind(("127.0.0.1", held))
        other.listen()
        started = time.monotonic()
        serve = start_serve(engine, port, web_port)
        out, _ = serve.communicate(timeout=30)
        elapsed = time.monotonic() - started
    said = out.decode()
    assert serve.returncode == 1, said
    assert said.startswith("error: ") and said.count("\n") == 1, said
    assert f"port {held}" in said and taken in said and "in use" in said
    assert "Prefect server and UI" not in said  # nothing was started
    assert elapsed < 10, elapsed
    assert not descendants(serve.pid)
