"""How long a partner waits for a new referral's SMS and e-mail: from the coordinator's
`POST /api/v1/referrals` to the message reaching a receiver, before and after issue 21 (a
message sent at once by a Prefect background task, a `clock` pass every 5 minutes), in the
same run; and what the schedule costs a province with nothing to do.

    .venv/bin/python benchmarks/bench_latency.py                       # everything (~23 min)
    .venv/bin/python benchmarks/bench_latency.py --n 6 --spacing 3 --idle-seconds 30 --idle-runs 1
    .venv/bin/python benchmarks/bench_latency.py --only embedded       # or --only cluster

**Embedded** (`referrals serve` as a real process tree, SQLite, its own Prefect server):

- before: `serve --no-at-once --every 60`: the clock's pass every minute, as the one-minute
  delivery pass used to be, and nothing sent in between;
- after: `serve --at-once --every 300`: the web app kicks the task worker's `deliver-now`
  background task after each launch commits; the clock every 5 minutes.

**Cluster** (tests/support/cluster.py: a Prefect server on PostgreSQL, the engine's database on
PostgreSQL, 2 process workers of the province's pool, a uvicorn web app started as the
`referrals-web@` unit would, with the same environment):

- before: deploy/prefect.yaml with `deliver-notifications` scheduled every 60 s and
  `sweep-deadlines` every 300 s (the schedule before issue 21; a copy of the file written to a
  temporary folder and deployed from the checkout) and the clock paused; no task worker;
- after: the `clock` deployment every 300 s (deliver and sweep paused: unscheduled, as in
  deploy/prefect.yaml), one task worker (`python -m referrals.flows.task_worker`) and the web
  app, both with `REFERRALS_DELIVER_AT_ONCE=true`.

In each of the four, N referrals (each a new client who consented, to the Nha Trang police for
ID papers, whose first contact has a phone and an e-mail address) are launched through the API
`--spacing` seconds apart on an absolute timetable (so some coincide with a scheduled pass),
after one warm-up launch that is reported apart (the web app's first kick loads Prefect). In
"after", a clock run is started halfway through (a clock pass coinciding with launches: its
process starting on the same two cores, its pass competing for the same leases), and the
slowest latency of the launches in the 20 s after it is reported too. The
SMS goes to an HTTP receiver on loopback (`json://`), the e-mail to an aiosmtpd server; each
arrival is stamped as the receiver stores it. Latency = arrival - the moment the request was
sent. Duplicates (a referral's message arriving twice at one recipient) and messages that
never arrived are counted. Who sent what comes from the logs: the task worker's task runs (its
`tasks.log`) and the scheduled passes (their flow runs' logs: serve's `runner.log`, or the
Prefect API on the cluster, where flow runs' output is not streamed).

**Idle cost** (nothing queued, nothing due):

- embedded: `serve --at-once --every E` (E = 20 s, so a few minutes hold many runs) for
  `--idle-seconds`; the clock runs completed in that window (Prefect API), the CPU of their
  processes (the runner's children: /proc utime+stime of those alive plus cutime+cstime of
  those reaped), and the CPU of the runner itself, the task worker, the web app and the Prefect
  server over the same window;
- cluster: after the "before" phase, with the schedules paused and the task worker started,
  `--idle-runs` runs each of `deliver-notifications`, `sweep-deadlines` and `clock`, one at a
  time, and the CPU of the workers' children per run; the task worker's CPU over that time.

Then per province and hour: before = 60 deliver runs + 12 sweep runs (72), after = 12 clock
runs + the task worker idling. Results: `results/latency-<date>.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests"), str(HERE)]

from harness import machine, write_results  # noqa: E402

from support.cluster import (  # noqa: E402
    FINAL,
    PG_ADMIN,
    PROVINCE,
    Cluster,
    drop_database,
    fast_config,
    fresh_database,
    wait_for,
)
from support.receivers import HttpSink, SmtpSink, free_port  # noqa: E402

SECRET = "bench-latency-secret-0123456789abcdef0123456789"
TZ = "Asia/Ho_Chi_Minh"
COORDINATOR = "latency.nt"
PARTNER, PATHWAY, DISTRICT = "police-nha-trang", "id_papers", "nha-trang"
CODE = re.compile(r"\bR-[0-9A-Z]{5}-[0-9A-Z]{5}\b")
SENT = re.compile(r"sent (\d+), failed (\d+), dead (\d+)")
# A background task's pass (not the task worker's first pass at start, which it logs twice)
TASK_SENT = re.compile(r"Task run '[^']+' - sent (\d+), failed (\d+), dead (\d+)")
FLOW_SENT = re.compile(r"Flow run '[^']+' - sent (\d+), failed (\d+), dead (\d+)")
CLK = os.sysconf("SC_CLK_TCK")
NEAR_CLOCK = 20.0  # seconds after a clock run is started during which launches are "near" it
TARGETS = {"embedded_p50_s": 2.0, "embedded_p95_s": 5.0, "cluster_p95_s": 10.0, "idle_runs_h": 12}


# ---------------------------------------------------------------------------------------------
# receivers that stamp each arrival


class Stamped(list[Any]):
    """A receiver's list of what arrived, with the monotonic time of each append (the receivers
    append under their lock, as the message is stored)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, item: Any) -> None:
        self.at.append(time.monotonic())
        super().append(item)


