"""`manager-digest`: queue the managers' morning e-mail (07:30 local when served).

The e-mails go through the outbox, so a delivery pass sends them (at once, through the task
worker, or at the clock's pass), retries them and never loses one; running this twice on a day
queues each manager's digest once.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger, task

from referrals.infra.db import transaction
from referrals.infra.retrying import transient
from referrals.infra.runtime import Runtime
from referrals.usecases.deadlines.digest import queue_digests


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient)
def queue(now: dt.datetime) -> dict[str, int]:
    rt = Runtime()
    with transaction(rt.engine) as s:
        return queue_digests(s, ctx=rt.ctx, now=now, config=rt.province.province.digest)


@flow(name="manager-digest", flow_run_name="digest", log_prints=False)
def manager_digest(now: dt.datetime | None = None) -> dict[str, int]:
    counts = queue(now or dt.datetime.now(dt.UTC))
    get_run_logger().info(
        "%(queued)d digests queued, %(already)d already, %(nothing_to_say)d with nothing to say",
        counts,
    )
    return counts
