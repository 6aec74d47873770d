"""Delivery through Prefect: a queued message is sent at once by a background task, and what
every pass Prefect runs shares (channel secrets in Secret blocks, the gateway's slot). Issue 21.

**At once.** Whatever queues a message marks its session; once it commits, one thread of that
process starts the installation's `deliver-now` background task (`Task.delay()`; see
notifiers/kick.py). A task worker (`python -m
referrals.flows.task_worker`: a child of `referrals serve`, or the `referrals-tasks@` unit of a
cluster) is subscribed to the Prefect server and runs it within a second: one ordinary delivery
pass, under the same leases as the scheduled one. The outbox stays the truth: a kick lost (no
worker, the server restarting, this process killed) leaves its messages queued for the clock's
pass (flows/clock.py, every five minutes), and a message the fast pass has leased is never sent
by another.

**Why a background task.** Measured (docs/research/prefect-fast-delivery.md): `.delay()` to a
running worker starts in p50 0.3 s; a deployment triggered by an event in 2.6-10.8 s, and a
worker process costs 6-7 s more to start. **Why no parameters**: Prefect stores a background
task's parameters, with the caller's settings (secrets included), in clear files it never
deletes; a task without parameters stores none. Its name carries the installation
(`deliver-now-khanh-hoa`) because Prefect keys background tasks by function name: provinces
sharing a server must not run each other's. Its result (counts only) is kept under one cache key,
overwritten by each run, so a year of kicks leaves one file, not a hundred thousand.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from referrals.infra.retrying import transient
from referrals.infra.runtime import Runtime
from referrals.notifiers.channels import Channels, environment
from referrals.notifiers.delivery import deliver

if TYPE_CHECKING:
    from prefect import Task

GATEWAY_WAIT = 50  # seconds a pass waits for the SMS gateway's slot; then the next pass sends
WORKER_LIMIT = 2  # passes at once in one task worker (leases keep them apart), as the deployment


# --- what every pass run by Prefect shares ---------------------------------------------------


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


def gateway_slot() -> contextlib.AbstractContextManager[object]:
    """One slot of the Prefect global concurrency limit named by REFERRALS_GATEWAY_LIMIT, held
    for the pass: provinces sharing an SMS gateway cap their passes at once across all of them.
    A named limit that does not exist is an error (strict), not a silent pass without one.
    Raises TimeoutError when no slot frees within GATEWAY_WAIT seconds."""
    name = os.environ.get("REFERRALS_GATEWAY_LIMIT", "").strip()
    if not name:
        return contextlib.nullcontext()
    from prefect.concurrency.sync import concurrency

    return concurrency(name, occupy=1, strict=True, timeout_seconds=GATEWAY_WAIT)


def one_pass(rt: Runtime, *, now: dt.datetime | None, limit: int | None) -> dict[str, Any]:
    """One outbox pass with the province's channels; without `now`, the clock's time when it
    starts (a retry must not stamp leases with an earlier attempt's time)."""
    channels = Channels(rt.province.province.delivery, secrets=prefect_secret)
    at = now or dt.datetime.now(dt.UTC)
    return deliver(rt, now=at, limit=limit, channels=channels).as_dict()


# --- the background task ---------------------------------------------------------------------


def slotted_pass(rt: Runtime) -> dict[str, Any]:
    """A pass now, holding a gateway slot; a gateway busy for GATEWAY_WAIT leaves it to the
    next pass."""
    try:
        with gateway_slot():
            return one_pass(rt, now=None, limit=None)
    except TimeoutError:
        return {"skipped": "gateway busy"}


def said(summary: dict[str, Any]) -> str:
    """A pass's summary in one log line: counts only."""
    if "skipped" in summary:
        return "the SMS gateway is busy: the next pass sends"
    return "sent {sent}, failed {failed}, dead {dead}, deferred {deferred}".format(**summary)


def _deliver_now() -> dict[str, Any]:
    """The task's body."""
    from prefect import get_run_logger

    summary = slotted_pass(Runtime.current())
    get_run_logger().info(said(summary))
    return summary


@cache
def task_for(installation: str) -> Task[[], dict[str, Any]]:
    """The installation's `deliver-now` task: the same key in the caller and the worker (Prefect
    keys it by the function's name and code), another for every installation."""
    from prefect import task

    def run() -> dict[str, Any]:
        return _deliver_now()

    run.__name__ = run.__qualname__ = f"deliver_now_{installation.replace('-', '_')}"

    def one_result(*_: object) -> str:  # one result file, overwritten by every run...
        return f"deliver-now-{installation}"

    return task(
        name=f"deliver-now-{installation}",
        retries=2,
        retry_delay_seconds=[2, 10],
        retry_condition_fn=transient,
        cache_key_fn=one_result,
        refresh_cache=True,  # ... and never served from it: every run is a pass
    )(run)