def receivers() -> tuple[HttpSink, SmtpSink]:
    sms = HttpSink(hits=Stamped()).start()
    smtp = SmtpSink()
    smtp.mails = Stamped()
    return sms, smtp.start()


def arrivals(sms: HttpSink, smtp: SmtpSink) -> list[tuple[str, str, str, float]]:
    """(channel, referral code, recipient, monotonic time) of every message received so far."""
    out = []
    hits, mails = list(sms.hits), list(smtp.mails)
    for hit, at in zip(hits, sms.hits.at[: len(hits)], strict=True):  # type: ignore[attr-defined]
        text = f"{hit.payload.get('title', '')} {hit.payload.get('message', '')}"
        found = CODE.search(text)
        out.append(("sms", found.group(0) if found else "?", str(hit.payload.get("to")), at))
    for mail, at in zip(mails, smtp.mails.at[: len(mails)], strict=True):  # type: ignore[attr-defined]
        found = CODE.search(mail.subject)
        out.append(("email", found.group(0) if found else "?", ",".join(mail.to), at))
    return out


# ---------------------------------------------------------------------------------------------
# processes and their CPU


def proc_table() -> dict[int, tuple[int, str, float, float]]:
    """pid -> (parent pid, command line, own CPU s, reaped children's CPU s)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        f = stat[stat.rindex(")") + 2 :].split()  # f[0] is field 3 (state)
        own = (int(f[11]) + int(f[12])) / CLK
        children = (int(f[13]) + int(f[14])) / CLK
        table[int(entry.name)] = (int(f[1]), cmd.strip(), own, children)
    return table


def started_at(pid: int) -> int | None:
    """A process's start time (clock ticks since boot), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def subtree(root: int, table: dict[int, tuple[int, str, float, float]]) -> list[int]:
    found, frontier = [root] if root in table else [], [root]
    while frontier:
        frontier = [p for p, row in table.items() if row[0] in frontier]
        found += frontier
    return found


def tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds of ROOT itself and of everything it started (alive: own; reaped: in the
    cutime/cstime of their parents), so a difference of two samples is what ran in between."""
    table = proc_table()
    pids = subtree(root, table)
    if not pids:
        return {"own": 0.0, "children": 0.0}
    own = table[root][2]
    total = sum(table[p][2] + table[p][3] for p in pids)
    return {"own": own, "children": total - own}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before[k], 2) for k in before}


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGINT to the process group (how its processes are told to stop), then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# ---------------------------------------------------------------------------------------------
# the engine: set-up, launches, what arrived


def engine_env(
    folder: Path, url: str, sms: HttpSink, smtp: SmtpSink, web_port: int
) -> dict[str, str]:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "tmp").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "REFERRALS_DATABASE_URL": url,
        "REFERRALS_DATA_DIR": str(folder / "data"),
        "REFERRALS_SECRET_KEY": SECRET,
        "REFERRALS_CONFIG_DIR": str(fast_config(folder, lease_seconds=60)),
        "REFERRALS_SMS_URL": sms.url(),
        "REFERRALS_EMAIL_URL": smtp.url(),
        "REFERRALS_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
        "REFERRALS_TIMEZONE": TZ,
        "PREFECT_HOME": str(folder / "client-prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "TMPDIR": str(folder / "tmp"),
    }
    for name in (
        "PREFECT_API_URL",
        "REFERRALS_USER",
        "REFERRALS_GATEWAY_LIMIT",
        "REFERRALS_DELIVER_AT_ONCE",
        "REFERRALS_PROVINCE",
    ):
        env.pop(name, None)
    return env


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "referrals.cli", *args],
        env={**env, "REFERRALS_USER": "admin"},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"referrals {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


def prepare(env: dict[str, str], clients: int) -> tuple[str, list[str]]:
    """`referrals init`, then (in a child with the engine's environment) a coordinator with an
    API token and CLIENTS clients who consented to the police for ID papers."""
    cli(env, "init")
    child = subprocess.run(
        [sys.executable, __file__, "--setup", str(clients)], env=env, capture_output=True, text=True
    )
    if child.returncode != 0:
        raise RuntimeError(f"set-up: {child.stderr[-2000:]}")
    out = json.loads(child.stdout.strip().splitlines()[-1])
    return out["token"], out["clients"]


def setup_child(clients: int) -> None:
    """In the engine's environment; prints the token and the clients' codes as JSON."""
    from sqlalchemy import select
    from sqlmodel import col

    from referrals.infra.db import transaction
    from referrals.infra.runtime import Runtime
    from referrals.models.people import ConsentMethod, Role, User
    from referrals.models.policy import SYSTEM
    from referrals.usecases.clients.clients import ClientIn, add_client, grant_consent
    from referrals.usecases.staff.tokens import issue_token

    rt = Runtime()
    now = dt.datetime.now(dt.UTC)
    with transaction(rt.engine) as s:
        s.add(
            User(
                username=COORDINATOR,
                full_name="Bench coordinator",
                role=Role.coordinator.value,
                area_key=DISTRICT,
                email="latency.nt@example.vn",
            )
        )
        s.flush()
        me = s.scalars(select(User).where(col(User.username) == COORDINATOR)).one()
        token = issue_token(s, username=COORDINATOR, name="bench-latency", by=SYSTEM, now=now)
        codes = []
        for i in range(clients):
            word = hashlib.sha1(f"latency{i}".encode()).hexdigest()[:8]  # no likely namesakes
            client = add_client(
                s,
                data=ClientIn(name=f"Latency {word}", district=DISTRICT),
                ctx=rt.ctx,
                created_by=me,
                now=now,
            )
            grant_consent(
                s,
                client_code=client.code,
                partner=PARTNER,
                purpose=PATHWAY,
                method=ConsentMethod.written,
                by=me,
                now=now,
            )
            codes.append(client.code)
    print(json.dumps({"token": token, "clients": codes}))


def launch_all(
    web: str,
    token: str,
    clients: list[str],
    spacing: float,
    midway: Callable[[], object] | None = None,
) -> tuple[dict[str, float], list[float], list[str], float | None]:
    """A warm-up launch, then one launch every SPACING seconds on an absolute timetable, with
    MIDWAY called halfway (a clock run started among the launches). Returns code -> monotonic
    start of its request (the warm-up's code first), the requests' durations (s), the errors,
    and when MIDWAY was called."""
    started: dict[str, float] = {}
    called: float | None = None
    durations: list[float] = []
    errors: list[str] = []
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=web, timeout=60, headers=auth) as http:
        begin = time.monotonic()
        for i, client in enumerate(clients):
            delay = begin + i * spacing - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if midway is not None and called is None and i >= len(clients) // 2:
                called = time.monotonic()
                midway()
            t0 = time.monotonic()
            try:
                answer = http.post(
                    "/api/v1/referrals",
                    json={"client": client, "pathway": PATHWAY, "partner": PARTNER},
                )
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            durations.append(time.monotonic() - t0)
            if answer.status_code != 201:
                errors.append(f"{answer.status_code}: {answer.text[:200]}")
                continue
            started[answer.json()["code"]] = t0
    return started, durations, errors, called


def wait_arrivals(sms: HttpSink, smtp: SmtpSink, codes: set[str], seconds: float) -> float:
    """Until every code has its SMS and its e-mail, or SECONDS; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        got = {(ch, code) for ch, code, _, _ in arrivals(sms, smtp)}
        if all(("sms", c) in got and ("email", c) in got for c in codes):
            break
        time.sleep(0.25)
    return round(time.monotonic() - t0, 1)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def figures(
    started: dict[str, float],
    warmup: str | None,
    sms: HttpSink,
    smtp: SmtpSink,
    clock_at: float | None = None,
) -> dict[str, Any]:
    """Per channel: latency percentiles over the measured launches, missing, duplicates; the
    warm-up's latencies apart; with CLOCK_AT (when a clock run was started), the slowest of the
    launches in the NEAR_CLOCK seconds after it (while its process starts and runs)."""
    first: dict[tuple[str, str], float] = {}
    seen: Counter[tuple[str, str, str]] = Counter()
    strays = 0
    for channel, code, recipient, at in arrivals(sms, smtp):
        if code not in started:
            strays += 1
            continue
        seen[(channel, code, recipient)] += 1
        first[(channel, code)] = min(first.get((channel, code), at), at)
    out: dict[str, Any] = {"strays": strays}
    measured = [c for c in started if c != warmup]
    for channel in ("sms", "email"):
        lat = [first[(channel, c)] - started[c] for c in measured if (channel, c) in first]
        out[channel] = {
            "arrived": len(lat),
            "missing": len(measured) - len(lat),
            "duplicates": sum(n - 1 for (ch, _, _), n in seen.items() if ch == channel),
            "recipients": len({r for (ch, _, r) in seen if ch == channel}),
            **(
                {
                    "p50_s": round(statistics.median(lat), 2),
                    "p95_s": round(percentile(lat, 0.95), 2),
                    "max_s": round(max(lat), 2),
                    "min_s": round(min(lat), 2),
                }
                if lat
                else {}
            ),
            "warmup_s": (
                round(first[(channel, warmup)] - started[warmup], 2)
                if warmup and (channel, warmup) in first
                else None
            ),
        }
        if clock_at is not None:
            near = [
                first[(channel, c)] - started[c]
                for c in measured
                if (channel, c) in first and 0 <= started[c] - clock_at <= NEAR_CLOCK
            ]
            out[channel]["near_clock_run"] = {
                "launches": len(near),
                "max_s": round(max(near), 2) if near else None,
            }
    return out


def outbox(url: str) -> dict[str, Any]:
    """The outbox by status, and how many messages took more than one attempt."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT status, count(*), sum(CASE WHEN attempts > 1 THEN 1 ELSE 0 END) "
                    "FROM notification GROUP BY status"
                )
            ).all()
    finally:
        engine.dispose()
    return {
        "by_status": {s: int(n) for s, n, _ in rows},
        "retried": int(sum(r or 0 for _, _, r in rows)),
    }


def log_passes(log: Path, pattern: re.Pattern[str] = TASK_SENT) -> dict[str, int]:
    """Delivery passes in a log: how many, messages sent and failed."""
    if not log.exists():
        return {"passes": 0, "sent": 0, "failed": 0}
    found = pattern.findall(log.read_text(errors="replace"))
    return {
        "passes": len(found),
        "sent": sum(int(s) for s, _, _ in found),
        "failed": sum(int(f) for _, f, _ in found),
    }


def flow_passes(api: httpx.Client) -> dict[str, int]:
    """Delivery passes logged by flow runs (clock or deliver-notifications), from the API (its
    text search answered 500 on the SQLite Prefect server: every INFO line is read instead)."""
    passes = sent = failed = offset = 0
    while True:
        page = api.post(
            "/logs/filter",
            json={"logs": {"level": {"ge_": 20}}, "limit": 200, "offset": offset},
        )
        page.raise_for_status()
        rows = page.json()
        for row in rows:
            found = SENT.search(row["message"])
            if found and row.get("flow_run_id"):
                passes += 1
                sent += int(found.group(1))
                failed += int(found.group(2))
        if len(rows) < 200:
            return {"passes": passes, "sent": sent, "failed": failed}
        offset += 200


def run_timing(api: httpx.Client, run_id: str) -> dict[str, Any]:
    """A flow run's state, and its seconds from creation to start and of work."""
    row = api.get(f"/flow_runs/{run_id}").json()
    began = row.get("start_time")
    return {
        "state": row["state_type"],
        "created_to_started_s": round(
            (
                dt.datetime.fromisoformat(began) - dt.datetime.fromisoformat(row["created"])
            ).total_seconds(),
            1,
        )
        if began
        else None,
        "run_s": round(float(row["total_run_time"]), 2),
    }


def log_lines(path: Path, *words: str) -> dict[str, int]:
    if not path.exists():
        return {}
    text = path.read_text(errors="replace")
    return {w: text.count(w) for w in words if text.count(w)}


# ---------------------------------------------------------------------------------------------
# embedded: `referrals serve`


class Served:
    """`referrals serve` as a real process tree."""

    def __init__(self, env: dict[str, str], folder: Path, web_port: int) -> None:
        self.env, self.folder, self.web_port = env, folder, web_port
        self.prefect_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.prefect_port}/api", timeout=30)

    def start(self, every: int, at_once: bool) -> float:
        t0 = time.monotonic()
        with (self.folder / "serve.out").open("ab") as log:
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
                    str(every),
                    "--at-once" if at_once else "--no-at-once",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self._ready(at_once), 240, "serve to be up")
        return round(time.monotonic() - t0, 1)

    def _ready(self, at_once: bool) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"serve stopped; see {self.folder / 'serve.out'}")
        try:
            if httpx.get(f"http://127.0.0.1:{self.web_port}/login", timeout=2).status_code != 200:
                return False
            deployments = self.api.post("/deployments/count", json={}, timeout=5).json()
            if deployments < 2:  # clock and digest, registered by the runner
                return False
            return not at_once or bool(self.api.post("/task_workers/filter", json={}).json())
        except (httpx.HTTPError, ValueError):
            return False

    def role(self, word: str) -> int | None:
        """The pid of serve's child whose command line holds WORD."""
        if self.proc is None:
            return None
        table = proc_table()
        for pid in subtree(self.proc.pid, table):
            if table[pid][0] == self.proc.pid and word in table[pid][1]:
                return pid
        return None

    def run_clock(self) -> str:
        """A run of the served clock deployment, now (the runner takes it at its next poll)."""
        found = self.api.get("/deployments/name/clock/clock")
        found.raise_for_status()
        made = self.api.post(f"/deployments/{found.json()['id']}/create_flow_run", json={})
        made.raise_for_status()
        return str(made.json()["id"])

    def completed(self, flow: str, since: str, until: str) -> int:
        body = {
            "flows": {"name": {"any_": [flow]}},
            "flow_runs": {
                "state": {"type": {"any_": ["COMPLETED"]}},
                "end_time": {"after_": since, "before_": until},
            },
        }
        return int(self.api.post("/flow_runs/count", json=body).json())

    def stop(self) -> float:
        """SIGTERM, as systemd would; then make sure nothing of the tree is left."""
        if self.proc is None:
            return 0.0
        t0 = time.monotonic()
        tree = [(pid, started_at(pid)) for pid in subtree(self.proc.pid, proc_table())]
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        took = round(time.monotonic() - t0, 1)
        for pid, began in tree:
            if started_at(pid) == began:  # still that process, not a pid used again
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.api.close()
        return took


