"""`launch_referral`: the Prefect flow that launches one referral.

Parameters, run name and tags carry codes and keys only, never PII. The code is chosen before the
run so the run can be tagged `referral:<code>` and a retry finds the referral already written.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, tags, task

from referrals.infra.db import transaction
from referrals.infra.retrying import transient
from referrals.infra.runtime import Runtime
from referrals.usecases.referrals.launching import LaunchRequest, launch_one


@task(retries=3, retry_delay_seconds=[1, 5, 15], retry_condition_fn=transient)
def write_launch(
    code: str, request: LaunchRequest, coordinator: str | None, now: dt.datetime
) -> str:
    rt = Runtime()
    with transaction(rt.engine) as s:
        return launch_one(
            s, code=code, request=request, coordinator=rt.user(s, coordinator), ctx=rt.ctx, now=now
        )


@flow(name="launch-referral", flow_run_name="launch {code}", log_prints=False)
def launch_referral(
    code: str,
    request: LaunchRequest,
    coordinator: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    return write_launch(code, request, coordinator, now or dt.datetime.now(dt.UTC))


def run_launch(
    *, code: str, request: LaunchRequest, now: dt.datetime, coordinator: str | None = None
) -> str:
    """Run the flow in this process against the configured Prefect API, tagged with the code."""
    with tags(f"referral:{code}", f"pathway:{request.pathway}", f"partner:{request.partner}"):
        return launch_referral(code=code, request=request, coordinator=coordinator, now=now)
