"""Deadline sweep at scale: one sweep over N open referrals of which D steps are due, against the
raw baseline of the single indexed query that selects the same due steps, in the same run.

    .venv/bin/python benchmarks/bench_sweep.py                     # N = 100,000 and 1,000,000; D = 10,000; both databases
    .venv/bin/python benchmarks/bench_sweep.py --n 100000 --db sqlite

Seeding is set-based SQL (INSERT ... SELECT), not the launch path: N clients, N referrals to the
Nha Trang police, each with its 4 steps (the first active). D of the active steps are overdue
with their next alert due now; the others' next alert is two days away. The sweep then fires D
overdue notices: D events and 2 D messages (SMS and e-mail to the police's first contact), and
moves D step cursors. Memory is the process's resident set, sampled every 20 ms during the sweep.
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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_deliver import RssSampler
from bench_launch import drop_database, fresh_database, prepared_runtime
from harness import numbers, past_append_only, write_results
from sqlalchemy import bindparam, select, text

from referrals.infra.db import transaction
from referrals.models.directory import Organization, Service
from referrals.models.people import User
from referrals.models.types import UTCDateTime
from referrals.models.workflow import PathwayVersion
from referrals.usecases.deadlines.sweeping import _DUE, sweep

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # Monday 09:00 in Nha Trang
STEPS = [
    ("acknowledge", "partner"),
    ("application_received", "partner"),
    ("card_issued", "partner"),
    ("client_confirmed", "coordinator"),
]


def seed(rt, n: int, due: int) -> float:  # type: ignore[no-untyped-def]
    """N referrals with their steps; `due` of them have an alert due at NOW. Returns seconds."""
    start = time.perf_counter()
    with transaction(rt.engine) as s:
        org = s.scalars(select(Organization).where(Organization.slug == "police-nha-trang")).one()
        service = s.scalars(
            select(Service).where(
                Service.organization_id == org.id, Service.pathway_key == "id_papers"
            )
        ).one()
        version = s.scalars(
            select(PathwayVersion.version).where(PathwayVersion.key == "id_papers")
        ).one()
        admin = s.scalars(select(User.id).where(User.username == "admin")).one()
    every = n // due  # one referral in `every` is due
    postgres = rt.engine.dialect.name == "postgresql"
    series = numbers(postgres)
    concat = "'C-' || g.n" if not postgres else "'C-' || g.n::text"
    times = {
        "t0": NOW - dt.timedelta(days=3),
        "due_past": NOW - dt.timedelta(hours=1),
        "due_future": NOW + dt.timedelta(days=3),
        "next_future": NOW + dt.timedelta(days=2),
    }

    def run(sql: str, **params: object) -> None:
        stmt = text(sql).bindparams(
            *[bindparam(k, type_=UTCDateTime) for k in times if f":{k}" in sql]
        )
        with rt.engine.begin() as c:
            c.execute(stmt, {**{k: v for k, v in times.items() if f":{k}" in sql}, **params})

    run(
        f"INSERT INTO client (code, area_key, name_enc, created_at) SELECT {concat}, 'nha-trang', 'x', :t0 {series}",
        n=n,
    )
    run(
        "INSERT INTO referral (code, client_id, pathway_key, pathway_version, organization_id, service_id,"
        " area_key, coordinator_id, status, priority, launched_at, updated_at, version)"
        " SELECT 'R-' || substr(c.code, 3), c.id, 'id_papers', :version, :org, :service, 'nha-trang',"
        " :admin, 'requested', 'routine', :t0, :t0, 1 FROM client c",
        version=version,
        org=org.id,
        service=service.id,
        admin=admin,
    )
    for seq, (key, actor) in enumerate(STEPS):
        if seq == 0:
            run(
                "INSERT INTO step (referral_id, seq, key, actor, status, due_rule, activated_at, due_at,"
                " reminders_sent, escalation_level, alert_seq, next_alert_at)"
                " SELECT r.id, 0, 'acknowledge', 'partner', 'active', '{\"working_days\": 2}', :t0,"
                " CASE WHEN r.id % :every = 0 THEN :due_past ELSE :due_future END, 0, 0,"
                " CASE WHEN r.id % :every = 0 THEN 1 ELSE 0 END,"
                " CASE WHEN r.id % :every = 0 THEN :due_past ELSE :next_future END FROM referral r",
                every=every,
            )
        else:
            run(
                "INSERT INTO step (referral_id, seq, key, actor, status, due_rule, reminders_sent,"
                " escalation_level, alert_seq) SELECT r.id, :seq, :key, :actor, 'pending',"
                " '{\"working_days\": 5}', 0, 0, 0 FROM referral r",
                seq=seq,
                key=key,
                actor=actor,
            )
    if postgres:
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("ANALYZE"))
    return time.perf_counter() - start


def baseline(rt) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """The single indexed query that selects the due steps (the sweep's own, unchunked)."""
    timings, count = [], 0
    for _ in range(3):
        with transaction(rt.engine) as s:
            start = time.perf_counter()
            count = len(s.execute(_DUE, {"now": NOW}).all())
            timings.append(time.perf_counter() - start)
    return statistics.median(timings), count


def raw_writes(rt) -> float:  # type: ignore[no-untyped-def]
    """The rows the sweep wrote (events, messages) deleted and re-inserted with Core executemany,
    and its step updates replayed: the same writes with no sweep logic around them."""
    from sqlalchemy import delete, insert, update

    from referrals.models.workflow import Event, Notification, Step

    with transaction(rt.engine) as s:
        ev = Event.__table__
        nt = Notification.__table__
        events = [
            dict(r._mapping) for r in s.execute(select(ev).where(ev.c.actor == "system:sweep"))
        ]
        messages = [
            dict(r._mapping) for r in s.execute(select(nt).where(nt.c.template == "step.overdue"))
        ]
        steps = (
            [
                {"b_id": i, "b_seq": seq, "b_next": nxt}
                for i, seq, nxt in s.execute(
                    select(Step.id, Step.alert_seq, Step.next_alert_at).where(
                        Step.id.in_([e["step_id"] for e in events])
                    )
                )
            ]
            if len(events) < 30000
            else []
        )
        with past_append_only(s.connection()):  # untimed: the sweep's rows go, to come again
            s.execute(delete(ev).where(ev.c.actor == "system:sweep"))
            s.execute(delete(nt).where(nt.c.template == "step.overdue"))
    for rows in (events, messages):
        for r in rows:
            r.pop("id")
    st = Step.__table__
    replay = (
        update(st)
        .where(st.c.id == bindparam("b_id"))
        .values(alert_seq=bindparam("b_seq"), next_alert_at=bindparam("b_next"))
    )
    start = time.perf_counter()
    with transaction(rt.engine) as s:
        s.execute(insert(ev), events)
        s.execute(insert(nt), messages)
        if steps:
            s.connection().execute(replay, steps)
    return time.perf_counter() - start


def one(kind: str, n: int, due: int, workdir: Path) -> dict[str, object]:
    """One database of N referrals, measured in this (fresh) process."""
    rt = prepared_runtime(fresh_database(kind, workdir), workdir)
    try:
        seconds_seed = seed(rt, n, due)
        base, selected = baseline(rt)
        before = RssSampler.now()
        with RssSampler() as rss:
            start = time.perf_counter()
            summary = sweep(rt.engine, ctx=rt.ctx, now=NOW)
            elapsed = time.perf_counter() - start
        again = time.perf_counter()
        second = sweep(rt.engine, ctx=rt.ctx, now=NOW)  # idempotent: nothing left to fire
        again = time.perf_counter() - again
        raw = raw_writes(rt)
    finally:
        rt.engine.dispose()
        drop_database(rt.settings.database_url)
    return {
        "db": kind,
        "n": n,
        "due": selected,
        "seed_s": round(seconds_seed, 1),
        "baseline_select_s": round(base, 3),
        "sweep_s": round(elapsed, 3),
        "ratio": round(elapsed / base, 1),
        "raw_writes_s": round(raw, 3),
        "ratio_to_select_plus_writes": round(elapsed / (base + raw), 2),
        "overdue_fired": summary.counts["overdue"],
        "messages": summary.counts["messages"],
        "second_sweep_s": round(again, 3),
        "second_sweep_fired": second.counts["overdue"],
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(rss.peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one database, one size
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(one(args.db[0], args.n[0], args.due, Path(tmp))))
        return
    results: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "due": args.due,
        "runs": [],
    }
    for kind in args.db:
        for n in args.n:
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    "--db",
                    kind,
                    "--n",
                    str(n),
                    "--due",
                    str(args.due),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            run = json.loads(child.stdout.strip().splitlines()[-1])
            print(json.dumps(run), flush=True)
            results["runs"].append(run)  # type: ignore[attr-defined]
    write_results("sweep", results)


if __name__ == "__main__":
    main()