def embedded(kind: str, n: int, spacing: float, work: Path) -> dict[str, Any]:
    at_once = kind == "after"
    every = 300 if at_once else 60
    folder = work / f"embedded-{kind}"
    folder.mkdir()
    sms, smtp = receivers()
    web_port = free_port()
    url = f"sqlite:///{folder / 'engine.db'}"
    env = engine_env(folder, url, sms, smtp, web_port)
    token, clients = prepare(env, n + 1)
    served = Served(env, folder, web_port)
    result: dict[str, Any] = {
        "setup": "embedded",
        "kind": kind,
        "command": f"serve --{'' if at_once else 'no-'}at-once --every {every}",
        "n": n,
        "spacing_s": spacing,
        "load_at_start": os.getloadavg()[0],
    }
    try:
        result["serve_start_s"] = served.start(every, at_once)
        time.sleep(3)  # the task worker's first pass, the runner's first poll
        tasks = served.role("referrals.flows.task_worker")
        cpu0 = tree_cpu(tasks) if tasks else None
        clock_runs: list[str] = []
        started, durations, errors, clock_at = launch_all(
            f"http://127.0.0.1:{web_port}",
            token,
            clients,
            spacing,
            (lambda: clock_runs.append(served.run_clock())) if at_once else None,
        )
        warmup = next(iter(started), None)
        result["waited_after_last_launch_s"] = wait_arrivals(
            sms, smtp, set(started), 60 if at_once else every + 90
        )
        if tasks and cpu0:
            result["task_worker_cpu_s"] = cpu_delta(cpu0, tree_cpu(tasks))
        time.sleep(3)  # a pass logs its counts after the receivers have its messages
        result.update(
            launch_requests={
                "ok": len(started),
                "errors": errors[:5],
                "p50_ms": round(statistics.median(durations) * 1000, 1) if durations else None,
                "max_ms": round(max(durations) * 1000, 1) if durations else None,
            },
            **figures(started, warmup, sms, smtp, clock_at),
            clock_run_midway=[run_timing(served.api, r) for r in clock_runs],
            sent_by={
                "task_worker": log_passes(folder / "data/logs/tasks.log"),
                "scheduled": log_passes(folder / "data/logs/runner.log", FLOW_SENT),
            },
            outbox=outbox(url),
        )
        logs = folder / "data" / "logs"
        result["log_flags"] = {
            name: log_lines(
                logs / name, "Traceback", "ERROR", "did not start", "Crashed", "gateway is busy"
            )
            for name in ("web.log", "tasks.log", "runner.log")
        } | {
            "server.log": log_lines(
                folder / "data" / "prefect" / "server.log", "Traceback", "ERROR"
            )
        }
        result["load_at_end"] = os.getloadavg()[0]
    finally:
        result["serve_stop_s"] = served.stop()
        sms.stop()
        smtp.stop()
    return result


