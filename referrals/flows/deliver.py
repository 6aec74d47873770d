"""`deliver-notifications`: one pass over the outbox, on demand (`referrals deliver --via
prefect`, or its deployment). Messages go out at once when queued (notifiers/background.py), and
the clock's pass (flows/clock.py) is the safety net; this flow is the same pass on its own.

The pass is safe to run twice at once (leases, renewed while it works; `FOR UPDATE SKIP LOCKED`
on PostgreSQL) and to re-run after a crash: a dead pass's messages go out once its one-minute
lease runs out. Channel secrets may live in Prefect Secret blocks, named in the province's
channel URLs as `${prefect:block-name}`. Logs carry counts and message ids, never recipients'
secrets nor anything about clients.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger, task

from referrals.infra.retrying import transient
from referrals.infra.runtime import Runtime
from referrals.notifiers.background import gateway_slot, one_pass, said


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient)
def deliver_pass(now: dt.datetime | None, limit: int | None) -> dict[str, Any]:
    """One pass; without `now`, the clock's time when this attempt starts: a retry must not
    stamp leases with the first attempt's time, which would already be running out."""
    return one_pass(Runtime(), now=now, limit=limit)


def delivered(now: dt.datetime | None, limit: int | None) -> dict[str, Any]:
    """The pass under a gateway slot, logged by counts; in a flow (this one, or the clock's)."""
    try:
        with gateway_slot():
            summary = deliver_pass(now, limit)
    except TimeoutError:  # the gateway's passes are all taken: the next one does the work
        summary = {"skipped": "gateway busy"}
    get_run_logger().info(said(summary))
    return summary


@flow(name="deliver-notifications", flow_run_name="deliver", log_prints=False)
def deliver_notifications(
    now: dt.datetime | None = None, limit: int | None = None
) -> dict[str, Any]:
    return delivered(now, limit)
