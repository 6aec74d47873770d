"""Throughput of the whole loop on a real cluster: referrals fully processed per minute with 1, 2
and 4 process workers, against the same loop run bare (the CLI, no Prefect) in the same run.

    .venv/bin/python benchmarks/bench_cluster.py                     # 1,000 referrals; 1, 2, 4 workers
    .venv/bin/python benchmarks/bench_cluster.py --n 300 --workers 2 --batch 100

"The loop" for N referrals, each on a fresh PostgreSQL database (and a fresh Prefect database for
the cluster): launch them (a CSV import), deliver every SMS (the partner's prompt), sweep a
fortnight later (every step overdue), deliver again (the overdue notices). The cluster runs
deliver and sweep as flow runs of deploy/prefect.yaml's deployments on a Prefect server on
PostgreSQL, keeping one delivery run in flight per worker (each of at most --batch messages),
with the deliver deployment's limit raised to the worker count. The bare loop runs `referrals
deliver --limit` passes and `referrals sweep` in this machine's shell. SMS go to a JSON sink on
loopback. Per run, Prefect's own timestamps split the time into waiting for a worker, starting a
process and doing the work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from harness import machine, write_results  # noqa: E402

from support.cluster import (  # noqa: E402
    PG_ADMIN,
    Cluster,
    drop_database,
    fast_config,
    fresh_database,
    import_csv,
    referrals,
    wait_for,
)
from support.receivers import HttpSink  # noqa: E402

SECRET = "bench-cluster-secret-0123456789abcdef0123456789"


def _env(folder: Path, url: str, sink: HttpSink) -> dict[str, str]:
    return {
        "REFERRALS_DATABASE_URL": url,
        "REFERRALS_SECRET_KEY": SECRET,
        "REFERRALS_DATA_DIR": str(folder / "data"),
        "REFERRALS_CONFIG_DIR": str(fast_config(folder, lease_seconds=60)),
        "REFERRALS_SMS_URL": sink.url(),
        "REFERRALS_EMAIL_URL": "",
    }


def bare(n: int, batch: int) -> dict[str, Any]:
    """The loop without Prefect: the CLI's direct passes, one after another."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, sink = Path(tmp), HttpSink().start()
        db = fresh_database("bench_bare")
        env = {**os.environ, **_env(folder, _url(db), sink)}
        env.pop("PREFECT_API_URL", None)
        try:
            referrals(env, "init")
            t0 = time.monotonic()
            referrals(env, "import", str(import_csv(folder, n)))
            launched = time.monotonic()
            later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=14)).isoformat()
            passes = _drain(env, batch, None)
            delivered = time.monotonic()
            referrals(env, "sweep", "--now", later, "--via", "direct")
            swept = time.monotonic()
            passes += _drain(env, batch, later)
            done = time.monotonic()
        finally:
            sink.stop()
            drop_database(db)
    return {
        "kind": "bare",
        "n": n,
        "sms": len(sink.hits),
        "passes": passes,
        "launch_s": launched - t0,
        "deliver_s": delivered - launched + done - swept,
        "sweep_s": swept - delivered,
        "total_s": done - t0,
        "per_minute": n / (done - t0) * 60,
    }


def _drain(env: dict[str, str], batch: int, now: str | None) -> int:
    passes = 0
    while True:
        args = ["deliver", "--limit", str(batch), "--via", "direct", "--json"]
        out = json.loads(referrals(env, *args, *(["--now", now] if now else [])))
        passes += 1
        if not out["claimed"]:
            return passes


def clustered(n: int, workers: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder, sink = Path(tmp), HttpSink().start()
        db = fresh_database("bench_cluster")
        cluster = Cluster(folder, _env(folder, _url(db), sink))
        try:
            referrals(cluster.env, "init")
            cluster.start_server()
            cluster.deploy()
            deployment = cluster.http.get("/deployments/name/deliver-notifications/khanh-hoa")
            limit = cluster.http.patch(
                f"/deployments/{deployment.json()['id']}", json={"concurrency_limit": workers}
            )
            for i in range(workers):
                cluster.start_worker(f"worker-{i}", limit=1)
            t0 = time.monotonic()
            referrals(cluster.env, "import", str(import_csv(folder, n)))
            launched = time.monotonic()
            runs = cluster.deliver_until_done(1800, batch=batch, in_flight=workers)
            delivered = time.monotonic()
            later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=14)).isoformat()
            swept_run = cluster.run("sweep-deadlines", now=later)
            wait_for(lambda: cluster.state(swept_run) == "COMPLETED", 600, "the sweep")
            swept = time.monotonic()
            runs += cluster.deliver_until_done(1800, batch=batch, in_flight=workers, now=later)
            done = time.monotonic()
            timings = _run_timings(cluster)
        finally:
            cluster.stop()
            sink.stop()
            drop_database(db)
    return {
        "kind": "cluster",
        "workers": workers,
        "n": n,
        "sms": len(sink.hits),
        "deliver_runs": runs,
        "deliver_limit_raised": limit.status_code < 300,
        "launch_s": launched - t0,
        "deliver_s": delivered - launched + done - swept,
        "sweep_s": swept - delivered,
        "total_s": done - t0,
        "per_minute": n / (done - t0) * 60,
        **timings,
    }


def _run_timings(cluster: Cluster) -> dict[str, float]:
    """Median seconds per completed run: created -> started (a worker took it and its process
    came up) and started -> ended (the flow itself)."""
    found = cluster.http.post(
        "/flow_runs/filter",
        json={"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}, "limit": 200},
    ).json()
    waits, works = [], []
    for run in found:
        created = dt.datetime.fromisoformat(run["created"])
        started = dt.datetime.fromisoformat(run["start_time"])
        waits.append((started - created).total_seconds())
        works.append(float(run["total_run_time"]))
    return {
        "runs_completed": len(found),
        "median_start_s": statistics.median(waits) if waits else 0.0,
        "median_work_s": statistics.median(works) if works else 0.0,
    }


def _url(db: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=250)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "runs": [],
    }
    for run in [bare(args.n, args.batch)] + [
        clustered(args.n, w, args.batch) for w in args.workers
    ]:
        print(json.dumps(run), flush=True)
        results["runs"].append(run)
    write_results("cluster", results)


if __name__ == "__main__":
    main()
