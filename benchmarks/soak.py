"""A soak: `referrals serve` as a real process tree for 30 minutes of compressed time, under load,
with the SMS gateway down for a while and the database restarted in the middle; afterwards
`referrals check` must hold, every message must have arrived once (or at most the in-flight
bound twice), and the served processes' memory and open file descriptors must be flat.

    .venv/bin/python benchmarks/soak.py                        # 30 compressed min, SQLite, PostgreSQL
    .venv/bin/python benchmarks/soak.py --minutes 30 --db postgresql
    .venv/bin/python benchmarks/soak.py --minutes 6 --speed 10 --db sqlite   # tests/system/test_soak.py

**The engine is served for real.** `referrals serve` runs as it does in production: the
supervisor, a local Prefect server, the runner serving the `deliver`/`sweep`/`digest`
deployments on Prefect's own scheduler (each flow run a new process), and the uvicorn web app.
The soak drives it from outside, as its users would: coordinators launch and act through the
JSON API (`referrals token create`), partners answer through the links in the SMS and e-mails
that arrive at real receivers on loopback (tests/support/receivers.py: an aiosmtpd server, and an
HTTP server standing in for an SMS gateway, `json://`), and an operator runs the CLI
(`referrals import`, `advance`, `sweep`, `deliver`, `check`) beside the served schedule.

**What "compressed" means.** Every process runs on the real clock; no clock is faked or moved.
A delivery pass on a clock ahead of the others would see their leases as expired and send their
messages again: that would measure the harness, not the engine. So the brief's other option (CLI
passes with `--now` running ahead of the served ones) was not taken. `--speed C` (default 5)
compresses instead:

- the served schedule: `serve --every 300/C` (the clock's pass: the sweep, then delivery of what
  is still due; production: 300 s), and the runner's poll for due runs
  (`PREFECT_RUNNER_POLL_FREQUENCY`, 10 s) by C; messages are sent at once by the task worker
  (issue 21), as in production, so only retries and the sweep's timing are compressed;
- the retry backoff, in a copy of the province's config: first retry 60/C s, at most 6 h/C;
- the load of 30 minutes (`--launches` a minute through the API, an import of backdated
  referrals every 3 minutes, coordinator actions, CLI passes) in 30/C real minutes;
- the events, at the same compressed minutes: the SMS gateway down from 20 % to 37 % of the
  run (minutes 6 to 11 of 30), the database restarted at 50 %.

Not compressed: the delivery lease (`lease_seconds` of the config, read at set-up: a bound on
how late a dead sender's messages go out, not a cadence), and deadlines, which are working days
or hours: a compressed half hour crosses none. Instead, part of the launches are imported with a
`launched_at` in the past, chosen so that a reminder, overdue notice or escalation of the
emergency pathways (hours) falls due at a real moment inside the run, and working-day referrals
imported days late fire at the next sweep. Quiet hours are off in the config copy: the soak runs
at any hour, and at night it would otherwise hold every SMS until 07:00, by design.

Why C = 5 and not more: every served flow run is a new process (spawn, imports: 5-7 s on two
cores) and the runner runs two at once; before issue 21 (a delivery run every 60/C s besides
the sweep) `--deliver-every 2 --sweep-every 10` piled runs up and starved the sweep, and at
C = 10 runs were late. The results record the served runs and how many were late.

**The database restart.** PostgreSQL: a private cluster (initdb in a temporary directory, on
another port, run as `postgres`), stopped with `pg_ctl stop -m fast` (every connection cut) and
started again after a few seconds; the shared server on 5432 is never touched. SQLite has no
server, so its restart is the served tree's: every process of it (supervisor, Prefect server,
runner, flow runs, web app) killed with SIGKILL at once, then `referrals serve` started again.

**The end.** The load stops; the served engine runs on alone until nothing is due (at most 3
compressed minutes); serve is stopped with SIGTERM. Messages a killed or cut-off pass had leased
come back only when its lease expires: one last `referrals deliver --now <now + lease>` stands
in for that wait (repeated a day later on the clock while anything fails). Then `referrals
check`, `referrals outbox --json` (every message's status) and, per sent message, its channel,
recipient, subject and body read from the outbox against what each receiver got: a multiset
comparison, so a message that arrived twice counts as one duplicate and one sent but never
received as lost. The in-flight bound is the engine's own (`concurrency x WINDOW_PER_WORKER`,
32: the messages one pass may have sent and not yet recorded) times the delivery passes alive at
a disruption (a kill or a database stop; flow runs and CLI passes counted, sweeps included, so
it is an upper bound).

Memory and file descriptors: the resident set (`VmRSS`) and `/proc/PID/fd` of every process in
the served tree, every `Plan.sample` real seconds. The long-lived ones (supervisor, Prefect
server, runner, web) are judged over each life of the tree: RSS from a warm sample (a quarter
into the life, once imports and caches are in) to the last, at most +RSS_SLACK_MIB; open fds by
their floor (the fewest open at once) in the last third of the life against the middle third,
at most +FD_SLACK: connections of flow runs come and go, a leak raises the floor. Flow runs
themselves are short-lived processes: their count is reported. On PostgreSQL the engine's
connections to its database are sampled too.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import datetime as dt
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))
from harness import machine, write_results  # noqa: E402

from referrals.notifiers.background import WORKER_LIMIT  # noqa: E402
from referrals.usecases.referrals.importing import HEADER  # noqa: E402
from support.receivers import HttpSink, SmtpSink, free_port  # noqa: E402

SECRET = "soak-secret-0123456789abcdef0123456789abcdef0123"
TZ = "Asia/Ho_Chi_Minh"
LONG_LIVED = ("supervisor", "prefect-server", "runner", "web")
FD_SLACK = 8  # open fds a long-lived process may gain from its warm sample to its last
RSS_SLACK_MIB = 40.0  # resident MiB it may gain in that time
LINK = re.compile(r"/l/([a-z2-7]{14,24})\b")
ACTIONS = re.compile(r'name="action" value="(\w+)"')
CLOSED = {"completed", "rejected", "failed", "cancelled"}
# The clock's pass (runner.log), the task worker's passes and its first one (tasks.log).
SERVED_PASS = re.compile(
    r"(?:Flow run 'clock' - |Task run 'deliver-now-[\w-]+' - |first pass: )sent (\d+), "
    r"failed (\d+), dead (\d+)"
)


@dataclass
class Plan:
    """One soak run; times are compressed minutes unless they say `real`."""

    db: str = "sqlite"
    minutes: float = 30.0
    speed: float = 5.0
    launches: float = 8.0  # API launches per compressed minute
    actions: float = 3.0  # coordinators' API actions per compressed minute
    clients: int = 120  # clients per district, with consent for every service there
    outage: tuple[float, float] = (0.20, 0.37)  # SMS gateway down, as fractions of the run
    restart_at: float = 0.50
    downtime: float = 0.5  # how long the database (or the tree) stays down, compressed minutes
    settle: float = 3.0  # after the load, at most this long for the engine to catch up
    sample: float = 2.0  # real seconds between samples
    seed: int = 17

    def real(self, minutes: float) -> float:
        return minutes * 60.0 / self.speed


# ---------------------------------------------------------------------------------------------
# the private PostgreSQL cluster


def pg_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


class Cluster:
    """A PostgreSQL cluster of our own on a free port: restarting it disturbs no one else."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="soak-pg-"))
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/referrals"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / tool), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)}: {out.stderr.strip() or out.stdout}")
        return out

    def init(self) -> None:
        data = str(self.dir / "data")
        self._run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start()
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "referrals"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        log = str(self.dir / "server.log")
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the served process tree


def processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, command line)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        found[int(entry.name)] = (ppid, cmd.strip())
    return found


def role_of(cmd: str) -> str:
    """What a process of the served tree is, from its command line (the most specific first:
    serve's children may be started through a wrapper module)."""
    if "prefect.engine" in cmd:
        return "flow-run"
    if "prefect server start" in cmd:
        return "prefect-server"
    if "uvicorn" in cmd and "referrals.web.app" in cmd:
        return "web"
    if "referrals.flows.task_worker" in cmd:
        return "task-worker"
    if "referrals-runner" in cmd or "referrals.cli.serving" in cmd:
        return "runner"
    if "referrals.cli serve" in cmd or "referrals serve" in cmd:
        return "supervisor"
    return "other: " + cmd[:80]


def proc_numbers(pid: int) -> dict[str, int] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kib": int(fields.get("VmRSS", "0 kB").split()[0]),
        "threads": int(fields.get("Threads", "0")),
        "fds": fds,
    }


class Served:
    """`referrals serve` and the tree of processes under it."""

    def __init__(self, plan: Plan, env: dict[str, str], work: Path) -> None:
        self.env, self.work = env, work
        self.web_port, self.prefect_port = int(env["SOAK_WEB_PORT"]), free_port()
        self.every = max(1, round(300 / plan.speed))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts: list[float] = []  # real seconds each start took until the web app answered

    def start(self) -> None:
        begun = time.monotonic()
        log = (self.work / "serve.out").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "referrals.cli",
                "serve",
                "--port",
                str(self.web_port),
                "--prefect-port",
                str(self.prefect_port),
                "--every",
                str(self.every),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve stopped at start:\n{self.tail()}")
            status, _ = request(self.web_port, "GET", "/login", timeout=2)
            if status == 200 and "runner" in {r for _, r in self.tree()}:
                self.starts.append(round(time.monotonic() - begun, 1))
                return
            time.sleep(0.5)
        raise RuntimeError(f"serve did not answer within 180 s:\n{self.tail()}")

    def tree(self) -> list[tuple[int, str]]:
        """(pid, role) of the supervisor and everything under it."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        table = processes()
        children: dict[int, list[int]] = collections.defaultdict(list)
        for pid, (ppid, _) in table.items():
            children[ppid].append(pid)
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            if pid in table:
                out.append((pid, role_of(table[pid][1])))
                todo += children.get(pid, [])
        return out

    def kill(self) -> int:
        """SIGKILL every process of the tree at once (a crash); returns the flow runs killed."""
        tree = self.tree()
        for pid, _ in reversed(tree):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid, _ in tree):
            time.sleep(0.2)
        return sum(role == "flow-run" for _, role in tree)

    def stop(self) -> float | None:
        """SIGTERM, as systemd would; the seconds it took, or None if it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        begun = time.monotonic()
        tree = self.tree()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid, _ in tree):
            time.sleep(0.2)
        return round(time.monotonic() - begun, 1)

    def tail(self, lines: int = 30) -> str:
        out = []
        for name in ("serve.out", "data/logs/runner.log", "data/logs/web.log"):
            path = self.work / name
            if path.exists():
                out.append(f"--- {name}")
                out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)

    def prefect_runs(self) -> dict[str, dict[str, int]]:
        """Served flow runs by flow and state, and how many scheduled ones are late."""
        out: dict[str, dict[str, int]] = {}
        now = dt.datetime.now(dt.UTC).isoformat()
        for flow in ("clock",):
            counts = {}
            for state in ("COMPLETED", "FAILED", "CRASHED", "RUNNING", "SCHEDULED"):
                body: dict[str, Any] = {
                    "flows": {"name": {"any_": [flow]}},
                    "flow_runs": {"state": {"type": {"any_": [state]}}},
                }
                if state == "SCHEDULED":
                    body["flow_runs"]["expected_start_time"] = {"before_": now}
                status, data = request(
                    self.prefect_port, "POST", "/api/flow_runs/count", body=body, timeout=20
                )
                counts[state.lower() if state != "SCHEDULED" else "late"] = (
                    int(data) if status == 200 else -1
                )
            out[flow] = counts
        return out


# ---------------------------------------------------------------------------------------------
# HTTP, the CLI, the database