def embedded_idle(seconds: float, every: int, work: Path) -> dict[str, Any]:
    """`serve --at-once --every EVERY` with nothing to do for SECONDS: runs and their CPU."""
    folder = work / "embedded-idle"
    folder.mkdir()
    sms, smtp = receivers()
    web_port = free_port()
    url = f"sqlite:///{folder / 'engine.db'}"
    env = engine_env(folder, url, sms, smtp, web_port)
    cli(env, "init")
    served = Served(env, folder, web_port)
    result: dict[str, Any] = {
        "setup": "embedded",
        "kind": "idle",
        "command": f"serve --at-once --every {every}",
        "window_s": seconds,
        "load_at_start": os.getloadavg()[0],
    }
    try:
        result["serve_start_s"] = served.start(every, True)
        time.sleep(15)  # past start-up: imports, the task worker's first pass
        pids = {
            "runner": served.role("referrals-runner"),
            "task_worker": served.role("referrals.flows.task_worker"),
            "web": served.role("uvicorn"),
            "prefect_server": served.role("prefect server start"),
        }
        runner = pids["runner"] or 0

        def between_runs() -> bool:  # no flow run alive: every run so far is in its CPU
            return len(subtree(runner, proc_table())) == 1

        wait_for(between_runs, 120, "a moment between two clock runs")
        samples = {name: tree_cpu(pid) for name, pid in pids.items() if pid}
        t0, since = time.monotonic(), dt.datetime.now(dt.UTC).isoformat()
        time.sleep(seconds)
        wait_for(between_runs, 120, "a moment between two clock runs")
        used = {name: cpu_delta(s, tree_cpu(pids[name] or 0)) for name, s in samples.items()}
        took, until = time.monotonic() - t0, dt.datetime.now(dt.UTC).isoformat()
        runs = served.completed("clock", since, until)
        per_run = used["runner"]["children"] / runs if runs else None
        hour = 3600 / took
        result.update(
            window_s=round(took, 1),
            clock_runs=runs,
            clock_runs_expected=round(took / every, 1),
            cpu_s=used,
            cpu_per_run_s=round(per_run, 2) if per_run else None,
            per_hour_s={
                "runner_itself": round(used["runner"]["own"] * hour, 1),
                "task_worker": round(sum(used["task_worker"].values()) * hour, 1),
                "web": round(sum(used["web"].values()) * hour, 1),
                "prefect_server_at_this_cadence": round(
                    sum(used["prefect_server"].values()) * hour, 1
                ),
            },
            sent=len(sms.hits) + len(smtp.mails),
            load_at_end=os.getloadavg()[0],
        )
    finally:
        result["serve_stop_s"] = served.stop()
        sms.stop()
        smtp.stop()
    return result


