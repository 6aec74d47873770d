"""A real distributed engine on loopback: a Prefect server on PostgreSQL, the deployments of
deploy/prefect.yaml, and process workers as separate process groups (which can be killed
outright, as a machine is lost). Used by tests/system/test_scale.py and
benchmarks/bench_cluster.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, func, select, text

from referrals.models.workflow import Notification
from support import ROOT
from support.receivers import free_port

FINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
PROVINCE = "khanh-hoa"
PG_ADMIN = os.environ.get(
    "REFERRALS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BIN = Path(sys.executable).parent


def fresh_database(prefix: str) -> str:
    """A new PostgreSQL database's name (drop it with `drop_database`)."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name


def drop_database(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fast_config(folder: Path, *, lease_seconds: int) -> Path:
    """The bundled province with no quiet hours (the test may run at night) and short leases
    (a killed worker's messages come back soon)."""
    target = folder / PROVINCE
    shutil.copytree(ROOT / "referrals" / "config" / PROVINCE, target)
    province = yaml.safe_load((target / "province.yaml").read_text(encoding="utf-8"))
    province["delivery"] |= {"quiet_hours": "none", "lease_seconds": lease_seconds}
    (target / "province.yaml").write_text(yaml.safe_dump(province, allow_unicode=True))
    return target


class Cluster:
    """One province's engine with its own Prefect server, pool and workers."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.prefect_db = fresh_database("prefect_cluster")
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.pool = f"referrals-{PROVINCE}"
        self.env = {
            **os.environ,
            **env,
            "PREFECT_API_URL": self.api,
            "PREFECT_HOME": str(folder / "prefect-home"),
            "TMPDIR": str(folder),
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
            "REFERRALS_PROVINCE": PROVINCE,
            "REFERRALS_CHECKOUT": str(ROOT),
            "REFERRALS_GATEWAY_LIMIT": "sms-gateway",
        }
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.http = httpx.Client(base_url=self.api, timeout=30)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("ab")
        return subprocess.Popen(
            [str(BIN / "prefect"), *args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed with its flow runs
        )

    def start_server(self) -> None:
        url = PG_ADMIN.rsplit("/", 1)[0].replace("+psycopg", "+asyncpg") + f"/{self.prefect_db}"
        self.env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = url
        self.server = self._spawn("server", "server", "start", "--port", str(self.port))
        wait_for(self._healthy, 90, "the Prefect server to answer")

    def _healthy(self) -> bool:
        try:
            return self.http.get("/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.send_signal(signal.SIGINT)
            self.server.wait(60)
            self.server = None

    def deploy(self) -> None:
        for args in (
            ["work-pool", "create", self.pool, "--type", "process"],
            ["gcl", "create", "sms-gateway", "--limit", "2"],
            ["--no-prompt", "deploy", "--all", "--prefect-file", "deploy/prefect.yaml"],
            ["automation", "create", "--from-file", "deploy/automations/crash-silent-runs.yaml"],
        ):
            done = subprocess.run(
                [str(BIN / "prefect"), *args], env=self.env, cwd=ROOT, capture_output=True
            )
            assert done.returncode == 0, done.stdout.decode()[-2000:] + done.stderr.decode()

    def start_worker(self, name: str, limit: int = 2) -> None:
        self.workers[name] = self._spawn(
            name, "worker", "start", "--pool", self.pool, "--name", name, "--limit", str(limit)
        )

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and every process under it (its flow runs): a machine lost."""
        root = self.workers.pop(name).pid
        for pid in [root, *_descendants(root)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def run(self, flow: str, **parameters: Any) -> str:
        """Create a flow run of FLOW's deployment for this province; returns its id."""
        found = self.http.get(f"/deployments/name/{flow}/{PROVINCE}")
        found.raise_for_status()
        made = self.http.post(
            f"/deployments/{found.json()['id']}/create_flow_run", json={"parameters": parameters}
        )
        made.raise_for_status()
        return str(made.json()["id"])

    def state(self, run_id: str) -> str:
        return str(self.http.get(f"/flow_runs/{run_id}").json()["state_type"])

    def current_run(self, worker: str) -> str | None:
        """The flow run WORKER took last, from its log."""
        log = (self.folder / f"{worker}.log").read_text(errors="replace")
        taken = re.findall(r"submitting flow run '([0-9a-f-]+)'", log)
        return taken[-1] if taken else None

    def sms(self) -> dict[str, int]:
        """The SMS in the engine's outbox, by status."""
        engine = create_engine(self.env["REFERRALS_DATABASE_URL"])
        with engine.connect() as c:
            rows = c.execute(
                select(Notification.status, func.count())
                .where(Notification.channel == "sms")
                .group_by(Notification.status)
            ).all()
        engine.dispose()
        return {status: n for status, n in rows}

    def deliver_until_done(
        self,
        seconds: float,
        *,
        batch: int,
        in_flight: int = 2,
        now: str | None = None,
        kill: str | None = None,
        lost: list[str] | None = None,
    ) -> int:
        """Keep IN_FLIGHT delivery runs going until no SMS waits; returns how many runs it made.
        With KILL, that worker is lost once a third is out, in the middle of a run (its id is
        added to LOST)."""
        running: list[str] = []
        made = 0

        def done() -> bool:
            nonlocal running, made
            sms = self.sms()
            if kill in self.workers and sms.get("sent", 0) > sum(sms.values()) // 3:
                busy = self.current_run(kill)
                if busy and self.state(busy) == "RUNNING":
                    self.kill_worker(kill)
                    if lost is not None:
                        lost.append(busy)
            running = [r for r in running if self.state(r) not in FINAL]
            while len(running) < in_flight:
                running.append(self.run("deliver-notifications", limit=batch, now=now))
                made += 1
            return not sms.get("queued") and not sms.get("failed")

        wait_for(done, seconds, "every SMS to be sent")
        return made

    def runs_in(self, state: str) -> list[str]:
        """The flow runs Prefect believes are in STATE (RUNNING, CRASHED...)."""
        found = self.http.post(
            "/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": [state]}}}}
        )
        found.raise_for_status()
        return [r["id"] for r in found.json()]

    def ran_by(self) -> dict[str, int]:
        """How many flow runs each worker took, from the workers' own logs."""
        return {
            name.removesuffix(".log"): (self.folder / name)
            .read_text(errors="replace")
            .count("submitting flow run")
            for name in os.listdir(self.folder)
            if name.startswith("worker") and name.endswith(".log")
        }

    def stop(self) -> None:
        for name in list(self.workers):
            proc = self.workers.pop(name)
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.stop_server()
        self.http.close()
        drop_database(self.prefect_db)


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def wait_for(ready: Callable[[], object], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := ready():
            return value
        time.sleep(0.5)
    raise AssertionError(f"waited {seconds:.0f} s for {what}")


def referrals(env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> str:
    """Run the CLI as a separate process, as an operator would."""
    done = subprocess.run([str(BIN / "referrals"), *args], env=env, capture_output=True, text=True)
    assert done.returncode in ok, done.stderr + done.stdout
    return done.stdout


def import_csv(folder: Path, count: int, *, start: int = 0) -> Path:
    """COUNT new clients in Nha Trang, each referred to the police for ID papers."""
    lines = ["name,phone,id_number,district,pathway,partner,consent,launched_at,urgent"]
    for i in range(start, start + count):
        lines.append(
            f"Người Thử {i},0905 {i // 1000:03d} {i % 1000:03d},,nha-trang,id_papers,"
            "police-nha-trang,written,,"
        )
    path = folder / f"referrals-{start}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def to_json(text_out: str) -> Any:
    return json.loads(text_out)
