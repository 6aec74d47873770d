"""The task worker: runs this installation's `deliver-now` background task the moment a kick
starts it (notifiers/background.py, notifiers/kick.py).

`python -m referrals.flows.task_worker`, with the installation's environment and
`PREFECT_API_URL`. `referrals serve` runs one as a child; a cluster runs the `referrals-tasks@`
systemd unit (deploy/systemd): one per province is enough, and a second on another machine
keeps delivery at once when the first is lost (Prefect pushes each run to one subscribed
worker). It begins with a pass: what was queued while no worker listened (its kick went
nowhere, or was queued on a Prefect server since restarted, where it never runs) goes out now,
not at the clock's next pass. SIGINT or SIGTERM stop it; a pass cut short leaves its leased
messages to the next pass once the lease runs out (at most the messages in flight are sent
twice, as for any pass).
"""

from __future__ import annotations

import contextlib
import logging
import os

from referrals.infra.runtime import Runtime
from referrals.notifiers.background import WORKER_LIMIT, said, slotted_pass, task_for

log = logging.getLogger("referrals.deliver")


def main() -> None:
    # A background task's logs have no flow run to go to: keep them in this process's log.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    from prefect.task_worker import serve

    said_here = logging.StreamHandler()  # Prefect configures its own loggers, not ours
    said_here.setFormatter(
        logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")
    )
    log.addHandler(said_here)
    log.setLevel(logging.INFO)
    rt = Runtime.current()
    log.info("first pass: %s", said(slotted_pass(rt)))
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT is how it is told to stop
        serve(task_for(rt.key), limit=WORKER_LIMIT)


if __name__ == "__main__":
    main()
