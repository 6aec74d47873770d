"""`clock`: the one pass on a schedule (every 5 minutes when served): the deadline sweep, then a
delivery pass for whatever the fast path left (retries falling due, quiet hours ending, a kick
lost while the Prefect server restarted, a webhook event with no message).

Messages go out at once when queued (notifiers/background.py): the clock only keeps time. One
scheduled flow instead of two (a delivery every minute and a sweep every five, issue 21): 12
runs an hour per province instead of 72, and a run costs mostly its start (6-7 s of a worker's
CPU on a cluster), not its work (one query each when nothing is due). Alerts fall due at most
one interval late, as before. Parameters, run name and logs carry the instant and counts only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow

from referrals.flows.deliver import delivered
from referrals.flows.sweep import logged_sweep


@flow(name="clock", flow_run_name="clock", log_prints=False)
def clock(now: dt.datetime | None = None) -> dict[str, Any]:
    at = now or dt.datetime.now(dt.UTC)
    return {"sweep": logged_sweep(at), "delivery": delivered(now, None)}
