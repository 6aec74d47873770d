"""Launch throughput: the bulk path (CSV import) against a raw SQLAlchemy Core baseline of the same
rows, the per-referral Prefect flow, and `list`/`show` wall time with the database filled.

    .venv/bin/python benchmarks/bench_launch.py                 # N = 1,000 and 10,000, SQLite and PostgreSQL
    .venv/bin/python benchmarks/bench_launch.py --n 1000 --db sqlite --flows 20

The raw baseline re-inserts exactly the rows the bulk path wrote (clients, consents, referrals,
steps, events, outbox) with Core `executemany`, in the same run and database: the ratio is the
price of validation, encryption, deadlines and bookkeeping.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="bench-prefect-")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("REFERRALS_SECRET_KEY", "benchmark-secret-0123456789abcdef0123456789")

from harness import past_append_only, write_results
from sqlalchemy import create_engine, delete, insert, select, text

import referrals.models.tables as t
from referrals.config import Settings
from referrals.infra.db import transaction
from referrals.infra.runtime import Runtime
from referrals.migrations import upgrade
from referrals.models.people import Role, User
from referrals.usecases.directory.loading import load_province_data
from referrals.usecases.referrals.importing import HEADER, import_referrals
from referrals.usecases.referrals.launching import LaunchRequest, launch_one

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WRITTEN = [
    t.Client,
    t.ClientKey,
    t.ClientTerm,
    t.Consent,
    t.Referral,
    t.Step,
    t.Event,
    t.Notification,
]  # insert order (foreign keys)
CASES = [
    ("nha-trang", "id_papers", "police-nha-trang"),
    ("nha-trang", "health_check", "phuong-son-health"),
    ("ninh-hoa", "legal_aid", "legal-aid-centre"),
    ("ninh-hoa", "vocational_training", "van-ninh-vocational"),
    ("nha-trang", "psychosocial_support", "social-work-centre"),
]


def fresh_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        path = workdir / f"bench-{time.time_ns()}.db"
        return f"sqlite:///{path}"
    name = f"bench_{os.getpid()}_{time.time_ns() % 10**8}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()


def prepared_runtime(url: str, workdir: Path) -> Runtime:
    upgrade(url)
    rt = Runtime(
        Settings(database_url=url, data_dir=workdir, secret_key=os.environ["REFERRALS_SECRET_KEY"])
    )
    with transaction(rt.engine) as s:
        load_province_data(s, province=rt.province)
        s.add(User(username="admin", full_name="Admin", role=Role.admin.value))
    return rt


def csv_rows(n: int) -> bytes:
    out = io.StringIO()
    out.write(",".join(HEADER) + "\n")
    for i in range(n):
        district, pathway, partner = CASES[i % len(CASES)]
        out.write(f"Khách Hàng {i},09{i:08d},{i:012d},{district},{pathway},{partner},written,,\n")
    return out.getvalue().encode("utf-8-sig")


def bulk_then_raw(rt: Runtime, n: int, now: dt.datetime) -> dict[str, float]:
    data = csv_rows(n)
    start = time.perf_counter()
    with transaction(rt.engine) as s:
        report = import_referrals(s, data=data, coordinator=rt.user(s), ctx=rt.ctx, now=now)
    bulk = time.perf_counter() - start
    assert len(report.referrals) == n
    with rt.engine.connect() as c:  # the rows the bulk path wrote, to write again raw
        rows = {m: [dict(r._mapping) for r in c.execute(select(m.__table__))] for m in WRITTEN}
    with rt.engine.begin() as c, past_append_only(c):  # set-up, not measured
        for m in reversed(WRITTEN):
            c.execute(delete(m.__table__))
    start = time.perf_counter()
    with rt.engine.begin() as c:
        for m in WRITTEN:
            c.execute(insert(m.__table__), rows[m])
    raw = time.perf_counter() - start
    total_rows = sum(len(v) for v in rows.values())
    return {
        "bulk_s": bulk,
        "raw_s": raw,
        "ratio": bulk / raw,
        "referrals_per_s": n / bulk,
        "rows": total_rows,
    }


def flows(rt: Runtime, k: int, now: dt.datetime) -> dict[str, float]:
    """k launches one by one: straight through the domain function, then through the Prefect flow."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from referrals.flows.launch import run_launch
    from referrals.models.codes import new_code

    # 2k clients with a consent for tax_code, launched once and cancelled, so they can be launched again
    lines = [
        f"Flow {i},08{i:08d},{500_000_000 + i:012d},nha-trang,tax_code,police-nha-trang,written,,"
        for i in range(2 * k)
    ]
    with transaction(rt.engine) as s:
        rep = import_referrals(
            s,
            data=(",".join(HEADER) + "\n" + "\n".join(lines) + "\n").encode(),
            coordinator=rt.user(s),
            ctx=rt.ctx,
            now=now,
        )
    with transaction(rt.engine) as s:  # close them so each client can be launched again
        s.execute(
            t.Referral.__table__.update()
            .where(t.Referral.code.in_(rep.referrals))
            .values(status="cancelled")
        )
        clients = list(
            s.scalars(
                select(t.Client.code).join(t.Referral).where(t.Referral.code.in_(rep.referrals))
            )
        )
    requests = [
        LaunchRequest(client_code=c, pathway="tax_code", partner="police-nha-trang")
        for c in clients
    ]
    direct, flowed = requests[:k], requests[k : 2 * k]
    direct_ms = []
    for req in direct:
        start = time.perf_counter()
        with transaction(rt.engine) as s:
            launch_one(
                s, code=new_code("R"), request=req, coordinator=rt.user(s), ctx=rt.ctx, now=now
            )
        direct_ms.append(1000 * (time.perf_counter() - start))
    os.environ["REFERRALS_DATABASE_URL"] = rt.settings.database_url
    from referrals.config import get_settings

    get_settings.cache_clear()
    flow_ms = []
    with (
        prefect_test_harness(server_startup_timeout=60),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        for req in flowed:
            start = time.perf_counter()
            run_launch(code=new_code("R"), request=req, now=now)
            flow_ms.append(1000 * (time.perf_counter() - start))
    return {
        "k": k,
        "direct_per_launch_ms": statistics.mean(direct_ms),
        "direct_median_ms": statistics.median(direct_ms),
        "flow_per_launch_ms": statistics.mean(flow_ms),
        "flow_median_ms": statistics.median(flow_ms),
        "flow_p90_ms": statistics.quantiles(flow_ms, n=10)[-1],
        "prefect_overhead_ms": statistics.mean(flow_ms) - statistics.mean(direct_ms),
        "prefect_overhead_median_ms": statistics.median(flow_ms) - statistics.median(direct_ms),
    }


def cli_wall(rt: Runtime) -> dict[str, float]:
    env = {**os.environ, "REFERRALS_DATABASE_URL": rt.settings.database_url}
    env.pop("PREFECT_API_URL", None)
    exe = str(Path(sys.executable).with_name("referrals"))
    with rt.engine.connect() as c:
        code = c.execute(select(t.Referral.code).limit(1)).scalar_one()

    def best(*args: str) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([exe, *args], env=env, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        return min(times)

    baseline = best("--help")
    return {
        "list_json_s": best("list", "--json"),
        "list_all_json_s": best("list", "--json", "--limit", "0"),
        "show_s": best("show", code),
        "show_json_s": best("show", code, "--json"),
        "cli_startup_s": baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--flows", type=int, default=50, help="launches timed one by one (0: skip)")
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC)
    results = {
        "date": now.isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for kind in args.db:
            for n in args.n:
                rt = prepared_runtime(fresh_database(kind, workdir), workdir)
                run = {"db": kind, "n": n, **bulk_then_raw(rt, n, now)}
                if n == max(args.n):
                    run.update(cli_wall(rt))
                    if args.flows:
                        run.update(flows(rt, args.flows, now))
                print(json.dumps(run), flush=True)
                results["runs"].append(run)
                rt.engine.dispose()
                drop_database(rt.settings.database_url)
    write_results("launch", results)


if __name__ == "__main__":
    main()