def request(
    port: int,
    method: str,
    path: str,
    *,
    body: Any = None,
    form: dict[str, str] | None = None,
    token: str | None = None,
    source: str | None = None,
    timeout: float = 30,
) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body), or (0, why) if it never answered."""
    headers = {}
    payload = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        payload, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    elif form is not None:
        payload = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        conn.request(method, path, body=payload, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}".encode()
    finally:
        conn.close()


def cli(env: dict[str, str], *args: str, user: str = "admin", timeout: float = 300) -> Any:
    """`referrals ARGS` in a subprocess: (exit status, stdout, stderr, seconds)."""
    begun = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "referrals.cli", *args],
        env={**env, "REFERRALS_USER": user},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out.returncode, out.stdout, out.stderr.strip(), round(time.monotonic() - begun, 2)


def connect(url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(url, pool_pre_ping=True)


def due_messages(engine: Any) -> int | None:
    """Messages a served pass should still send now (due, not held by a lease)."""
    from sqlalchemy import text

    try:
        with engine.connect() as c:
            return c.execute(
                text(
                    "SELECT count(*) FROM notification WHERE status IN ('queued', 'failed') "
                    "AND next_attempt_at <= :now AND (lease_until IS NULL OR lease_until <= :now)"
                ),
                {"now": dt.datetime.now(dt.UTC).replace(tzinfo=None)},
            ).scalar_one()
    except Exception:
        return None


def engine_connections(engine: Any) -> int | None:
    from sqlalchemy import text

    try:
        with engine.connect() as c:
            return c.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = 'referrals' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# set-up: the province's config (compressed), users, tokens, clients with consents


def compressed_config(plan: Plan, work: Path) -> Path:
    """A copy of the bundled province with the retry backoff compressed and quiet hours off."""
    import yaml

    source = ROOT / "referrals" / "config" / "khanh-hoa"
    target = work / "config"
    shutil.copytree(source, target)
    path = target / "province.yaml"
    province = yaml.safe_load(path.read_text())
    delivery = province.setdefault("delivery", {})
    delivery["quiet_hours"] = "none"
    delivery["first_retry_seconds"] = max(
        1, round(delivery.get("first_retry_seconds", 60) / plan.speed)
    )
    delivery["max_retry_seconds"] = max(
        1, round(delivery.get("max_retry_seconds", 21600) / plan.speed)
    )
    path.write_text(yaml.safe_dump(province, allow_unicode=True, sort_keys=False))
    for partner in (partners := yaml.safe_load((target / "partners.yaml").read_text()))["partners"]:
        for contact in partner.get("contacts", []):
            contact["quiet_hours"] = "none"
    (target / "partners.yaml").write_text(
        yaml.safe_dump(partners, allow_unicode=True, sort_keys=False)
    )
    return target


def emergency_rungs(config: Path) -> dict[str, list[tuple[str, float]]]:
    """Per emergency pathway: its acknowledge step's alerts, in hours after the launch."""
    import yaml

    out = {}
    for p in yaml.safe_load((config / "pathways.yaml").read_text())["pathways"]:
        first = p["steps"][0]
        ladder = first.get("ladder") or p.get("ladder") or {}
        if "hours" not in first["due"]:
            continue
        due = float(first["due"]["hours"])
        rungs = []
        if ladder.get("remind_before") and "hours" in ladder["remind_before"]:
            rungs.append(("reminder", due - ladder["remind_before"]["hours"]))
        if ladder.get("overdue", True):
            rungs.append(("overdue", due))
        for level, rung in enumerate(ladder.get("escalate", []), start=1):
            if "hours" in rung["after"]:
                rungs.append((f"escalation {level}", due + rung["after"]["hours"]))
        out[p["key"]] = rungs
    return out


def setup_child(clients: int) -> None:
    """In the engine's environment: tokens for the two coordinators, clients with consents for
    every service of their district, and the engine's in-flight bound. Prints JSON."""
    from sqlalchemy import select

    from referrals.infra.db import transaction
    from referrals.infra.runtime import Runtime
    from referrals.models.directory import Organization, Service, ServiceArea
    from referrals.models.people import ConsentMethod, User
    from referrals.models.policy import SYSTEM
    from referrals.notifiers import delivery
    from referrals.usecases.clients.clients import ClientIn, add_client, grant_consent
    from referrals.usecases.staff.tokens import issue_token

    rt = Runtime()
    now = dt.datetime.now(dt.UTC)
    out: dict[str, Any] = {"tokens": {}, "slots": {}, "services": {}}
    with transaction(rt.engine) as s:
        users = {u.username: u for u in s.scalars(select(User))}
        offered = s.execute(
            select(ServiceArea.area_key, Service.pathway_key, Organization.slug)
            .join(Service, Service.id == ServiceArea.service_id)
            .join(Organization, Organization.id == Service.organization_id)
            .where(Service.active, Organization.active)
            .order_by(ServiceArea.area_key, Service.pathway_key, Organization.slug)
        ).all()
        for district, coordinator in (("nha-trang", "dieuphoi.nt"), ("ninh-hoa", "dieuphoi.nh")):
            pairs = sorted({(p, o) for a, p, o in offered if a in (district, "khanh-hoa")})
            out["services"][district] = pairs
            out["tokens"][district] = issue_token(
                s, username=coordinator, name="soak", by=SYSTEM, now=now
            )
            slots = out["slots"][district] = []
            for i in range(clients):
                # names a letter apart would be taken for the same person (a likely namesake)
                word = hashlib.sha1(f"{district}{i}".encode()).hexdigest()[:8]
                data = ClientIn(name=f"Soak {district} {word}", district=district)
                client = add_client(
                    s, data=data, ctx=rt.ctx, created_by=users[coordinator], now=now
                )
                by_pathway: dict[str, list[str]] = collections.defaultdict(list)
                for pathway, partner in pairs:
                    by_pathway[pathway].append(partner)
                for pathway, partners in sorted(by_pathway.items()):
                    # one partner per pathway: a second open referral for it would be refused
                    partner = partners[i % len(partners)]
                    grant_consent(
                        s,
                        client_code=client.code,
                        partner=partner,
                        purpose=pathway,
                        method=ConsentMethod.written,
                        by=users[coordinator],
                        now=now,
                    )
                    slots.append((client.code, pathway, partner))
    cfg = rt.province.province.delivery
    window = getattr(delivery, "WINDOW_PER_WORKER", 4)
    out["in_flight_per_pass"] = cfg.concurrency * window
    out["lease_seconds"] = cfg.lease_seconds
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# the load


