"""`deliver-notifications`: one pass over the outbox, on a schedule (every minute when served).

The pass is safe to run twice at once (leases, renewed while it works; `FOR UPDATE SKIP LOCKED`
on PostgreSQL) and to re-run after a crash: a dead pass's messages go out once its one-minute
lease runs out. Channel secrets may live in Prefect Secret blocks, named in the province's
channel URLs as `${prefect:block-name}`. Logs carry counts and message ids, never recipients'
secrets nor anything about clients.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from typing import Any, cast

from prefect import flow, get_run_logger, task

from referrals.flows.retrying import transient
from referrals.infra.runtime import Runtime
from referrals.notifiers.channels import Channels, environment
from referrals.notifiers.delivery import deliver


def prefect_secret(name: str) -> str | None:
    """`prefect:NAME` from a Prefect Secret block; anything else from the environment."""
    if not name.startswith("prefect:"):
        return environment(name)
    from prefect.blocks.system import Secret

    try:
        # `load` gives a coroutine only when called inside an event loop; this is sync code.
        block = cast(Secret, Secret.load(name.removeprefix("prefect:")))
        return str(block.get()) or None
    except ValueError:  # no such block
        return None


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient)
def deliver_pass(now: dt.datetime | None, limit: int | None) -> dict[str, Any]:
    """One pass; without `now`, the clock's time when this attempt starts: a retry must not
    stamp leases with the first attempt's time, which would already be running out."""
    rt = Runtime()
    channels = Channels(rt.province.province.delivery, secrets=prefect_secret)
    at = now or dt.datetime.now(dt.UTC)
    return deliver(rt, now=at, limit=limit, channels=channels).as_dict()


GATEWAY_WAIT = 50  # seconds; the next scheduled pass (every 60 s) tries again


def gateway_slot() -> contextlib.AbstractContextManager[object]:
    """One slot of the Prefect global concurrency limit named by REFERRALS_GATEWAY_LIMIT, held
    for the pass: provinces sharing an SMS gateway cap their passes at once across all of them.
    A named limit that does not exist is an error (strict), not a silent pass without one."""
    name = os.environ.get("REFERRALS_GATEWAY_LIMIT", "").strip()
    if not name:
        return contextlib.nullcontext()
    from prefect.concurrency.sync import concurrency

    return concurrency(name, occupy=1, strict=True, timeout_seconds=GATEWAY_WAIT)


@flow(name="deliver-notifications", flow_run_name="deliver", log_prints=False)
def deliver_notifications(
    now: dt.datetime | None = None, limit: int | None = None
) -> dict[str, Any]:
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(gateway_slot())
        except TimeoutError:  # the gateway's passes are all taken: the next one does the work
            get_run_logger().info("the SMS gateway is busy: this pass leaves its work to the next")
            return {"skipped": "gateway busy"}
        summary = deliver_pass(now, limit)
    get_run_logger().info(
        "sent %(sent)d, failed %(failed)d, dead %(dead)d, deferred %(deferred)d", summary
    )
    return summary
