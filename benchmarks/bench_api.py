"""Closed loop through the API on loopback: launches/s and the partner's acknowledge round trip,
with 1 and 16 concurrent clients, beside a raw endpoint doing one insert on the same server.

    .venv/bin/python benchmarks/bench_api.py                  # SQLite; 200 requests per measure
    .venv/bin/python benchmarks/bench_api.py --db postgresql --n 400

The server is uvicorn (one process, as `referrals serve` runs it) with the engine's app and a
`POST /raw` endpoint (bench_api_app.py). Clients are threads with their own HTTP connection.
- launch: `POST /api/v1/referrals` (validation, consent check, deadline, events, outbox rows);
- acknowledge: the partner's `POST /l/<token>` accept (link checks, lifecycle move, events, the
  coordinator's message, reminders cancelled) and the page it answers with;
- raw: `POST /raw`, one INSERT in its own transaction: the floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_launch import drop_database, fresh_database, prepared_runtime
from harness import write_results
from sqlalchemy import select

from referrals.infra.db import transaction
from referrals.models.links import link_token
from referrals.models.people import ConsentMethod, Role, User
from referrals.models.policy import SYSTEM
from referrals.models.workflow import Notification, Referral
from referrals.usecases.clients.clients import ClientIn, add_client, grant_consent
from referrals.usecases.staff.tokens import issue_token

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(rt, n: int) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """A coordinator with a token, and n clients who consented to the police for ID papers."""
    now = dt.datetime.now(dt.UTC)
    with transaction(rt.engine) as s:
        s.add(
            User(
                username="mai",
                full_name="C",
                role=Role.coordinator.value,
                area_key="nha-trang",
                email="mai@x.vn",
            )
        )
        s.flush()
        me = s.scalars(select(User).where(User.username == "mai")).one()
        token = issue_token(s, username="mai", name="bench", by=SYSTEM, now=now)
        codes = []
        for i in range(n):
            client = add_client(
                s,
                data=ClientIn(name=f"Bench {i}", district="nha-trang"),
                ctx=rt.ctx,
                created_by=me,
                now=now,
            )
            grant_consent(
                s,
                client_code=client.code,
                partner="police-nha-trang",
                purpose="id_papers",
                method=ConsentMethod.written,
                by=me,
                now=now,
            )
            codes.append(client.code)
    return token, codes


def measure(calls: list, concurrency: int) -> dict[str, float]:  # type: ignore[type-arg]
    """Run the calls (each returns a status) with `concurrency` threads; latency per call."""
    local = threading.local()
    latencies: list[float] = []
    lock = threading.Lock()
    failures = []

    def run(call) -> None:  # type: ignore[no-untyped-def]
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=60)
        start = time.perf_counter()
        status = call(client)
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
            if status >= 300:
                failures.append(status)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(run, calls))
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "per_second": round(len(calls) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
        "failures": len(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="requests per measure")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    results: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "db": args.db,
        "n": args.n,
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = fresh_database(args.db, workdir)
        rt = prepared_runtime(url, workdir)
        token, clients = prepare(rt, args.n * 2)
        port = free_port()
        env = {
            **os.environ,
            "REFERRALS_DATABASE_URL": url,
            "REFERRALS_DATA_DIR": str(workdir),
            "PYTHONPATH": str(ROOT / "benchmarks"),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench_api_app:create",
                "--factory",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{base}/openapi.json", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            auth = {"Authorization": f"Bearer {token}"}
            pending = iter(clients)
            for concurrency in (1, 16):
                batch = [next(pending) for _ in range(args.n)]
                launch = [
                    lambda c, code=code: (
                        c.post(
                            f"{base}/api/v1/referrals",
                            json={
                                "client": code,
                                "pathway": "id_papers",
                                "partner": "police-nha-trang",
                            },
                            headers=auth,
                        ).status_code
                    )
                    for code in batch
                ]
                launched = measure(launch, concurrency)
                with transaction(rt.engine) as s:
                    ids = s.scalars(
                        select(Notification.id)
                        .join(Referral)
                        .where(
                            Notification.channel == "sms",
                            Notification.template == "referral.new",
                            Notification.link_used_at.is_(None),
                        )
                        .order_by(Notification.id)
                    ).all()
                acknowledge = [
                    lambda c, t=link_token(rt.ctx.vault, i): (
                        c.post(f"{base}/l/{t}", data={"action": "accept"}).status_code
                    )
                    for i in ids[: args.n]
                ]
                acked = measure(acknowledge, concurrency)
                raw = measure([lambda c: c.post(f"{base}/raw").status_code] * args.n, concurrency)
                run = {
                    "concurrency": concurrency,
                    "launch": launched,
                    "acknowledge": acked,
                    "raw": raw,
                }
                print(json.dumps(run), flush=True)
                results["runs"].append(run)  # type: ignore[attr-defined]
        finally:
            server.terminate()
            server.wait(10)
            rt.engine.dispose()
            drop_database(url)
    write_results(f"api-{args.db}", results)


if __name__ == "__main__":
    main()
