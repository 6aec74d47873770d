"""`referrals serve`: the engine on one machine, driven by Prefect.

Prefect's temporary in-process server does not run schedules (STACK-NOTES.md), so unless
`PREFECT_API_URL` names a Prefect server already, this starts a local one (`prefect server
start`, its state under the data directory, with the Prefect UI); then a runner process serves
the deployments: the clock's pass every five minutes (deadline sweep, then delivery of what is
still due: flows/clock.py), the managers' digest daily at 07:30 local time (`province.yaml` →
`digest.at`); a task worker that sends each message as soon as it is queued (flows/task_worker.py,
notifiers/background.py; the children run with REFERRALS_DELIVER_AT_ONCE); and the web app
(uvicorn). This process only supervises.

Stopping. SIGTERM or Ctrl-C here becomes SIGINT for the children (Prefect's runner mishandles
SIGTERM: its handler leaves a coroutine un-awaited and keeps running); a child that has not
stopped after a few seconds is killed with its process group (the flow runs it started), so
`serve` ends within `STOP_RUNNER + STOP_SERVER` seconds (measured: 3-12 s for the runner to stop
by itself, waiting for its flow runs; 4-6 s for the Prefect server).

Dying. Each child holds the read end of a pipe whose only write end is in this process (the
lifeline); however this process ends, even by SIGKILL, the kernel closes it, and a thread in
each child that waits on it wakes: SIGINT to its own process, then SIGKILL to its process group
after `GRACE` seconds. A parent-death signal alone was not enough: on SIGINT with its server
gone, Prefect's runner retried for over a minute (issue 17).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import cast

HEALTH_TIMEOUT = 90.0
GRACE = 4.0  # seconds an orphaned child has to stop on SIGINT before its group is killed
STOP_RUNNER = 5.0  # seconds the runner and the web app have to stop on SIGINT, then killed
STOP_SERVER = 2.0  # the same for the Prefect server, after them: `serve` stops within ~7 s
RUNNER = "referrals-runner"  # the child "module" that is this file's run_deployments
TASKS = "referrals.flows.task_worker"  # the child that sends messages as they are queued


def _child(
    args: list[str], env: dict[str, str], log: Path, lifeline: int
) -> subprocess.Popen[bytes]:
    """`python -m MODULE ARGS` run through this module, which watches the lifeline first."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "referrals.cli.serving", str(lifeline), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches us only; we pass it on
            pass_fds=(lifeline,),  # the read end only: our write end is not inherited
        )


class PortTaken(OSError):
    """A port `serve` needs is held by another program: it refuses to start (issue 21). Before
    this check, a Prefect server already on 4200 answered our health check, our deployments were
    registered on it, and `serve` died a minute and a half later with the cause in a log."""


def require_free(host: str, port: int, what: str, option: str) -> None:
    """Raise PortTaken unless `port` on `host` can be listened on now (bound, then released:
    the same SO_REUSEADDR bind uvicorn and Prefect make, so a port in TIME_WAIT passes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortTaken(
                f"port {port} on {host} ({what}) is in use by another program: stop it, or "
                f"give `serve` another with {option} ({exc.strerror})"
            ) from None


def start_prefect_server(port: int, home: Path, lifeline: int) -> subprocess.Popen[bytes]:
    """A local Prefect server on loopback, starting (`wait_for_server` waits for it)."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    args = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return _child(args, env, log, lifeline)