@dataclass
class Tally:
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def error(self, key: str) -> None:
        with self.lock:
            self.errors[key[:120]] += 1


class Soak:
    def __init__(self, plan: Plan, work: Path) -> None:
        self.plan, self.work = plan, work
        self.rng = random.Random(plan.seed)
        self.tally = Tally()
        self.stop_load = threading.Event()
        self.stop_sampling = threading.Event()
        self.t0 = 0.0
        self.samples: list[dict[str, Any]] = []
        self.segment = 0
        self.starting = False  # the tree is starting again: not sampled, start-up is no leak
        self.events: list[dict[str, Any]] = []
        self.operator_log: list[dict[str, Any]] = []
        self.cli_delivering = 0
        self.api_codes: dict[str, list[str]] = {"nha-trang": [], "ninh-hoa": []}
        self.answered: set[str] = set()

    # the compressed clock
    def minute(self) -> float:
        return (time.monotonic() - self.t0) * self.plan.speed / 60.0

    def sleep_until(self, minute: float) -> None:
        while not self.stop_load.is_set() and self.minute() < minute:
            time.sleep(min(0.2, max(0.01, self.plan.real(minute - self.minute()))))

    def event(self, what: str, **data: Any) -> None:
        self.events.append({"minute": round(self.minute(), 2), "what": what, **data})
        print(f"  [{self.minute():5.1f} min] {what} {data or ''}", flush=True)

    # -- coordinators, through the API -----------------------------------------------------
    def coordinators(self) -> None:
        """Launches at `Plan.launches` a compressed minute."""
        self._at_rate(self.plan.launches, self.launch, "launch")

    def caseworkers(self) -> None:
        """Coordinators' actions on referrals at `Plan.actions` a compressed minute."""
        self._at_rate(self.plan.actions, self.act, "act")

    def _at_rate(self, per_minute: float, work: Any, name: str) -> None:
        done = 0
        while not self.stop_load.is_set():
            if done >= per_minute * self.minute():
                time.sleep(0.05)
                continue
            done += 1
            try:
                work()
            except Exception as exc:  # the load goes on; the error is counted
                self.tally.error(f"{name}: {exc!r}")

    def launch(self) -> None:
        district = self.rng.choice(list(self.slots))
        slots = self.slots[district]
        if not slots:
            return self.tally.error("no client left to launch for")
        client, pathway, partner = slots.pop(self.rng.randrange(len(slots)))
        body = {
            "client": client,
            "pathway": pathway,
            "partner": partner,
            "urgent": self.rng.random() < 0.2,
        }
        status, data = request(
            self.web_port, "POST", "/api/v1/referrals", body=body, token=self.tokens[district]
        )
        if status == 201:
            self.api_codes[district].append(json.loads(data)["code"])
            self.tally.add("api launches")
        else:
            self.tally.add("api launches refused or failed")
            self.tally.error(f"launch {status}: {data[:80]!r}")

    def act(self) -> None:
        district = self.rng.choice(list(self.api_codes))
        codes = self.api_codes[district]
        if not codes:
            return
        code = self.rng.choice(codes)
        token = self.tokens[district]
        status, data = request(self.web_port, "GET", f"/api/v1/referrals/{code}", token=token)
        if status != 200:
            self.tally.error(f"read {status}: {data[:80]!r}")
            return
        ref = json.loads(data)
        if ref.get("status") in CLOSED:
            with contextlib.suppress(ValueError):
                codes.remove(code)
            return
        active = next((s for s in ref.get("steps", []) if s.get("status") == "active"), None)
        acknowledged = active is not None and active.get("key") != "acknowledge"
        dice = self.rng.random()
        if active and (active.get("actor") == "coordinator" or (acknowledged and dice < 0.6)):
            # the coordinator's own step, or a partner's reported on the phone
            action = {"action": "done", "version": ref["version"]}
        elif dice > 0.8:
            action = {"action": "cancel", "reason": "no_longer_needed", "version": ref["version"]}
        else:
            return
        status, data = request(
            self.web_port, "POST", f"/api/v1/referrals/{code}/actions", body=action, token=token
        )
        self.tally.add(f"api {action['action']} {status}")
        if status not in (200, 409):
            self.tally.error(f"act {status}: {data[:80]!r}")

    # -- partners, through the links they received ----------------------------------------
    def partners(self) -> None:
        read_sms = read_mail = 0
        waiting: collections.deque[tuple[float, str, str]] = collections.deque()
        addresses: dict[str, str] = {}
        while not self.stop_load.is_set():
            hits, mails = self.http.hits[read_sms:], self.smtp.mails[read_mail:]
            read_sms, read_mail = read_sms + len(hits), read_mail + len(mails)
            arrived = [(h.payload.get("to") or h.path, h.payload.get("message", "")) for h in hits]
            arrived += [(",".join(m.to), m.body) for m in mails]
            for who, text in arrived:
                for token in LINK.findall(text):
                    if token in self.answered:
                        continue
                    self.answered.add(token)
                    if self.rng.random() < 0.3:  # some prompts go unanswered: the ladder fires
                        self.tally.add("links left unanswered")
                        continue
                    if who not in addresses:  # each recipient answers from an address of its own
                        n = len(addresses) + 2
                        addresses[who] = f"127.0.{n // 250}.{n % 250 + 2}"
                    waiting.append((time.monotonic(), token, addresses[who]))
            while waiting and waiting[0][0] <= time.monotonic() and not self.stop_load.is_set():
                _, token, source = waiting.popleft()
                try:
                    later = self.answer(token, source)
                except Exception as exc:
                    self.tally.error(f"partner: {exc!r}")
                    later = None
                if later:
                    waiting.append((time.monotonic() + later, token, source))
            time.sleep(0.2)

    def answer(self, token: str, source: str) -> float | None:
        """Open the link's page and answer it; seconds to wait before trying again, if any."""
        status, page = request(self.web_port, "GET", f"/l/{token}", source=source)
        if status == 429:
            return 10.0
        if status != 200:
            self.tally.add(f"link page {status}")
            return 5.0 if status in (0, 500, 502, 503) else None
        actions = ACTIONS.findall(page.decode(errors="replace"))
        if "accept" in actions:
            form = (
                {"action": "decline", "reason": "partner_lacks_capacity", "confirm": "true"}
                if self.rng.random() < 0.15
                else {"action": "accept"}
            )
        elif "done" in actions:
            today = dt.datetime.now(dt.UTC).astimezone(self.tz).date().isoformat()
            form = {"action": "done", "on": today}
        else:
            self.tally.add("links already answered or closed")
            return None
        status, _ = request(self.web_port, "POST", f"/l/{token}", form=form, source=source)
        if status == 429:
            return 10.0
        self.tally.add(f"link {form['action']} {status}")
        return 5.0 if status in (0, 500, 502, 503) else None

    # -- the operator, at the command line -------------------------------------------------
    def operator(self) -> None:
        every = {"import": 3.0, "advance": 3.0, "sweep": 5.0, "deliver": 5.0, "check": 10.0}
        first = {"import": 1.0, "advance": 2.0, "sweep": 2.5, "deliver": 4.0, "check": 5.0}
        jobs = sorted(
            (at, name)
            for name in every
            for at in _frange(first[name], self.plan.minutes, every[name])
        )
        for at, name in jobs:
            self.sleep_until(at)
            if self.stop_load.is_set():
                return
            begun = self.minute()
            try:
                result = getattr(self, f"op_{name}")()
            except Exception as exc:
                result = {"rc": None, "error": repr(exc)}
            self.operator_log.append({"minute": round(begun, 2), "op": name, **result})

    def op_import(self) -> dict[str, Any]:
        """Backdated referrals: each emergency one has an alert falling due inside the run."""
        tz = self.tz
        now = dt.datetime.now(tz)
        left = max(self.plan.real(self.plan.minutes - self.minute()), 5.0)
        results = {}
        for district, user in (("nha-trang", "dieuphoi.nt"), ("ninh-hoa", "dieuphoi.nh")):
            rows = []
            for pathway, rungs in self.rungs.items():
                partners = [o for p, o in self.services[district] if p == pathway]
                if not partners:
                    continue
                kind, hours = self.rng.choice(rungs)
                falls_in = self.rng.uniform(0.05, 0.9) * left
                launched = now + dt.timedelta(seconds=falls_in) - dt.timedelta(hours=hours)
                rows.append((pathway, self.rng.choice(partners), launched, kind))
            pairs = [p for p in self.services[district] if p[0] not in self.rungs]
            pathway, partner = self.rng.choice(pairs)
            rows.append((pathway, partner, now - dt.timedelta(days=self.rng.randint(3, 12)), ""))
            path = self.work / f"import-{district}-{len(self.operator_log)}.csv"
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(HEADER)  # the import's own header
                for i, (pathway, partner, launched, _) in enumerate(rows):
                    name = f"Soak import {len(self.operator_log)} {district} {i}"
                    stamp = launched.replace(tzinfo=None).isoformat(timespec="seconds")
                    w.writerow([name, "", "", district, pathway, partner, "written", stamp, ""])
            rc, _, err, took = cli(self.env, "import", str(path), "--json", user=user)
            if rc == 0:
                self.tally.add("imported launches", len(rows))
            else:
                self.tally.error(f"import: {err[-100:]}")
            results[district] = {"rc": rc, "seconds": took, "rows": len(rows)}
        return results

    def op_advance(self) -> dict[str, Any]:
        codes = self.api_codes["nha-trang"]
        if not codes:
            return {"rc": None}
        code = self.rng.choice(codes)
        rc, out, err, took = cli(
            self.env, "advance", code, "--action", "cancel", user="dieuphoi.nt"
        )
        self.tally.add(f"cli cancel rc={rc}")
        return {"rc": rc, "seconds": took, "out": (out or err)[-100:]}

    def op_sweep(self) -> dict[str, Any]:
        rc, out, err, took = cli(self.env, "sweep", "--via", "direct", "--json")
        return {"rc": rc, "seconds": took, "summary": _json(out) or err[-100:]}

    def op_deliver(self) -> dict[str, Any]:
        self.cli_delivering += 1
        try:
            rc, out, err, took = cli(self.env, "deliver", "--via", "direct", "--json")
        finally:
            self.cli_delivering -= 1
        return {"rc": rc, "seconds": took, "summary": _json(out) or err[-100:]}

    def op_check(self) -> dict[str, Any]:
        rc, out, err, took = cli(self.env, "check", "--json")
        return {"rc": rc, "seconds": took, "check": _json(out) or err[-200:]}

    # -- sampling ----------------------------------------------------------------------------
    def sampler(self) -> None:
        while not self.stop_sampling.is_set():
            self.take_sample()
            self.stop_sampling.wait(self.plan.sample)

    def take_sample(self) -> None:
        t = round(time.monotonic() - self.t0, 1)
        self.samples.append(
            {"t": t, "segment": self.segment, "role": "load", "n": os.getloadavg()[0]}
        )
        for pid, role in [] if self.starting else self.served.tree():
            numbers = proc_numbers(pid)
            if numbers:
                self.samples.append(
                    {"t": t, "segment": self.segment, "pid": pid, "role": role, **numbers}
                )
        if self.cluster is not None:
            self.samples.append(
                {
                    "t": t,
                    "segment": self.segment,
                    "role": "pg-connections",
                    "n": engine_connections(self.pg_admin),
                }
            )

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        plan = self.plan
        self.cluster: Cluster | None = None
        self.pg_admin = None
        if plan.db == "postgresql":
            self.cluster = Cluster()
            self.cluster.init()
            url = self.cluster.url
            self.pg_admin = connect(self.cluster.url.rsplit("/", 1)[0] + "/postgres")
        else:
            url = f"sqlite:///{self.work / 'engine.db'}"
        self.smtp, self.http = SmtpSink().start(), HttpSink().start()
        config = compressed_config(plan, self.work)
        self.rungs = emergency_rungs(config)
        for d in ("data", "tmp", "client-prefect"):
            (self.work / d).mkdir()
        self.web_port = free_port()
        env = {
            **os.environ,
            "REFERRALS_DATABASE_URL": url,
            "REFERRALS_DATA_DIR": str(self.work / "data"),
            "REFERRALS_SECRET_KEY": SECRET,
            "REFERRALS_CONFIG_DIR": str(config),
            "REFERRALS_EMAIL_URL": self.smtp.url(),
            "REFERRALS_SMS_URL": self.http.url(),
            "REFERRALS_PUBLIC_URL": f"http://127.0.0.1:{self.web_port}",
            "REFERRALS_TIMEZONE": TZ,
            "PREFECT_HOME": str(self.work / "client-prefect"),
            "PREFECT_RUNNER_POLL_FREQUENCY": str(max(1, round(10 / plan.speed))),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "TMPDIR": str(self.work / "tmp"),
            "SOAK_WEB_PORT": str(self.web_port),
        }
        for name in ("PREFECT_API_URL", "REFERRALS_USER", "REFERRALS_GATEWAY_LIMIT"):
            env.pop(name, None)
        self.env = env
        from zoneinfo import ZoneInfo

        self.tz = ZoneInfo(TZ)
        self.served = Served(plan, env, self.work)
        threads: list[threading.Thread] = []
        result: dict[str, Any] = {"db": plan.db, "plan": vars(plan).copy()}
        try:
            rc, _, err, _ = cli(env, "init", "--demo")
            if rc != 0:
                raise RuntimeError(f"init: {err}")
            child = subprocess.run(
                [sys.executable, __file__, "--setup", str(plan.clients)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode != 0:
                raise RuntimeError(f"set-up: {child.stderr[-2000:]}")
            setup = json.loads(child.stdout.strip().splitlines()[-1])
            self.tokens, self.services = setup["tokens"], setup["services"]
            self.services = {d: [tuple(p) for p in v] for d, v in self.services.items()}
            self.slots = {d: [tuple(s) for s in v] for d, v in setup["slots"].items()}
            result["in_flight_per_pass"] = setup["in_flight_per_pass"]
            result["lease_seconds"] = setup["lease_seconds"]

            self.t0 = time.monotonic()
            self.served.start()
            self.t0 = time.monotonic()  # the compressed clock starts once the engine is up
            self.event("served", start_seconds=self.served.starts[-1])
            for target in (
                self.sampler,
                self.coordinators,
                self.caseworkers,
                self.partners,
                self.operator,
            ):
                threads.append(threading.Thread(target=target, daemon=True, name=target.__name__))
                threads[-1].start()
            result["disruptions"] = self.timeline()
            self.stop_load.set()
            for thread in threads[1:]:
                thread.join(120)
            self.event("load stopped")
            result["settle"] = self.settle(url)
            self.stop_sampling.set()
            threads[0].join(30)
            self.take_sample()  # the last sample: the engine idle, before it is stopped
            result["prefect_runs"] = self.served.prefect_runs()
            result["serve_stop_seconds"] = self.served.stop()
            result["serve_start_seconds"] = self.served.starts
            result["drain"] = self.drain(result["lease_seconds"])
            rc, out, err, _ = cli(env, "check", "--json")
            result["check"] = {"rc": rc, **(_json(out) or {"stderr": err[-500:]})}
            rc, out, err, _ = cli(env, "outbox", "--json", "--limit", "0")
            outbox = _json(out) or []
            result["outbox"] = dict(collections.Counter(m["status"] for m in outbox))
            result["messages"] = self.account(url)
            result["load"] = dict(self.tally.counts)
            result["errors"] = dict(self.tally.errors.most_common(15))
            result["operator"] = self.operator_log
            result["events"] = self.events
            result["memory"] = self.flatness()
            result["pg_connections"] = self.connections()
            result["served_log_errors"] = self.log_errors()
            result["delivered_by"] = self.delivered_by(result)
            loads = [s["n"] for s in self.samples if s.get("role") == "load"]
            result["load_average"] = {
                "mean": round(sum(loads) / max(1, len(loads)), 2),
                "max": max(loads, default=0),
            }
        finally:
            self.stop_load.set()
            self.stop_sampling.set()
            if self.served.proc is not None and self.served.proc.poll() is None:
                self.served.kill()
            self.smtp.stop()
            self.http.stop()
            if self.pg_admin is not None:
                self.pg_admin.dispose()
            if self.cluster is not None:
                self.cluster.destroy()
        return result

    def timeline(self) -> list[dict[str, Any]]:
        plan = self.plan
        down, up = (plan.minutes * f for f in plan.outage)
        disruptions = []
        steps = sorted(
            [(down, "sms down"), (up, "sms up"), (plan.minutes * plan.restart_at, "restart")]
        )
        for at, what in steps:
            self.sleep_until(at)
            if what == "sms down":
                self.http.stop()
                self.event("SMS gateway down")
            elif what == "sms up":
                self.http.start()
                self.event("SMS gateway up")
            else:
                disruptions.append(self.restart())
        self.sleep_until(plan.minutes)
        return disruptions

    def restart(self) -> dict[str, Any]:
        """The database's restart (PostgreSQL), or the served tree's crash and restart (SQLite)."""
        tree = self.served.tree()
        runs = sum(role == "flow-run" for _, role in tree)
        # a task worker's passes are threads, not processes: count the most it runs at once
        workers = sum(role == "task-worker" for _, role in tree)
        passes = runs + self.cli_delivering + workers * WORKER_LIMIT
        downtime = self.plan.real(self.plan.downtime)
        if self.cluster is not None:
            begun = time.monotonic()
            self.cluster.stop("fast")
            self.event("database stopped", passes_alive=passes)
            time.sleep(downtime)
            self.cluster.start()
            self.event("database started", down_seconds=round(time.monotonic() - begun, 1))
            return {"kind": "postgresql restart", "passes_alive": passes}
        self.starting = True
        killed = self.served.kill()
        self.segment += 1
        self.event("served tree killed (SIGKILL)", flow_runs=killed, passes_alive=passes)
        time.sleep(downtime)
        try:
            self.served.start()
        finally:
            self.starting = False
        self.t0 += self.served.starts[-1]  # the compressed clock waits while the tree starts
        self.event("served again", start_seconds=self.served.starts[-1])
        return {"kind": "served tree killed", "passes_alive": passes, "flow_runs_killed": killed}

    def served_passes(self) -> int:
        log = self.work / "data/logs/runner.log"
        return len(SERVED_PASS.findall(log.read_text(errors="replace"))) if log.exists() else 0

    def settle(self, url: str) -> dict[str, Any]:
        """The engine alone until nothing is due and a served delivery pass has run since the
        load stopped (or the settle time is up: at least 90 s if no served pass ran yet)."""
        engine = connect(url)
        begun = time.monotonic()
        deadline = begun + self.plan.real(self.plan.settle)
        before, left = self.served_passes(), None
        try:
            while time.monotonic() < max(deadline, begun + (90 if not before else 0)):
                left = due_messages(engine)
                if left == 0 and self.served_passes() > before:
                    break
                time.sleep(1)
        finally:
            engine.dispose()
        self.event("settled", due=left, seconds=round(time.monotonic() - begun, 1))
        return {"due_left": left, "seconds": round(time.monotonic() - begun, 1)}

    def drain(self, lease: int) -> list[dict[str, Any]]:
        """With serve stopped: one pass on a clock past every lease (and retry), until done."""
        passes = []
        later = lease + 1
        for _ in range(6):
            when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=later)
            rc, out, err, took = cli(
                self.env, "deliver", "--via", "direct", "--json", "--now", when.isoformat()
            )
            summary = _json(out) or {"stderr": err[-300:]}
            passes.append({"rc": rc, "seconds": took, "now": when.isoformat(), **summary})
            if rc != 0 or not summary.get("failed"):
                break
            later += 86400  # anything that failed again: its retry is due by then
        return passes

    def account(self, url: str) -> dict[str, Any]:
        """Each sent message against what arrived: (channel, to, subject, body) as multisets."""
        from sqlalchemy import text

        engine = connect(url)
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT n.channel, c.phone, COALESCE(c.email, u.email), n.subject, n.body "
                    "FROM notification n LEFT JOIN contact c ON c.id = n.contact_id "
                    "LEFT JOIN \"user\" u ON u.id = n.user_id WHERE n.status = 'sent'"
                )
            ).all()
            by_status = dict(
                c.execute(text("SELECT status, count(*) FROM notification GROUP BY status")).all()
            )
            # `check`'s rule "finished messages hold no lease": which rows, if any, and why
            leased = c.execute(
                text(
                    "SELECT id, status, template, channel, attempts, last_error FROM notification "
                    "WHERE status IN ('sent', 'dead', 'cancelled') AND lease_token IS NOT NULL"
                )
            ).all()
        engine.dispose()
        sent = collections.Counter(
            _key(ch, phone if ch == "sms" else email, subject, body)
            for ch, phone, email, subject, body in rows
        )
        arrived = collections.Counter(
            _key("sms", h.payload.get("to", ""), None, h.payload.get("message", ""))
            for h in self.http.hits
        )
        arrived += collections.Counter(
            _key("email", ",".join(m.to), m.subject, m.body) for m in self.smtp.mails
        )
        lost = sent - arrived
        extra = arrived - sent
        return {
            "by_status": by_status,
            "sent": sum(sent.values()),
            "arrived": sum(arrived.values()),
            "arrived_sms": len(self.http.hits),
            "arrived_email": len(self.smtp.mails),
            "lost": sum(lost.values()),
            "duplicates": sum(extra.values()),
            "lost_examples": [list(k)[:3] for k in list(lost)[:3]],
            "duplicate_examples": [list(k)[:3] for k in list(extra)[:3]],
            "finished_with_lease": [list(row) for row in leased],
        }

    def flatness(self) -> dict[str, Any]:
        """Per long-lived process (per life of the tree): first, warm and last samples."""
        out: dict[str, Any] = {"processes": [], "flow_runs_max": 0}
        by_t = collections.Counter(s["t"] for s in self.samples if s.get("role") == "flow-run")
        out["flow_runs_max"] = max(by_t.values(), default=0)
        groups: dict[tuple[int, int, str], list[dict[str, Any]]] = collections.defaultdict(list)
        for s in self.samples:
            if s.get("role") in LONG_LIVED:
                groups[(s["segment"], s["pid"], s["role"])].append(s)
        for (segment, pid, role), series in sorted(groups.items()):
            t0, t1 = series[0]["t"], series[-1]["t"]
            warm = next(s for s in series if s["t"] >= t0 + (t1 - t0) / 4)
            last = series[-1]
            # the floor of open fds (fewest at once) in the middle and the last third of the
            # life: flow runs' connections come and go, a leak raises the floor
            middle = [
                s["fds"] for s in series if t0 + (t1 - t0) / 3 <= s["t"] < t0 + (t1 - t0) * 2 / 3
            ]
            end = [s["fds"] for s in series if s["t"] >= t0 + (t1 - t0) * 2 / 3]
            out["processes"].append(
                {
                    "segment": segment,
                    "role": role,
                    "pid": pid,
                    "samples": len(series),
                    "seconds": round(t1 - t0, 1),
                    "rss_mib": [_mib(series[0]), _mib(warm), _mib(last)],
                    "rss_peak_mib": max(_mib(s) for s in series),
                    "fds": [series[0]["fds"], warm["fds"], last["fds"]],
                    "fds_peak": max(s["fds"] for s in series),
                    "threads": [series[0]["threads"], warm["threads"], last["threads"]],
                    "rss_growth_mib": round(_mib(last) - _mib(warm), 1),
                    "fd_growth": last["fds"] - warm["fds"],
                    "fd_floor_growth": min(end or [0]) - min(middle or end or [0]),
                    "series": [[s["t"], _mib(s), s["fds"], s["threads"]] for s in series],
                }
            )
        last_life = [p for p in out["processes"] if p["segment"] == self.segment]
        out["flat"] = all(
            p["fd_floor_growth"] <= FD_SLACK and p["rss_growth_mib"] <= RSS_SLACK_MIB
            for p in last_life
        )
        out["bounds"] = {"fds": FD_SLACK, "rss_mib": RSS_SLACK_MIB}
        return out

    def connections(self) -> dict[str, Any] | None:
        series = [s["n"] for s in self.samples if s.get("role") == "pg-connections"]
        known = [n for n in series if n is not None]
        if not known:
            return None
        return {"first": known[0], "max": max(known), "last": known[-1], "samples": len(series)}

    def delivered_by(self, result: dict[str, Any]) -> dict[str, int]:
        """Messages sent by the served passes (the clock's and the task worker's logs), the
        CLI's and the drain."""
        logs = [self.work / "data/logs/runner.log", self.work / "data/logs/tasks.log"]
        text = "\n".join(p.read_text(errors="replace") for p in logs if p.exists())
        served = [tuple(map(int, m.groups())) for m in SERVED_PASS.finditer(text)]
        cli_passes = [
            o["summary"] for o in result["operator"] if o["op"] == "deliver" and o["rc"] == 0
        ]
        return {
            "served passes": len(served),
            "served": sum(p[0] for p in served),
            "served failed attempts": sum(p[1] for p in served),
            "cli": sum(p.get("sent", 0) for p in cli_passes if isinstance(p, dict)),
            "drain": sum(p.get("sent", 0) for p in result["drain"]),
        }

    def log_errors(self) -> dict[str, int]:
        """Tracebacks' last lines in the served logs, counted."""
        found: collections.Counter[str] = collections.Counter()
        logs = self.work / "data/logs"
        for path in [logs / "runner.log", logs / "web.log", logs / "tasks.log"]:
            if not path.exists():
                continue
            lines = path.read_text(errors="replace").splitlines()
            for i, line in enumerate(lines):
                if line.startswith("Traceback"):
                    j = i + 1
                    while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                        j += 1
                    if j < len(lines):
                        found[f"{path.name}: {lines[j][:150]}"] += 1
        return dict(found.most_common(12))


