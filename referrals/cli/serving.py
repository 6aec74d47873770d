"""`referrals serve`: the engine on one machine, driven by Prefect's own scheduler.

Prefect's temporary in-process server does not run schedules (STACK-NOTES.md), so unless
`PREFECT_API_URL` names a Prefect server already, this starts a local one (`prefect server
start`, its state under the data directory, with the Prefect UI); then a runner process serves
the deployments: deliver every minute, sweep every five, the managers' digest daily at 07:30
local time (`province.yaml` → `digest.at`); and the web app (uvicorn). This process only supervises: Prefect's
runner mishandles SIGTERM (its handler leaves a coroutine un-awaited and keeps running), so
SIGTERM or Ctrl-C here becomes SIGINT for the children, which they honour. Children die with
this process even if it is killed outright (Linux parent-death signal).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HEALTH_TIMEOUT = 90.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):  # not Linux: a killed supervisor may leave children
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def _child(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches us only; we pass it on
            preexec_fn=_die_with_parent,
        )


def start_prefect_server(port: int, home: Path) -> subprocess.Popen[bytes]:
    """A local Prefect server on loopback; returns once it answers, or raises RuntimeError."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    args = ["-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = _child(args, env, log)
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"the Prefect server stopped: {' '.join(tail)} (see {log})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    stop(server)
    raise RuntimeError(
        f"the Prefect server did not answer within {HEALTH_TIMEOUT:.0f} s (see {log})"
    )


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(
    *,
    data_dir: Path,
    host: str,
    port: int,
    prefect_port: int,
    sweep_every: int,
    deliver_every: int,
) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status (non-zero if a child failed)."""
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    server = None
    env = dict(os.environ)
    if not env.get("PREFECT_API_URL"):
        server = start_prefect_server(prefect_port, data_dir / "prefect")
        env["PREFECT_API_URL"] = f"http://127.0.0.1:{prefect_port}/api"
        print(f"Prefect server and UI: http://127.0.0.1:{prefect_port}", flush=True)
    runner = _child(
        [
            "-m",
            "referrals.cli.serving",
            "--sweep-every",
            str(sweep_every),
            "--deliver-every",
            str(deliver_every),
        ],
        env,
        logs / "runner.log",
    )
    web = _child(
        [
            "-m",
            "uvicorn",
            "referrals.web.app:create_app",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--no-access-log",  # request paths carry partners' link tokens: keep them out of logs
        ],
        env,
        logs / "web.log",
    )
    print(f"web: http://{host}:{port}", flush=True)
    print(
        f"delivering every {deliver_every} s, sweeping deadlines every {sweep_every} s; "
        f"flow logs in {logs / 'runner.log'}",
        flush=True,
    )
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while not stopping:
        children = [runner, web, *([server] if server is not None else [])]
        if any(child.poll() is not None for child in children):
            break
        time.sleep(0.2)
    failed = not stopping
    stop(web)
    stop(runner)
    if server is not None:
        stop(server)
    if failed:
        print(
            f"a process of the engine stopped unexpectedly; see {logs} and {data_dir / 'prefect'}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def run_deployments(sweep_every: int, deliver_every: int) -> None:
    """The runner process: Prefect serves the deployments on their schedules."""
    from prefect import serve as prefect_serve
    from prefect.schedules import Cron

    from referrals.flows.deliver import deliver_notifications
    from referrals.flows.digest import manager_digest
    from referrals.flows.sweep import sweep_deadlines
    from referrals.models.runtime import Runtime

    rt = Runtime()
    at = rt.province.province.digest.at
    daily = Cron(f"{at.minute} {at.hour} * * *", timezone=rt.settings.timezone)
    with contextlib.suppress(KeyboardInterrupt):
        prefect_serve(
            deliver_notifications.to_deployment(name="deliver", interval=deliver_every),
            sweep_deadlines.to_deployment(name="sweep", interval=sweep_every),
            manager_digest.to_deployment(name="digest", schedules=[daily]),
            print_starting_message=False,
            limit=2,  # flow runs at once: each is a process, and this is one small machine
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sweep-every", type=int, required=True)
    parser.add_argument("--deliver-every", type=int, required=True)
    options = parser.parse_args()
    run_deployments(options.sweep_every, options.deliver_every)
