"""The year's period report over N referrals, beside a raw SQL baseline in the same run.

    .venv/bin/python benchmarks/bench_report.py                  # N = 100,000 and 1,000,000; both databases
    .venv/bin/python benchmarks/bench_report.py --n 100000 --db sqlite

Seeding is set-based SQL: N referrals over 2026 (N/2 clients, each referred twice), across four
services and two districts; six in ten completed, one declined (two reasons), three open of
which one never acknowledged; each with its acknowledgement step and, when completed, a second
partner step. The report is read as of 31/12/2026 24:00, after every event.

- **report**: `build_report` for 01/01–31/12/2026: the service x district table, per-service and
  overall totals with distinct clients, reasons, per-partner acknowledgement and completion
  times in working days (median, p90), steps on time, declines, messages;
- **report counts**: only its service x district table (`counts`, what the dashboard shows);
- **baseline**: one hand-written GROUP BY that computes the same service x district figures
  (clients, referrals, successful, not successful, open, overdue) from the current rows.

Memory is the process's resident set, sampled every 20 ms while the report runs.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_deliver import RssSampler
from bench_launch import drop_database, fresh_database, prepared_runtime
from harness import numbers, run_sizes
from sqlalchemy import bindparam, select, text

from referrals.infra.db import transaction
from referrals.models.directory import Organization, Service
from referrals.models.people import User
from referrals.models.types import UTCDateTime
from referrals.queries.reading import Reader
from referrals.queries.report import Period, build_report, counts

ROOT = Path(__file__).resolve().parent.parent
YEAR_START = dt.datetime(2025, 12, 31, 17, 0, tzinfo=dt.UTC)  # 01/01/2026 00:00 in Nha Trang
END = dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC)  # 01/01/2027 00:00 in Nha Trang
SERVICES = [
    ("id_papers", "police-nha-trang"),
    ("health_check", "phuong-son-health"),
    ("legal_aid", "legal-aid-centre"),
    ("vocational_training", "van-ninh-vocational"),
]
BASELINE_SQL = """
SELECT r.pathway_key AS pathway, r.area_key AS district, COUNT(DISTINCT r.client_id) AS clients,
       COUNT(*) AS launched,
       SUM(CASE WHEN r.outcome = 'successful' THEN 1 ELSE 0 END) AS successful,
       SUM(CASE WHEN r.outcome = 'not-successful' THEN 1 ELSE 0 END) AS not_successful,
       SUM(CASE WHEN r.closed_at IS NULL THEN 1 ELSE 0 END) AS still_open,
       SUM(CASE WHEN r.closed_at IS NULL AND a.due_at < :asof THEN 1 ELSE 0 END) AS overdue
