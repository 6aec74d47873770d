"""`sweep-deadlines`: one pass of the deadline sweep, then the new events sealed into the audit
chain; on demand, and in the clock's pass every 5 minutes (flows/clock.py).

Safe to run twice, or twice at once: each alert fires once (usecases/deadlines/sweeping.py). Parameters and
logs carry the instant and counts only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger, task

from referrals.infra.retrying import transient
from referrals.infra.runtime import Runtime
from referrals.usecases.deadlines.sweeping import sweep_and_seal


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient)
def sweep_pass(now: dt.datetime) -> dict[str, Any]:
    rt = Runtime()
    return sweep_and_seal(rt.engine, ctx=rt.ctx, now=now)


def logged_sweep(now: dt.datetime) -> dict[str, Any]:
    """The pass, logged by counts; in a flow (this one, or the clock's)."""
    summary = sweep_pass(now)
    get_run_logger().info(
        "%(steps)d steps: %(reminder)d reminders, %(overdue)d overdue, %(escalation)d "
        "escalations, %(messages)d messages; %(sealed)d events sealed",
        summary,
    )
    return summary


@flow(name="sweep-deadlines", flow_run_name="sweep", log_prints=False)
def sweep_deadlines(now: dt.datetime | None = None) -> dict[str, Any]:
    return logged_sweep(now or dt.datetime.now(dt.UTC))