# ---------------------------------------------------------------------------------------------
# cluster


def old_schedule(folder: Path) -> Path:
    """A copy of deploy/prefect.yaml with the schedule before issue 21: deliver every 60 s and
    sweep every 300 s (the clock is paused through the API once deployed)."""
    data = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text(encoding="utf-8"))
    for d in data["deployments"]:
        if d["entrypoint"].endswith(":deliver_notifications"):
            d["schedules"] = [{"interval": 60}]
        elif d["entrypoint"].endswith(":sweep_deadlines"):
            d["schedules"] = [{"interval": 300}]
    path = folder / "prefect-before.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def deploy(cluster: Cluster, prefect_file: Path) -> None:
    """Cluster.deploy with another prefect.yaml (deployed from the checkout, as the original)."""
    from support.cluster import BIN

    for args in (
        ["work-pool", "create", cluster.pool, "--type", "process"],
        ["gcl", "create", "sms-gateway", "--limit", "2"],
        ["--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)],
        ["automation", "create", "--from-file", "deploy/automations/crash-silent-runs.yaml"],
    ):
        done = subprocess.run(
            [str(BIN / "prefect"), *args], env=cluster.env, cwd=ROOT, capture_output=True
        )
        if done.returncode != 0:
            raise RuntimeError(done.stdout.decode()[-2000:] + done.stderr.decode()[-2000:])


class Extras:
    """The web app and the task worker beside a Cluster, as their systemd units would run."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.web_port = free_port()
        self.web: subprocess.Popen[bytes] | None = None
        self.tasks: subprocess.Popen[bytes] | None = None

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.cluster.folder / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, *args],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_web(self, at_once: bool) -> None:
        if self.web is not None:
            stop_group(self.web)
        env = {**self.cluster.env, "REFERRALS_DELIVER_AT_ONCE": "true" if at_once else "false"}
        self.web = self._spawn(
            "web",
            [
                "-m",
                "uvicorn",
                "referrals.web.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.web_port),
                "--no-access-log",
            ],
            env,
        )

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/login", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 90, "the web app")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start_tasks(self) -> None:
        env = {**self.cluster.env, "REFERRALS_DELIVER_AT_ONCE": "true"}
        self.tasks = self._spawn("tasks", ["-m", "referrals.flows.task_worker"], env)
        wait_for(
            lambda: self.cluster.http.post("/task_workers/filter", json={}).json(),
            120,
            "the task worker to subscribe",
        )

    def stop(self) -> None:
        for proc in (self.web, self.tasks):
            if proc is not None:
                stop_group(proc)


def deployment_id(cluster: Cluster, flow: str) -> str:
    found = cluster.http.get(f"/deployments/name/{flow}/{PROVINCE}")
    found.raise_for_status()
    return str(found.json()["id"])


def pause(cluster: Cluster, flow: str, paused: bool) -> None:
    verb = "pause_deployment" if paused else "resume_deployment"
    cluster.http.post(f"/deployments/{deployment_id(cluster, flow)}/{verb}").raise_for_status()


def settle_runs(cluster: Cluster, seconds: float = 180) -> None:
    """Until no flow run is pending or running, and the workers have no child left."""

    def quiet() -> bool:
        busy = cluster.runs_in("RUNNING") + cluster.runs_in("PENDING")
        table = proc_table()
        children = [
            p for w in cluster.workers.values() for p in subtree(w.pid, table) if p != w.pid
        ]
        return not busy and not children

    wait_for(quiet, seconds, "the flow runs to end")


def cluster_phase(
    kind: str,
    cluster: Cluster,
    extras: Extras,
    token: str,
    clients: list[str],
    spacing: float,
    sms: HttpSink,
    smtp: SmtpSink,
    url: str,
) -> dict[str, Any]:
    at_once = kind == "after"
    result: dict[str, Any] = {
        "setup": "cluster",
        "kind": kind,
        "schedule": "clock every 300 s + task worker"
        if at_once
        else "deliver every 60 s + sweep every 300 s, no task worker",
        "n": len(clients) - 1,
        "spacing_s": spacing,
        "load_at_start": os.getloadavg()[0],
    }
    sms.hits.clear()
    sms.hits.at.clear()  # type: ignore[attr-defined]
    smtp.mails.clear()
    smtp.mails.at.clear()  # type: ignore[attr-defined]
    before_task = log_passes(cluster.folder / "tasks.log")
    before_flow = flow_passes(cluster.http)
    cpu0 = tree_cpu(extras.tasks.pid) if at_once and extras.tasks else None
    clock_runs: list[str] = []
    started, durations, errors, clock_at = launch_all(
        extras.url,
        token,
        clients,
        spacing,
        (lambda: clock_runs.append(cluster.run("clock"))) if at_once else None,
    )
    warmup = next(iter(started), None)
    result["waited_after_last_launch_s"] = wait_arrivals(
        sms, smtp, set(started), 60 if at_once else 150
    )
    if cpu0 is not None and extras.tasks:
        result["task_worker_cpu_s"] = cpu_delta(cpu0, tree_cpu(extras.tasks.pid))
    try:  # the flow runs' logs reach the API when the runs end
        settle_runs(cluster, 120)
    except AssertionError as exc:
        result["settle"] = str(exc)
    time.sleep(3)
    after_task, after_flow = log_passes(cluster.folder / "tasks.log"), flow_passes(cluster.http)
    result.update(
        launch_requests={
            "ok": len(started),
            "errors": errors[:5],
            "p50_ms": round(statistics.median(durations) * 1000, 1) if durations else None,
            "max_ms": round(max(durations) * 1000, 1) if durations else None,
        },
        **figures(started, warmup, sms, smtp, clock_at),
        clock_run_midway=[run_timing(cluster.http, r) for r in clock_runs],
        sent_by={
            "task_worker": {k: after_task[k] - before_task[k] for k in after_task},
            "scheduled": {k: after_flow[k] - before_flow[k] for k in after_flow},
        },
        outbox=outbox(url),
        load_at_end=os.getloadavg()[0],
    )
    return result


def cluster_idle(cluster: Cluster, extras: Extras, runs: int) -> dict[str, Any]:
    """RUNS runs of each flow, one at a time, with nothing to do: the CPU of the processes the
    workers started for them (the workers' own polling apart), and the task worker's meanwhile."""
    settle_runs(cluster)
    t0 = time.monotonic()
    tasks0 = tree_cpu(extras.tasks.pid) if extras.tasks else None
    server0 = tree_cpu(cluster.server.pid) if cluster.server else None
    out: dict[str, Any] = {"runs_each": runs, "load_at_start": os.getloadavg()[0]}
    for flow in ("deliver-notifications", "sweep-deadlines", "clock"):
        cpu0 = {name: tree_cpu(w.pid) for name, w in cluster.workers.items()}
        starts, works = [], []
        for _ in range(runs):
            run_id = cluster.run(flow)
            wait_for(lambda: cluster.state(run_id) in FINAL, 180, f"a {flow} run")  # noqa: B023
            row = cluster.http.get(f"/flow_runs/{run_id}").json()
            if row["state_type"] != "COMPLETED":
                out.setdefault("not_completed", []).append(f"{flow}: {row['state_type']}")
            created = dt.datetime.fromisoformat(row["created"])
            began = dt.datetime.fromisoformat(row["start_time"])
            starts.append((began - created).total_seconds())
            works.append(float(row["total_run_time"]))
        settle_runs(cluster)
        used = {name: cpu_delta(cpu0[name], tree_cpu(w.pid)) for name, w in cluster.workers.items()}
        children = sum(u["children"] for u in used.values())
        out[flow] = {
            "cpu_per_run_s": round(children / runs, 2),
            "workers_own_cpu_s": round(sum(u["own"] for u in used.values()), 2),
            "median_created_to_started_s": round(statistics.median(starts), 1),
            "median_run_s": round(statistics.median(works), 2),
        }
    took = time.monotonic() - t0
    out["window_s"] = round(took, 1)
    if tasks0 is not None and extras.tasks:
        used_tasks = cpu_delta(tasks0, tree_cpu(extras.tasks.pid))
        out["task_worker_cpu_s"] = used_tasks
        out["task_worker_per_hour_s"] = round(sum(used_tasks.values()) * 3600 / took, 1)
    if server0 is not None and cluster.server:
        out["prefect_server_cpu_s"] = cpu_delta(server0, tree_cpu(cluster.server.pid))
    out["load_at_end"] = os.getloadavg()[0]
    return out


def clustered(n: int, spacing: float, idle_runs: int, work: Path) -> list[dict[str, Any]]:
    folder = work / "cluster"
    folder.mkdir()
    sms, smtp = receivers()
    db = fresh_database("bench_latency")
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"
    env = engine_env(folder, url, sms, smtp, 0)
    cluster = Cluster(folder, {k: v for k, v in env.items() if k.startswith("REFERRALS_")})
    # The worker's poll for scheduled runs at its default, as the referrals-worker@ unit runs it
    # (Cluster sets 1 s for the tests).
    cluster.env["PREFECT_WORKER_QUERY_SECONDS"] = "10"
    extras = Extras(cluster)
    cluster.env["REFERRALS_PUBLIC_URL"] = extras.url
    out: list[dict[str, Any]] = []
    t0 = time.monotonic()
    try:
        token, clients = prepare(cluster.env, 2 * (n + 1))
        cluster.start_server()
        deploy(cluster, old_schedule(folder))
        pause(cluster, "clock", True)
        for i in range(2):
            cluster.start_worker(f"worker-{i}")
        extras.start_web(at_once=False)
        setup_s = round(time.monotonic() - t0, 1)
        phase = cluster_phase(
            "before", cluster, extras, token, clients[: n + 1], spacing, sms, smtp, url
        )
        phase["cluster_setup_s"] = setup_s
        print(json.dumps(phase), flush=True)
        out.append(phase)
        pause(cluster, "deliver-notifications", True)
        pause(cluster, "sweep-deadlines", True)
        extras.start_tasks()
        if idle_runs:
            idle = {"setup": "cluster", "kind": "idle", **cluster_idle(cluster, extras, idle_runs)}
            print(json.dumps(idle), flush=True)
            out.append(idle)
        pause(cluster, "clock", False)
        extras.start_web(at_once=True)
        phase = cluster_phase(
            "after", cluster, extras, token, clients[n + 1 :], spacing, sms, smtp, url
        )
        phase["log_flags"] = {
            name: log_lines(folder / name, "Traceback", "ERROR", "did not start", "gateway is busy")
            for name in ("web.log", "tasks.log", "server.log", "worker-0.log", "worker-1.log")
        }
        print(json.dumps(phase), flush=True)
        out.append(phase)
    finally:
        extras.stop()
        cluster.stop()
        sms.stop()
        smtp.stop()
        drop_database(db)
    return out


# ---------------------------------------------------------------------------------------------
# the hour, and the verdicts


def per_hour(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Scheduled runs and CPU seconds per province and hour, before and after."""
    out: dict[str, Any] = {}
    emb = next((r for r in results if r["setup"] == "embedded" and r["kind"] == "idle"), None)
    if emb and emb.get("cpu_per_run_s"):
        run = emb["cpu_per_run_s"]
        itself = emb["per_hour_s"]["runner_itself"]
        out["embedded"] = {
            "before": {"runs": 72, "cpu_s": round(72 * run + itself, 1)},
            "after": {
                "runs": 12,
                "cpu_s": round(12 * run + itself + emb["per_hour_s"]["task_worker"], 1),
            },
            "basis": "72 or 12 clock runs at the measured CPU per idle clock run, plus the "
            "runner's own CPU and (after) the task worker's",
        }
    idle = next((r for r in results if r["setup"] == "cluster" and r["kind"] == "idle"), None)
    if idle:
        deliver = idle["deliver-notifications"]["cpu_per_run_s"]
        sweep = idle["sweep-deadlines"]["cpu_per_run_s"]
        clock = idle["clock"]["cpu_per_run_s"]
        tasks = idle.get("task_worker_per_hour_s", 0.0)
        out["cluster"] = {
            "before": {"runs": 72, "cpu_s": round(60 * deliver + 12 * sweep, 1)},
            "after": {"runs": 12, "cpu_s": round(12 * clock + tasks, 1)},
            "basis": "flow-run processes only (the workers' own polling apart)",
        }
    return out


def verdicts(results: list[dict[str, Any]], hourly: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in results:
        if r.get("kind") != "after":
            continue
        for ch in ("sms", "email"):
            f = r[ch]
            complete = f["missing"] == 0
            if r["setup"] == "embedded":
                out[f"embedded {ch} p50 <= 2 s"] = complete and f.get("p50_s", 1e9) <= 2.0
                out[f"embedded {ch} p95 <= 5 s"] = complete and f.get("p95_s", 1e9) <= 5.0
            else:
                out[f"cluster {ch} p95 <= 10 s"] = complete and f.get("p95_s", 1e9) <= 10.0
    for setup, h in hourly.items():
        out[f"{setup} idle runs <= 12/h"] = h["after"]["runs"] <= TARGETS["idle_runs_h"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=50, help="launches per configuration")
    parser.add_argument("--spacing", type=float, default=4.0, help="seconds between launches")
    parser.add_argument("--only", choices=["embedded", "cluster"])
    parser.add_argument(
        "--idle-seconds", type=float, default=150, help="embedded idle window (0: skip)"
    )
    parser.add_argument("--idle-every", type=int, default=20, help="the clock's interval then")
    parser.add_argument(
        "--idle-runs", type=int, default=2, help="cluster idle runs of each flow (0: skip)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (logs, databases) afterwards"
    )
    parser.add_argument("--setup", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup is not None:
        setup_child(args.setup)
        return
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "args": {k: v for k, v in vars(args).items() if k != "setup"},
        "targets": TARGETS,
        "runs": [],
    }
    begun = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
            print(f"logs and state kept in {work}", flush=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-latency-")))
        if args.only in (None, "embedded"):
            for kind in ("before", "after"):
                run = embedded(kind, args.n, args.spacing, work)
                print(json.dumps(run), flush=True)
                results["runs"].append(run)
            if args.idle_seconds > 0:
                run = embedded_idle(args.idle_seconds, args.idle_every, work)
                print(json.dumps(run), flush=True)
                results["runs"].append(run)
        if args.only in (None, "cluster"):
            results["runs"] += clustered(args.n, args.spacing, args.idle_runs, work)
    results["per_hour"] = per_hour(results["runs"])
    results["verdicts"] = verdicts(results["runs"], results["per_hour"])
    results["total_s"] = round(time.monotonic() - begun, 1)
    print(json.dumps({"per_hour": results["per_hour"], "verdicts": results["verdicts"]}))
    write_results("latency", results)


if __name__ == "__main__":
    main()