FROM referral r LEFT JOIN step a ON a.referral_id = r.id AND a.status = 'active'
WHERE r.launched_at >= :since AND r.launched_at < :until
GROUP BY r.pathway_key, r.area_key
"""


def seed(rt, n: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    with transaction(rt.engine) as s:
        admin = s.scalars(select(User.id).where(User.username == "admin")).one()
        pairs = []
        for pathway, slug in SERVICES:
            org = s.scalars(select(Organization).where(Organization.slug == slug)).one()
            service = s.scalars(
                select(Service.id).where(
                    Service.organization_id == org.id, Service.pathway_key == pathway
                )
            ).one()
            pairs.append((pathway, org.id, service))
    postgres = rt.engine.dialect.name == "postgresql"
    series = numbers(postgres)
    text_of = "g.n::text" if postgres else "g.n"

    def run(sql: str, **params: object) -> None:
        stmt = text(sql)
        if ":t0" in sql:
            stmt = stmt.bindparams(bindparam("t0", type_=UTCDateTime))
            params["t0"] = YEAR_START
        with rt.engine.begin() as c:
            c.execute(stmt, params)

    def plus(column: str, days: str) -> str:
        """column + days (a SQL integer expression), in each dialect."""
        if postgres:
            return f"{column} + ({days}) * interval '1 day'"
        # SQLAlchemy's SQLite format, microseconds included: times compare as text there.
        return f"strftime('%Y-%m-%d %H:%M:%S', {column}, '+' || ({days}) || ' days') || '.000000'"

    run(
        f"INSERT INTO client (code, area_key, name_enc, created_at) SELECT 'C-' || {text_of},"
        " CASE WHEN g.n % 2 = 0 THEN 'nha-trang' ELSE 'ninh-hoa' END, 'x', :t0 " + series,
        n=n // 2,
    )
    case = lambda i: " ".join(  # noqa: E731
        f"WHEN g.n % 4 = {k} THEN {pairs[k][i] if i else repr(pairs[k][0])}" for k in range(4)
    )
    launched = plus(":t0", "g.n % 360")
    run(
        "INSERT INTO referral (code, client_id, pathway_key, pathway_version, organization_id,"
        " service_id, area_key, coordinator_id, status, priority, outcome, outcome_reason,"
        " launched_at, closed_at, updated_at, version)"
        f" SELECT 'R-' || {text_of}, (SELECT MIN(id) FROM client) + (g.n - 1) / 2,"
        f" CASE {case(0)} END, 1, CASE {case(1)} END, CASE {case(2)} END,"
        " CASE WHEN (g.n / 4) % 2 = 0 THEN 'nha-trang' ELSE 'ninh-hoa' END, :admin,"
        " CASE WHEN g.n % 10 < 6 THEN 'completed' WHEN g.n % 10 = 6 THEN 'rejected'"
        " WHEN g.n % 10 = 7 THEN 'accepted' ELSE 'requested' END, 'routine',"
        " CASE WHEN g.n % 10 < 6 THEN 'successful' WHEN g.n % 10 = 6 THEN 'not-successful' END,"
        " CASE WHEN g.n % 10 = 6 THEN CASE WHEN g.n % 20 = 6 THEN 'partner_lacks_capacity'"
        " ELSE 'not_our_service' END END,"
        f" {launched},"
        f" CASE WHEN g.n % 10 < 6 THEN {plus(launched, 'g.n % 7 + 1')}"
        f" WHEN g.n % 10 = 6 THEN {plus(launched, '1')} END, {launched}, 1 " + series,
        n=n,
        admin=admin,
    )
    ack_done = "r.status NOT IN ('requested', 'rejected')"
    run(
        "INSERT INTO step (referral_id, seq, key, actor, status, due_rule, activated_at, due_at,"
        " completed_at, reminders_sent, escalation_level, alert_seq)"
        " SELECT r.id, 0, 'acknowledge', 'partner',"
        f" CASE WHEN {ack_done} THEN 'done' WHEN r.status = 'rejected' THEN 'failed'"
        " ELSE 'active' END, '{\"working_days\": 2}', r.launched_at,"
        f" {plus('r.launched_at', '2')},"
        f" CASE WHEN {ack_done} THEN {plus('r.launched_at', 'r.id % 3')}"
        f" WHEN r.status = 'rejected' THEN {plus('r.launched_at', '1')} END, 0, 0, 0"
        " FROM referral r"
    )
    run(
        "INSERT INTO step (referral_id, seq, key, actor, status, due_rule, activated_at, due_at,"
        " completed_at, reminders_sent, escalation_level, alert_seq)"
        " SELECT r.id, 1, 'done', 'partner', 'done', '{\"working_days\": 5}', r.launched_at,"
        f" {plus('r.launched_at', '5')}, r.closed_at, 0, 0, 0"
        " FROM referral r WHERE r.status = 'completed'"
    )
    if postgres:
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("ANALYZE"))
    return time.perf_counter() - start


def median_of(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), result


def one(kind: str, n: int, workdir: Path) -> dict[str, object]:
    rt = prepared_runtime(fresh_database(kind, workdir), workdir)
    try:
        seeded = seed(rt, n)
        period = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31), rt.settings.tz)
        calendar = rt.ctx.calendar
        with Reader(rt.engine.raw_connection(), rt.engine.dialect.name) as reader:
            bind = {"since": period.since, "until": period.until, "asof": END}
            base_s, base = median_of(3, lambda: reader.rows(BASELINE_SQL, **bind))
            counts_s, table = median_of(
                3, lambda: counts(reader, since=period.since, until=period.until)
            )
            before = RssSampler.now()
            with RssSampler() as rss:
                report_s, report = median_of(
                    3, lambda: build_report(reader, period=period, calendar=calendar, now=END)
                )
        same = sorted(tuple(int(x or 0) for x in list(r.values())[2:]) for r in base) == sorted(
            tuple(
                r[k]
                for k in (
                    "clients",
                    "launched",
                    "successful",
                    "not_successful",
                    "still_open",
                    "overdue",
                )
            )
            for r in table  # type: ignore[union-attr]
        )
    finally:
        rt.engine.dispose()
        drop_database(rt.settings.database_url)
    return {
        "db": kind,
        "n": n,
        "seed_s": round(seeded, 1),
        "baseline_s": round(base_s, 3),
        "counts_s": round(counts_s, 3),
        "report_s": round(report_s, 3),
        "counts_ratio": round(counts_s / base_s, 2),
        "report_ratio": round(report_s / base_s, 2),
        "same_figures_as_baseline": same,
        "total_launched": report["total"]["launched"],  # type: ignore[index]
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(rss.peak, 1),
    }


def main() -> None:
    run_sizes(__file__, __doc__, "report", one, sizes=[100_000, 1_000_000])


if __name__ == "__main__":
    main()
