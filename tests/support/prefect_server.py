"""A real Prefect server on loopback, on SQLite in its own home, for the tests that need one
process of it (tests/support/cluster.py runs one on PostgreSQL with workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from support.receivers import free_port


@contextmanager
def prefect_server(home: Path, *options: str) -> Iterator[str]:
    """Start `prefect server start` with OPTIONS (e.g. `--no-services`), its state and log in
    HOME; yield its API URL once /health answers (90 s at most); stop it with SIGINT, as
    systemd does, and kill its process group if it lingers."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    with (home / "server.log").open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--port", str(port), *options],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 90
        while not answers(f"{api}/health"):
            assert server.poll() is None, (home / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Prefect server did not answer in 90 s"
            time.sleep(0.3)
        yield api
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