def wait_for_server(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Return once our Prefect server answers; else stop it and raise RuntimeError."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"the Prefect server stopped: {' '.join(tail)} (see {log})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                if server.poll() is None:  # the answer is ours, not another server's
                    return
        except OSError:
            time.sleep(0.5)
    stop([server], timeout=STOP_SERVER)
    raise RuntimeError(
        f"the Prefect server did not answer within {HEALTH_TIMEOUT:.0f} s (see {log})"
    )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group: the child and whatever it started (flow runs)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def stop(processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGINT to each at once; after `timeout` seconds, SIGKILL to the groups still there."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    for p in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.0, deadline - time.monotonic()))
        _kill_group(p)  # also when it stopped: what it started must not outlive it
        p.wait()


def serve(
    *,
    data_dir: Path,
    host: str,
    port: int,
    prefect_port: int,
    every: int,
    at_once: bool = True,
) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status (non-zero if a child failed). Refuses
    (PortTaken) before starting anything when a port it would listen on is taken."""
    require_free(host, port, "the web app", "--port")
    if not os.environ.get("PREFECT_API_URL"):  # else the operator named the server to use
        require_free("127.0.0.1", prefect_port, "the Prefect server", "--prefect-port")
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    lifeline, held = os.pipe()  # `held` stays open, in this process only, until it ends
    server = None
    env = {**os.environ, "REFERRALS_DELIVER_AT_ONCE": "true" if at_once else "false"}
    try:
        if not env.get("PREFECT_API_URL"):
            server = start_prefect_server(prefect_port, data_dir / "prefect", lifeline)
            env["PREFECT_API_URL"] = f"http://127.0.0.1:{prefect_port}/api"
        # The web app needs no Prefect to answer: it starts beside the server, and serves while
        # the server starts (15-20 s the first time). A message queued meanwhile goes out when
        # the task worker starts (it begins with a pass).
        web = _child(
            [
                "uvicorn",
                "referrals.web.app:create_app",
                "--factory",
                "--host",
                host,
                "--port",
                str(port),
                "--no-access-log",  # request paths carry partners' link tokens: keep them out
            ],
            env,
            logs / "web.log",
            lifeline,
        )
        print(f"web: http://{host}:{port}", flush=True)
        if server is not None:
            try:
                wait_for_server(server, prefect_port, data_dir / "prefect" / "server.log")
            except RuntimeError:
                stop([web], timeout=STOP_RUNNER)
                raise
            print(f"Prefect server and UI: http://127.0.0.1:{prefect_port}", flush=True)
        runner = _child([RUNNER, "--every", str(every)], env, logs / "runner.log", lifeline)
        tasks = [_child([TASKS], env, logs / "tasks.log", lifeline)] if at_once else []
    finally:
        os.close(lifeline)
    print(
        ("messages go out as they are queued; " if at_once else "")
        + f"the clock's pass (deadlines, then what is still due) every {every} s; "
        f"logs in {logs}",
        flush=True,
    )
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    children = [runner, web, *tasks, *([server] if server is not None else [])]
    while not stopping:
        if any(child.poll() is not None for child in children):
            break
        time.sleep(0.2)
    failed = not stopping
    # The runner and the web app first, while the Prefect server still answers them; then it.
    stop([runner, web, *tasks], timeout=STOP_RUNNER)
    if server is not None:
        stop([server], timeout=STOP_SERVER)
    os.close(held)
    if failed:
        print(
            f"a process of the engine stopped unexpectedly; see {logs} and {data_dir / 'prefect'}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def watch_lifeline(fd: int, grace: float = GRACE) -> None:
    """In a child: when the supervisor is gone (EOF on the lifeline), stop, then make sure.

    SIGINT first, which Prefect's server, its runner and uvicorn take as a clean stop; whether
    or not that works, SIGKILL to this process group `grace` seconds later, or at once if this
    process exits sooner (what it started must not outlive it)."""
    os.set_inheritable(fd, False)  # flow runs and other grandchildren need not hold it
    orphaned = threading.Event()

    def watch() -> None:
        while True:
            try:
                if not os.read(fd, 64):
                    break
            except OSError:
                break
        orphaned.set()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(grace)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    def at_exit() -> None:
        if orphaned.is_set():
            os.killpg(os.getpgrp(), signal.SIGKILL)

    atexit.register(at_exit)
    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def run_deployments(every: int) -> None:
    """The runner process: Prefect serves the deployments on their schedules."""
    from prefect import serve as prefect_serve
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Cron

    from referrals.flows.clock import clock
    from referrals.flows.digest import manager_digest
    from referrals.infra.runtime import Runtime

    rt = Runtime()
    at = rt.province.province.digest.at
    daily = Cron(f"{at.minute} {at.hour} * * *", timezone=rt.settings.timezone)
    with contextlib.suppress(KeyboardInterrupt):
        prefect_serve(
            # Prefect types `to_deployment` as sync-or-async; called from sync code it returns the
            # deployment itself.
            cast(RunnerDeployment, clock.to_deployment(name="clock", interval=every)),
            cast(RunnerDeployment, manager_digest.to_deployment(name="digest", schedules=[daily])),
            print_starting_message=False,
            limit=2,  # flow runs at once: each is a process, and this is one small machine
        )


def main(argv: list[str]) -> None:
    """A child of `serve`: `LIFELINE_FD referrals-runner ...` or `LIFELINE_FD MODULE ARGS...`
    (run as `python -m MODULE ARGS...` would be, with the lifeline watched)."""
    watch_lifeline(int(argv[0]))
    module, args = argv[1], argv[2:]
    if module == RUNNER:
        parser = argparse.ArgumentParser(prog=RUNNER)
        parser.add_argument("--every", type=int, required=True)
        run_deployments(parser.parse_args(args).every)
        return
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