def _frange(start: float, stop: float, step: float) -> list[float]:
    out, x = [], start
    while x < stop:
        out.append(x)
        x += step
    return out


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return None


def _key(channel: str, to: str | None, subject: str | None, body: str | None) -> tuple[str, ...]:
    who = re.sub(r"\D", "", to or "") if channel == "sms" else (to or "").strip().lower()
    return (channel, who, " ".join((subject or "").split()), " ".join((body or "").split()))


def _mib(sample: dict[str, Any]) -> float:
    return round(sample["rss_kib"] / 1024, 1)


# ---------------------------------------------------------------------------------------------


def run(plan: Plan, work: Path) -> dict[str, Any]:
    """One soak in `work` (an empty directory); the results as a dict."""
    begun = time.monotonic()
    result = Soak(plan, work).run()
    result["wall_seconds"] = round(time.monotonic() - begun, 1)
    result["duplicate_bound"] = result["in_flight_per_pass"] * sum(
        d["passes_alive"] for d in result.get("disruptions", [])
    )
    return result


def summary(r: dict[str, Any]) -> str:
    m, mem = r["messages"], r["memory"]
    lines = [
        f"{r['db']}: {r['plan']['minutes']:g} compressed minutes at x{r['plan']['speed']:g} "
        f"in {r['wall_seconds']:.0f} s of real time",
        f"  load: {json.dumps(r['load'], ensure_ascii=False)}",
        f"  served runs: {json.dumps(r['prefect_runs'])}",
        f"  check: rc={r['check']['rc']} ok={r['check'].get('ok')}",
        f"  outbox: {r['outbox']}",
        f"  messages: sent {m['sent']}, arrived {m['arrived']} (SMS {m['arrived_sms']}, e-mail "
        f"{m['arrived_email']}), lost {m['lost']}, duplicates {m['duplicates']} "
        f"(bound {r['duplicate_bound']})",
    ]
    for p in mem["processes"]:
        lines.append(
            f"  life {p['segment']} {p['role']:<15} {p['seconds']:>6.0f} s  RSS MiB first/warm/last "
            f"{p['rss_mib']}  fds {p['fds']} (floor {p['fd_floor_growth']:+d})  "
            f"threads {p['threads']}"
        )
    lines.append(f"  delivered by: {r['delivered_by']}; load average {r['load_average']}")
    lines.append(
        f"  flat: {mem['flat']} (bounds {mem['bounds']}); flow runs at once: max "
        f"{mem['flow_runs_max']}; PostgreSQL connections: {r['pg_connections']}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="compressed minutes")
    parser.add_argument("--speed", type=float, default=5.0, help="compression factor")
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--launches", type=float, default=8.0, help="API launches a minute")
    parser.add_argument("--clients", type=int, default=120, help="clients per district")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--setup", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup is not None:
        return setup_child(args.setup)
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "runs": [],
    }
    for db in args.db:
        plan = Plan(
            db=db,
            minutes=args.minutes,
            speed=args.speed,
            launches=args.launches,
            clients=args.clients,
        )
        work = Path(tempfile.mkdtemp(prefix=f"soak-{db}-"))
        print(f"{db}: working in {work}", flush=True)
        try:
            r = run(plan, work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        results["runs"].append(r)
        print(summary(r), flush=True)
    write_results("soak", results)


if __name__ == "__main__":
    main()
