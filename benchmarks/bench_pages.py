"""The staff pages at scale: a coordinator's cases, a referral, the manager's dashboard, with N
referrals in the database, beside the same data read by bare SQL in the same run (the ratio is
what rendering, policy and HTTP cost on top of the queries).

    .venv/bin/python benchmarks/bench_pages.py                    # N = 10,000 and 100,000; both databases
    .venv/bin/python benchmarks/bench_pages.py --n 100000 --db sqlite

Seeding is bench_sweep.py's set-based SQL: N clients and referrals to the Nha Trang police with
their 4 steps, 1 in 10 overdue. Pages are fetched through the ASGI app in-process (FastAPI's
TestClient: routing, session check, queries, Jinja rendering; no network), 20 times each after a
warm-up; the figure is the median. The baseline runs each page's SQL with the same parameters on
a bare DB-API connection and fetches every row.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_launch import drop_database, fresh_database, prepared_runtime
from bench_sweep import NOW, seed
from fastapi.testclient import TestClient
from harness import run_sizes
from sqlalchemy import select, update

from referrals.config import get_settings
from referrals.infra.db import transaction
from referrals.models.people import Role, User
from referrals.models.workflow import Referral
from referrals.queries.reading import LIST_SQL, OVERDUE_SQL, Reader, count_overdue
from referrals.queries.report import counts
from referrals.queries.stats import LOAD_SQL, SCORE_SQL, period_starts
from referrals.usecases.staff.accounts import hash_password
from referrals.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "benchmark password"
REPEAT = 20


def median_seconds(run: Callable[[], object]) -> float:
    run()  # warm-up: caches, pool, plans
    timings = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def log_in(app: object, username: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf" value="(\w+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/login",
        data={"csrf": token, "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


def one(kind: str, n: int, workdir: Path) -> dict[str, object]:
    url = fresh_database(kind, workdir)
    os.environ.update(REFERRALS_DATABASE_URL=url, REFERRALS_DATA_DIR=str(workdir))
    get_settings.cache_clear()
    rt = prepared_runtime(url, workdir)
    try:
        seeded = seed(rt, n, n // 10)
        with transaction(rt.engine) as s:
            s.add(
                User(
                    username="mai",
                    full_name="Mai",
                    role=Role.coordinator.value,
                    area_key="nha-trang",
                )
            )
            s.add(User(username="hoa", full_name="Hoa", role=Role.manager.value))
            s.flush()
            s.execute(update(User).values(password_hash=hash_password(PASSWORD)))
            code = s.scalars(select(Referral.code).order_by(Referral.id.desc())).first()
        app = create_app(clock=lambda: NOW)
        mai, hoa = log_in(app, "mai"), log_in(app, "hoa")
        pages = {
            "cases (district, 300 nearest deadlines)": (mai, "/cases?all=1"),
            "a referral": (mai, f"/referrals/{code}"),
            "dashboard": (hoa, "/dashboard"),
        }
        measured = {}
        for name, (client, path) in pages.items():
            assert client.get(path).status_code == 200, path
            measured[name] = median_seconds(lambda c=client, p=path: c.get(p))

        raw = rt.engine.raw_connection()
        reader = Reader(raw, rt.engine.dialect.name)
        starts = period_starts(NOW, rt.settings.tz)

        def with_steps(sql: str, **params: object) -> None:
            """A list of referrals, then their steps by id: two statements, as the page does."""
            ids = [str(r["id"]) for r in reader.rows(sql, **params)]
            if ids:
                reader.rows(f"SELECT * FROM step WHERE referral_id IN ({', '.join(ids)})")

        baselines = {
            "cases (district, 300 nearest deadlines)": lambda: with_steps(
                LIST_SQL + " WHERE r.area_key = 'nha-trang'"
                " ORDER BY CASE WHEN a.due_at IS NULL THEN 1 ELSE 0 END, a.due_at, r.id LIMIT 300"
            ),
            "a referral": lambda: (
                reader.rows(LIST_SQL + " WHERE r.code = :code", code=code),
                reader.rows(
                    "SELECT * FROM step s JOIN referral r ON r.id = s.referral_id WHERE r.code = :code",
                    code=code,
                ),
                reader.rows(
                    "SELECT * FROM event e JOIN referral r ON r.id = e.referral_id WHERE r.code = :code",
                    code=code,
                ),
                reader.rows(
                    "SELECT * FROM notification n JOIN referral r ON r.id = n.referral_id WHERE r.code = :code",
                    code=code,
                ),
            ),
            "dashboard": lambda: (
                with_steps(
                    LIST_SQL + f" WHERE {OVERDUE_SQL}"
                    " ORDER BY CASE WHEN a.due_at IS NULL THEN 1 ELSE 0 END, a.due_at, r.id"
                    " LIMIT 300",
                    now=NOW,
                ),
                count_overdue(reader, now=NOW),
                reader.rows(LOAD_SQL.format(district="")),
                reader.rows(SCORE_SQL.format(district=""), since=starts["year"], now=NOW),
                counts(reader, since=starts["month"], until=NOW),
                counts(reader, since=starts["year"], until=NOW),
                reader.rows(
                    "SELECT * FROM notification WHERE status = 'dead' ORDER BY id DESC LIMIT 50"
                ),
            ),
        }
        bare = {name: median_seconds(run) for name, run in baselines.items()}
        raw.close()
    finally:
        rt.engine.dispose()
        drop_database(url)
    return {
        "db": kind,
        "n": n,
        "seed_s": round(seeded, 1),
        "pages": {
            name: {
                "page_ms": round(measured[name] * 1000, 1),
                "bare_sql_ms": round(bare[name] * 1000, 1),
                "ratio": round(measured[name] / bare[name], 2),
            }
            for name in measured
        },
    }


def main() -> None:
    run_sizes(__file__, __doc__, "pages", one, sizes=[10_000, 100_000])


if __name__ == "__main__":
    main()
